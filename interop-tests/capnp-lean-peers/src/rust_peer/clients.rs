//! The client scenarios run by capnp-rpc clients against a server at an address.

use capnp_schemas::interop_capnp::{interop, ErrorKind};

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

/// Connects to `address`, calls `Interop.fail(kind, message)` once and returns what capnp-rpc
/// reported, as the lines `rust-peer client-fail` prints: `kind: <capnp::ErrorKind>`,
/// `extra: <the error's text>` and `display: <its Display>`.
pub async fn client_fail(address: &str, kind: ErrorKind, message: &str) -> Result<String, String> {
    let address = Address::parse(address).map_err(|e| e.to_string())?;
    let connection = connect(&address).await.map_err(|e| format!("connect to {address}: {e}"))?;
    let interop: interop::Client = connection.bootstrap();
    let mut request = interop.fail_request();
    request.get().set_kind(kind);
    request.get().set_message(message);
    let outcome = tokio::time::timeout(std::time::Duration::from_secs(10), request.send().promise).await;
    let error = match outcome.map_err(|_| "fail: no answer within 10 s".to_string())? {
        Ok(_) => return Err("fail() succeeded".into()),
        Err(error) => error,
    };
    step("disconnect", connection.disconnect()).await?;
    Ok(format!("kind: {:?}\nextra: {}\ndisplay: {error}", error.kind, error.extra))
}

/// The schema's `ErrorKind` named `text` (`failed`, `overloaded`, `disconnected`, `unimplemented`).
pub fn error_kind_named(text: &str) -> Result<ErrorKind, String> {
    match text {
        "failed" => Ok(ErrorKind::Failed),
        "overloaded" => Ok(ErrorKind::Overloaded),
        "disconnected" => Ok(ErrorKind::Disconnected),
        "unimplemented" => Ok(ErrorKind::Unimplemented),
        other => Err(format!("unknown error kind {other:?}: expected failed, overloaded, disconnected or unimplemented")),
    }
}
