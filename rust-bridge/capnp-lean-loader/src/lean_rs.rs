//! Capabilities built the lean-rs way: reads the artifact manifest lean-rs 0.7.3 writes
//! (`<target>.lean-rs-capability.json`, `schema_version` 2, from its `CargoLeanCapability`) and
//! translates it into this crate's manifest, so the same preflight, opening order, initializers
//! and typed calls apply. [`crate::Capability::open`] and [`crate::preflight`] detect such a
//! manifest by its `primary_dylib` field; [`read_manifest`] exposes the translation.
//!
//! What is carried over: the primary dylib and its initializer (from `package` + `module`),
//! dependencies in order with `export_symbols_for_dependents` as `RTLD_GLOBAL` and their
//! `{package, module}` initializers, the Lean version (for the runtime version check), and every
//! export signature (`function`/`global`, ABI `repr`s, `io_result`) as the C declaration Lean
//! emits, which typed calls and [`crate::Capability::global`] check against. What is not (see
//! `docs/loader.md`): the runtime — lean-rs links `libleanshared` into the host, so the manifest
//! names none and the loader uses `LoadOptions::runtime` or the process's runtime; the Lean
//! header digest; lean-rs's staleness check; and Lean ≤ 4.26 initializer names.

use std::path::{Path, PathBuf};

use capnp_lean_toolchain::names::module_initializer;
use capnp_lean_toolchain::{CapabilityManifest, ExportEntry, LibraryEntry, ManifestFile, RuntimeInit};
use serde::Deserialize;

use crate::error::{LoaderCode, LoaderError};

/// The lean-rs manifest schema this translation reads (lean-rs 0.7.3).
pub const LEAN_RS_SCHEMA_VERSION: u64 = 2;

#[derive(Deserialize)]
struct LeanRsManifest {
    schema_version: u64,
    package: String,
    module: String,
    primary_dylib: PathBuf,
    #[serde(default)]
    lean_version: Option<String>,
    #[serde(default)]
    resolved_lean_version: Option<String>,
    #[serde(default)]
    toolchain_fingerprint: Option<Fingerprint>,
    #[serde(default)]
    dependencies: Vec<Dependency>,
    exports: Vec<Export>,
}

#[derive(Deserialize)]
struct Fingerprint {
    #[serde(default)]
    lean_version: Option<String>,
    #[serde(default)]
    resolved_version: Option<String>,
}

#[derive(Deserialize)]
struct Dependency {
    dylib_path: PathBuf,
    #[serde(default)]
    export_symbols_for_dependents: bool,
    #[serde(default)]
    initializer: Option<Initializer>,
}

#[derive(Deserialize)]
struct Initializer {
    package: String,
    module: String,
}

#[derive(Deserialize)]
struct Export {
    symbol: String,
    kind: String,
    args: Vec<Slot>,
    #[serde(rename = "return")]
    result: Slot,
}

#[derive(Deserialize)]
struct Slot {
    repr: String,
    #[serde(default)]
    convention: Option<String>,
}

/// Whether a manifest's JSON is lean-rs's (it names its primary library `primary_dylib`; ours
/// has a `primary` object).
pub fn is_lean_rs_manifest(json: &serde_json::Value) -> bool {
    json.get("primary_dylib").is_some() && json.get("primary").is_none()
}

