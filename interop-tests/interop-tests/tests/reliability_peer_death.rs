//! Peer death at random points (docs/reliability.md, "Peer death"): a peer process is killed
//! while calls, pipelined calls, calls back into the other side and promise resolutions are in
//! flight. Every pending operation must end with `Disconnected` within one second of the kill,
//! nothing may hang, and the bridge's live-object counts must return to where they started.
//!
//! Each iteration draws its operations, their start times and the kill time from a fixed seed,
//! so a failure names an iteration that reproduces.

use std::sync::Arc;
use std::time::{Duration, Instant};

use capnp_lean::{Runtime, Stats};
use capnp_schemas::interop_capnp::interop;
use futures::future::LocalBoxFuture;
use futures::FutureExt;
use capnp_lean_peers::host::BridgeHost;
use capnp_lean_peers::process::{unique_socket_path, PeerProcess};
use interop_tests::reliability::busy::BUSY_LINE;
use interop_tests::reliability::child::ReadyChild;
use interop_tests::reliability::watched::{Ledger, WatchedInterop};
use interop_tests::reliability::Rng;
use capnp_lean_peers::rust_peer::run_local;
use capnp_lean_peers::scenarios::interop::{echo, LocalCounter};
use tokio::time::timeout_at;

const RUST_PEER: &str = env!("CARGO_BIN_EXE_rust-peer");
const BRIDGE_PEER: &str = env!("CARGO_BIN_EXE_bridge-peer");
const RELIABILITY_PEER: &str = env!("CARGO_BIN_EXE_reliability-peer");
const SEED: u64 = 0x0de1_a7ed_dea7_0001;
/// Server processes killed per implementation.
const SERVER_DEATHS: u64 = 60;
/// Client processes killed per implementation.
const CLIENT_DEATHS: u64 = 50;
const START_TIMEOUT: Duration = Duration::from_secs(20);
const STEP_TIMEOUT: Duration = Duration::from_secs(5);
/// The promise under test.
const DISCONNECT_LIMIT: Duration = Duration::from_secs(1);

/// One operation a bridge client leaves pending towards the server that will be killed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Operation {
    /// `hang`: can only end by failing.
    Hang,
    /// `callBack`: the server calls the client's own Counter, many times.
    CallBack,
    /// A call pipelined on the capability in a pending answer.
    Pipelined,
    /// A call queued on a promise capability the server resolves later.
    QueuedOnPromise,
    /// A call on a promise that resolves back to the client's own capability.
    Reflected,
    /// Echoes one after another, each checked; only ends by failing.
    EchoStream,
}

impl Operation {
    const ALL: [Operation; 6] = [
        Operation::Hang,
        Operation::CallBack,
        Operation::Pipelined,
        Operation::QueuedOnPromise,
        Operation::Reflected,
        Operation::EchoStream,
    ];

    /// Whether the operation can only end by failing once the server is gone.
    fn never_succeeds(self) -> bool {
        matches!(self, Operation::Hang | Operation::EchoStream)
    }

    fn start(self, interop: &interop::Client, counter: &capnp_schemas::interop_capnp::counter::Client, rng: &mut Rng) -> LocalBoxFuture<'static, Result<(), capnp::Error>> {
        let interop = interop.clone();
        let counter = counter.clone();
        let delay_ms = rng.between(0, 250) as u32;
        let times = rng.between(1, 5000) as u32;
        match self {
            Operation::Hang => interop.hang_request().send().promise.map(|r| r.map(drop)).boxed_local(),
            Operation::CallBack => {
                let mut request = interop.call_back_request();
                request.get().set_counter(counter);
                request.get().set_times(times);
                request.send().promise.map(|r| r.map(drop)).boxed_local()
            }
            Operation::Pipelined => {
                let fresh = interop.new_counter_request().send().pipeline.get_counter();
                let mut request = fresh.increment_request();
                request.get().set_by(1);
                request.send().promise.map(|r| r.map(drop)).boxed_local()
            }
            Operation::QueuedOnPromise => async move {
                let mut later = interop.counter_later_request();
                later.get().set_delay_ms(delay_ms);
                let promise = later.send().promise.await?.get()?.get_counter()?;
                let mut request = promise.increment_request();
                request.get().set_by(1);
                request.send().promise.await.map(drop)
            }
            .boxed_local(),
            Operation::Reflected => {
                let mut reflect = interop.reflect_request();
                reflect.get().set_counter(counter);
                reflect.get().set_delay_ms(delay_ms);
                let reflected = reflect.send().pipeline.get_counter();
                let mut request = reflected.increment_request();
                request.get().set_by(1);
                request.send().promise.map(|r| r.map(drop)).boxed_local()
            }
            Operation::EchoStream => async move {
                for n in 0u64.. {
                    let back = echo(&interop, &n.to_le_bytes()).await?;
                    assert_eq!(back, n.to_le_bytes(), "an echo came back with another call's payload");
                }
                unreachable!()
            }
            .boxed_local(),
        }
    }
}

