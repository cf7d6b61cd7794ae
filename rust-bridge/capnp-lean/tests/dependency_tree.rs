//! A Rust-only user of the RPC API compiles neither the dynamic loader nor the Lean side: the
//! `capnp-lean` crate's normal dependency tree (as `cargo tree` resolves it) holds no
//! `libloading`, no serde, no toolchain helpers and no Lean crate. Adding one of them back as a
//! normal dependency, directly or through another crate, fails this test.

use std::collections::BTreeSet;
use std::process::Command;

/// The package names in `cargo tree -p capnp-lean -e normal` (optionally only `--depth 1`).
fn normal_dependencies(depth: Option<u32>) -> BTreeSet<String> {
    let mut command = Command::new(env!("CARGO"));
    command
        .args(["tree", "-p", "capnp-lean", "-e", "normal", "--prefix", "none", "--format", "{p}"])
        .current_dir(env!("CARGO_MANIFEST_DIR"));
    if let Some(depth) = depth {
        command.args(["--depth", &depth.to_string()]);
    }
    let output = command.output().expect("cargo tree runs");
    assert!(output.status.success(), "cargo tree failed: {}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8(output.stdout)
        .expect("cargo tree prints UTF-8")
        .lines()
        // "name v1.2.3 (path) (*)" → "name"
        .filter_map(|line| line.split_whitespace().next().map(str::to_string))
        .collect()
}

#[test]
fn the_rpc_api_pulls_in_no_loader_toolchain_serde_or_lean_crate() {
    let tree = normal_dependencies(None);
    assert!(tree.contains("capnp-lean-sys") && tree.contains("capnp"), "cargo tree output looks wrong: {tree:?}");
    let forbidden = [
        "libloading",
        "serde",
        "serde_json",
        "capnp-lean-toolchain",
        "capnp-lean-leanrt",
        "capnp-lean-loader",
        "capnp-lean-glue",
    ];
    let found: Vec<&str> = forbidden.iter().copied().filter(|name| tree.contains(*name)).collect();
    assert!(found.is_empty(), "capnp-lean must not depend on {found:?} (normal dependencies: {tree:?})");
}

#[test]
fn the_rpc_api_depends_directly_only_on_the_abi_capnp_futures_thiserror_and_log() {
    let direct = normal_dependencies(Some(1));
    let expected: BTreeSet<String> =
        ["capnp-lean", "capnp-lean-sys", "capnp", "futures", "thiserror", "log"].iter().map(|s| s.to_string()).collect();
    assert_eq!(direct, expected);
}
