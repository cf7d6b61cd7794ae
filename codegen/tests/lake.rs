//! Runs the Lean package's own tests (`lake test` in `lean-rpc/`: vectors, builders, Loopback
//! RPC). Lean is not installed in CI, so without `lake` this prints `SKIPPED: …`; with
//! `CAPNP_LEAN_STRICT=1` a missing `lake` is a failure.

mod common;

use std::process::Command;

fn lake_available() -> bool {
    Command::new("lake").arg("--version").output().is_ok_and(|o| o.status.success())
}

#[test]
fn lake_test_passes_in_lean_rpc() {
    if !lake_available() {
        let reason = "SKIPPED: lake not found (install elan and Lean 4.35: \
                      curl https://raw.githubusercontent.com/leanprover/elan/master/elan-init.sh -sSf | sh, \
                      then run `lake test` in lean-rpc/; the toolchain is pinned by lean-rpc/lean-toolchain)";
        println!("{reason}");
        assert!(!common::strict(), "CAPNP_LEAN_STRICT=1 forbids skipping: {reason}");
        return;
    }
    let dir = common::repo_root().join("lean-rpc");
    let output = Command::new("lake").arg("test").current_dir(&dir).output().expect("running lake test");
    println!("{}", String::from_utf8_lossy(&output.stdout));
    eprintln!("{}", String::from_utf8_lossy(&output.stderr));
    assert!(output.status.success(), "`lake test` failed in {}", dir.display());
}
