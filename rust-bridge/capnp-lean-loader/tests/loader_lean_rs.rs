//! A capability laid out and described the way lean-rs 0.7.3 builds one — Lake's library names
//! and initializer names, a shim dependency that exports symbols for its dependents, and the
//! schema-2 `*.lean-rs-capability.json` artifact manifest with typed export signatures — opens,
//! passes the preflight and is called through this loader. Own test binary: it initializes the
//! runtime the way lean-rs does (`lean_initialize`).

mod loader_support;

use std::path::{Path, PathBuf};

use capnp_lean_leanrt::{IoError, Obj};
use capnp_lean_loader::{lean_rs, preflight, Capability, LoadOptions, LoaderCode};
use serde_json::json;

/// Compiles `fixtures/lean/<fixture>.c` and puts it where Lake would: `<pkg>/.lake/build/lib/<file>`.
fn lake_library(fixture: &str, pkg: &Path, file: &str) -> PathBuf {
    let lib = pkg.join(".lake/build/lib");
    std::fs::create_dir_all(&lib).unwrap();
    let built = loader_support::compile(fixture, &pkg.join(".lake/build"), &[]);
    std::fs::rename(&built, lib.join(file)).unwrap();
    lib.join(file)
}

fn signature(symbol: &str, kind: &str, args: &[&str], ret: &str, convention: &str) -> serde_json::Value {
    let ownership = |repr: &str| if repr == "lean_object" { "owned" } else { "none" };
    json!({
        "symbol": symbol,
        "kind": kind,
        "args": args.iter().map(|r| json!({ "repr": r, "ownership": ownership(r) })).collect::<Vec<_>>(),
        "return": { "repr": ret, "ownership": ownership(ret), "convention": convention },
    })
}

/// The Lake packages and the manifest lean-rs's `CargoLeanCapability` would write for them
/// (every field it writes, absolute paths as it stores them). Returns the manifest path.
fn build_lean_rs_capability(dir: &Path, shim_exports_symbols: bool) -> PathBuf {
    let primary = lake_library("fxleanrs", &dir.join("fx_leanrs"), "libfx__leanrs_FxLeanRs.so");
    let shim = lake_library("fxlrshim", &dir.join("fx_leanrs/.lake/packages/fxlr_shims"), "libfxlr__shims_FxLrShims.so");
    let manifest = json!({
        "schema_version": 2,
        "target_name": "FxLeanRs",
        "package": "fx_leanrs",
        "module": "FxLeanRs.Api",
        "primary_dylib": primary.display().to_string(),
        "manifest_env_var": "LEAN_RS_CAPABILITY_FXLEANRS_MANIFEST",
        "lean_version": "4.35.0",
        "resolved_lean_version": "4.35.0",
        "lean_header_sha256": "0".repeat(64),
        "toolchain_fingerprint": {
            "lean_version": "4.35.0",
            "resolved_version": "4.35.0",
            "header_sha256": "0".repeat(64),
            "fixture_sha256": "0".repeat(64),
            "host_triple": "x86_64-unknown-linux-gnu",
        },
        "build_toolchain": null,
        "search_dirs": [primary.parent().unwrap().display().to_string()],
        "dependencies": [{
            "name": "fxlr_shims",
            "dylib_path": shim.display().to_string(),
            "export_symbols_for_dependents": shim_exports_symbols,
            "initializer": { "package": "fxlr_shims", "module": "FxLrShims" },
        }],
        "exports": [
            signature("fxlr_add", "function", &["u32", "u32"], "u32", "pure"),
            signature("fxlr_scaled", "function", &["u32"], "u32", "pure"),
            signature("fxlr_init_runs", "function", &[], "u32", "pure"),
            signature("fxlr_greet", "function", &["lean_object"], "lean_object", "pure"),
            signature("fxlr_io_echo", "function", &["lean_object"], "lean_object", "io_result"),
            signature("fxlr_banner", "global", &[], "lean_object", "pure"),
        ],
    });
    let out = dir.join("out");
    std::fs::create_dir_all(&out).unwrap();
    let path = out.join("FxLeanRs.lean-rs-capability.json");
    std::fs::write(&path, serde_json::to_vec_pretty(&manifest).unwrap()).unwrap();
    path
}

