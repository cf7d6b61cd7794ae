//! Where a Lean toolchain with `lake` exists: the worker example capability written in Lean
//! (`lean-rpc/examples/WorkerCount.lean` over `lean-rpc/Capnp/Worker.lean`) is built with Lake,
//! described by `build_capability`, and run in a worker child: rows, progress and diagnostics
//! cross from real compiled Lean, and an unknown command fails with Lean's error text.
//! Skips without `lake` (fails instead under `CAPNP_LEAN_STRICT=1`).

mod worker_support;

use std::path::Path;

use capnp_lean::block_on;
use capnp_lean_toolchain::{build_capability, CapabilitySpec, Discovery};
use capnp_lean_worker::{Event, Severity, Worker};

const LAKEFILE: &str = "name = \"workercount\"\n\n[[lean_lib]]\nname = \"WorkerCount\"\nroots = [\"WorkerCount\", \"Capnp.Worker\"]\n";

#[test]
#[ignore = "needs a Lean toolchain with lake: scripts/test.sh runs it (--ignored) where lake exists"]
fn the_lean_example_capability_runs_in_a_worker() {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("worker-real-lake");
    let _ = std::fs::remove_dir_all(&dir);
    let pkg = dir.join("workercount");
    std::fs::create_dir_all(pkg.join("Capnp")).unwrap();
    let Some(_toolchain) = capnp_lean_toolchain::test_support::toolchain_or_skip(&pkg) else { return };
    let lean_rpc = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../lean-rpc");
    std::fs::write(pkg.join("lakefile.toml"), LAKEFILE).unwrap();
    std::fs::copy(lean_rpc.join("lean-toolchain"), pkg.join("lean-toolchain")).unwrap();
    std::fs::copy(lean_rpc.join("Capnp/Worker.lean"), pkg.join("Capnp/Worker.lean")).unwrap();
    std::fs::copy(lean_rpc.join("examples/WorkerCount.lean"), pkg.join("WorkerCount.lean")).unwrap();
    let mut spec = CapabilitySpec::new(&pkg, "workercount", "WorkerCount", "WorkerCount");
    spec.exports = Some(["capnp_lean_worker_run", "capnp_lean_worker_metadata"].map(String::from).to_vec());
    let built = build_capability(&spec, &Discovery::new(), &dir).expect("lake build and manifest");

    let worker = block_on(Worker::spawn(worker_support::config(&built.manifest_path))).unwrap().expect("the worker starts");
    assert_eq!(worker.state().metadata, "worker-count 1.0");
    let (mut rows, mut progress) = (Vec::new(), 0);
    let run = block_on(worker.start("count", b"2500")).unwrap().unwrap();
    let summary = block_on(run.for_each(|event| match event {
        Event::Rows(batch) => rows.extend(batch),
        Event::Progress { .. } => progress += 1,
        Event::Diagnostic(d) => panic!("unexpected {d:?}"),
    }))
    .unwrap()
    .unwrap();
    assert_eq!(summary.output, b"2500");
    assert_eq!(rows.len(), 2500);
    assert_eq!((rows[0].as_slice(), rows[2499].as_slice()), (&b"0"[..], &b"2499"[..]));
    assert_eq!(progress, 3, "every 1000 rows and at the end");

    let mut events = Vec::new();
    let run = block_on(worker.start("check", b"")).unwrap().unwrap();
    block_on(run.for_each(|e| events.push(e))).unwrap().unwrap();
    let Event::Diagnostic(first) = &events[0] else { panic!("{events:?}") };
    assert_eq!((first.severity, first.position.clone()), (Severity::Warning, Some(("WorkerCount.lean".into(), 12, 4))));

    let error = block_on(worker.call("nope", b"")).unwrap().unwrap_err();
    assert!(error.to_string().contains("no command nope"), "{error}");
}
