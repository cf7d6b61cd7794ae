//! Hostile frames against a bridge server process (docs/reliability.md, "Hostile input"):
//! 100,000 malformed frames, drawn from a fixed seed, over many parallel unix-socket connections.
//! The server must stay up, close only the offending connections (or answer, where the protocol
//! says to), keep serving a well-behaved bridge client throughout, and keep its memory bounded.
//!
//! After each complete frame the sender asks a Bootstrap question as a probe: a Return for it
//! proves the connection is still served, so it is reused; an end of stream proves the server
//! closed it. Frames whose header alone is unacceptable get no end of stream from the sender
//! (the server must refuse them on sight); possibly incomplete ones are followed by one.

use std::collections::BTreeMap;
use std::io::{ErrorKind as IoErrorKind, Read, Write};
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use capnp_lean::Runtime;
use capnp_schemas::interop_capnp::interop;
use capnp_lean_peers::process::{unique_socket_path, PeerProcess};
use interop_tests::reliability::hostile::{bootstrap, finish, hostile_frame, hostility_of, Ending, Hostility, HOSTILITIES};
use interop_tests::reliability::observers::PeakRss;
use interop_tests::reliability::rss_kib;
use capnp_lean_peers::rust_peer::run_local;
use capnp_lean_peers::scenarios::interop::echo;
use capnp_lean_wiretap::{FrameSplitter, RpcMessage};

const BRIDGE_PEER: &str = env!("CARGO_BIN_EXE_bridge-peer");
const SEED: u64 = 0x4057_11e0_f4a3_e500;
const FRAMES: u64 = 100_000;
const SENDERS: usize = 8;
/// Frames sent over one connection the server keeps open before the sender starts a new one.
const FRAMES_PER_CONNECTION: u32 = 200;
/// How long the server may take to answer a probe or close a connection.
const REPLY_TIMEOUT: Duration = Duration::from_secs(5);
/// Allowed growth of the server's resident memory over the run (one 2 GiB segment accepted
/// would break it many times over), in MiB; `CAPNP_LEAN_RSS_GROWTH_LIMIT_MIB` overrides it (the
/// sanitizer run does: ASan's quarantine keeps up to 256 MiB of freed memory resident).
const RSS_GROWTH_LIMIT_MIB: u64 = 128;

fn rss_growth_limit_kib() -> u64 {
    let mib = std::env::var("CAPNP_LEAN_RSS_GROWTH_LIMIT_MIB").ok().and_then(|v| v.parse().ok()).unwrap_or(RSS_GROWTH_LIMIT_MIB);
    mib * 1024
}

/// How the server dealt with one hostile frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    /// It closed the connection, after an Abort message or without one.
    Closed { abort: bool },
    /// It answered the probe after the frame (and said `unimplemented` about the frame or not).
    Served { unimplemented: bool },
}

/// Outcomes per hostility.
#[derive(Debug, Default, Clone)]
struct Tally {
    frames: u64,
    closed_with_abort: u64,
    closed_silently: u64,
    served: u64,
    answered_unimplemented: u64,
}

impl Tally {
    fn add(&mut self, outcome: Outcome) {
        self.frames += 1;
        match outcome {
            Outcome::Closed { abort: true } => self.closed_with_abort += 1,
            Outcome::Closed { abort: false } => self.closed_silently += 1,
            Outcome::Served { unimplemented } => {
                self.served += 1;
                self.answered_unimplemented += u64::from(unimplemented);
            }
        }
    }
}

/// A sender's connection to the server.
struct Wire {
    stream: UnixStream,
    splitter: FrameSplitter,
    next_question: u32,
    frames: u32,
}

impl Wire {
    fn open(path: &str) -> Wire {
        let stream = UnixStream::connect(path).unwrap_or_else(|e| panic!("cannot connect to {path}: {e}"));
        stream.set_read_timeout(Some(REPLY_TIMEOUT)).unwrap();
        Wire { stream, splitter: FrameSplitter::default(), next_question: 0, frames: 0 }
    }

