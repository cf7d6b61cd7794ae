//! Runs the Lean package's own tests (`lake test` in `lean-rpc/`: vectors, builders, wire edge
//! cases, Loopback RPC). Lean is not installed in CI, so without a toolchain this prints
//! `SKIPPED: …` (the project's one discovery and skip rule, `capnp_lean_toolchain::test_support`);
//! `CAPNP_LEAN_STRICT=1` makes a missing `lake` a failure.

mod common;

use std::process::Command;

#[test]
#[ignore = "needs a Lean toolchain with lake: scripts/test.sh runs it (--ignored) where lake exists"]
fn lake_test_passes_in_lean_rpc() {
    let dir = common::repo_root().join("lean-rpc");
    let Some(install) = capnp_lean_toolchain::test_support::toolchain_or_skip(&dir) else {
        eprintln!(
            "SKIPPED: lake not found (install elan and Lean 4.35: \
             curl https://raw.githubusercontent.com/leanprover/elan/master/elan-init.sh -sSf | sh; \
             the toolchain is pinned by lean-rpc/lean-toolchain), so `lake test` in lean-rpc/ did not run"
        );
        return;
    };
    let lake = install.lake().expect("a toolchain install has lake");
    let output = Command::new(&lake).arg("test").current_dir(&dir).output().expect("running lake test");
    println!("{}", String::from_utf8_lossy(&output.stdout));
    eprintln!("{}", String::from_utf8_lossy(&output.stderr));
    assert!(output.status.success(), "`lake test` failed in {}", dir.display());
}
