//! A frame-decoding proxy: evidence of what two RPC peers actually said to each other.
//!
//! [`WireTap::start`] listens on an address, and for every connection it accepts opens one to the
//! upstream address and copies bytes both ways *unchanged*. On the side it splits each direction
//! into Cap'n Proto frames, parses every frame as an rpc.capnp `Message` and records a
//! [`WireEvent`]. Tests then assert which message kinds occurred. It runs on its own threads, so it
//! can be used from synchronous tests and from inside any async runtime alike.

mod decode;
mod frames;

use std::collections::BTreeSet;
use std::fmt;
use std::io;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::{mpsc, watch};

use capnp_lean_peers::rust_peer::{Address, Listener, ReadHalf, Stream, WriteHalf};
pub use decode::{CallTarget, MessageKind, Resolution, ReturnOutcome, RpcMessage, SendResultsTo, SEVEN_KINDS};
pub use frames::FrameSplitter;

/// Which way a message travelled through the tap.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// From the peer that connected to the tap towards the upstream.
    ClientToServer,
    /// From the upstream back to the connecting peer.
    ServerToClient,
}

/// One message seen on the wire.
#[derive(Debug, Clone, PartialEq)]
pub struct WireEvent {
    /// Which accepted connection (0, 1, ... in accept order).
    pub connection: usize,
    /// Which way it went.
    pub direction: Direction,
    /// What it said.
    pub message: RpcMessage,
    /// How many segments its frame had.
    pub segments: usize,
    /// Its frame's length on the wire, segment table included.
    pub bytes: usize,
}

impl fmt::Display for WireEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let arrow = match self.direction {
            Direction::ClientToServer => "c->s",
            Direction::ServerToClient => "s->c",
        };
        write!(f, "#{} {arrow} {:?}", self.connection, self.message)
    }
}

/// Events recorded so far, with a condition variable so waiters wake on each new one.
#[derive(Default)]
struct EventLog {
    events: Mutex<Vec<WireEvent>>,
    grew: Condvar,
}

impl EventLog {
    fn lock(&self) -> MutexGuard<'_, Vec<WireEvent>> {
        lock(&self.events)
    }

    /// Wakes waiters whose condition may depend on more than the events (e.g. connection count).
    /// Taking the lock first means a waiter between its check and its wait cannot miss this.
    fn wake_waiters(&self) {
        drop(self.lock());
        self.grew.notify_all();
    }

    fn record(&self, event: WireEvent) {
        self.lock().push(event);
        self.grew.notify_all();
    }
}

/// Senders feeding extra bytes into one connection's two directions.
#[derive(Clone)]
struct Injectors {
    to_server: mpsc::UnboundedSender<Vec<u8>>,
    to_client: mpsc::UnboundedSender<Vec<u8>>,
}

/// A running proxy. Dropping it stops accepting and closes every proxied connection.
pub struct WireTap {
    address: Address,
    log: Arc<EventLog>,
    injectors: Arc<Mutex<Vec<Injectors>>>,
    sever: watch::Sender<u64>,
    runtime: Option<tokio::runtime::Runtime>,
}

impl WireTap {
    /// Listens on `listen` (`host:port`, port 0 allowed, or `unix:/path`) and forwards every
    /// connection to `upstream`.
    pub fn start(listen: &str, upstream: &str) -> io::Result<WireTap> {
        Self::start_with_delay(listen, upstream, Duration::ZERO)
    }

    /// Like [`start`](Self::start), but every chunk of bytes reaches the other side `delay`
    /// after the tap read it, in order, in both directions: a link with that much latency
    /// (for fault tests where the kernel cannot add delay itself).
    pub fn start_with_delay(listen: &str, upstream: &str, delay: Duration) -> io::Result<WireTap> {
        let listen = Address::parse(listen)?;
        let upstream = Address::parse(upstream)?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("wiretap")
            .enable_all()
            .build()?;
        let listener = runtime.block_on(Listener::bind(&listen))?;
        let address = listener.local_address()?;
        let log = Arc::new(EventLog::default());
        let injectors = Arc::new(Mutex::new(Vec::new()));
        let (sever, severed) = watch::channel(0);
        let shared = Shared { log: log.clone(), injectors: injectors.clone(), severed, delay };
        runtime.spawn(accept_loop(listener, upstream, shared));
        Ok(WireTap { address, log, injectors, sever, runtime: Some(runtime) })
    }

