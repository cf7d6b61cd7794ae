//! `rust-peer`: capnp-rpc (Rust) servers and clients for the interop schemas, run as a separate
//! process by the interop tests, the demo and the benchmark.
//!
//! ```text
//! rust-peer serve-interop --listen ADDR
//! rust-peer serve-calculator --listen ADDR
//! rust-peer serve-interop-proxy --listen ADDR --upstream ADDR
//! rust-peer client-interop --connect ADDR [--skip STEP,STEP...]
//! rust-peer client-calculator --connect ADDR
//! rust-peer client-fail --connect ADDR --kind KIND --message TEXT
//! rust-peer bench --connect ADDR --calls N --window W --payload BYTES
//! rust-peer bench --connect ADDR --calls N --windows W,W,... --payload BYTES [--marks]
//! ```
//! ADDR is `host:port` or `unix:/path`. Servers print `listening on ADDR` once ready and serve
//! until killed (`serve-interop-proxy` forwards `echo` and `fail` to the `Interop` server at
//! `--upstream`); clients exit 0 only if every result was right. `--skip` leaves out named steps
//! of the interop scenario (e.g. `reflect`, which a KJ server answers with a call capnp-rpc 0.27.3
//! never executes). `client-fail` calls `Interop.fail` once and prints the error as capnp-rpc
//! reports it (`kind:`, `extra:` and `display:` lines). `bench --windows` prints one JSON line per measurement (a sequential run,
//! then one pipelined run per window; see `rust_peer::bench::Measurement`); `--marks` adds a
//! `mark` line around the measurements and waits for stdin at each (`rust_peer::bench::mark`).

use std::io::Write;
use std::process::ExitCode;

use capnp_lean_peers::cli::{bench_plan, skip_list};
use capnp_lean_peers::process::LISTENING_PREFIX;
use capnp_lean_peers::rust_peer::bench::bench_interop;
use capnp_lean_peers::host::RpcHost;
use capnp_lean_peers::rust_peer::{client_calculator, client_fail, client_interop, error_kind_named};
use capnp_lean_peers::servers::calculator::CalculatorServer;
use capnp_lean_peers::servers::forwarding::ForwardingInterop;
use capnp_lean_peers::servers::interop::InteropServer;
use capnp_lean_peers::rust_peer::{connect, run_local, serve, Address, Listener};
use capnp_schemas::interop_capnp::interop;

const USAGE: &str = "usage:
  rust-peer serve-interop --listen ADDR
  rust-peer serve-calculator --listen ADDR
  rust-peer serve-interop-proxy --listen ADDR --upstream ADDR
  rust-peer client-interop --connect ADDR [--skip STEP,STEP...]
  rust-peer client-calculator --connect ADDR
  rust-peer client-fail --connect ADDR --kind failed|overloaded|disconnected|unimplemented --message TEXT
  rust-peer bench --connect ADDR --calls N --window W --payload BYTES
  rust-peer bench --connect ADDR --calls N --windows W,W,... --payload BYTES [--marks]
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

fn option<'a>(args: &'a [String], name: &str) -> Result<&'a str, String> {
    capnp_lean_peers::cli::option(args, name, USAGE)
}

fn run(args: &[String]) -> Result<(), String> {
    let command = args.first().map(String::as_str).unwrap_or("");
    match command {
        "serve-interop" => serve_until_killed(option(args, "--listen")?, InteropServer::new(RpcHost).into_client().map_err(|e| e.to_string())?.client),
        "serve-calculator" => serve_until_killed(option(args, "--listen")?, CalculatorServer::new_client(RpcHost).map_err(|e| e.to_string())?.client),
        "serve-interop-proxy" => serve_proxy_until_killed(option(args, "--listen")?, option(args, "--upstream")?),
        "client-interop" => run_local(client_interop(option(args, "--connect")?, &skip_list(args, USAGE)?)),
        "client-calculator" => run_local(client_calculator(option(args, "--connect")?)),
        "client-fail" => {
            let kind = error_kind_named(option(args, "--kind")?)?;
            println!("{}", run_local(client_fail(option(args, "--connect")?, kind, option(args, "--message")?))?);
            Ok(())
        }
        "bench" => {
            let plan = bench_plan(args, USAGE)?;
            for line in run_local(bench_interop(option(args, "--connect")?, &plan))? {
                println!("{line}");
            }
            Ok(())
        }
        _ => Err(format!("unknown command {command:?}\n{USAGE}")),
    }
}

fn serve_until_killed(listen: &str, bootstrap: capnp::capability::Client) -> Result<(), String> {
    run_local(listen_and_serve(listen, bootstrap))
}

/// Serves a [`ForwardingInterop`] whose upstream is the `Interop` server at `upstream`.
fn serve_proxy_until_killed(listen: &str, upstream: &str) -> Result<(), String> {
    let upstream = Address::parse(upstream).map_err(|e| e.to_string())?;
    run_local(async move {
        let connection = connect(&upstream).await.map_err(|e| format!("connect to {upstream}: {e}"))?;
        let client: interop::Client = connection.bootstrap();
        let proxy: interop::Client = capnp_rpc::new_client(ForwardingInterop::new(move || Ok(client.clone())));
        listen_and_serve(listen, proxy.client).await
    })
}

async fn listen_and_serve(listen: &str, bootstrap: capnp::capability::Client) -> Result<(), String> {
    let address = Address::parse(listen).map_err(|e| e.to_string())?;
    let listener = Listener::bind(&address).await.map_err(|e| format!("cannot listen on {address}: {e}"))?;
    let bound = listener.local_address().map_err(|e| e.to_string())?;
    let mut stdout = std::io::stdout();
    writeln!(stdout, "{LISTENING_PREFIX}{bound}").and_then(|()| stdout.flush()).map_err(|e| e.to_string())?;
    serve(listener, bootstrap).await.map_err(|e| format!("serving on {bound}: {e}"))
}
