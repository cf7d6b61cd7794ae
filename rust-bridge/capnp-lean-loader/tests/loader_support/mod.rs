//! Shared by the loader tests: the runtime (via lean-toolchain's one discovery), compiling the
//! C fixtures in `tests/fixtures/lean/`, and writing their manifests with lean-toolchain.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use capnp_lean_toolchain::{LeanInstall, ManifestBuilder};

/// The Lean runtime, or `None` after printing `SKIPPED: …` (panics under CAPNP_LEAN_STRICT=1).
pub fn runtime() -> Option<LeanInstall> {
    capnp_lean_toolchain::test_support::runtime_or_skip(env!("CARGO_MANIFEST_DIR"))
}

/// A fresh scratch folder for one test.
pub fn scratch(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("loader-tests").join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/lean")
}

/// Compiles `fixtures/lean/<name>.c` into `<dir>/lib<name>.so` with extra linker arguments.
pub fn compile(name: &str, dir: &Path, extra: &[&str]) -> PathBuf {
    let out = dir.join(format!("lib{name}.so"));
    let status = std::process::Command::new("cc")
        .args(["-shared", "-fPIC", "-O1", "-I"])
        .arg(fixtures())
        .arg("-o")
        .arg(&out)
        .arg(fixtures().join(format!("{name}.c")))
        .args(extra)
        .status()
        .expect("cc runs");
    assert!(status.success(), "compiling fixture {name} failed");
    out
}

/// Prototypes as Lean's C emitter writes them, so the manifest carries checked signatures.
const FXCAP_IR: &str = "\
LEAN_EXPORT uint32_t fxcap_add(uint32_t, uint32_t);
LEAN_EXPORT uint32_t fxcap_scaled(uint32_t);
LEAN_EXPORT uint32_t fxcap_tripled(uint32_t);
LEAN_EXPORT uint32_t fxcap_init_runs(void);
LEAN_EXPORT uint64_t fxcap_mul64(uint64_t, uint64_t);
LEAN_EXPORT double fxcap_half(double);
LEAN_EXPORT uint8_t fxcap_is_even(uint32_t);
LEAN_EXPORT lean_object* fxcap_greet(lean_object*);
LEAN_EXPORT lean_object* fxcap_reverse(lean_object*);
LEAN_EXPORT lean_object* fxcap_io_echo(lean_object*);
LEAN_EXPORT lean_object* fxcap_io_fail(lean_object*);
LEAN_EXPORT lean_object* fxcap_adder(uint32_t);
LEAN_EXPORT lean_object* fxcap_banner;
LEAN_EXPORT uint32_t fxcap_answer;
LEAN_EXPORT lean_object* fxcap_config;
LEAN_EXPORT const lean_object* fxcap_ground = (const lean_object*)&fxcap_ground_value;
LEAN_EXPORT lean_object* fxcap_unmarked;
LEAN_EXPORT lean_object* fxcap_small;
";

/// The exports of the fixture capability.
pub const FXCAP_EXPORTS: &[&str] = &[
    "fxcap_add", "fxcap_scaled", "fxcap_tripled", "fxcap_init_runs", "fxcap_mul64", "fxcap_half", "fxcap_is_even",
    "fxcap_greet", "fxcap_reverse", "fxcap_io_echo", "fxcap_io_fail", "fxcap_adder", "fxcap_banner", "fxcap_answer",
    "fxcap_config", "fxcap_ground", "fxcap_unmarked", "fxcap_small",
];

/// Builds the fixture capability in `dir`: libfxhelper (NEEDED via RUNPATH, not in the
/// manifest), libfxdep (global dependency with its own initializer), libfxcap (primary, uses
/// libfxdep's symbols without linking it), and `fxcap.capability.json`.
pub fn build_fxcap(dir: &Path, runtime: &LeanInstall, dep_global: bool) -> PathBuf {
    let lib = dir.join("lib");
    std::fs::create_dir_all(&lib).unwrap();
    compile("fxhelper", &lib, &["-Wl,-soname,libfxhelper.so"]);
    let dep = compile("fxdep", &lib, &[]);
    let lib_arg = format!("-L{}", lib.display());
    let primary = compile("fxcap", &lib, &[&lib_arg, "-lfxhelper", "-Wl,-rpath,$ORIGIN", "-Wl,--enable-new-dtags"]);
    let ir = dir.join("ir");
    std::fs::create_dir_all(&ir).unwrap();
    std::fs::write(ir.join("FxCap.c"), FXCAP_IR).unwrap();
    let manifest = ManifestBuilder::new("fxcap", "FxCap", "4.35.0", &primary)
        .dependency(&runtime.runtime_library, true, None)
        .dependency(&dep, dep_global, Some("initialize_fxdep_FxDep"))
        .exports(FXCAP_EXPORTS.iter().copied())
        .ir_dir(&ir)
        .build(dir)
        .unwrap();
    let path = dir.join("fxcap.capability.json");
    manifest.write(&path).unwrap();
    path
}

/// A one-library capability from `fixtures/lean/<name>.c` (package = name, module = `Name`).
pub fn build_single(dir: &Path, runtime: &LeanInstall, name: &str, module: &str) -> PathBuf {
    let primary = compile(name, dir, &[]);
    let manifest = ManifestBuilder::new(name, module, "4.35.0", &primary)
        .dependency(&runtime.runtime_library, true, None)
        .build(dir)
        .unwrap();
    let path = dir.join(format!("{name}.capability.json"));
    manifest.write(&path).unwrap();
    path
}
