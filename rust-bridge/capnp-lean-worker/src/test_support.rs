//! Not part of the API: the fixture capabilities the worker's tests and `worker-bench` run
//! (`tests/fixtures/*.c`, written the way compiled Lean lays out a module, compiled
//! against the real Lean 4.35 runtime), built on demand.

use std::path::{Path, PathBuf};

use capnp_lean_toolchain::ManifestBuilder;

/// Prototypes as Lean's C emitter writes them, so the manifest carries checked signatures.
const IR: &[(&str, &str)] = &[
    ("capnp_lean_worker_run", "LEAN_EXPORT lean_object* capnp_lean_worker_run(lean_object*, lean_object*, lean_object*);"),
    ("capnp_lean_worker_metadata", "LEAN_EXPORT lean_object* capnp_lean_worker_metadata(lean_object*);"),
    ("capnp_lean_worker_bootstrap", "LEAN_EXPORT lean_object* capnp_lean_worker_bootstrap(lean_object*);"),
];

/// Compiles the fixture `fxworker` into `dir` and writes its manifest there; `None` after
/// printing `SKIPPED: …` when the Lean runtime is not provisioned (a panic under
/// CAPNP_LEAN_STRICT=1).
pub fn build_fixture(dir: &Path) -> Option<PathBuf> {
    build("fxworker", "FxWorker", &["capnp_lean_worker_run", "capnp_lean_worker_metadata"], dir)
}

/// The fixture `fxbootstrap`: a capability serving its own interface (an echo of interop.capnp)
/// through the glue's externs, which only a worker child exports.
pub fn build_bootstrap_fixture(dir: &Path) -> Option<PathBuf> {
    build("fxbootstrap", "FxBootstrap", &["capnp_lean_worker_run", "capnp_lean_worker_bootstrap"], dir)
}

fn build(name: &str, module: &str, exports: &[&str], dir: &Path) -> Option<PathBuf> {
    let runtime = capnp_lean_toolchain::test_support::runtime_or_skip(env!("CARGO_MANIFEST_DIR"))?;
    let _ = std::fs::remove_dir_all(dir);
    std::fs::create_dir_all(dir.join("ir")).expect("the fixture folder can be created");
    let here = Path::new(env!("CARGO_MANIFEST_DIR"));
    let library = dir.join(format!("lib{name}.so"));
    let status = std::process::Command::new("cc")
        .args(["-shared", "-fPIC", "-O1", "-I"])
        .arg(here.join("tests/fixtures"))
        .arg("-I")
        .arg(here.join("../capnp-lean-loader/tests/fixtures/lean"))
        .arg("-o")
        .arg(&library)
        .arg(here.join(format!("tests/fixtures/{name}.c")))
        .status()
        .expect("cc runs");
    assert!(status.success(), "compiling the worker fixture failed");
    let ir: Vec<&str> = IR.iter().filter(|(symbol, _)| exports.contains(symbol)).map(|(_, line)| *line).collect();
    std::fs::write(dir.join(format!("ir/{module}.c")), ir.join("\n")).expect("the IR file can be written");
    let manifest = ManifestBuilder::new(name, module, "4.35.0", &library)
        .dependency(&runtime.runtime_library, true, None)
        .exports(exports.iter().copied())
        .ir_dir(dir.join("ir"))
        .build(dir)
        .expect("the fixture manifest builds");
    let path = dir.join(format!("{name}.capability.json"));
    manifest.write(&path).expect("the fixture manifest can be written");
    Some(path)
}
