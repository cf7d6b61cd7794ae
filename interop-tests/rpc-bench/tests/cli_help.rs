//! `rpc-bench` answers `--help` (exit 0, describing its options) and refuses an unknown option
//! with a non-zero exit and a message naming it.

use std::process::Command;

const BENCH: &str = env!("CARGO_BIN_EXE_rpc-bench");

#[test]
fn the_benchmark_answers_help_with_every_option() {
    let out = Command::new(BENCH).arg("--help").output().unwrap();
    let help = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "rpc-bench --help failed: {help}");
    for word in ["--quick", "--servers", "--calls", "--rounds", "--no-strace", "--no-pin", "--out"] {
        assert!(help.contains(word), "rpc-bench --help does not mention {word}:\n{help}");
    }
}

#[test]
fn an_unknown_option_is_refused_by_name() {
    let out = Command::new(BENCH).arg("--no-such-option").output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "rpc-bench accepted --no-such-option");
    assert!(stderr.contains("--no-such-option"), "{stderr}");
}
