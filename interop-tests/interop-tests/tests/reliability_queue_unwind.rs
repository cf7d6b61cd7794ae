//! A peer that floods a bridge server with small calls and never reads is held to the send-queue
//! bound, and must not take the server process down when its connection is ended
//! (docs/reliability.md, "Peers that do not read").
//!
//! The bound charges each queued message 1 KiB beyond its bytes: counting bytes alone, 16 MiB of
//! small answers held about 300 MiB of server memory.
//!
//! KJ 0.9.2 chains each queued outgoing message's write onto the previous one. Hundreds of
//! thousands of small answers fit under the send-queue bound (16 MiB by default), and destroying
//! that chain at the send-queue timeout recursed once per message and overflowed the server's
//! loop thread (SIGSEGV; seen on both transports with 300k 136-byte calls). The connection now
//! fails the write in flight and lets the chain unwind before destroying it.
//!
//! The transport follows `CAPNP_LEAN_TRANSPORT`; scripts/test.sh runs this file on both.

use std::io::{ErrorKind as IoErrorKind, Write};
use std::net::TcpStream;
use std::sync::Mutex;
use std::thread;
use std::time::{Duration, Instant};

use capnp_lean_peers::process::PeerProcess;
use interop_tests::reliability::hostile::{bootstrap, echo_call};
use interop_tests::reliability::observers::{open_fds, rss_settled, GoodClient, PeakRss, Served};
use interop_tests::reliability::rss_kib;

const BRIDGE_PEER: &str = env!("CARGO_BIN_EXE_bridge-peer");
const STUCK_TIMEOUT: Duration = Duration::from_secs(2);
const BATCHES: u32 = 300;
const CALLS_PER_BATCH: u32 = 1_000;
/// The default bound (16 MiB) plus socket buffers, read buffers and allocator slack.
const RSS_GROWTH_LIMIT_KIB: u64 = (16 + 48) * 1024;
/// A bound high enough to let a hundred thousand answers queue behind the ended connection.
const DEEP_LIMIT_BYTES: u64 = 160 << 20;
/// Calls the server must have taken in under that bound, or the queue behind the ended
/// connection was too short to prove anything (tens of thousands overflowed the stack).
const MIN_CALLS_SENT_DEEP: u64 = 100_000;
/// Serializes setting the server's environment and spawning it (the tests run in parallel).
static SPAWN: Mutex<()> = Mutex::new(());
/// How far above its starting point the server may stay once the connection is gone.
const MARGIN_KIB: u64 = 32 * 1024;
/// Liveness bound for the well-behaved client's calls during the flood (not a speed target).
const CALL_TIMEOUT: Duration = Duration::from_secs(2);


/// What one flood did to its server.
struct Flood {
    sent: u64,
    ended_after: Option<Duration>,
    alive: bool,
    baseline: u64,
    peak: u64,
    after: u64,
    served: Result<Served, String>,
    server: PeerProcess,
}

