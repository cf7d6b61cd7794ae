//! Bad input and faults against the bridge, across processes: a killed peer fails every pending
//! call promptly, hostile bytes close only their own connection, unknown methods and server
//! failures arrive with the right kind and message; a large message cut short or stuck in the
//! socket fails or tears down cleanly.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use capnp::traits::HasTypeId;
use capnp_lean::Runtime;
use capnp_schemas::interop_capnp::{interop, ErrorKind};
use futures::future::join_all;
use capnp_lean_peers::process::PeerProcess;
use capnp_lean_peers::rust_peer::run_local;
use capnp_lean_peers::scenarios::interop::echo;
use capnp_lean_wiretap::{FrameSplitter, MessageKind, RpcMessage};

const RUST_PEER: &str = env!("CARGO_BIN_EXE_rust-peer");
const BRIDGE_PEER: &str = env!("CARGO_BIN_EXE_bridge-peer");
const START_TIMEOUT: Duration = Duration::from_secs(20);

fn serve(peer: &str) -> PeerProcess {
    PeerProcess::spawn_listening(peer, &["serve-interop", "--listen", "127.0.0.1:0"], START_TIMEOUT).unwrap()
}

/// Connects a bridge client and runs `body` with the bootstrap `Interop`.
fn with_bridge_client<T>(address: &str, body: impl AsyncFnOnce(&Runtime, interop::Client) -> T) -> T {
    let runtime = Runtime::new().unwrap();
    run_local(async {
        let connection = tokio::time::timeout(Duration::from_secs(10), capnp_lean_peers::bridge_peer::connect(&runtime, address)).await.unwrap().unwrap();
        let interop: interop::Client = connection.bootstrap().unwrap();
        let outcome = body(&runtime, interop).await;
        drop(connection);
        outcome
    })
}

fn pending_calls_fail_promptly_when_the_server_dies(peer: &str) {
    let mut server = serve(peer);
    let address = server.address().to_string();
    with_bridge_client(&address, async |_, interop| {
        // Make sure the connection is up, then leave several calls hanging, one of them
        // pipelined on a pending answer.
        echo(&interop, b"up").await.unwrap();
        let mut pending: Vec<_> = (0..4).map(|_| interop.hang_request().send().promise).collect();
        let mut later = interop.counter_later_request();
        later.get().set_delay_ms(60_000);
        let counter = later.send().pipeline.get_counter();
        let pipelined = counter.increment_request().send().promise;
        tokio::time::sleep(Duration::from_millis(100)).await;
        let killed_at = Instant::now();
        server.kill_and_collect_stderr();
        let hangs = join_all(pending.drain(..));
        let outcome = tokio::time::timeout(Duration::from_secs(1), async { (hangs.await, pipelined.await) }).await;
        let (hangs, pipelined) = outcome.unwrap_or_else(|_| panic!("{peer}: pending calls still pending 1 s after the peer died"));
        for result in hangs {
            let error = result.err().expect("a hanging call cannot succeed");
            assert_eq!(error.kind, capnp::ErrorKind::Disconnected, "{error}");
        }
        assert_eq!(pipelined.err().expect("the pipelined call cannot succeed").kind, capnp::ErrorKind::Disconnected);
        assert!(killed_at.elapsed() < Duration::from_secs(1));
    });
}

#[test]
fn pending_calls_fail_within_a_second_when_a_capnp_rpc_server_process_is_killed() {
    pending_calls_fail_promptly_when_the_server_dies(RUST_PEER);
}

#[test]
fn pending_calls_fail_within_a_second_when_a_bridge_server_process_is_killed() {
    pending_calls_fail_promptly_when_the_server_dies(BRIDGE_PEER);
}

/// Sends `bytes` on a fresh connection (then half-closes it if `then_eof`) and reports whether
/// the server closed its side within five seconds.
fn server_closes_after(address: &str, bytes: &[u8], then_eof: bool) -> bool {
    let mut stream = TcpStream::connect(address).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let _ = stream.write_all(bytes);
    if then_eof {
        let _ = stream.shutdown(std::net::Shutdown::Write);
    }
    let mut sink = [0u8; 4096];
    loop {
        match stream.read(&mut sink) {
            Ok(0) => return true,
            Ok(_) => continue, // e.g. an Abort message before the close
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return true,
            Err(_) => return false, // timed out: the server kept the connection open
        }
    }
}

/// The segment table of a one-segment frame of `words` words.
fn one_segment_header(words: u32) -> Vec<u8> {
    [0u32.to_le_bytes(), words.to_le_bytes()].concat()
}

