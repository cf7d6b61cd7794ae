//! The binaries a user runs answer `--help` (exit 0, describing their options) and refuse an
//! unknown option with a non-zero exit and a message naming it.

use std::process::Command;

const DEMO: &str = env!("CARGO_BIN_EXE_two-party-demo");
const BENCH: &str = env!("CARGO_BIN_EXE_rpc-bench");

/// (binary, arguments asking for help, words the help must contain).
const HELP: [(&str, &[&str], &[&str]); 4] = [
    (DEMO, &["--help"], &["server", "client"]),
    (DEMO, &["server", "--help"], &["--listen"]),
    (DEMO, &["client", "--help"], &["--connect"]),
    (BENCH, &["--help"], &["--quick", "--servers", "--calls", "--rounds", "--no-strace", "--no-pin", "--out"]),
];

#[test]
fn every_user_facing_binary_answers_help() {
    for (binary, args, words) in HELP {
        let out = Command::new(binary).args(args).output().unwrap();
        let help = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{binary} --help failed: {help}");
        for word in words {
            assert!(help.contains(word), "{binary} --help does not mention {word}:\n{help}");
        }
    }
}

#[test]
fn an_unknown_option_is_refused_by_name() {
    for binary in [DEMO, BENCH] {
        let out = Command::new(binary).arg("--no-such-option").output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{binary} accepted --no-such-option");
        assert!(stderr.contains("--no-such-option"), "{binary}: {stderr}");
    }
}
