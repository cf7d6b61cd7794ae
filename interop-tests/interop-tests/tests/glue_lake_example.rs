//! Where a Lean toolchain with `lake` exists: builds lean-rpc's `kj-calculator` example (the
//! Lean client in `lean-rpc/examples/KjCalculator.lean`, linked with `libcapnp_lean_glue.a`) and
//! runs it against the bridge's calculator demo server. Skips without `lake` (fails instead
//! under `CAPNP_LEAN_STRICT=1`). The lakefile lines it needs are in `docs/lean-kj.md`.

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use capnp_lean_peers::process::{run_to_completion, PeerProcess};

const BRIDGE_PEER: &str = env!("CARGO_BIN_EXE_bridge-peer");

fn repo() -> PathBuf {
    capnp_lean_toolchain::test_support::repo_root(env!("CARGO_MANIFEST_DIR"))
}

#[test]
#[ignore = "needs a Lean toolchain with lake: scripts/test.sh runs it (--ignored) where lake exists"]
fn the_lean_example_client_calls_the_demo_calculator_through_the_kj_backend() {
    let lean_rpc = repo().join("lean-rpc");
    let Some(toolchain) = capnp_lean_toolchain::test_support::toolchain_or_skip(&lean_rpc) else { return };
    let lakefile = std::fs::read_to_string(lean_rpc.join("lakefile.toml")).unwrap();
    assert!(
        lakefile.contains("kj-calculator") && lakefile.contains("capnp_lean_glue"),
        "lean-rpc/lakefile.toml lacks the kj-calculator target: apply the lines from docs/lean-kj.md"
    );
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let status = Command::new(cargo).args(["build", "-p", "capnp-lean-glue"]).current_dir(repo()).status().unwrap();
    assert!(status.success(), "cargo build -p capnp-lean-glue failed");
    let lake = toolchain.lake().expect("a toolchain has lake");
    let built = Command::new(&lake).args(["build", "kj-calculator"]).current_dir(&lean_rpc).output().unwrap();
    assert!(
        built.status.success(),
        "lake build kj-calculator failed:\n{}{}",
        String::from_utf8_lossy(&built.stdout),
        String::from_utf8_lossy(&built.stderr)
    );
    let server = PeerProcess::spawn_listening(BRIDGE_PEER, &["serve-calculator", "--listen", "127.0.0.1:0"], Duration::from_secs(20)).unwrap();
    let exe = lean_rpc.join(".lake/build/bin/kj-calculator");
    let run = run_to_completion(&exe, &[server.address()], Duration::from_secs(60)).unwrap();
    assert!(run.status.success(), "kj-calculator failed:\n{}{}", run.stdout, run.stderr);
    assert_eq!(run.stdout.matches("ok   ").count(), 3, "{}", run.stdout);
}
