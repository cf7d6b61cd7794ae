//! Peers that do not progress, against a bridge server process (docs/reliability.md, "Slow and
//! idle peers"): 100 connections that never send a byte are closed by the handshake deadline, and
//! 100 that send a Bootstrap and then dribble a second message one byte every 100 ms by the stall
//! deadline, no sooner and not much later,
//! while a well-behaved client is served throughout; the server's fds return to their baseline.
//! A client idle between messages for longer than both deadlines is not closed.
//!
//! The server runs with short deadlines (handshake 1 s, stall 1.5 s) so the test is quick; the
//! transport follows `CAPNP_LEAN_TRANSPORT`, and scripts/test.sh runs this file on both.

use std::io::{ErrorKind as IoErrorKind, Read, Write};
use std::net::TcpStream;
use std::thread;
use std::time::{Duration, Instant};

use capnp_lean::Runtime;
use capnp_schemas::interop_capnp::interop;
use capnp_lean_peers::bridge_peer::connection_options;
use capnp_lean_peers::process::PeerProcess;
use interop_tests::reliability::hostile::bootstrap;
use interop_tests::reliability::observers::{open_fds, GoodClient};
use capnp_lean_peers::rust_peer::run_local;
use capnp_lean_peers::scenarios::interop::echo;

const BRIDGE_PEER: &str = env!("CARGO_BIN_EXE_bridge-peer");
const HANDSHAKE: Duration = Duration::from_millis(1000);
const STALL: Duration = Duration::from_millis(1500);
/// How late past its deadline a connection may be closed (a loaded 2-core machine).
const SLACK: Duration = Duration::from_secs(3);
const SILENT: usize = 100;
const DRIBBLERS: usize = 100;
const DRIBBLE_EVERY: Duration = Duration::from_millis(100);
/// Liveness bound for the well-behaved client's calls (not a speed target).
const CALL_TIMEOUT: Duration = Duration::from_secs(2);

fn server() -> PeerProcess {
    // The child reads these through bridge_peer::connection_options.
    std::env::set_var("CAPNP_LEAN_HANDSHAKE_TIMEOUT_MS", HANDSHAKE.as_millis().to_string());
    std::env::set_var("CAPNP_LEAN_STALL_TIMEOUT_MS", STALL.as_millis().to_string());
    PeerProcess::spawn_listening(BRIDGE_PEER, &["serve-interop", "--listen", "127.0.0.1:0"], Duration::from_secs(20))
        .expect("the bridge server starts")
}


/// A standard-framing header announcing one 1,000-word segment: a message that can only
/// complete after 8,008 bytes, which a dribbler never sends.
const LONG_MESSAGE_HEADER: [u8; 8] = [0, 0, 0, 0, 0xe8, 0x03, 0, 0];

/// One slow connection and when the server ended it.
struct Slow {
    stream: TcpStream,
    started: Instant,
    closed: Option<Instant>,
    sent: usize,
}

impl Slow {
    fn open(address: &str) -> Slow {
        let stream = TcpStream::connect(address).expect("connect");
        stream.set_nonblocking(true).unwrap();
        Slow { stream, started: Instant::now(), closed: None, sent: 0 }
    }

    /// A connection that has sent one complete message (so the handshake deadline is met).
    fn open_after_bootstrap(address: &str) -> Slow {
        let mut stream = TcpStream::connect(address).expect("connect");
        stream.write_all(&bootstrap(0)).expect("send a Bootstrap");
        stream.set_nonblocking(true).unwrap();
        Slow { stream, started: Instant::now(), closed: None, sent: 0 }
    }

    /// Notes the close if the server has closed the connection.
    fn poll_closed(&mut self) {
        if self.closed.is_some() {
            return;
        }
        let mut byte = [0u8; 64];
        match self.stream.read(&mut byte) {
            Ok(0) => self.closed = Some(Instant::now()),
            Ok(_) => {} // the Return for a dribbler's Bootstrap
            Err(e) if e.kind() == IoErrorKind::WouldBlock => {}
            Err(_) => self.closed = Some(Instant::now()), // reset
        }
    }

    /// Sends the next byte of the long message (until the server closes the connection).
    fn dribble(&mut self) {
        if self.closed.is_some() {
            return;
        }
        let byte = LONG_MESSAGE_HEADER.get(self.sent).copied().unwrap_or(0);
        match self.stream.write(&[byte]) {
            Ok(1) => self.sent += 1,
            Ok(_) => {}
            Err(e) if e.kind() == IoErrorKind::WouldBlock => {}
            Err(_) => self.closed = Some(Instant::now()),
        }
    }
}

