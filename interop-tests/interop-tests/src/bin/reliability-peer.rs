//! `reliability-peer`: a client process for the peer-death tests, killed at a random point while
//! a server is busy with its calls, callbacks, pipelines and promises.
//!
//! ```text
//! reliability-peer busy-client --connect ADDR --seed N --rpc bridge|capnp-rpc
//! ```
//! Prints `busy` once every kind of operation is under way, then runs until killed.

use std::process::ExitCode;

use capnp_lean::Runtime;
use capnp_schemas::interop_capnp::interop;
use capnp_lean_peers::cli::{number, option};
use capnp_lean_peers::host::{BridgeHost, RpcHost};
use interop_tests::reliability::busy::keep_busy;
use capnp_lean_peers::rust_peer::{connect, run_local, Address};

const USAGE: &str = "usage: reliability-peer busy-client --connect ADDR --seed N --rpc bridge|capnp-rpc
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
    if args.first().map(String::as_str) != Some("busy-client") {
        return Err(USAGE.into());
    }
    let address = option(args, "--connect", USAGE)?;
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
