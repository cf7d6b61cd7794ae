//! `rpc-bench --quick` end to end: every client runs against every server, and results.json
//! holds one well-formed entry for every client × server × mode × window × payload, each naming
//! its server and the server's transport. No timing is asserted — only that each figure is
//! present and plausible in kind (positive rates, ordered percentiles and ranges, nulls where a
//! figure does not apply, the server's CPU per call read for every entry). The bridge and
//! capnp-rpc peers it runs are the `interop-tests` package's binaries, which `cargo test
//! --workspace` builds alongside (rpc-bench says how to build them when they are missing).

use std::collections::BTreeSet;
use std::time::Duration;

use capnp_lean_peers::process::run_to_completion;
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
/// (server, server_transport) of the RPC servers; the floor client's is the TCP echo server.
const SERVERS: [(&str, &str); 4] =
    [("kj-cxx", "stock"), ("rust-capnp-rpc", "capnp-rpc"), ("capnp-lean-bridge", "stock"), ("capnp-lean-bridge", "coalescing")];
const ECHO_SERVER: (&str, &str) = ("tcp-floor", "tcp");
const PAYLOADS: [u64; 3] = [16, 1024, 65536];
const WINDOWS: [u64; 4] = [1, 8, 64, 256];
const FIELDS: [&str; 15] = [
    "client",
    "transport",
    "server",
    "server_transport",
    "mode",
    "window",
    "payload",
    "rounds",
    "calls_per_sec",
    "p50_us",
    "p99_us",
    "cpu_us_per_call",
    "server_cpu_us_per_call",
    "syscalls_per_call",
    "range",
];

fn positive(entry: &Value, key: &str) -> f64 {
    let value = entry[key].as_f64().unwrap_or_else(|| panic!("{key} is not a number in {entry}"));
    assert!(value > 0.0, "{key} is not positive in {entry}");
    value
}

/// `[min, max]` under `range.key`, around the median under `key`.
fn check_range(entry: &Value, key: &str) {
    let range = &entry["range"][key];
    if entry[key].is_null() {
        assert!(range.is_null(), "range.{key} without {key} in {entry}");
        return;
    }
    let bounds: Vec<f64> = range.as_array().unwrap_or_else(|| panic!("range.{key} in {entry}")).iter().map(|v| v.as_f64().unwrap()).collect();
    let median = entry[key].as_f64().unwrap();
    assert!(bounds.len() == 2 && bounds[0] <= median && median <= bounds[1], "range.{key} {bounds:?} around {median} in {entry}");
}

type Key = (String, String, String, String, String, Option<u64>, u64);

#[test]
fn quick_run_writes_an_entry_for_every_client_server_mode_window_and_payload() {
    let out = std::env::temp_dir().join(format!("rpc-bench-smoke-{}", std::process::id()));
    let out_arg = out.display().to_string();
    let finished = run_to_completion(RPC_BENCH, &["--quick", "--out", &out_arg], Duration::from_secs(600)).unwrap();
    assert!(finished.status.success(), "rpc-bench failed:\n{}\n{}", finished.stdout, finished.stderr);
    assert!(finished.stdout.contains("payload 64 KiB: ratios against kj-cxx/stock → kj-cxx/stock"), "no matrix table:\n{}", finished.stdout);
    assert!(finished.stdout.contains("each implementation against itself"), "no symmetric table:\n{}", finished.stdout);

    let text = std::fs::read_to_string(out.join("results.json")).unwrap();
    let plot = std::fs::read_to_string(out.join("throughput.svg")).unwrap_or_default();
    let _ = std::fs::remove_dir_all(&out);
    // One line per implementation against itself in each payload's panel.
    assert_eq!(plot.matches("<polyline").count(), 3 * 4, "throughput.svg:\n{plot}");
    let document: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(document.as_object().unwrap().keys().collect::<Vec<_>>(), ["runs"]);
    let runs = document["runs"].as_array().unwrap();

    let mut seen: BTreeSet<Key> = BTreeSet::new();
    for entry in runs {
        let keys: BTreeSet<&str> = entry.as_object().unwrap().keys().map(String::as_str).collect();
        assert_eq!(keys, FIELDS.into_iter().collect(), "fields of {entry}");
        assert_eq!(entry["rounds"].as_u64(), Some(1), "--quick is one round: {entry}");
        positive(entry, "calls_per_sec");
        assert!(entry["cpu_us_per_call"].as_f64().is_some_and(|c| c >= 0.0), "cpu_us_per_call in {entry}");
        assert!(entry["server_cpu_us_per_call"].as_f64().is_some_and(|c| c >= 0.0), "server_cpu_us_per_call in {entry}");
        assert!(entry["syscalls_per_call"].is_null() || positive(entry, "syscalls_per_call") > 0.0);
        for key in ["calls_per_sec", "p50_us", "p99_us", "cpu_us_per_call", "server_cpu_us_per_call"] {
            check_range(entry, key);
        }
        match entry["mode"].as_str() {
            Some("seq") => {
                assert!(entry["window"].is_null(), "a sequential run has no window: {entry}");
                assert!(positive(entry, "p99_us") >= positive(entry, "p50_us"), "p99 < p50 in {entry}");
            }
            Some("pipe") => assert!(entry["p50_us"].is_null() && entry["p99_us"].is_null(), "latencies of {entry}"),
            _ => panic!("mode of {entry}"),
        }
        let text = |key: &str| entry[key].as_str().unwrap_or_else(|| panic!("{key} is not a string in {entry}")).to_string();
        let key = (text("client"), text("transport"), text("server"), text("server_transport"), text("mode"), entry["window"].as_u64(), entry["payload"].as_u64().unwrap());
        assert!(seen.insert(key), "duplicate entry {entry}");
    }

    for (server, transport) in SERVERS.into_iter().chain([ECHO_SERVER]) {
        assert!(seen.iter().any(|k| (k.2.as_str(), k.3.as_str()) == (server, transport)), "no entry for the {server}/{transport} server");
    }
    let mut expected: BTreeSet<Key> = BTreeSet::new();
    for (client, transport, pipelines) in CLIENTS {
        let servers: &[(&str, &str)] = if pipelines { &SERVERS } else { &[ECHO_SERVER] };
        for (server, server_transport) in servers {
            for payload in PAYLOADS {
                let key = |mode: &str, window| {
                    (client.to_string(), transport.to_string(), server.to_string(), server_transport.to_string(), mode.to_string(), window, payload)
                };
                expected.insert(key("seq", None));
                for window in WINDOWS.iter().filter(|_| pipelines) {
                    expected.insert(key("pipe", Some(*window)));
                }
            }
        }
    }
    assert_eq!(seen, expected);
    assert_eq!(runs.len(), 3 + 5 * 4 * 3 * 5);
}
