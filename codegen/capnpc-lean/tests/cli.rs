//! The plugin binary as a user meets it: `--help` and `--version` answer, unknown options are
//! refused by name.

use std::process::{Command, Stdio};

const PLUGIN: &str = env!("CARGO_BIN_EXE_capnpc-lean");

fn run(args: &[&str]) -> std::process::Output {
    Command::new(PLUGIN).args(args).stdin(Stdio::null()).output().expect("the plugin runs")
}

#[test]
fn help_says_how_to_run_it_through_the_schema_compiler() {
    let out = run(&["--help"]);
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("capnp compile -olean:OUTDIR"), "{text}");
    assert!(text.contains("CAPNPC_LEAN_MODULE_PREFIX"), "{text}");
}

#[test]
fn version_is_the_crate_version() {
    let out = run(&["--version"]);
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains(env!("CARGO_PKG_VERSION")));
}

#[test]
fn an_unknown_option_is_refused_by_name() {
    let out = run(&["--frobnicate"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--frobnicate"));
}
