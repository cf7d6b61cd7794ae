//! `two-party-demo`: the calculator over the capnp-lean bridge (KJ's two-party vat network).
//!
//! ```text
//! two-party-demo                        server and client in one process, on loopback
//! two-party-demo server --listen ADDR   serve the calculator as bootstrap until killed
//! two-party-demo client --connect ADDR  run the client scenario; exit 0 only if all was right
//! two-party-demo worker [--manifest M]  run a capability in a worker process, with live progress
//! ```
//! ADDR is `host:port` or `unix:PATH`. The client prints what it did and the RPC messages it
//! caused, decoded off the wire; it fails unless all seven of Bootstrap, Call, Return, Finish,
//! Resolve, Release and Disembargo appeared.

mod demo;
mod worker;

use std::process::ExitCode;

use capnp_lean::Runtime;
use clap::{Parser, Subcommand};
use capnp_lean_peers::bridge_peer::{bootstrap_for, serve_until_killed, Service};
use demo::run_client;

/// The Cap'n Proto calculator over capnp-lean (KJ's RpcSystem and two-party vat network).
/// Without a command, runs a server and a client in one process on loopback and prints the
/// session with the RPC messages decoded off the wire.
#[derive(Parser)]
#[command(version)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the calculator as the bootstrap capability until killed.
    Server {
        /// Where to listen: `host:port` or `unix:PATH`.
        #[arg(long, value_name = "ADDR")]
        listen: String,
    },
    /// Run the client scenario; exits 0 only if every result was right and all seven message
    /// kinds appeared.
    Client {
        /// The server: `host:port` or `unix:PATH`.
        #[arg(long, value_name = "ADDR")]
        connect: String,
    },
    /// Run a command of a Lean capability in a worker process (capnp-lean-worker), showing its
    /// progress live and the rows it streams. Without --manifest, builds and runs the worker
    /// tests' fixture capability (needs the Lean runtime: bash scripts/fetch-lean-runtime.sh).
    Worker {
        /// The capability's manifest (default: the fixture, built on the fly).
        #[arg(long, value_name = "PATH")]
        manifest: Option<std::path::PathBuf>,
        /// The command to run.
        #[arg(long, default_value = "rows")]
        command: String,
        /// The command's input (text).
        #[arg(long, default_value = "200000")]
        input: String,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let outcome = match &cli.command {
        None => both_in_one_process(),
        Some(Command::Server { listen }) => serve_until_killed(listen, Service::Calculator),
        Some(Command::Client { connect }) => client(connect),
        Some(Command::Worker { manifest, command, input }) => worker::run(manifest.as_deref(), command, input),
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("two-party-demo: {message}");
            ExitCode::FAILURE
        }
    }
}

fn client(address: &str) -> Result<(), String> {
    let report = run_client(address, &mut std::io::stdout())?;
    let missing = report.missing();
    if missing.is_empty() {
        println!("all results right; all seven message kinds seen");
        Ok(())
    } else {
        Err(format!("results were right, but these message kinds never appeared: {missing:?}"))
    }
}

fn both_in_one_process() -> Result<(), String> {
    let server = Runtime::new().map_err(|e| e.to_string())?;
    let bootstrap = bootstrap_for(&server, Service::Calculator)?;
    let listener = capnp_lean::block_on(server.listen_with("127.0.0.1:0", &bootstrap, &capnp_lean_peers::bridge_peer::connection_options()))
        .map_err(|e| e.to_string())?
        .map_err(|e| e.to_string())?;
    println!("server: serving the calculator on {} (KJ RpcSystem on its own loop thread)", listener.address());
    client(&listener.address())
}
