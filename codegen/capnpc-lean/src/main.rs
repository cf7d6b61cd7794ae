//! The `capnpc-lean` compiler plugin: `capnp compile -olean:OUTDIR file.capnp`.
//!
//! Reads the `CodeGeneratorRequest` from stdin and writes one Lean module per requested file
//! below the current directory (capnp runs plugins inside OUTDIR). The module prefix defaults to
//! `Capnp.Gen` and can be changed with the `CAPNPC_LEAN_MODULE_PREFIX` environment variable.

use std::io::{IsTerminal, Read};
use std::process::ExitCode;

use clap::Parser;

/// Generates Lean 4 modules (typed clients, servers, params and results over lean-rpc's
/// Backend) from Cap'n Proto schemas. Run it through the schema compiler, not by hand:
///
///   capnp compile -olean:OUTDIR file.capnp
///
/// It reads the compiler's CodeGeneratorRequest on stdin and writes one module per schema below
/// the current folder (capnp runs it inside OUTDIR). Module prefix: `Capnp.Gen`, or the value of
/// CAPNPC_LEAN_MODULE_PREFIX (e.g. `MyApp.Schemas`).
#[derive(Parser)]
#[command(name = "capnpc-lean", version, verbatim_doc_comment)]
struct Cli {}

fn main() -> ExitCode {
    Cli::parse();
    if std::io::stdin().is_terminal() {
        eprintln!("capnpc-lean: expected a CodeGeneratorRequest on stdin; run it as `capnp compile -olean:OUTDIR file.capnp` (see --help)");
        return ExitCode::from(2);
    }
    let mut request = Vec::new();
    if let Err(error) = std::io::stdin().read_to_end(&mut request) {
        eprintln!("capnpc-lean: reading the request from stdin: {error}");
        return ExitCode::FAILURE;
    }
    let prefix = std::env::var("CAPNPC_LEAN_MODULE_PREFIX")
        .unwrap_or_else(|_| capnpc_lean::DEFAULT_MODULE_PREFIX.to_string());
    let result = capnpc_lean::generate(&request, &prefix)
        .and_then(|files| capnpc_lean::command::write_files(std::path::Path::new("."), &files));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("{error}");
            ExitCode::FAILURE
        }
    }
}