    /// The address peers should connect to (the real port when started on port 0).
    pub fn address(&self) -> String {
        self.address.to_string()
    }

    /// Every message seen so far, in the order the tap decoded them.
    pub fn events(&self) -> Vec<WireEvent> {
        self.log.lock().clone()
    }

    /// The distinct kinds seen so far.
    pub fn kinds_seen(&self) -> BTreeSet<MessageKind> {
        self.log.lock().iter().map(|e| e.message.kind()).collect()
    }

    /// How many messages of `kind` were seen.
    pub fn count(&self, kind: MessageKind) -> usize {
        self.log.lock().iter().filter(|e| e.message.kind() == kind).count()
    }

    /// Waits until `kind` has been seen; false if `timeout` passed first.
    pub fn wait_for(&self, kind: MessageKind, timeout: Duration) -> bool {
        self.wait_until(timeout, |events| events.iter().any(|e| e.message.kind() == kind))
    }

    /// Waits until every kind in `kinds` has been seen, each within `timeout`; panics naming
    /// the first missing kind, with the transcript (for tests).
    pub fn assert_kinds_seen(&self, kinds: &[MessageKind], timeout: Duration) {
        for kind in kinds {
            assert!(self.wait_for(*kind, timeout), "{kind:?} never appeared on the wire:\n{}", self.transcript());
        }
    }

    /// Waits until `condition` holds for the events recorded so far; false on timeout.
    pub fn wait_until(&self, timeout: Duration, condition: impl Fn(&[WireEvent]) -> bool) -> bool {
        let deadline = Instant::now() + timeout;
        let mut events = self.log.lock();
        loop {
            if condition(&events) {
                return true;
            }
            let Some(left) = deadline.checked_duration_since(Instant::now()) else { return false };
            events = match self.log.grew.wait_timeout(events, left) {
                Ok((guard, _)) => guard,
                Err(poisoned) => poisoned.into_inner().0,
            };
        }
    }

    /// A readable listing of every event, one per line (for failure messages).
    pub fn transcript(&self) -> String {
        self.log.lock().iter().map(|e| format!("{e}\n")).collect()
    }

    /// How many connections the tap has accepted so far.
    pub fn connections(&self) -> usize {
        lock(&self.injectors).len()
    }

    /// Waits until at least `count` connections have been accepted; false on timeout.
    pub fn wait_for_connections(&self, count: usize, timeout: Duration) -> bool {
        self.wait_until(timeout, |_| self.connections() >= count)
    }

    /// Writes `bytes` into connection `connection` as if `direction`'s sender had sent them, for
    /// fault tests (garbage, truncated frames, forged messages). They are interleaved at a read
    /// boundary of the real stream and are not decoded into events.
    pub fn inject(&self, connection: usize, direction: Direction, bytes: &[u8]) -> io::Result<()> {
        let injectors = lock(&self.injectors).get(connection).cloned();
        let injectors = injectors.ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, format!("no connection #{connection}")))?;
        let sender = match direction {
            Direction::ClientToServer => injectors.to_server,
            Direction::ServerToClient => injectors.to_client,
        };
        sender.send(bytes.to_vec()).map_err(|_| io::Error::new(io::ErrorKind::NotConnected, format!("connection #{connection} is closed")))
    }

    /// Abruptly closes every connection proxied so far, both sides, as if the network failed.
    /// New connections are still accepted.
    pub fn sever_all(&self) {
        self.sever.send_modify(|generation| *generation += 1);
    }
}

impl Drop for WireTap {
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            // Not `drop(runtime)`: that panics when the tap is dropped inside an async context.
            runtime.shutdown_background();
        }
    }
}

/// Locks, ignoring poisoning: a panicking test thread must not make the tap unusable for others.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// What the proxy tasks share with the [`WireTap`] handle.
struct Shared {
    log: Arc<EventLog>,
    injectors: Arc<Mutex<Vec<Injectors>>>,
    severed: watch::Receiver<u64>,
    delay: Duration,
}