/// A deterministic byte soup (xorshift), so failures reproduce.
fn noise(seed: u64, len: usize) -> Vec<u8> {
    let mut state = seed | 1;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as u8
        })
        .collect()
}

#[test]
fn hostile_bytes_close_only_their_own_connection_and_the_bridge_server_keeps_serving() {
    let server = serve(BRIDGE_PEER);
    let address = server.address().to_string();
    // A well-behaved client stays connected throughout.
    let runtime = Runtime::new().unwrap();
    run_local(async {
        let connection = capnp_lean_peers::bridge_peer::connect(&runtime, &address).await.unwrap();
        let interop: interop::Client = connection.bootstrap().unwrap();
        echo(&interop, b"before").await.unwrap();

        let mut absurd_segments = Vec::new();
        absurd_segments.extend_from_slice(&u32::MAX.to_le_bytes()); // 2^32 segments
        absurd_segments.extend_from_slice(&[0u8; 12]);
        let mut huge_segment = Vec::new();
        huge_segment.extend_from_slice(&0u32.to_le_bytes()); // one segment...
        huge_segment.extend_from_slice(&(1u32 << 28).to_le_bytes()); // ...of 2 GiB
        let mut truncated = Vec::new();
        truncated.extend_from_slice(&0u32.to_le_bytes());
        truncated.extend_from_slice(&16u32.to_le_bytes()); // promises 16 words, sends 2
        truncated.extend_from_slice(&[0u8; 16]);
        let mut garbage_message = Vec::new();
        garbage_message.extend_from_slice(&0u32.to_le_bytes());
        garbage_message.extend_from_slice(&4u32.to_le_bytes());
        garbage_message.extend_from_slice(&noise(7, 32)); // a frame whose content is nonsense
        let mut large_truncated = one_segment_header(96 * 1024 / 8); // 96 KiB promised...
        large_truncated.extend_from_slice(&noise(9, 70 * 1024)); // ...70 KiB sent: past the read buffer
        // Only the truncated frames need our EOF: everything else must be refused on sight.
        let cases: Vec<(&str, Vec<u8>, bool)> = vec![
            ("random bytes", noise(42, 4096), false),
            ("an absurd segment count", absurd_segments, false),
            ("a 2 GiB segment claim", huge_segment, false),
            ("a truncated frame", truncated, true),
            ("a truncated large frame", large_truncated, true),
            ("a frame of nonsense", garbage_message, false),
        ];
        for (what, bytes, then_eof) in cases {
            let address = address.clone();
            let closed = tokio::task::spawn_blocking(move || server_closes_after(&address, &bytes, then_eof)).await.unwrap();
            assert!(closed, "the server kept a connection open after {what}");
            let back = tokio::time::timeout(Duration::from_secs(5), echo(&interop, what.as_bytes())).await;
            assert_eq!(back.unwrap().unwrap(), what.as_bytes(), "the good client was disturbed by {what}");
        }
        drop(connection);
    });
    // And a brand-new client is served too.
    with_bridge_client(&address, async |_, interop| {
        assert_eq!(echo(&interop, b"after").await.unwrap(), b"after");
    });
}

#[test]
fn an_unknown_method_is_answered_unimplemented_by_a_bridge_server() {
    let server = serve(BRIDGE_PEER);
    with_bridge_client(server.address(), async |_, interop| {
        let request = interop.client.new_call::<capnp::any_pointer::Owned, capnp::any_pointer::Owned>(interop::Client::TYPE_ID, 99, None);
        let error = request.send().promise.await.err().expect("method 99 does not exist");
        assert_eq!(error.kind, capnp::ErrorKind::Unimplemented, "{error}");
        let other_interface = interop.client.new_call::<capnp::any_pointer::Owned, capnp::any_pointer::Owned>(0x1234_5678, 0, None);
        let error = other_interface.send().promise.await.err().expect("that interface is not implemented");
        assert_eq!(error.kind, capnp::ErrorKind::Unimplemented, "{error}");
    });
}

#[test]
fn server_failure_kind_and_message_arrive_intact_across_processes() {
    for peer in [BRIDGE_PEER, RUST_PEER] {
        let server = serve(peer);
        with_bridge_client(server.address(), async |_, interop| {
            for (kind, expected) in [
                (ErrorKind::Failed, capnp::ErrorKind::Failed),
                (ErrorKind::Overloaded, capnp::ErrorKind::Overloaded),
                (ErrorKind::Disconnected, capnp::ErrorKind::Disconnected),
                (ErrorKind::Unimplemented, capnp::ErrorKind::Unimplemented),
            ] {
                let message = format!("précisément ceci: {kind:?} ✓");
                let mut request = interop.fail_request();
                request.get().set_kind(kind);
                request.get().set_message(&message[..]);
                let error = request.send().promise.await.err().expect("fail must fail");
                assert_eq!((error.kind, error.extra.as_str()), (expected, message.as_str()), "server {peer}");
            }
        });
    }
}

