//! The skip-or-fail rule for tests that need a Lean runtime or toolchain, shared by every test in
//! the workspace so that they all look in the same places (via [`Discovery`]).
//!
//! Absent → print `SKIPPED: <what, how to get it>` and let the test pass; with
//! `CAPNP_LEAN_STRICT=1` → panic instead, for every kind of skip. Because `cargo test` hides
//! the output of passing tests, each skip is also appended to the file named by
//! `CAPNP_LEAN_SKIP_LOG` (the test script prints it), so a skip is never silent.

use std::path::{Path, PathBuf};

use crate::discovery::{Discovery, LeanInstall};

/// The repository root, found from a crate's `CARGO_MANIFEST_DIR` (the folder holding
/// `.lean-runtime/` and `scripts/`).
pub fn repo_root(manifest_dir: &str) -> PathBuf {
    let start = Path::new(manifest_dir);
    start
        .ancestors()
        .find(|dir| dir.join("scripts/fetch-lean-runtime.sh").is_file() || dir.join(".git").exists())
        .unwrap_or(start)
        .to_path_buf()
}

/// Whether `CAPNP_LEAN_STRICT=1` is set.
pub fn strict() -> bool {
    std::env::var("CAPNP_LEAN_STRICT").is_ok_and(|v| v == "1")
}

/// Skips (returns `None` after printing and logging `SKIPPED: …`) or, with
/// `CAPNP_LEAN_STRICT=1`, panics.
pub fn skip(what: &str) -> Option<std::convert::Infallible> {
    if strict() {
        panic!("CAPNP_LEAN_STRICT=1 and {what}");
    }
    let line = format!("SKIPPED: {what}");
    eprintln!("{line}");
    if let Some(log) = std::env::var_os("CAPNP_LEAN_SKIP_LOG") {
        use std::io::Write;
        if let Ok(mut file) = std::fs::OpenOptions::new().create(true).append(true).open(log) {
            let _ = writeln!(file, "{line}");
        }
    }
    None
}

/// The Lean runtime for tests: `LEAN_SYSROOT`, then `<repo>/.lean-runtime`, then a toolchain.
pub fn runtime_or_skip(manifest_dir: &str) -> Option<LeanInstall> {
    let provisioned = repo_root(manifest_dir).join(".lean-runtime");
    match Discovery::new().with_provisioned_runtime(provisioned).find() {
        Ok(install) => Some(install),
        Err(e) => {
            skip(&format!("no Lean runtime ({e}); get it with: bash scripts/fetch-lean-runtime.sh"))?;
            None
        }
    }
}

/// A full toolchain (with `lake`) for tests that build real Lake packages.
pub fn toolchain_or_skip(package_dir: &Path) -> Option<LeanInstall> {
    match Discovery::new().with_package_dir(package_dir).require_toolchain(true).find() {
        Ok(install) => Some(install),
        Err(e) => {
            skip(&format!("no Lean toolchain with lake ({e}); install Lean 4.35.0 with elan or set LEAN_SYSROOT"))?;
            None
        }
    }
}
