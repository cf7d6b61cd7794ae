//! `tcp-floor`: the raw TCP ping-pong floor of `rpc-bench` (see `rpc_bench::tcp_floor`).
//!
//! ```text
//! tcp-floor serve-echo --listen HOST:PORT
//! tcp-floor bench --connect HOST:PORT --calls N --payload BYTES [--marks]
//! ```
//! `serve-echo` prints `listening on ADDR` and echoes until killed; `bench` prints one JSON line
//! in the format of `rust-peer bench --windows` (a sequential run only); `--marks` as there.

use std::io::Write;
use std::net::TcpListener;
use std::process::ExitCode;

use capnp_lean_peers::cli::{number, option};
use capnp_lean_peers::process::LISTENING_PREFIX;
use rpc_bench::tcp_floor::{bench, serve_echo};

const USAGE: &str = "usage:
  tcp-floor serve-echo --listen HOST:PORT
  tcp-floor bench --connect HOST:PORT --calls N --payload BYTES [--marks]";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("tcp-floor: {message}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: &[String]) -> Result<(), String> {
    match args.first().map(String::as_str).unwrap_or("") {
        "serve-echo" => {
            let listen = option(args, "--listen", USAGE)?;
            let listener = TcpListener::bind(listen).map_err(|e| format!("cannot listen on {listen}: {e}"))?;
            let bound = listener.local_addr().map_err(|e| e.to_string())?;
            let mut stdout = std::io::stdout();
            writeln!(stdout, "{LISTENING_PREFIX}{bound}").and_then(|()| stdout.flush()).map_err(|e| e.to_string())?;
            serve_echo(listener).map_err(|e| format!("serving on {bound}: {e}"))
        }
        "bench" => {
            let measurement = bench(option(args, "--connect", USAGE)?, number(args, "--calls", USAGE)?, number(args, "--payload", USAGE)?, args.iter().any(|a| a == "--marks"))?;
            println!("{}", measurement.to_json());
            Ok(())
        }
        other => Err(format!("unknown command {other:?}\n{USAGE}")),
    }
}
