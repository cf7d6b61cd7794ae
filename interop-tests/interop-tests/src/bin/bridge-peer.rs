//! `bridge-peer`: the capnp-lean bridge (KJ underneath) as a server or client for the interop
//! schemas, run as a separate process by the interop tests and the benchmark. Same commands,
//! output and exit codes as `rust-peer`.
//!
//! ```text
//! bridge-peer serve-interop --listen ADDR
//! bridge-peer serve-calculator --listen ADDR
//! bridge-peer serve-interop-proxy --listen ADDR --upstream ADDR
//! bridge-peer client-interop --connect ADDR [--skip STEP,STEP...]
//! bridge-peer client-calculator --connect ADDR
//! bridge-peer bench --connect ADDR --calls N --window W --payload BYTES [--caller-thread]
//! bridge-peer bench --connect ADDR --calls N --windows W,W,... --payload BYTES [--marks] [--caller-thread]
//! ```
//! `serve-interop-proxy` serves an `Interop` that forwards `echo` and `fail` to the `Interop`
//! server at `--upstream`. Every command takes `--transport stock|coalescing` (default coalescing; also read from
//! `CAPNP_LEAN_TRANSPORT`). `bench` runs the client code on the runtime's loop thread, or with `--caller-thread` on the
//! main thread (every call then crosses threads twice); `--windows` prints one JSON line per
//! measurement, as `rust-peer bench --windows` does, and `--marks` adds its marks.

use std::process::ExitCode;

use capnp_lean_peers::bridge_peer::{
    bench_interop, client_calculator, client_interop, serve_proxy_until_killed, serve_until_killed, ClientThread, Service,
};
use capnp_lean_peers::cli::{bench_plan, option, skip_list};
use capnp_lean_peers::rust_peer::run_local;

const USAGE: &str = "usage:
  bridge-peer serve-interop --listen ADDR
  bridge-peer serve-calculator --listen ADDR
  bridge-peer serve-interop-proxy --listen ADDR --upstream ADDR
  bridge-peer client-interop --connect ADDR [--skip STEP,STEP...]
  bridge-peer client-calculator --connect ADDR
  bridge-peer bench --connect ADDR --calls N --window W --payload BYTES [--caller-thread]
  bridge-peer bench --connect ADDR --calls N --windows W,W,... --payload BYTES [--marks] [--caller-thread]
ADDR is host:port or unix:/path; every command takes --transport stock|coalescing";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("bridge-peer: {message}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: &[String]) -> Result<(), String> {
    if args.iter().any(|a| a == "--transport") {
        // Read by bridge_peer::connection_options; set before any thread exists.
        std::env::set_var("CAPNP_LEAN_TRANSPORT", option(args, "--transport", USAGE)?);
    }
    let listen = || option(args, "--listen", USAGE);
    let connect = || option(args, "--connect", USAGE);
    match args.first().map(String::as_str).unwrap_or("") {
        "serve-interop" => serve_until_killed(listen()?, Service::Interop),
        "serve-calculator" => serve_until_killed(listen()?, Service::Calculator),
        "serve-interop-proxy" => serve_proxy_until_killed(listen()?, option(args, "--upstream", USAGE)?),
        "client-interop" => run_local(client_interop(connect()?, &skip_list(args, USAGE)?)),
        "client-calculator" => run_local(client_calculator(connect()?)),
        "bench" => {
            let thread = if args.iter().any(|a| a == "--caller-thread") { ClientThread::Caller } else { ClientThread::Loop };
            for line in bench_interop(connect()?, &bench_plan(args, USAGE)?, thread)? {
                println!("{line}");
            }
            Ok(())
        }
        other => Err(format!("unknown command {other:?}\n{USAGE}")),
    }
}
