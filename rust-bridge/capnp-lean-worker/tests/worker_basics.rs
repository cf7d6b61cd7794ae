//! A worker child running the fixture capability (compiled-Lean conventions, real Lean 4.35
//! runtime): handshake and metadata, commands with rows, progress and diagnostics in emission
//! order, a Lean IO error as a call failure, cancellation reaching the child, the child's
//! environment built from scratch, and the same API in process.

mod worker_support;

use capnp_lean::block_on;
use capnp_lean_worker::{Event, Severity, Worker, WorkerConfig};
use futures::StreamExt;

fn spawn(config: WorkerConfig) -> Worker {
    block_on(Worker::spawn(config)).unwrap().expect("the worker starts")
}

#[test]
fn a_command_answers_with_what_the_export_returned_and_the_metadata_is_reported() {
    let worker = spawn(fixture_config!());
    let summary = block_on(worker.call("echo", b"ping")).unwrap().unwrap();
    assert_eq!(summary.output, b"ping");
    let state = worker.state();
    assert!(state.live && state.pid.is_some_and(|p| p != std::process::id()), "{state:?}");
    assert_eq!(state.metadata, "fxworker 1.0");
    assert_eq!(state.served, 1);
}

#[test]
fn rows_progress_and_diagnostics_arrive_in_emission_order() {
    let worker = spawn(fixture_config!());
    let events: Vec<Event> = block_on(async {
        let run = worker.start("diag", b"").await.unwrap();
        let mut events = Vec::new();
        let summary = run.for_each(|e| events.push(e)).await.unwrap();
        assert_eq!((summary.rows, summary.diagnostics, summary.output.as_slice()), (1, 2, &b"diagnosed"[..]));
        events
    })
    .unwrap();
    assert_eq!(events.len(), 3, "{events:?}");
    let Event::Diagnostic(first) = &events[0] else { panic!("{events:?}") };
    assert_eq!((first.severity, first.code.as_str()), (Severity::Warning, "FX001"));
    assert_eq!(first.position, Some(("Fx/Worker.lean".to_string(), 12, 4)));
    assert_eq!(events[1], Event::Rows(vec![b"between".to_vec()]));
    let Event::Diagnostic(second) = &events[2] else { panic!("{events:?}") };
    assert_eq!((second.severity, second.position.as_ref()), (Severity::Error, None));

    let mut rows = 0u64;
    let mut progress = Vec::new();
    let summary = block_on(async {
        let run = worker.start("rows", b"10000").await.unwrap();
        run.for_each(|e| match e {
            Event::Rows(batch) => {
                for row in batch {
                    assert_eq!(worker_support::row_index(&row), rows, "rows in order");
                    rows += 1;
                }
            }
            Event::Progress { done, total, .. } => {
                assert_eq!(done, rows, "progress comes after the rows it counts");
                progress.push((done, total));
            }
            Event::Diagnostic(d) => panic!("unexpected {d:?}"),
        })
        .await
        .unwrap()
    })
    .unwrap();
    assert_eq!((rows, summary.rows), (10_000, 10_000));
    assert_eq!(progress.len(), 10);
    assert_eq!(progress.last(), Some(&(10_000, 10_000)));
}

#[test]
fn a_lean_io_error_fails_the_command_with_its_text_and_the_worker_keeps_serving() {
    let worker = spawn(fixture_config!());
    let error = block_on(worker.call("fail", b"")).unwrap().unwrap_err();
    assert!(error.to_string().contains("fxworker refused the command"), "{error}");
    assert_eq!(error.code(), "WORKER-RPC");
    let pid = worker.pid();
    assert_eq!(block_on(worker.call("echo", b"after")).unwrap().unwrap().output, b"after");
    assert_eq!(worker.pid(), pid, "an IO error is not a crash");
}