/// Reads a manifest of either kind: lean-rs's is translated, ours is read as it is.
pub fn read_manifest(path: &Path) -> Result<ManifestFile, LoaderError> {
    let invalid = |message: String| {
        LoaderError::new(LoaderCode::ManifestInvalid, message, "regenerate the manifest (capnp_lean_toolchain::build_capability, or lean-rs's CargoLeanCapability)")
    };
    let text = std::fs::read_to_string(path).map_err(|e| invalid(format!("cannot read manifest {}: {e}", path.display())))?;
    let json: serde_json::Value = serde_json::from_str(&text).map_err(|e| invalid(format!("{}: not JSON: {e}", path.display())))?;
    if !is_lean_rs_manifest(&json) {
        return ManifestFile::read(path).map_err(|e| LoaderError::new(LoaderCode::ManifestInvalid, e.message, e.hint));
    }
    let version = json.get("schema_version").and_then(serde_json::Value::as_u64);
    if version != Some(LEAN_RS_SCHEMA_VERSION) {
        return Err(LoaderError::new(
            LoaderCode::ManifestInvalid,
            format!("{}: lean-rs manifest schema {version:?} is not supported (this loader reads schema {LEAN_RS_SCHEMA_VERSION}, lean-rs 0.7.3)", path.display()),
            "rebuild the capability with lean-rs 0.7.3, or with capnp_lean_toolchain::build_capability",
        ));
    }
    let manifest: LeanRsManifest = serde_json::from_value(json).map_err(|e| invalid(format!("{}: not a lean-rs manifest: {e}", path.display())))?;
    let translated = translate(manifest).map_err(|message| invalid(format!("{}: {message}", path.display())))?;
    Ok(ManifestFile { manifest: translated, path: path.to_path_buf() })
}

fn translate(m: LeanRsManifest) -> Result<CapabilityManifest, String> {
    debug_assert_eq!(m.schema_version, LEAN_RS_SCHEMA_VERSION);
    let fingerprint = m.toolchain_fingerprint.as_ref();
    let version = fingerprint
        .and_then(|f| f.resolved_version.clone().or_else(|| f.lean_version.clone()))
        .or(m.resolved_lean_version)
        .or(m.lean_version)
        .map(|v| v.trim_start_matches('v').to_string())
        .unwrap_or_else(|| "unknown".into());
    let dependencies = m
        .dependencies
        .into_iter()
        .map(|d| LibraryEntry {
            path: d.dylib_path,
            global: d.export_symbols_for_dependents,
            initializer: d.initializer.map(|i| module_initializer(&i.package, &i.module)),
        })
        .collect();
    let exports = m.exports.into_iter().map(export_entry).collect::<Result<_, _>>()?;
    Ok(CapabilityManifest {
        schema_version: capnp_lean_toolchain::manifest::MANIFEST_SCHEMA_VERSION,
        primary: LibraryEntry { path: m.primary_dylib, global: false, initializer: Some(module_initializer(&m.package, &m.module)) },
        package: m.package,
        root_module: m.module,
        toolchain_version: version,
        // lean-rs initializes the runtime with `lean_initialize` (the `Lean` modules included).
        runtime_init: RuntimeInit::Full,
        dependencies,
        exports,
    })
}

/// The C declaration Lean emits for a lean-rs export signature.
fn export_entry(e: Export) -> Result<ExportEntry, String> {
    let result = c_type(&e.result.repr).ok_or_else(|| format!("export {}: unknown return repr `{}`", e.symbol, e.result.repr))?;
    let io = e.result.convention.as_deref() == Some("io_result");
    if io && result != "lean_object*" {
        return Err(format!("export {}: an io_result must be a lean_object", e.symbol));
    }
    let declaration = match e.kind.as_str() {
        "global" if !e.args.is_empty() || io => return Err(format!("export {}: a global takes no arguments and is not IO", e.symbol)),
        "global" => format!("{result} {}", e.symbol),
        "function" => {
            let args = e
                .args
                .iter()
                .map(|a| c_type(&a.repr).ok_or_else(|| format!("export {}: unknown argument repr `{}`", e.symbol, a.repr)))
                .collect::<Result<Vec<_>, _>>()?;
            format!("{result} {}({})", e.symbol, args.join(", "))
        }
        other => return Err(format!("export {}: kind `{other}` is neither `function` nor `global`", e.symbol)),
    };
    Ok(ExportEntry { symbol: e.symbol, c_signature: Some(declaration) })
}

/// lean-rs ABI representations as Lean's C emitter spells them. Lean has no signed C types:
/// `Int8` … `Int64` and `ISize` travel as the unsigned type of the same width.
fn c_type(repr: &str) -> Option<&'static str> {
    Some(match repr {
        "lean_object" => "lean_object*",
        "u8" | "i8" => "uint8_t",
        "u16" | "i16" => "uint16_t",
        "u32" | "i32" => "uint32_t",
        "u64" | "i64" => "uint64_t",
        "usize" | "isize" => "size_t",
        "f64" => "double",
        _ => return None,
    })
}
