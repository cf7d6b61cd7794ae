//! The client scenarios run by capnp-rpc clients against a server at an address.

use crate::host::RpcHost;
use crate::scenarios::calculator::run_calculator_scenario;
use crate::scenarios::interop::{check_step_names, run_interop_steps, step};

use super::{connect, Address};

/// Connects to `address`, runs every `Interop` step not named in `skip`, and disconnects.
pub async fn client_interop(address: &str, skip: &[String]) -> Result<(), String> {
    check_step_names(skip)?;
    let address = Address::parse(address).map_err(|e| e.to_string())?;
    let connection = connect(&address).await.map_err(|e| format!("connect to {address}: {e}"))?;
    run_interop_steps(&RpcHost, &connection.bootstrap(), skip).await?;
    step("disconnect", connection.disconnect()).await
}

/// Connects to `address`, runs the `Calculator` scenario and disconnects.
pub async fn client_calculator(address: &str) -> Result<(), String> {
    let address = Address::parse(address).map_err(|e| e.to_string())?;
    let connection = connect(&address).await.map_err(|e| format!("connect to {address}: {e}"))?;
    run_calculator_scenario(&RpcHost, &connection.bootstrap()).await?;
    step("disconnect", connection.disconnect()).await
}