/// Starts a bridge server (send-queue bound `limit_bytes`, or the default), floods it with
/// small calls on one connection that never reads while a good client calls on another, and
/// waits for the server to end the flooding connection.
fn flood_small_calls(limit_bytes: Option<u64>) -> Flood {
    let mut server = {
        let _spawning = SPAWN.lock().unwrap_or_else(|e| e.into_inner());
        std::env::set_var("CAPNP_LEAN_SEND_QUEUE_TIMEOUT_MS", STUCK_TIMEOUT.as_millis().to_string());
        match limit_bytes {
            Some(limit) => std::env::set_var("CAPNP_LEAN_SEND_QUEUE_LIMIT_BYTES", limit.to_string()),
            None => std::env::remove_var("CAPNP_LEAN_SEND_QUEUE_LIMIT_BYTES"),
        }
        PeerProcess::spawn_listening(BRIDGE_PEER, &["serve-interop", "--listen", "127.0.0.1:0"], Duration::from_secs(20))
            .expect("the bridge server starts")
    };
    let address = server.address().to_string();
    let pid = server.id();
    thread::sleep(Duration::from_millis(300));
    let baseline = rss_kib(pid).expect("the server is running");
    let peak = PeakRss::start(pid, baseline);
    let good_client = GoodClient::start(&address, CALL_TIMEOUT);
    assert!(good_client.wait_served_once(Duration::from_secs(10)), "the good client was never served");
    let fds_before = open_fds(pid); // the flooding connection not yet among them

    // Built first, so the flood runs at socket speed.
    let batches: Vec<Vec<u8>> = (0..BATCHES)
        .map(|b| (0..CALLS_PER_BATCH).flat_map(|i| echo_call(b * CALLS_PER_BATCH + i + 1, &[])).collect())
        .collect();
    let mut flood = TcpStream::connect(&address).expect("connect");
    flood.write_all(&bootstrap(0)).unwrap();
    flood.set_write_timeout(Some(Duration::from_millis(200))).unwrap();
    let started = Instant::now();
    let mut sent = 0u64;
    for batch in &batches {
        match flood.write_all(batch) {
            Ok(()) => sent += u64::from(CALLS_PER_BATCH),
            // Blocked by the bound, or already ended by it: either way the queue is full.
            Err(e) if matches!(e.kind(), IoErrorKind::WouldBlock | IoErrorKind::TimedOut) => break,
            Err(_) => break,
        }
    }

    // The server ends the connection after the timeout: seen as its descriptor closing.
    let deadline = Instant::now() + STUCK_TIMEOUT + Duration::from_secs(15);
    let mut ended_after = None;
    while Instant::now() < deadline && server.is_running() {
        if open_fds(pid) <= fds_before {
            ended_after = Some(started.elapsed());
            break;
        }
        thread::sleep(Duration::from_millis(50));
    }
    thread::sleep(Duration::from_millis(300));
    let alive = server.is_running();
    let served = good_client.finish();
    let peak = peak.finish();
    let after = if alive { rss_settled(pid, baseline + MARGIN_KIB, Duration::from_secs(5)).unwrap_or(0) } else { 0 };
    drop(flood);
    println!(
        "small-call flood (bound {limit_bytes:?}): {sent} calls sent; connection ended after {ended_after:?}; server RSS \
         baseline {baseline} KiB, peak {peak} KiB, after {after} KiB; good client {served:?}"
    );
    Flood { sent, ended_after, alive, baseline, peak, after, served, server }
}

/// What every flood must show: the server alive, the connection ended after the timeout, the
/// good client served throughout, memory given back.
fn assert_contained(mut flood: Flood) -> Flood {
    assert!(flood.alive, "the server died ending the flooding connection; stderr:\n{}", flood.server.kill_and_collect_stderr());
    let ended_after = flood.ended_after.expect("the server never ended the connection of a peer that reads nothing");
    assert!(ended_after >= STUCK_TIMEOUT, "the connection ended after {ended_after:?}, before the send-queue timeout");
    let served = flood.served.as_ref().expect("the good client was served throughout");
    assert!(served.calls > 20, "only {} echoes were served during the flood", served.calls);
    assert!(
        flood.after <= flood.baseline + MARGIN_KIB,
        "server RSS stayed at {} KiB (baseline {} KiB, peak {} KiB)",
        flood.after,
        flood.baseline,
        flood.peak
    );
    flood
}

#[test]
fn a_small_call_flood_is_held_to_the_default_send_queue_bound() {
    let flood = assert_contained(flood_small_calls(None));
    assert!(
        flood.peak <= flood.baseline + RSS_GROWTH_LIMIT_KIB,
        "server RSS grew from {} KiB to {} KiB",
        flood.baseline,
        flood.peak
    );
}

#[test]
fn a_server_survives_ending_a_connection_with_a_hundred_thousand_answers_queued() {
    let flood = assert_contained(flood_small_calls(Some(DEEP_LIMIT_BYTES)));
    assert!(
        flood.sent >= MIN_CALLS_SENT_DEEP,
        "only {} calls were taken in: the queue was too short to prove anything",
        flood.sent
    );
}
