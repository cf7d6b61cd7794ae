//! `capnpc-lean`: generates Lean 4 modules from Cap'n Proto schemas.
//!
//! The pipeline is `CodeGeneratorRequest` → [`lower`] (an [`ir::Schema`] with names resolved and
//! layouts computed) → [`emit`] (Lean source, one module per schema file). Use it as a compiler
//! plugin (`capnp compile -olean:OUTDIR file.capnp`, the `capnpc-lean` binary) or from a build
//! script through [`CompilerCommand`].
//!
//! Generated modules import `Capnp.Rpc.Backend` from the `lean-rpc` Lake package and target its
//! `Capnp.Wire` runtime; see `docs/lean.md`.

pub mod command;
pub mod error;
pub mod ir;
pub mod lower;
pub mod names;

mod emit;

use std::path::PathBuf;

pub use command::CompilerCommand;
pub use error::{Error, Result};

/// Lean module prefix used when none is given.
pub const DEFAULT_MODULE_PREFIX: &str = "Capnp.Gen";

/// One generated Lean file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GeneratedFile {
    /// Path relative to the output directory, e.g. `Capnp/Gen/Calculator.lean`.
    pub path: PathBuf,
    /// Lean module name, e.g. `Capnp.Gen.Calculator`.
    pub module: String,
    /// File contents.
    pub contents: String,
}

/// Lowers a serialized `CodeGeneratorRequest` (as the compiler writes it to a plugin's stdin).
pub fn lower_request(request: &[u8], module_prefix: &str) -> Result<ir::Schema> {
    let mut slice = request;
    let message = capnp::serialize::read_message_from_flat_slice(
        &mut slice,
        capnp::message::ReaderOptions { traversal_limit_in_words: None, nesting_limit: 128 },
    )?;
    let request = message.get_root::<capnp::schema_capnp::code_generator_request::Reader>()?;
    lower::lower(request, module_prefix)
}

/// Renders the Lean modules for an already lowered schema.
pub fn emit(schema: &ir::Schema) -> Vec<GeneratedFile> {
    schema
        .modules
        .iter()
        .map(|module| GeneratedFile {
            path: names::module_path(&module.lean_module),
            module: module.lean_module.clone(),
            contents: emit::module(module),
        })
        .collect()
}

/// Request bytes → generated files.
pub fn generate(request: &[u8], module_prefix: &str) -> Result<Vec<GeneratedFile>> {
    Ok(emit(&lower_request(request, module_prefix)?))
}
