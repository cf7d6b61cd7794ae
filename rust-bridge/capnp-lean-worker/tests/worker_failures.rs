//! Failures a worker contains, each in a real child process running the fixture capability:
//! abort, segfault and `exit(3)` fail the pending command with the status and the child's last
//! output (within a stated time) and a new child serves the next command; a hung command times
//! out and its child is killed and replaced; restarts are bounded; a leaking capability is
//! cycled by RSS and by request count without failing any command.

mod worker_support;

use std::time::{Duration, Instant};

use capnp_lean::block_on;
use capnp_lean_worker::{RestartPolicy, Worker, WorkerConfig, WorkerError};

/// A crashed worker's pending command fails within this (measured: see the test's output).
const CRASH_REPORTED_WITHIN: Duration = Duration::from_secs(2);

fn spawn(config: WorkerConfig) -> Worker {
    block_on(Worker::spawn(config)).unwrap().expect("the worker starts")
}

fn crash(command: &str, status: &str, said: &str) {
    let worker = spawn(fixture_config!());
    let first_pid = worker.pid().unwrap();
    let started = Instant::now();
    let error = block_on(worker.call(command, b"")).unwrap().unwrap_err();
    let took = started.elapsed();
    eprintln!("{command}: the pending command failed after {took:?}");
    let WorkerError::Crashed { pid, status: got, last_output, .. } = &error else { panic!("{command}: {error}") };
    assert_eq!(*pid, first_pid);
    assert_eq!(got, status, "{error}");
    assert!(last_output.iter().any(|l| l.contains(said)), "{command}: last output {last_output:?}");
    assert!(took < CRASH_REPORTED_WITHIN, "{command}: reported after {took:?}");
    // The host survived, and the next command gets a new child.
    let started = Instant::now();
    assert_eq!(block_on(worker.call("echo", b"again")).unwrap().unwrap().output, b"again");
    eprintln!("{command}: the replacement answered after {:?} (spawn + handshake + open + call)", started.elapsed());
    let state = worker.state();
    assert!(state.pid.is_some_and(|p| p != first_pid), "{state:?}");
    assert_eq!(state.restarts, 1, "{state:?}");
}

#[test]
fn an_abort_in_the_capability_fails_the_command_and_a_new_worker_serves() {
    crash("abort", "signal 6 (SIGABRT)", "giving up (abort)");
}

#[test]
fn a_segfault_in_the_capability_fails_the_command_and_a_new_worker_serves() {
    crash("segv", "signal 11 (SIGSEGV)", "about to dereference null");
}

#[test]
fn an_exit_in_the_capability_fails_the_command_and_a_new_worker_serves() {
    crash("exit3", "exit status 3", "exiting with status 3");
}

#[test]
fn a_hung_command_times_out_and_its_worker_is_killed_and_replaced() {
    let mut config = fixture_config!();
    config.request_timeout = Some(Duration::from_millis(500));
    let worker = spawn(config);
    let hung_pid = worker.pid().unwrap();
    let started = Instant::now();
    let error = block_on(worker.call("hang", b"")).unwrap().unwrap_err();
    assert!(matches!(&error, WorkerError::Timeout { pid, .. } if *pid == hung_pid), "{error}");
    assert!(started.elapsed() < Duration::from_secs(5), "{:?}", started.elapsed());
    // Killed: the process is gone (reaped) shortly after.
    let deadline = Instant::now() + Duration::from_secs(5);
    while std::path::Path::new(&format!("/proc/{hung_pid}")).exists() {
        assert!(Instant::now() < deadline, "the hung worker {hung_pid} was not killed");
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(block_on(worker.call("echo", b"next")).unwrap().unwrap().output, b"next");
    assert_eq!(worker.state().restarts, 1);
}

#[test]
fn restarts_beyond_the_policy_fail_with_the_last_failure() {
    let mut config = fixture_config!();
    config.restart = RestartPolicy { max_restarts: 2, window: Duration::from_secs(600) };
    let worker = spawn(config);
    for _ in 0..3 {
        let error = block_on(worker.call("exit3", b"")).unwrap().unwrap_err();
        assert_eq!(error.code(), "WORKER-CRASHED", "{error}");
    }
    let error = block_on(worker.call("echo", b"")).unwrap().unwrap_err();
    let WorkerError::RestartLimit { restarts, last_failure, .. } = &error else { panic!("{error}") };
    assert_eq!(*restarts, 2);
    assert!(last_failure.contains("exit status 3"), "{error}");
}

#[test]
fn a_leaking_capability_is_cycled_by_rss_without_failing_a_command() {
    let mut config = fixture_config!();
    // A fresh child is ~150 MiB resident (the Lean runtime's pages); the limit is 100 MiB above.
    let worker = spawn(config.clone());
    let baseline = capnp_lean_worker::rss::of(worker.pid().unwrap()).rss;
    eprintln!("a fresh worker's RSS: {} MiB", baseline >> 20);
    drop(worker);
    config.max_rss_bytes = Some(baseline + (100 << 20));
    let worker = spawn(config);
    let mut pids = vec![worker.pid().unwrap()];
    for i in 0..12 {
        // 32 MiB more per command: over the limit after four, then a fresh child.
        let summary = block_on(worker.call("leak", b"32")).unwrap().unwrap_or_else(|e| panic!("command {i}: {e}"));
        assert!(!summary.output.is_empty());
        if let Some(pid) = worker.pid() {
            if pids.last() != Some(&pid) {
                pids.push(pid);
            }
        }
    }
    let state = worker.state();
    assert!(state.cycles >= 2, "{state:?} pids {pids:?}");
    assert_eq!(state.restarts, 0, "cycling is not a restart: {state:?}");
    assert_eq!(state.served, 12);
}

#[test]
fn a_worker_is_cycled_after_max_requests() {
    let mut config = fixture_config!();
    config.max_requests = Some(3);
    let worker = spawn(config);
    let mut pids = Vec::new();
    for _ in 0..7 {
        let pid = block_on(worker.call("pid", b"")).unwrap().unwrap();
        pids.push(worker_support::text(&pid.output));
    }
    assert_eq!(pids[0], pids[2]);
    assert_ne!(pids[2], pids[3]);
    assert_eq!(pids[3], pids[5]);
    assert_ne!(pids[5], pids[6]);
    assert_eq!(worker.state().cycles, 2);
}