#[test]
fn dropping_a_running_command_cancels_it_in_the_child() {
    let worker = spawn(fixture_config!());
    block_on(async {
        let mut run = worker.start("until_cancelled", b"").await.unwrap();
        // Wait until the command is running (it reports progress), then drop it.
        assert!(matches!(run.next().await, Some(Event::Progress { .. })));
        drop(run);
    })
    .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let seen = block_on(worker.call("cancels_seen", b"")).unwrap().unwrap();
        if worker_support::text(&seen.output) == "1" {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "the child never saw the cancellation");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

#[test]
fn the_child_gets_only_the_environment_the_parent_builds() {
    std::env::set_var("LD_LIBRARY_PATH", "/nonexistent-on-purpose");
    let mut config = fixture_config!();
    let worker = spawn(config.clone());
    assert_eq!(worker_support::text(&block_on(worker.call("env", b"")).unwrap().unwrap().output), "vars=0 ld=unset");
    config.env.push(("FX_ONE".into(), "1".into()));
    let worker = spawn(config);
    assert_eq!(worker_support::text(&block_on(worker.call("env", b"")).unwrap().unwrap().output), "vars=1 ld=unset");
}

#[test]
fn in_process_runs_the_same_capability_behind_the_same_api() {
    let config = fixture_config!();
    let worker = block_on(Worker::in_process(config)).unwrap().unwrap();
    let pid = block_on(worker.call("pid", b"")).unwrap().unwrap();
    assert_eq!(worker_support::text(&pid.output), std::process::id().to_string());
    assert_eq!(worker.state().pid, None);
    let summary = block_on(worker.call("rows", b"3000")).unwrap().unwrap();
    assert_eq!(summary.rows, 3000);
}

#[test]
fn a_missing_binary_and_a_bad_manifest_fail_with_codes_and_hints() {
    let mut config = fixture_config!();
    config.binary = Some("/nonexistent/capnp-lean-worker".into());
    let error = block_on(Worker::spawn(config)).unwrap().err().unwrap();
    assert_eq!(error.code(), "WORKER-BINARY-MISSING", "{error}");
    assert!(error.to_string().contains("cargo build -p capnp-lean-worker"), "{error}");

    let mut config = fixture_config!();
    config.manifest = "/nonexistent/fx.capability.json".into();
    let error = block_on(Worker::spawn(config)).unwrap().err().unwrap();
    assert_eq!(error.code(), "WORKER-OPEN", "{error}");
    assert!(error.to_string().contains("/nonexistent/fx.capability.json"), "{error}");
}

#[test]
fn check_reports_each_problem_with_a_code_and_hint_before_the_first_command() {
    let config = fixture_config!();
    let report = block_on(capnp_lean_worker::check(&config, Some("fxworker 1.0"))).unwrap();
    assert!(report.is_ok(), "{report}");
    assert_eq!(report.metadata.as_deref(), Some("fxworker 1.0"));
    assert_eq!(report.protocol, Some(capnp_lean_worker::protocol::PROTOCOL_VERSION));

    let report = block_on(capnp_lean_worker::check(&config, Some("fxworker 2.0"))).unwrap();
    assert_eq!(report.findings.iter().map(|f| f.code.as_str()).collect::<Vec<_>>(), ["WORKER-METADATA-MISMATCH"], "{report}");

    let mut broken = config.clone();
    broken.binary = Some("/nonexistent/capnp-lean-worker".into());
    broken.manifest = "/nonexistent/fx.capability.json".into();
    let report = block_on(capnp_lean_worker::check(&broken, None)).unwrap();
    let codes: Vec<&str> = report.findings.iter().map(|f| f.code.as_str()).collect();
    assert_eq!(codes.first(), Some(&"WORKER-BINARY-MISSING"), "{report}");
    assert!(codes.len() >= 2 && codes[1].starts_with("LOADER-"), "the preflight's own code: {report}");
    assert!(report.findings.iter().all(|f| !f.hint.is_empty()), "{report}");
}

#[test]
fn dropping_the_worker_ends_its_child_even_with_a_command_stuck_in_lean_code() {
    let worker = spawn(fixture_config!());
    let pid = worker.pid().unwrap();
    let run = block_on(worker.start("hang", b"")).unwrap().unwrap();
    std::thread::sleep(std::time::Duration::from_millis(100));
    drop(run);
    drop(worker);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while std::path::Path::new(&format!("/proc/{pid}")).exists() {
        assert!(std::time::Instant::now() < deadline, "the child {pid} outlived its Worker");
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
}

