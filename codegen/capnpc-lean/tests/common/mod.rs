//! Shared test support: capnpc-rust code for the test schemas, the independent decoder, the
//! IR-driven renderer and the sample messages behind the binary vectors.

#![allow(dead_code)]

pub mod render;
pub mod samples;
pub mod wire;

use std::path::PathBuf;

#[allow(clippy::all, unused, missing_docs)]
pub mod test_all_capnp {
    include!(concat!(env!("OUT_DIR"), "/test_all_capnp.rs"));
}

#[allow(clippy::all, unused, missing_docs)]
pub mod test_import_capnp {
    include!(concat!(env!("OUT_DIR"), "/test_import_capnp.rs"));
}

pub fn repo_root() -> PathBuf {
    capnp_lean_toolchain::test_support::repo_root(env!("CARGO_MANIFEST_DIR"))
}

/// True when committed files should be rewritten instead of compared.
pub fn blessing() -> bool {
    std::env::var_os("CAPNPC_LEAN_BLESS").is_some_and(|v| v == "1")
}

/// True when every skip must be a failure.
pub fn strict() -> bool {
    std::env::var_os("CAPNP_LEAN_STRICT").is_some_and(|v| v == "1")
}

/// One schema set compiled from one directory: (directory, files, Lean module prefix).
pub struct SchemaSet {
    pub dir: PathBuf,
    pub files: Vec<&'static str>,
    /// Where lean-rpc keeps this set's modules: the library's own schemas under `Capnp.Schemas`,
    /// the test schemas under `Tests.Gen`, so neither is the generator's default prefix, which
    /// belongs to users.
    pub prefix: &'static str,
}

/// The module prefix of lean-rpc's own generated modules (`Capnp` library).
pub const LIBRARY_PREFIX: &str = "Capnp.Schemas";
/// The module prefix of the test schemas' generated modules (`Tests` library).
pub const TESTS_PREFIX: &str = "Tests.Gen";

pub fn project_schemas() -> SchemaSet {
    SchemaSet {
        dir: repo_root().join("capnp-schemas"),
        files: vec!["calculator.capnp", "interop.capnp"],
        prefix: LIBRARY_PREFIX,
    }
}

pub fn test_schemas() -> SchemaSet {
    SchemaSet {
        dir: repo_root().join("codegen/capnpc-lean/tests/schemas"),
        files: vec!["test_all.capnp", "test_import.capnp"],
        prefix: TESTS_PREFIX,
    }
}

/// A broad schema added late, written without looking at the generator.
pub fn newcomer_schemas() -> SchemaSet {
    SchemaSet {
        dir: repo_root().join("codegen/capnpc-lean/tests/schemas/newcomer"),
        files: vec!["chat.capnp"],
        prefix: TESTS_PREFIX,
    }
}

pub fn command(set: &SchemaSet) -> capnpc_lean::CompilerCommand {
    let mut command = capnpc_lean::CompilerCommand::new();
    command.working_dir(&set.dir).module_prefix(set.prefix);
    for file in &set.files {
        command.file(file);
    }
    command
}
