//! `two-party-demo` answers `--help` for itself and each command (exit 0, describing their
//! options) and refuses an unknown option with a non-zero exit and a message naming it.

use std::process::Command;

const DEMO: &str = env!("CARGO_BIN_EXE_two-party-demo");

/// (arguments asking for help, words the help must contain).
const HELP: [(&[&str], &[&str]); 3] =
    [(&["--help"], &["server", "client"]), (&["server", "--help"], &["--listen"]), (&["client", "--help"], &["--connect"])];

#[test]
fn the_demo_and_each_command_answer_help() {
    for (args, words) in HELP {
        let out = Command::new(DEMO).args(args).output().unwrap();
        let help = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "two-party-demo {args:?} failed: {help}");
        for word in words {
            assert!(help.contains(word), "two-party-demo {args:?} does not mention {word}:\n{help}");
        }
    }
}

#[test]
fn an_unknown_option_is_refused_by_name() {
    let out = Command::new(DEMO).arg("--no-such-option").output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "two-party-demo accepted --no-such-option");
    assert!(stderr.contains("--no-such-option"), "{stderr}");
}
