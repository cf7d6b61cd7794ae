//! The `capnpc-lean` compiler plugin: `capnp compile -olean:OUTDIR file.capnp`.
//!
//! Reads the `CodeGeneratorRequest` from stdin and writes one Lean module per requested file
//! below the current directory (capnp runs plugins inside OUTDIR). The module prefix defaults to
//! `Capnp.Gen` and can be changed with the `CAPNPC_LEAN_MODULE_PREFIX` environment variable.

use std::io::Read;
use std::process::ExitCode;

fn main() -> ExitCode {
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
