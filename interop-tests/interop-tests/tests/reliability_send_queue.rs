//! A peer that sends calls and never reads the answers, against a bridge server process
//! (docs/reliability.md, "Peers that do not read"). Without a bound the server queued answers
//! without limit (over 1 GiB in about a second); with the send-queue bound it stops reading from
//! that peer once 1 MiB is queued, keeps serving a well-behaved client meanwhile, and ends the
//! connection when the queue has stayed above the bound for the timeout (3 s here).
//!
//! The transport follows `CAPNP_LEAN_TRANSPORT`; scripts/test.sh runs this file on both.

use std::io::{ErrorKind as IoErrorKind, Read, Write};
use std::net::TcpStream;
use std::thread;
use std::time::{Duration, Instant};

use capnp_lean_peers::process::PeerProcess;
use interop_tests::reliability::hostile::{bootstrap, echo_call};
use interop_tests::reliability::observers::{open_fds, GoodClient, PeakRss};
use interop_tests::reliability::rss_kib;

const BRIDGE_PEER: &str = env!("CARGO_BIN_EXE_bridge-peer");
const LIMIT_BYTES: u64 = 1 << 20;
const STUCK_TIMEOUT: Duration = Duration::from_secs(3);
const PAYLOAD: usize = 64 * 1024;
/// Growth of the server's resident memory allowed while the peer floods it: the bound itself,
/// socket buffers, one read buffer of calls and allocator slack. Unbounded, it grows by
/// hundreds of MiB within the first second.
const RSS_GROWTH_LIMIT_KIB: u64 = 48 * 1024;
/// Liveness bound for the well-behaved client's calls (not a speed target).
const CALL_TIMEOUT: Duration = Duration::from_secs(2);

#[test]
fn a_peer_that_never_reads_is_stopped_at_the_bound_and_then_disconnected_while_others_are_served() {
    std::env::set_var("CAPNP_LEAN_SEND_QUEUE_LIMIT_BYTES", LIMIT_BYTES.to_string());
    std::env::set_var("CAPNP_LEAN_SEND_QUEUE_TIMEOUT_MS", STUCK_TIMEOUT.as_millis().to_string());
    let mut server = PeerProcess::spawn_listening(BRIDGE_PEER, &["serve-interop", "--listen", "127.0.0.1:0"], Duration::from_secs(20))
        .expect("the bridge server starts");
    let address = server.address().to_string();
    let pid = server.id();
    thread::sleep(Duration::from_millis(300));
    let baseline = rss_kib(pid).expect("the server is running");

    let peak = PeakRss::start(pid, baseline);
    let good_client = GoodClient::start(&address, CALL_TIMEOUT);
    assert!(good_client.wait_served_once(Duration::from_secs(10)), "the good client was never served");

    // The flood: calls as fast as the server takes them, answers never read.
    let fds_before = open_fds(pid);
    let payload = vec![0x5au8; PAYLOAD];
    let mut flood = TcpStream::connect(&address).expect("connect");
    flood.write_all(&bootstrap(0)).unwrap();
    flood.set_write_timeout(Some(Duration::from_millis(200))).unwrap();
    let started = Instant::now();
    let (mut calls, mut blocked_at) = (0u32, None);
    while started.elapsed() < Duration::from_secs(2) {
        match flood.write_all(&echo_call(calls + 1, &payload)) {
            Ok(()) => calls += 1,
            Err(e) if matches!(e.kind(), IoErrorKind::WouldBlock | IoErrorKind::TimedOut) => {
                blocked_at.get_or_insert(started.elapsed());
            }
            Err(e) => panic!("the flood's write failed before the bound could matter: {e}"),
        }
    }
    // Stuck, and still reading nothing (reading would drain the queue and unblock it): the
    // server must drop the connection within its timeout, plus slack. Seen as its fd closing.
    let deadline = started + Duration::from_secs(2) + STUCK_TIMEOUT + Duration::from_secs(6);
    let closed_after = loop {
        if open_fds(pid) <= fds_before {
            break Some(started.elapsed());
        }
        if Instant::now() > deadline {
            break None;
        }
        thread::sleep(Duration::from_millis(50));
    };
    // And the peer learns it: what was queued, then the end (or a reset).
    flood.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut sink = vec![0u8; 1 << 16];
    let ended = loop {
        match flood.read(&mut sink) {
            Ok(0) => break true,
            Ok(_) => {}
            Err(e) if matches!(e.kind(), IoErrorKind::WouldBlock | IoErrorKind::TimedOut) => break false,
            Err(_) => break true, // reset
        }
    };
    let served = good_client.finish();
    let peak = peak.finish();
    println!(
        "flood: {calls} calls of {PAYLOAD} B sent, blocked after {blocked_at:?}; server RSS baseline {baseline} KiB, peak {peak} KiB; \
         connection ended after {closed_after:?}; good client: {served:?}"
    );

    assert!(server.is_running(), "the server died; stderr:\n{}", server.kill_and_collect_stderr());
    assert!(blocked_at.is_some(), "the server read {calls} calls without ever stopping: no backpressure");
    assert!(peak <= baseline + RSS_GROWTH_LIMIT_KIB, "server RSS grew from {baseline} KiB to {peak} KiB");
    let served = served.expect("the good client was served throughout");
    assert!(served.calls > 20, "only {} echoes were served during the flood", served.calls);
    let closed_after = closed_after.expect("the server never ended the connection of a peer that reads nothing");
    assert!(closed_after >= STUCK_TIMEOUT, "the connection ended after {closed_after:?}, before the timeout");
    assert!(ended, "the flooding peer was not told its connection ended");
}