#[test]
fn silent_and_dribbling_connections_are_closed_by_their_deadlines_while_a_good_client_is_served() {
    let mut server = server();
    let address = server.address().to_string();
    let pid = server.id();
    thread::sleep(Duration::from_millis(200));
    let fds_before = open_fds(pid);

    // The well-behaved client: echo calls back to back, each within the liveness bound.
    let good_client = GoodClient::start(&address, CALL_TIMEOUT);

    let mut silent: Vec<Slow> = (0..SILENT).map(|_| Slow::open(&address)).collect();
    let mut dribblers: Vec<Slow> = (0..DRIBBLERS).map(|_| Slow::open_after_bootstrap(&address)).collect();
    let give_up = Instant::now() + STALL + Duration::from_millis(800) + SLACK;
    while Instant::now() < give_up
        && (silent.iter().any(|s| s.closed.is_none()) || dribblers.iter().any(|s| s.closed.is_none()))
    {
        for slow in &mut dribblers {
            slow.dribble();
            slow.poll_closed();
        }
        for slow in &mut silent {
            slow.poll_closed();
        }
        thread::sleep(DRIBBLE_EVERY);
    }
    let good = good_client.finish();

    let lifetimes = |group: &[Slow]| -> Vec<Option<Duration>> {
        group.iter().map(|s| s.closed.map(|c| c - s.started)).collect()
    };
    let (silent_life, dribbler_life) = (lifetimes(&silent), lifetimes(&dribblers));
    let range = |l: &[Option<Duration>]| {
        let closed: Vec<Duration> = l.iter().flatten().copied().collect();
        (closed.len(), closed.iter().min().copied(), closed.iter().max().copied())
    };
    println!("silent: closed/min/max {:?}; dribblers: {:?}; good client: {good:?}", range(&silent_life), range(&dribbler_life));

    assert!(server.is_running(), "the server died; stderr:\n{}", server.kill_and_collect_stderr());
    let served = good.expect("the good client was served throughout");
    assert!(served.calls > 20, "only {} echoes were served during the run", served.calls);
    for (i, life) in silent_life.iter().enumerate() {
        let life = life.unwrap_or_else(|| panic!("silent connection {i} was never closed"));
        assert!(life >= HANDSHAKE - Duration::from_millis(100), "silent connection {i} closed after {life:?}, before its deadline");
        assert!(life <= HANDSHAKE + SLACK, "silent connection {i} closed only after {life:?}");
    }
    for (i, (life, slow)) in dribbler_life.iter().zip(&dribblers).enumerate() {
        let life = life.unwrap_or_else(|| panic!("dribbling connection {i} was never closed"));
        // Its first byte of the long message left at once; the stall deadline counts from there.
        assert!(life >= STALL - Duration::from_millis(100), "dribbler {i} closed after {life:?}, before its stall deadline");
        assert!(life <= STALL + SLACK, "dribbler {i} closed only after {life:?}");
        assert!(slow.sent >= 8, "dribbler {i} sent only {} bytes", slow.sent);
    }
    // Every slow connection's fd is gone again.
    let deadline = Instant::now() + Duration::from_secs(5);
    while open_fds(pid) > fds_before + 1 && Instant::now() < deadline {
        thread::sleep(Duration::from_millis(50));
    }
    let fds_after = open_fds(pid);
    assert!(fds_after <= fds_before + 1, "server fds: {fds_before} before, {fds_after} after (the good client's may remain)");
}

#[test]
fn a_client_idle_between_messages_longer_than_both_deadlines_is_not_closed() {
    let mut server = server();
    let address = server.address().to_string();
    let runtime = Runtime::new().unwrap();
    run_local(async {
        let connection = runtime
            .connect_with::<capnp::capability::Client>(&address, None, &connection_options())
            .await
            .unwrap();
        let interop: interop::Client = connection.bootstrap().unwrap();
        assert_eq!(echo(&interop, b"before").await.unwrap(), b"before");
        tokio::time::sleep(HANDSHAKE + STALL).await;
        assert_eq!(
            tokio::time::timeout(CALL_TIMEOUT, echo(&interop, b"after a long pause")).await.unwrap().unwrap(),
            b"after a long pause"
        );
    });
    assert!(server.is_running(), "the server died; stderr:\n{}", server.kill_and_collect_stderr());
}
