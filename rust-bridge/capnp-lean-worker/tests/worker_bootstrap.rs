//! A capability that serves its own interface (`capnp_lean_worker_bootstrap : Kj.Runtime →
//! IO Kj.Cap`, a Lean server over the KJ backend; here the fixture `fxbootstrap.c` written the
//! way Lean compiles one) runs in a worker child: the parent calls it with the capnpc-rust typed
//! client of its schema (interop.capnp's `echo`), across the process boundary. The glue's
//! externs it needs come from the worker binary, whose preflight counts them. This test program
//! links and exports the glue too (build.rs, and `capnp_lean_glue::externs` below), so the same
//! capability also runs in process behind the same typed client; `worker_basics` shows a
//! program without the glue being told what is missing.

mod worker_support;

use std::path::Path;

use capnp_lean::block_on;
use capnp_lean_worker::Worker;
use capnp_schemas::interop_capnp::interop;

/// The fixture, built once per test binary (the tests run in parallel).
fn bootstrap_config() -> Option<capnp_lean_worker::WorkerConfig> {
    static MANIFEST: std::sync::OnceLock<Option<std::path::PathBuf>> = std::sync::OnceLock::new();
    let manifest = MANIFEST.get_or_init(|| {
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("worker-bootstrap-{}", std::process::id()));
        capnp_lean_worker::test_support::build_bootstrap_fixture(&dir)
    });
    Some(worker_support::config(manifest.as_ref()?))
}

/// The loader's preflight record beside the fixture's manifest.
fn config_manifest_record() -> std::path::PathBuf {
    let manifest = bootstrap_config().expect("built above").manifest;
    manifest.with_file_name(format!("{}.preflight.json", manifest.file_name().unwrap().to_string_lossy()))
}

async fn echo(client: interop::Client, payload: &'static [u8]) -> Result<Vec<u8>, capnp::Error> {
    let mut request = client.echo_request();
    request.get().set_payload(payload);
    let response = request.send().promise.await?;
    Ok(response.get()?.get_payload()?.to_vec())
}

#[test]
fn the_capabilitys_own_interface_is_served_from_the_child_as_a_typed_client() {
    let Some(config) = bootstrap_config() else { return };
    let worker = block_on(Worker::spawn(config)).unwrap().expect("the worker starts");
    for payload in [&b"hello"[..], &[0u8; 10_000][..]] {
        let echoed = block_on(worker.with_bootstrap(move |client: interop::Client| echo(client, payload))).unwrap().unwrap().unwrap();
        assert_eq!(echoed, payload);
    }
    // A clean preflight that counted the glue a program exports is recorded for that program
    // only: the worker binary, or this test program when the in-process test opened it last.
    let record = std::fs::read_to_string(config_manifest_record()).expect("the preflight was recorded");
    let host = serde_json::from_str::<serde_json::Value>(&record).unwrap()["host"]["path"].as_str().map(std::path::PathBuf::from);
    let this_program = std::fs::canonicalize(std::env::current_exe().unwrap()).unwrap();
    let worker_binary = std::fs::canonicalize(env!("CARGO_BIN_EXE_capnp-lean-worker")).unwrap();
    assert!(host.as_ref().is_some_and(|h| *h == worker_binary || *h == this_program), "{record}");
    // Commands still work beside it, and the server lives in the child, not here.
    assert_eq!(block_on(worker.call("anything", b"x")).unwrap().unwrap().output, b"x");
    assert!(worker.pid().is_some_and(|p| p != std::process::id()));
}

#[test]
fn the_worker_binary_counts_the_glue_it_exports() {
    let Some(config) = bootstrap_config() else { return };
    let report = block_on(capnp_lean_worker::check(&config, None)).unwrap();
    assert!(report.is_ok(), "the worker exports the glue: {report}");
}

#[test]
fn moving_the_capability_into_this_process_is_a_one_line_change() {
    // This program exports the glue's externs (build.rs); link them in.
    std::hint::black_box(capnp_lean_glue::externs());
    let Some(config) = bootstrap_config() else { return };
    let worker = block_on(Worker::in_process(config)).unwrap().expect("the capability opens in this process");
    let echoed = block_on(worker.with_bootstrap(|client: interop::Client| echo(client, b"in process"))).unwrap().unwrap().unwrap();
    assert_eq!(echoed, b"in process");
    assert_eq!(worker.pid(), None);
}

#[test]
fn a_capability_without_a_bootstrap_says_so() {
    let config = fixture_config!();
    let worker = block_on(Worker::spawn(config)).unwrap().unwrap();
    let error = block_on(worker.with_bootstrap(|client: interop::Client| echo(client, b"x"))).unwrap().unwrap_err();
    assert!(error.to_string().contains("exports no capnp_lean_worker_bootstrap"), "{error}");
}