async fn accept_loop(listener: Listener, upstream: Address, shared: Shared) {
    loop {
        let Ok(downstream) = listener.accept().await else { return };
        let (to_server, injected_to_server) = mpsc::unbounded_channel();
        let (to_client, injected_to_client) = mpsc::unbounded_channel();
        let connection = {
            let mut injectors = lock(&shared.injectors);
            injectors.push(Injectors { to_server, to_client });
            injectors.len() - 1
        };
        shared.log.wake_waiters();
        let upstream = upstream.clone();
        let log = shared.log.clone();
        let mut severed = shared.severed.clone();
        severed.mark_unchanged();
        let delay = shared.delay;
        tokio::spawn(async move {
            let Ok(upstream) = Stream::connect(&upstream).await else { return };
            let (client_read, client_write) = downstream.into_split();
            let (server_read, server_write) = upstream.into_split();
            let to_server = Leg { connection, direction: Direction::ClientToServer, injected: injected_to_server };
            let to_client = Leg { connection, direction: Direction::ServerToClient, injected: injected_to_client };
            let both_ways = futures::future::join(
                pump(client_read, Outlet::new(server_write, delay), to_server, &log),
                pump(server_read, Outlet::new(client_write, delay), to_client, &log),
            );
            // Returning drops all four halves, closing both sockets.
            tokio::select! {
                _ = both_ways => {}
                _ = severed.changed() => {}
            }
        });
    }
}

/// One direction of one connection.
struct Leg {
    connection: usize,
    direction: Direction,
    injected: mpsc::UnboundedReceiver<Vec<u8>>,
}

/// Where one direction's bytes go: written at once, or handed to a task that writes each chunk
/// `delay` after it was read, keeping their order.
enum Outlet {
    Direct(WriteHalf),
    Delayed(mpsc::UnboundedSender<(tokio::time::Instant, Option<Vec<u8>>)>, Duration),
}

impl Outlet {
    fn new(to: WriteHalf, delay: Duration) -> Outlet {
        if delay.is_zero() {
            return Outlet::Direct(to);
        }
        let (queue, mut due) = mpsc::unbounded_channel::<(tokio::time::Instant, Option<Vec<u8>>)>();
        tokio::spawn(async move {
            let mut to = to;
            while let Some((at, bytes)) = due.recv().await {
                tokio::time::sleep_until(at).await;
                match bytes {
                    Some(bytes) if to.write_all(&bytes).await.is_ok() => {}
                    _ => break, // end of input (None) or a failed write
                }
            }
            let _ = to.shutdown().await;
        });
        Outlet::Delayed(queue, delay)
    }

    /// Forwards `bytes`; false once the other side can take no more.
    async fn write_all(&mut self, bytes: &[u8]) -> bool {
        match self {
            Outlet::Direct(to) => to.write_all(bytes).await.is_ok(),
            Outlet::Delayed(queue, delay) => queue.send((tokio::time::Instant::now() + *delay, Some(bytes.to_vec()))).is_ok(),
        }
    }

    /// Half-closes the other side (after everything already forwarded).
    async fn shutdown(self) {
        match self {
            Outlet::Direct(mut to) => {
                let _ = to.shutdown().await;
            }
            Outlet::Delayed(queue, delay) => {
                let _ = queue.send((tokio::time::Instant::now() + delay, None));
            }
        }
    }
}

/// Copies one direction verbatim, decoding frames as a side effect. On end of input it half-closes
/// the other side, so each peer sees exactly the closes the other one made.
async fn pump(mut from: ReadHalf, mut to: Outlet, mut leg: Leg, log: &EventLog) {
    let (connection, direction) = (leg.connection, leg.direction);
    let mut splitter = FrameSplitter::default();
    let mut buffer = vec![0u8; 64 * 1024];
    loop {
        let read = tokio::select! {
            read = from.read(&mut buffer) => read,
            Some(bytes) = leg.injected.recv() => {
                if !to.write_all(&bytes).await {
                    break;
                }
                continue;
            }
        };
        let read = match read {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        // Forward first: decoding must never delay or alter the bytes.
        if !to.write_all(&buffer[..read]).await {
            break;
        }
        for frame in splitter.push(&buffer[..read]) {
            let segments = u32::from_le_bytes([frame[0], frame[1], frame[2], frame[3]]) as usize + 1;
            log.record(WireEvent { connection, direction, message: RpcMessage::decode(&frame), segments, bytes: frame.len() });
        }
    }
    to.shutdown().await;
}
