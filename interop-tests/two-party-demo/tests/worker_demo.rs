//! `two-party-demo worker`: the fixture capability in a worker child streams its rows with a
//! progress bar that reaches 100%, and the summary counts every row.

use std::process::Command;

#[test]
fn the_worker_demo_streams_rows_with_live_progress() {
    if capnp_lean_toolchain::test_support::runtime_or_skip(env!("CARGO_MANIFEST_DIR")).is_none() {
        return;
    }
    let output = Command::new(env!("CARGO_BIN_EXE_two-party-demo")).args(["worker", "--input", "5000"]).output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&output.stderr));
    assert!(stdout.contains(&format!("[{}] 5000/5000 rows", "#".repeat(40))), "{stdout}");
    assert!(stdout.contains("5000 rows streamed; summary: output \"5000\", 5000 rows"), "{stdout}");
    assert!(stdout.contains("row: [00, 00, 00, 00, 00, 00, 00, 00]"), "{stdout}");
}