    /// Reads until the server closes the connection or returns `probe`'s answer.
    fn outcome(&mut self, probe: Option<u32>) -> Result<Outcome, String> {
        let (mut abort, mut unimplemented) = (false, false);
        let mut buffer = vec![0u8; 64 * 1024];
        loop {
            let read = match self.stream.read(&mut buffer) {
                Ok(0) => return Ok(Outcome::Closed { abort }),
                Ok(read) => read,
                Err(e) if matches!(e.kind(), IoErrorKind::ConnectionReset | IoErrorKind::BrokenPipe) => return Ok(Outcome::Closed { abort }),
                Err(e) if e.kind() == IoErrorKind::Interrupted => continue,
                Err(e) => return Err(format!("no close and no answer within {REPLY_TIMEOUT:?} ({e})")),
            };
            for frame in self.splitter.push(&buffer[..read]) {
                match RpcMessage::decode(&frame) {
                    RpcMessage::Return { answer_id, .. } if Some(answer_id) == probe => return Ok(Outcome::Served { unimplemented }),
                    RpcMessage::Abort { .. } => abort = true,
                    RpcMessage::Unimplemented => unimplemented = true,
                    _ => {}
                }
            }
        }
    }
}

/// Sends frames `sender`, `sender + SENDERS`, ... (so which frames share a connection does not
/// depend on thread timing), recording outcomes.
fn send_frames(path: &str, sender: usize, tallies: &Mutex<BTreeMap<Hostility, Tally>>, connections: &AtomicU64) -> Result<(), String> {
    let mut kept: Option<Wire> = None;
    for index in (sender as u64..FRAMES).step_by(SENDERS) {
        // Frames that may leave the stream unreadable get a connection of their own, and so do
        // unknown kinds, so that their answer cannot be blamed on an earlier frame's aftermath
        // (a forged id can make the server abort a little later).
        let hostility = hostility_of(index);
        let own_connection = hostility == Hostility::UnknownKind || hostility.ending() != Ending::Complete;
        let reusable = kept.take();
        let mut wire = match reusable {
            Some(wire) if !own_connection => wire,
            earlier => {
                if hostility != Hostility::UnknownKind {
                    kept = earlier; // still good for later complete frames
                }
                connections.fetch_add(1, Ordering::Relaxed);
                Wire::open(path)
            }
        };
        let frame = hostile_frame(SEED, index, wire.next_question);
        let context = |e: String| format!("frame {index} ({:?}, seed {SEED:#x}): {e}", frame.hostility);
        let outcome = match frame.ending {
            Ending::Complete => {
                let probe = wire.next_question + 2;
                wire.next_question += 3;
                let mut bytes = frame.bytes.clone();
                bytes.extend(bootstrap(probe));
                // The server may already have closed: reading tells.
                let _ = wire.stream.write_all(&bytes);
                let outcome = wire.outcome(Some(probe)).map_err(context)?;
                if let Outcome::Served { .. } = outcome {
                    let _ = wire.stream.write_all(&finish(probe));
                    wire.frames += 1;
                    if wire.frames < FRAMES_PER_CONNECTION {
                        kept = Some(wire);
                    }
                }
                outcome
            }
            Ending::RefusedOnSight | Ending::Unfinished => {
                let _ = wire.stream.write_all(&frame.bytes);
                if frame.ending == Ending::Unfinished {
                    let _ = wire.stream.shutdown(std::net::Shutdown::Write);
                }
                let outcome = wire.outcome(None).map_err(context)?;
                if frame.ending == Ending::RefusedOnSight && !matches!(outcome, Outcome::Closed { .. }) {
                    return Err(context(format!("an unacceptable header was not refused: {outcome:?}")));
                }
                outcome
            }
        };
        tallies.lock().unwrap().entry(frame.hostility).or_default().add(outcome);
    }
    Ok(())
}