#[test]
fn the_disconnect_notification_fires_promptly_when_the_peer_dies() {
    let mut server = serve(BRIDGE_PEER);
    let runtime = Runtime::new().unwrap();
    run_local(async {
        let connection = capnp_lean_peers::bridge_peer::connect(&runtime, server.address()).await.unwrap();
        let interop: interop::Client = connection.bootstrap().unwrap();
        echo(&interop, b"up").await.unwrap();
        let ended = connection.disconnected();
        server.kill_and_collect_stderr();
        let reason = tokio::time::timeout(Duration::from_secs(1), ended)
            .await
            .expect("no disconnect notification within 1 s of the peer dying")
            .expect("the watch was registered");
        assert_eq!(reason.kind(), capnp_lean::ErrorKind::Disconnected, "{reason}");
        let error = echo(&interop, b"after").await.expect_err("a dead connection cannot echo");
        assert_eq!(error.kind, capnp::ErrorKind::Disconnected);
    });
}

/// A TCP peer for one connection that does `behave` with it, on its own thread.
fn raw_peer(behave: impl FnOnce(TcpStream) + Send + 'static) -> (String, thread::JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap().to_string();
    let peer = thread::spawn(move || {
        if let Ok((stream, _)) = listener.accept() {
            behave(stream);
        }
    });
    (address, peer)
}

#[test]
fn a_pending_call_fails_promptly_when_the_peer_stops_in_the_middle_of_a_large_message() {
    let (address, peer) = raw_peer(|mut stream| {
        stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        // Wait for the bridge's call, so it is pending when the message is cut short.
        let (mut splitter, mut buffer) = (FrameSplitter::default(), [0u8; 4096]);
        while let Ok(read @ 1..) = stream.read(&mut buffer) {
            if splitter.push(&buffer[..read]).iter().any(|f| RpcMessage::decode(f).kind() == MessageKind::Call) {
                break;
            }
        }
        let mut frame = one_segment_header((1 << 20) / 8); // 1 MiB promised...
        frame.extend_from_slice(&noise(3, 100 * 1024)); // ...100 KiB sent, then EOF
        let _ = stream.write_all(&frame);
        let _ = stream.shutdown(Shutdown::Write);
        // Keep reading, so that closing never turns into a reset that could drop our bytes.
        let _ = std::io::copy(&mut stream, &mut std::io::sink());
    });
    with_bridge_client(&address, async |_, interop| {
        let reply = tokio::time::timeout(Duration::from_secs(1), echo(&interop, b"answered by a cut-off message")).await;
        let error = reply.expect("the call was still pending 1 s after the peer stopped").expect_err("no answer came");
        assert_eq!(error.kind, capnp::ErrorKind::Disconnected, "{error}");
    });
    peer.join().unwrap();
}

#[test]
fn releasing_a_connection_while_a_large_message_is_stuck_in_the_socket_neither_hangs_nor_crashes() {
    let (stop, stopped) = mpsc::channel::<()>();
    // A peer that accepts and never reads: the message fills the socket buffers and waits.
    let (address, peer) = raw_peer(move |stream| {
        let _ = stopped.recv();
        drop(stream);
    });
    let server = serve(RUST_PEER);
    let (done, finished) = mpsc::channel();
    let server_address = server.address().to_string();
    thread::spawn(move || {
        let runtime = Runtime::new().unwrap();
        run_local(async {
            let connection = capnp_lean_peers::bridge_peer::connect(&runtime, &address).await.unwrap();
            let interop: interop::Client = connection.bootstrap().unwrap();
            let mut request = interop.echo_request();
            request.get().set_payload(&vec![1u8; 16 << 20]);
            let stuck = request.send().promise;
            tokio::time::sleep(Duration::from_millis(300)).await;
            drop(stuck);
            drop(connection);
            // The runtime goes on serving another connection.
            let connection = capnp_lean_peers::bridge_peer::connect(&runtime, &server_address).await.unwrap();
            let other: interop::Client = connection.bootstrap().unwrap();
            assert_eq!(echo(&other, b"after").await.unwrap(), b"after");
        });
        drop(runtime);
        let _ = done.send(());
    });
    let outcome = finished.recv_timeout(Duration::from_secs(20));
    let _ = stop.send(());
    assert!(outcome.is_ok(), "releasing the connection (or the runtime) hung, or the client panicked");
    peer.join().unwrap();
}
