//! Shared by the worker tests: the Lean runtime (or a loud skip), the fixture capability
//! `fixtures/fxworker.c` compiled and described by a manifest, and a config for it.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use capnp_lean_worker::WorkerConfig;

/// The fixture capability's manifest, built once per test binary; `None` after printing
/// `SKIPPED: …` when the Lean runtime is missing (a failure under CAPNP_LEAN_STRICT=1).
pub fn manifest() -> Option<PathBuf> {
    static MANIFEST: OnceLock<Option<PathBuf>> = OnceLock::new();
    MANIFEST
        .get_or_init(|| {
            let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("worker-fixture-{}", std::process::id()));
            capnp_lean_worker::test_support::build_fixture(&dir)
        })
        .clone()
}

/// A config for the fixture with this package's worker binary.
pub fn config(manifest: &Path) -> WorkerConfig {
    let mut config = WorkerConfig::new(manifest);
    config.binary = Some(PathBuf::from(env!("CARGO_BIN_EXE_capnp-lean-worker")));
    config
}

/// The fixture's config, or return from the test after a loud skip.
#[macro_export]
macro_rules! fixture_config {
    () => {
        match worker_support::manifest() {
            Some(manifest) => worker_support::config(&manifest),
            None => return,
        }
    };
}

/// Reads a row written by the fixture's `rows` command (little-endian index).
pub fn row_index(row: &[u8]) -> u64 {
    u64::from_le_bytes(row.try_into().expect("rows are 8 bytes"))
}

/// Output as text.
pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}