#[test]
fn a_capability_built_the_lean_rs_way_opens_and_its_exports_are_called() {
    let Some(runtime) = loader_support::runtime() else { return };
    let manifest = build_lean_rs_capability(&loader_support::scratch("lean-rs-open"), true);
    // lean-rs hosts link libleanshared, so its manifests name no runtime: say which one.
    let options = LoadOptions { runtime: Some(runtime.runtime_library.clone()), ..Default::default() };
    let cap = Capability::open_with(&manifest, &options).expect("the lean-rs capability opens");
    let _t = cap.attach_thread();
    assert_eq!(cap.export::<(), u32>("fxlr_init_runs").unwrap().call(()), 11, "primary and shim initialized once each");
    assert_eq!(cap.export::<(u32, u32), u32>("fxlr_add").unwrap().call((2, 40)), 42);
    assert_eq!(cap.export::<(u32,), u32>("fxlr_scaled").unwrap().call((3,)), 301, "shim symbols via RTLD_GLOBAL");
    assert_eq!(cap.export::<(&str,), String>("fxlr_greet").unwrap().call(("Rust",)), "lean-rs says hi to Rust");
    let echo = cap.export::<(&str,), Result<String, IoError>>("fxlr_io_echo").unwrap();
    assert_eq!(echo.call(("io",)).unwrap(), "io");
    assert_eq!(cap.global::<String>("fxlr_banner").unwrap(), "built the lean-rs way");

    // The translated signatures are enforced like ours.
    let err = cap.export::<(u64, u64), u64>("fxlr_add").err().expect("u32 export called as u64");
    assert_eq!(err.code, LoaderCode::SignatureMismatch, "{err}");
    let err = cap.export::<(), Obj>("fxlr_banner").err().expect("a global is not a function");
    assert_eq!(err.code, LoaderCode::SymbolKind, "{err}");
}

#[test]
fn a_lean_rs_manifest_translates_names_versions_and_signatures() {
    let path = build_lean_rs_capability(&loader_support::scratch("lean-rs-translate"), true);
    let file = lean_rs::read_manifest(&path).unwrap();
    let m = &file.manifest;
    assert_eq!(m.primary.initializer.as_deref(), Some("initialize_fx__leanrs_FxLeanRs_Api"));
    assert!(!m.primary.global);
    assert_eq!(m.dependencies.len(), 1);
    assert!(m.dependencies[0].global);
    assert_eq!(m.dependencies[0].initializer.as_deref(), Some("initialize_fxlr__shims_FxLrShims"));
    assert_eq!(m.toolchain_version, "4.35.0");
    assert_eq!(m.runtime_init, capnp_lean_toolchain::RuntimeInit::Full);
    let sig = |s: &str| m.exports.iter().find(|e| e.symbol == s).and_then(|e| e.c_signature.clone());
    assert_eq!(sig("fxlr_add").as_deref(), Some("uint32_t fxlr_add(uint32_t, uint32_t)"));
    assert_eq!(sig("fxlr_init_runs").as_deref(), Some("uint32_t fxlr_init_runs()"));
    assert_eq!(sig("fxlr_io_echo").as_deref(), Some("lean_object* fxlr_io_echo(lean_object*)"));
    assert_eq!(sig("fxlr_banner").as_deref(), Some("lean_object* fxlr_banner"));
}

#[test]
fn the_preflight_checks_a_lean_rs_bundle_like_ours() {
    let Some(runtime) = loader_support::runtime() else { return };
    let good = build_lean_rs_capability(&loader_support::scratch("lean-rs-preflight-good"), true);
    preflight(&good, Some(&runtime.runtime_library)).expect("a loadable lean-rs bundle has no findings");

    let local = build_lean_rs_capability(&loader_support::scratch("lean-rs-preflight-local"), false);
    let findings = preflight(&local, Some(&runtime.runtime_library)).expect_err("the shim's symbols are invisible");
    let finding = findings.with_code(LoaderCode::UndefinedSymbols).next().expect("an undefined-symbols finding");
    assert!(finding.message.contains("fxlrshim_scale"), "{finding}");
}

#[test]
fn lean_rs_manifests_of_other_schemas_or_shapes_are_refused_with_the_reason() {
    let dir = loader_support::scratch("lean-rs-schema");
    let path = build_lean_rs_capability(&dir, true);
    let mut json: serde_json::Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    json["schema_version"] = json!(3);
    std::fs::write(&path, json.to_string()).unwrap();
    let err = lean_rs::read_manifest(&path).expect_err("schema 3 is unknown");
    assert_eq!(err.code, LoaderCode::ManifestInvalid);
    assert!(err.message.contains("schema Some(3)") && err.message.contains("lean-rs 0.7.3"), "{err}");

    json["schema_version"] = json!(2);
    json["exports"][0]["return"]["repr"] = json!("u128");
    std::fs::write(&path, json.to_string()).unwrap();
    let err = lean_rs::read_manifest(&path).expect_err("u128 is no Lean ABI type");
    assert!(err.message.contains("unknown return repr `u128`"), "{err}");
}
