//! A capability described the way lean-rs 0.7.3 describes one (its schema-2 artifact manifest:
//! Lake's library, package/module initializer naming, typed export signatures, no runtime path
//! since lean-rs hosts link the runtime) runs in a worker child: the loader translates the
//! manifest, `WorkerConfig::runtime` says which runtime to load, and commands work as with ours.

mod worker_support;

use std::path::Path;

use capnp_lean::block_on;
use capnp_lean_worker::Worker;
use serde_json::json;

fn signature(symbol: &str, args: usize) -> serde_json::Value {
    json!({
        "symbol": symbol,
        "kind": "function",
        "args": (0..args).map(|_| json!({ "repr": "lean_object", "ownership": "owned" })).collect::<Vec<_>>(),
        "return": { "repr": "lean_object", "ownership": "owned", "convention": if args == 3 { "io_result" } else { "pure" } },
    })
}

#[test]
fn a_capability_with_a_lean_rs_manifest_runs_in_a_worker() {
    let Some(runtime) = capnp_lean_toolchain::test_support::runtime_or_skip(env!("CARGO_MANIFEST_DIR")) else { return };
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("worker-lean-rs-{}", std::process::id()));
    capnp_lean_worker::test_support::build_fixture(&dir).expect("the fixture builds");
    let manifest = json!({
        "schema_version": 2,
        "target_name": "FxWorker",
        "package": "fxworker",
        "module": "FxWorker",
        "primary_dylib": dir.join("libfxworker.so").display().to_string(),
        "manifest_env_var": "LEAN_RS_CAPABILITY_FXWORKER_MANIFEST",
        "lean_version": "4.35.0",
        "resolved_lean_version": "4.35.0",
        "lean_header_sha256": "0".repeat(64),
        "toolchain_fingerprint": {
            "lean_version": "4.35.0",
            "resolved_version": "4.35.0",
            "header_sha256": "0".repeat(64),
            "fixture_sha256": "0".repeat(64),
            "host_triple": "x86_64-unknown-linux-gnu",
        },
        "build_toolchain": null,
        "search_dirs": [dir.display().to_string()],
        "dependencies": [],
        "exports": [signature("capnp_lean_worker_run", 3), signature("capnp_lean_worker_metadata", 1)],
    });
    let path = dir.join("FxWorker.lean-rs-capability.json");
    std::fs::write(&path, serde_json::to_vec_pretty(&manifest).unwrap()).unwrap();

    let mut config = worker_support::config(&path);
    let worker = block_on(Worker::spawn(config.clone())).unwrap().err().map(|e| e.to_string());
    assert!(worker.as_deref().is_some_and(|e| e.contains("runtime")), "without a runtime the open fails naming it: {worker:?}");

    config.runtime = Some(runtime.runtime_library.clone());
    let report = block_on(capnp_lean_worker::check(&config, Some("fxworker 1.0"))).unwrap();
    assert!(report.is_ok(), "{report}");
    let worker = block_on(Worker::spawn(config)).unwrap().expect("the worker opens the lean-rs capability");
    assert_eq!(block_on(worker.call("echo", b"lean-rs")).unwrap().unwrap().output, b"lean-rs");
    assert_eq!(block_on(worker.call("rows", b"2000")).unwrap().unwrap().rows, 2000);
}
