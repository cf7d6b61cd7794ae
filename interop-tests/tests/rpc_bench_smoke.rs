//! `rpc-bench --quick` end to end: every client runs, and results.json holds one well-formed
//! entry for every client × mode × window × payload. No timing is asserted — only that each
//! figure is present and plausible in kind (positive rates, ordered percentiles, nulls where a
//! figure does not apply).

use std::collections::BTreeSet;
use std::time::Duration;

use interop_tests::process::run_to_completion;
use serde_json::Value;

const RPC_BENCH: &str = env!("CARGO_BIN_EXE_rpc-bench");

/// (client, transport, measures pipelined runs).
const CLIENTS: [(&str, &str, bool); 6] = [
    ("tcp-floor", "tcp", false),
    ("kj-cxx", "stock", true),
    ("capnp-lean-bridge", "stock", true),
    ("capnp-lean-bridge", "coalescing", true),
    ("capnp-lean-bridge-caller-thread", "coalescing", true),
    ("rust-capnp-rpc", "capnp-rpc", true),
];
const PAYLOADS: [u64; 3] = [16, 1024, 65536];
const WINDOWS: [u64; 4] = [1, 8, 64, 256];
const FIELDS: [&str; 10] =
    ["client", "transport", "mode", "window", "payload", "calls_per_sec", "p50_us", "p99_us", "cpu_us_per_call", "syscalls_per_call"];

fn positive(entry: &Value, key: &str) -> f64 {
    let value = entry[key].as_f64().unwrap_or_else(|| panic!("{key} is not a number in {entry}"));
    assert!(value > 0.0, "{key} is not positive in {entry}");
    value
}

#[test]
fn quick_run_writes_an_entry_for_every_client_mode_window_and_payload() {
    let out = std::env::temp_dir().join(format!("rpc-bench-smoke-{}", std::process::id()));
    let out_arg = out.display().to_string();
    let finished = run_to_completion(RPC_BENCH, &["--quick", "--no-plot", "--out", &out_arg], Duration::from_secs(600)).unwrap();
    assert!(finished.status.success(), "rpc-bench failed:\n{}\n{}", finished.stdout, finished.stderr);
    assert!(finished.stdout.contains("payload 64 KiB: ratios against kj-cxx/stock"), "no ratio table:\n{}", finished.stdout);

    let text = std::fs::read_to_string(out.join("results.json")).unwrap();
    let _ = std::fs::remove_dir_all(&out);
    let document: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(document.as_object().unwrap().keys().collect::<Vec<_>>(), ["runs"]);
    let runs = document["runs"].as_array().unwrap();

    let mut seen = BTreeSet::new();
    for entry in runs {
        let keys: BTreeSet<&str> = entry.as_object().unwrap().keys().map(String::as_str).collect();
        assert_eq!(keys, FIELDS.into_iter().collect(), "fields of {entry}");
        positive(entry, "calls_per_sec");
        assert!(entry["cpu_us_per_call"].as_f64().is_some_and(|c| c >= 0.0), "cpu_us_per_call in {entry}");
        assert!(entry["syscalls_per_call"].is_null() || positive(entry, "syscalls_per_call") > 0.0);
        match entry["mode"].as_str() {
            Some("seq") => {
                assert!(entry["window"].is_null(), "a sequential run has no window: {entry}");
                assert!(positive(entry, "p99_us") >= positive(entry, "p50_us"), "p99 < p50 in {entry}");
            }
            Some("pipe") => assert!(entry["p50_us"].is_null() && entry["p99_us"].is_null(), "latencies of {entry}"),
            _ => panic!("mode of {entry}"),
        }
        let key = (entry["client"].to_string(), entry["transport"].to_string(), entry["mode"].to_string(), entry["window"].as_u64(), entry["payload"].as_u64());
        assert!(seen.insert(key), "duplicate entry {entry}");
    }

    let mut expected = BTreeSet::new();
    for (client, transport, pipelines) in CLIENTS {
        for payload in PAYLOADS {
            let quoted = |s: &str| format!("\"{s}\"");
            expected.insert((quoted(client), quoted(transport), quoted("seq"), None, Some(payload)));
            for window in WINDOWS.iter().filter(|_| pipelines) {
                expected.insert((quoted(client), quoted(transport), quoted("pipe"), Some(*window), Some(payload)));
            }
        }
    }
    assert_eq!(seen, expected);
    assert_eq!(runs.len(), 78);
}
