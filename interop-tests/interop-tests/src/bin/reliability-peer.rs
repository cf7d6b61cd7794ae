//! `reliability-peer`: a client process for the peer-death tests, killed at a random point while
//! a server is busy with its calls, callbacks, pipelines and promises.
//!
//! ```text
//! reliability-peer busy-client --connect ADDR --seed N --rpc bridge|capnp-rpc
//! reliability-peer flood-client --connect ADDR --payload BYTES --interval-ms N --for-ms N
//! ```
//! `busy-client` prints `busy` once every kind of operation is under way, then runs until killed.
//! `flood-client` (a bridge client, connection options from the environment as `bridge-peer`
//! reads them) prints `ready` once connected, starts an echo call every `--interval-ms` for
//! `--for-ms`, and prints one summary line (`reliability::flood::flood`).

use std::process::ExitCode;
use std::time::Duration;

use capnp_lean::Runtime;
use capnp_schemas::interop_capnp::interop;
use capnp_lean_peers::cli::{number, option};
use capnp_lean_peers::host::{BridgeHost, RpcHost};
use interop_tests::reliability::busy::keep_busy;
use interop_tests::reliability::flood::{flood, FloodPlan};
use capnp_lean_peers::rust_peer::{connect, run_local, Address};

const USAGE: &str = "usage: reliability-peer busy-client --connect ADDR --seed N --rpc bridge|capnp-rpc
       reliability-peer flood-client --connect ADDR --payload BYTES --interval-ms N --for-ms N
ADDR is host:port or unix:/path";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("reliability-peer: {message}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: &[String]) -> Result<(), String> {
    let address = option(args, "--connect", USAGE)?;
    match args.first().map(String::as_str) {
        Some("busy-client") => {}
        Some("flood-client") => {
            let plan = FloodPlan {
                payload: number(args, "--payload", USAGE)?,
                interval: Duration::from_millis(number(args, "--interval-ms", USAGE)?),
                duration: Duration::from_millis(number(args, "--for-ms", USAGE)?),
            };
            println!("{}", run_local(flood(address, plan))?);
            return Ok(());
        }
        _ => return Err(USAGE.into()),
    }
    let seed: u64 = number(args, "--seed", USAGE)?;
    match option(args, "--rpc", USAGE)? {
        "bridge" => {
            let runtime = Runtime::new().map_err(|e| e.to_string())?;
            run_local(async {
                let connection = runtime.connect(address).await.map_err(|e| e.to_string())?;
                let interop: interop::Client = connection.bootstrap().map_err(|e| e.to_string())?;
                keep_busy(&BridgeHost(runtime.handle()), &interop, seed).await
            })
        }
        "capnp-rpc" => run_local(async {
            let address = Address::parse(address).map_err(|e| e.to_string())?;
            let connection = connect(&address).await.map_err(|e| e.to_string())?;
            keep_busy(&RpcHost, &connection.bootstrap::<interop::Client>(), seed).await
        }),
        other => Err(format!("unknown --rpc {other:?}\n{USAGE}")),
    }
}
