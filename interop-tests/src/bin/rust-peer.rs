//! `rust-peer`: capnp-rpc (Rust) servers and clients for the interop schemas, run as a separate
//! process by the interop tests, the demo and the benchmark.
//!
//! ```text
//! rust-peer serve-interop --listen ADDR
//! rust-peer serve-calculator --listen ADDR
//! rust-peer client-interop --connect ADDR [--skip STEP,STEP...]
//! rust-peer client-calculator --connect ADDR
//! rust-peer bench --connect ADDR --calls N --window W --payload BYTES
//! ```
//! ADDR is `host:port` or `unix:/path`. Servers print `listening on ADDR` once ready and serve
//! until killed; clients exit 0 only if every result was right. `--skip` leaves out named steps
//! of the interop scenario (e.g. `reflect`, which a KJ server answers with a call capnp-rpc 0.27.3
//! never executes).

use std::io::Write;
use std::process::ExitCode;

use interop_tests::process::LISTENING_PREFIX;
use interop_tests::rust_peer::bench::{bench_interop, BenchConfig};
use interop_tests::rust_peer::calculator_client::client_calculator;
use interop_tests::rust_peer::calculator_server::CalculatorServer;
use interop_tests::rust_peer::interop_client::client_interop;
use interop_tests::rust_peer::interop_server::InteropServer;
use interop_tests::rust_peer::{run_local, serve, Address, Listener};

const USAGE: &str = "usage:
  rust-peer serve-interop --listen ADDR
  rust-peer serve-calculator --listen ADDR
  rust-peer client-interop --connect ADDR [--skip STEP,STEP...]
  rust-peer client-calculator --connect ADDR
  rust-peer bench --connect ADDR --calls N --window W --payload BYTES
ADDR is host:port or unix:/path; client-interop steps (for --skip): echo, fail, counter,
counter-later, reflect, call-back, hang, not-implemented";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("rust-peer: {message}");
            ExitCode::FAILURE
        }
    }
}

/// The value following `--name`, if present.
fn option<'a>(args: &'a [String], name: &str) -> Result<&'a str, String> {
    let position = args.iter().position(|a| a == name).ok_or_else(|| format!("missing {name}\n{USAGE}"))?;
    args.get(position + 1).map(String::as_str).ok_or_else(|| format!("{name} needs a value\n{USAGE}"))
}

fn number<T: std::str::FromStr>(args: &[String], name: &str) -> Result<T, String> {
    let text = option(args, name)?;
    text.parse().map_err(|_| format!("{name} {text:?} is not a number"))
}

fn run(args: &[String]) -> Result<(), String> {
    let command = args.first().map(String::as_str).unwrap_or("");
    match command {
        "serve-interop" => serve_until_killed(option(args, "--listen")?, InteropServer::new().into_client().client),
        "serve-calculator" => serve_until_killed(option(args, "--listen")?, CalculatorServer::new_client().client),
        "client-interop" => {
            let skip: Vec<String> = if args.iter().any(|a| a == "--skip") {
                option(args, "--skip")?.split(',').map(str::to_string).collect()
            } else {
                Vec::new()
            };
            run_local(client_interop(option(args, "--connect")?, &skip))
        }
        "client-calculator" => run_local(client_calculator(option(args, "--connect")?)),
        "bench" => {
            let config = BenchConfig {
                calls: number(args, "--calls")?,
                window: number(args, "--window")?,
                payload: number(args, "--payload")?,
            };
            let result = run_local(bench_interop(option(args, "--connect")?, config))?;
            println!("{}", result.to_json());
            Ok(())
        }
        _ => Err(format!("unknown command {command:?}\n{USAGE}")),
    }
}

fn serve_until_killed(listen: &str, bootstrap: capnp::capability::Client) -> Result<(), String> {
    let address = Address::parse(listen).map_err(|e| e.to_string())?;
    run_local(async move {
        let listener = Listener::bind(&address).await.map_err(|e| format!("cannot listen on {address}: {e}"))?;
        let bound = listener.local_address().map_err(|e| e.to_string())?;
        let mut stdout = std::io::stdout();
        writeln!(stdout, "{LISTENING_PREFIX}{bound}").and_then(|()| stdout.flush()).map_err(|e| e.to_string())?;
        serve(listener, bootstrap).await.map_err(|e| format!("serving on {bound}: {e}"))
    })
}