#[test]
fn a_bridge_server_survives_100k_hostile_frames_closing_only_offending_connections_with_bounded_memory() {
    let socket = unique_socket_path("hostile");
    let listen = format!("unix:{}", socket.display());
    let mut server = PeerProcess::spawn_listening(BRIDGE_PEER, &["serve-interop", "--listen", &listen], Duration::from_secs(20)).unwrap();
    let address = server.address().to_string();
    let path = address.strip_prefix("unix:").expect("a unix address").to_string();
    let pid = server.id();

    // A well-behaved bridge client, echoing throughout on its own connection.
    let stop = Arc::new(AtomicBool::new(false));
    let good_client = {
        let (stop, address) = (stop.clone(), address.clone());
        thread::spawn(move || -> Result<u64, String> {
            let runtime = Runtime::new().unwrap();
            run_local(async {
                let connection = runtime.connect(&address).await.map_err(|e| e.to_string())?;
                let interop: interop::Client = connection.bootstrap().map_err(|e| e.to_string())?;
                let mut served = 0u64;
                while !stop.load(Ordering::SeqCst) || served == 0 {
                    let payload = served.to_le_bytes();
                    let back = tokio::time::timeout(REPLY_TIMEOUT, echo(&interop, &payload))
                        .await
                        .map_err(|_| format!("echo {served} got no answer within {REPLY_TIMEOUT:?}"))?
                        .map_err(|e| format!("echo {served} failed: {e}"))?;
                    if back != payload {
                        return Err(format!("echo {served} came back as {back:?}"));
                    }
                    served += 1;
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
                Ok(served)
            })
        })
    };
    // Memory, sampled throughout.
    let rss_before = rss_kib(pid).expect("the server is running");
    let sampler = PeakRss::start(pid, rss_before);

    let started = Instant::now();
    let connections = AtomicU64::new(0);
    let tallies = Mutex::new(BTreeMap::new());
    let results: Vec<Result<(), String>> = thread::scope(|scope| {
        let senders: Vec<_> = (0..SENDERS).map(|sender| {
            let (path, tallies, connections) = (&path, &tallies, &connections);
            scope.spawn(move || send_frames(path, sender, tallies, connections))
        }).collect();
        senders.into_iter().map(|s| s.join().unwrap_or_else(|_| Err("a sender panicked".into()))).collect()
    });
    let elapsed = started.elapsed();
    stop.store(true, Ordering::SeqCst);
    let served = good_client.join().unwrap();
    let peak = sampler.finish();
    let rss_after = rss_kib(pid);

    let tallies = tallies.into_inner().unwrap();
    let frames: u64 = tallies.values().map(|t| t.frames).sum();
    println!("hostile frames: {frames} in {elapsed:.1?} over {} connections, {SENDERS} senders, seed {SEED:#x}", connections.load(Ordering::SeqCst));
    for (hostility, tally) in &tallies {
        println!("  {hostility:?}: {tally:?}");
    }
    println!("server RSS: before {rss_before} KiB, peak {peak} KiB, after {rss_after:?} KiB");
    println!("well-behaved client: {served:?} echoes served during the run");

    assert!(server.is_running(), "the server died; stderr:\n{}", server.kill_and_collect_stderr());
    for result in results {
        result.unwrap();
    }
    let served = served.unwrap();
    assert!(served > 0);
    assert_eq!(frames, FRAMES);
    assert_eq!(tallies.len(), HOSTILITIES.len());
    // Unknown kinds are not a reason to close: Cap'n Proto answers them with `unimplemented`.
    let unknown = &tallies[&Hostility::UnknownKind];
    assert_eq!((unknown.served, unknown.answered_unimplemented), (unknown.frames, unknown.frames), "{unknown:?}");
    let limit = rss_growth_limit_kib();
    assert!(peak <= rss_before + limit, "server RSS grew from {rss_before} KiB to a peak of {peak} KiB");
    let rss_after = rss_after.expect("the server is running");
    assert!(rss_after <= rss_before + limit, "server RSS grew from {rss_before} KiB to {rss_after} KiB");

    // And a brand-new client is served too.
    let runtime = Runtime::new().unwrap();
    run_local(async {
        let connection = runtime.connect(&address).await.unwrap();
        let interop: interop::Client = connection.bootstrap().unwrap();
        assert_eq!(tokio::time::timeout(REPLY_TIMEOUT, echo(&interop, b"after")).await.unwrap().unwrap(), b"after");
    });
    let _ = std::fs::remove_file(&socket);
}