/// What the iterations of one test saw, printed at the end.
#[derive(Default, Debug)]
struct Tally {
    iterations: u64,
    failed_disconnected: u64,
    succeeded_before_the_kill: u64,
    slowest_failure: Duration,
}

fn wait_for_stats(runtime: &Runtime, limit: Duration, wanted: impl Fn(&Stats) -> bool) -> Stats {
    let deadline = Instant::now() + limit;
    loop {
        let stats = runtime.stats().unwrap();
        if wanted(&stats) || Instant::now() > deadline {
            return stats;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// Kills a server process `SERVER_DEATHS` times while a bridge client has every kind of
/// operation pending on it.
fn pending_operations_fail_promptly_when_servers_die(peer: &str, seed: u64) -> Tally {
    let runtime = Runtime::new().unwrap();
    let mut rng = Rng::new(seed);
    let mut tally = Tally::default();
    for iteration in 0..SERVER_DEATHS {
        let context = format!("{peer}, seed {seed:#x}, iteration {iteration}");
        let socket = unique_socket_path("death");
        let listen = format!("unix:{}", socket.display());
        let mut server = PeerProcess::spawn_listening(peer, &["serve-interop", "--listen", &listen], START_TIMEOUT).unwrap();
        run_local(async {
            let connection = tokio::time::timeout(STEP_TIMEOUT, runtime.connect(server.address())).await.unwrap().unwrap();
            let interop: interop::Client = connection.bootstrap().unwrap();
            tokio::time::timeout(STEP_TIMEOUT, echo(&interop, b"up")).await.unwrap().unwrap();
            let ended = connection.disconnected();
            let counter = LocalCounter::default().client(&BridgeHost(runtime.handle())).unwrap();
            let mut running = Vec::new();
            for operation in Operation::ALL {
                for _ in 0..rng.between(1, 2) {
                    let start_after = Duration::from_millis(rng.between(0, 40));
                    let work = operation.start(&interop, &counter, &mut rng);
                    running.push((operation, tokio::task::spawn_local(async move {
                        tokio::time::sleep(start_after).await;
                        let outcome = work.await;
                        (outcome, Instant::now())
                    })));
                }
            }
            drop(counter);
            tokio::time::sleep(Duration::from_millis(rng.between(0, 120))).await;
            let killed_at = Instant::now();
            server.kill_and_collect_stderr();
            let deadline = tokio::time::Instant::from_std(killed_at + DISCONNECT_LIMIT);
            for (operation, task) in running {
                let (outcome, ended_at) = timeout_at(deadline, task)
                    .await
                    .unwrap_or_else(|_| panic!("{context}: {operation:?} still pending 1 s after the server died"))
                    .unwrap();
                match outcome {
                    Ok(()) => {
                        assert!(!operation.never_succeeds(), "{context}: {operation:?} succeeded");
                        tally.succeeded_before_the_kill += 1;
                    }
                    Err(error) => {
                        assert_eq!(error.kind, capnp::ErrorKind::Disconnected, "{context}: {operation:?}: {error}");
                        tally.failed_disconnected += 1;
                        tally.slowest_failure = tally.slowest_failure.max(ended_at.saturating_duration_since(killed_at));
                    }
                }
            }
            let reason = timeout_at(deadline, ended)
                .await
                .unwrap_or_else(|_| panic!("{context}: no disconnect notification 1 s after the server died"))
                .unwrap();
            assert_eq!(reason.kind(), capnp_lean::ErrorKind::Disconnected, "{context}: {reason}");
            drop(interop);
            drop(connection);
        });
        let stats = wait_for_stats(&runtime, STEP_TIMEOUT, |s| *s == Stats::default());
        assert_eq!(stats, Stats::default(), "{context}: the client runtime still holds objects");
        let _ = std::fs::remove_file(&socket);
        tally.iterations += 1;
    }
    tally
}

#[test]
fn operations_pending_on_a_killed_bridge_server_fail_disconnected_within_a_second_and_nothing_leaks() {
    let tally = pending_operations_fail_promptly_when_servers_die(BRIDGE_PEER, SEED);
    println!("bridge-peer server deaths: {tally:?}");
}

#[test]
fn operations_pending_on_a_killed_capnp_rpc_server_fail_disconnected_within_a_second_and_nothing_leaks() {
    let tally = pending_operations_fail_promptly_when_servers_die(RUST_PEER, SEED ^ 1);
    println!("rust-peer (capnp-rpc) server deaths: {tally:?}");
}

/// Kills a client process `CLIENT_DEATHS` times while a bridge server is busy with its hanging
/// calls, calls back into it, promise resolutions and pipelined calls.
fn a_bridge_server_cleans_up_after_killed_clients(rpc: &str, seed: u64) {
    let runtime = Runtime::new().unwrap();
    let ledger = Arc::new(Ledger::default());
    let bootstrap = WatchedInterop::new(runtime.handle(), ledger.clone()).into_client().unwrap();
    let socket = unique_socket_path("busy");
    let listener = capnp_lean::block_on(runtime.listen(&format!("unix:{}", socket.display()), &bootstrap)).unwrap().unwrap();
    let address = listener.address();
    let baseline = runtime.stats().unwrap();
    let mut rng = Rng::new(seed);
    let mut slowest = Duration::ZERO;
    let (mut callback_failures, mut methods_abandoned) = (0, 0);
    for iteration in 0..CLIENT_DEATHS {
        let context = format!("{rpc} client, seed {seed:#x}, iteration {iteration}");
        let client_seed = rng.next_u64().to_string();
        let mut client = ReadyChild::spawn(
            RELIABILITY_PEER,
            &["busy-client", "--connect", &address, "--seed", &client_seed, "--rpc", rpc],
            BUSY_LINE,
            START_TIMEOUT,
        )
        .unwrap_or_else(|e| panic!("{context}: {e}"));
        std::thread::sleep(Duration::from_millis(rng.between(0, 120)));
        let killed_at = Instant::now();
        client.kill();
        // Every server method working for that client ends, and every call the server made
        // back to it fails, within the promised second.
        let stats = wait_for_stats(&runtime, DISCONNECT_LIMIT, |s| s.server_calls == 0 && s.calls == 0 && ledger.in_progress() == 0);
        let took = killed_at.elapsed();
        assert!(
            stats.server_calls == 0 && stats.calls == 0 && ledger.in_progress() == 0,
            "{context}: 1 s after the client died the server still has work for it: {stats:?}, {} in progress",
            ledger.in_progress()
        );
        slowest = slowest.max(took);
        // The server's own calls back to the dead client fail with Disconnected, unless KJ
        // cancelled the method making them first (its caller is gone): both are clean ends.
        let failures = ledger.take_callback_failures();
        assert!(failures.iter().all(|k| *k == capnp::ErrorKind::Disconnected), "{context}: calls back to the dead client ended with {failures:?}");
        let abandoned = ledger.take_abandoned();
        assert!(abandoned + failures.len() as i64 >= 2, "{context}: the hang and callBack running at the kill did not end ({abandoned} abandoned, {failures:?})");
        callback_failures += failures.len();
        methods_abandoned += abandoned;
        let settled = Stats { connections: 0, resolvers: 0, calls: 0, server_calls: 0, ..baseline };
        let stats = wait_for_stats(&runtime, STEP_TIMEOUT, |s| *s == settled);
        assert_eq!(stats, settled, "{context}: the server did not return to its baseline");
    }
    assert_eq!(listener.accepted(), CLIENT_DEATHS);
    println!(
        "{rpc} client deaths: {CLIENT_DEATHS} iterations; server methods abandoned: {methods_abandoned}, \
         calls back failed Disconnected: {callback_failures}; all server work ended at most {slowest:?} after the kill"
    );
    drop(listener);
    let _ = std::fs::remove_file(&socket);
}

#[test]
fn a_bridge_server_ends_a_killed_bridge_clients_work_within_a_second_and_returns_to_baseline() {
    a_bridge_server_cleans_up_after_killed_clients("bridge", SEED ^ 2);
}

#[test]
fn a_bridge_server_ends_a_killed_capnp_rpc_clients_work_within_a_second_and_returns_to_baseline() {
    a_bridge_server_cleans_up_after_killed_clients("capnp-rpc", SEED ^ 3);
}
