//! The runtime (one KJ event-loop thread), connections, listeners, served capabilities and
//! promise capabilities: the safe entry points of the bridge.

use crate::error::Error;
use crate::executor::{mark_loop_thread, on_some_loop_thread, LoopTask, RuntimeShared};
use crate::ffi::{CapHandle, ConnectionHandle, ListenerHandle, ResolverHandle, RuntimeHandle};
use crate::hooks::{cap_of, BridgeClient};
use crate::server::{Dispatcher, ServedCapability};
use capnp::capability::{FromClientHook, FromServer};
use futures::channel::oneshot;
use std::future::Future;
use std::marker::PhantomData;
use std::os::fd::OwnedFd;
use std::sync::Arc;

/// A capnp-lean runtime: one thread running KJ's event loop, with its RPC connections.
///
/// Dropping the runtime shuts it down: pending calls fail with
/// [`ErrorKind::Disconnected`](crate::ErrorKind::Disconnected), connections close, and
/// handles still held afterwards only report [`Error::ShutDown`]. Its operations are those of
/// [`RuntimeRef`], which it delegates to; [`handle`](Runtime::handle) gives a `RuntimeRef` to
/// clone into server implementations and other threads.
pub struct Runtime {
    handle: RuntimeRef,
}

/// A cloneable, `Send + Sync` reference to a runtime; it does not keep the runtime running.
#[derive(Clone)]
pub struct RuntimeRef {
    shared: Arc<RuntimeShared>,
}

/// Live object counts of a runtime, for leak checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Stats {
    /// Open connections (host-held and accepted).
    pub connections: u64,
    /// Capability handles.
    pub caps: u64,
    /// Outgoing calls not yet released.
    pub calls: u64,
    /// Incoming calls not yet answered.
    pub server_calls: u64,
    /// Host-implemented capabilities alive.
    pub host_servers: u64,
    /// Unresolved promise resolvers.
    pub resolvers: u64,
}

/// Per-connection limits on what the peer may send. The defaults are safe for untrusted
/// peers; raise them for large messages, lower them to bound memory per connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectionOptions {
    /// Maximum pointer nesting depth of a received message (default 64).
    pub nesting_limit: u32,
    /// Maximum words traversed per received message (default 8 Mi words = 64 MiB). KJ also
    /// refuses, before allocating, any message larger than this.
    pub traversal_limit_words: u64,
    /// When the params of incoming calls not yet answered exceed this many words, the
    /// connection stops reading (returns included) until some are answered (default 8 Mi
    /// words). Too tight a limit can deadlock calls that wait on calls the other way.
    pub flow_limit_words: u64,
    /// TCP only: a peer that acknowledges nothing for this long (pending data, or keepalive
    /// probes on an idle link) is declared dead and the connection fails with `Disconnected`.
    /// `None` keeps the operating system's timeouts (many minutes for a silently dead link).
    pub dead_peer_timeout: Option<std::time::Duration>,
    /// How messages are read and written (default [`Transport::Coalescing`]).
    pub transport: Transport,
    /// Accepted connections only: a peer whose first message has not arrived within this is
    /// disconnected (default 30 s; `None` waits forever). A client's own connections have no
    /// such deadline, since a server speaks only when spoken to.
    pub handshake_timeout: Option<std::time::Duration>,
    /// A peer that has sent part of a message and not the rest within this, while the
    /// connection is reading, is disconnected: stalled or one-byte-at-a-time senders (default
    /// 60 s; `None` waits forever). Time paused by the connection's own flow limit does not count.
    pub stall_timeout: Option<std::time::Duration>,
    /// Bytes this side may have queued for the peer and not yet written: above it the
    /// connection stops reading from the peer until the queue is back under half, so a peer
    /// that sends calls and never reads the answers stops being served (default 16 MiB;
    /// `None`: no bound). Each message in KJ's queue is charged 1 KiB beyond its bytes, about
    /// what a small queued answer holds in memory.
    pub send_queue_limit: Option<u64>,
    /// How long the send queue may stay above [`send_queue_limit`](Self::send_queue_limit)
    /// (the peer reads nothing) before the connection is ended (default 60 s; `None`: never).
    pub send_queue_timeout: Option<std::time::Duration>,
}

/// How a connection moves messages; both speak the standard stream framing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Transport {
    /// Buffered reads (one read yields every message that has arrived) and one write for all
    /// messages queued during an event-loop turn.
    #[default]
    Coalescing,
    /// KJ 0.9.2's stock message stream: two reads and one write per message.
    Stock,
}

impl Default for ConnectionOptions {
    fn default() -> Self {
        Self {
            nesting_limit: 64,
            traversal_limit_words: 8 << 20,
            flow_limit_words: 8 << 20,
            dead_peer_timeout: None,
            transport: Transport::Coalescing,
            handshake_timeout: Some(std::time::Duration::from_secs(30)),
            stall_timeout: Some(std::time::Duration::from_secs(60)),
            send_queue_limit: Some(16 << 20),
            send_queue_timeout: Some(std::time::Duration::from_secs(60)),
        }
    }
}

impl ConnectionOptions {
    pub(crate) fn to_raw(self) -> capnp_lean_sys::capnp_lean_connection_options {
        capnp_lean_sys::capnp_lean_connection_options {
            struct_size: std::mem::size_of::<capnp_lean_sys::capnp_lean_connection_options>() as u32,
            nesting_limit: self.nesting_limit,
            traversal_limit_words: self.traversal_limit_words,
            flow_limit_words: self.flow_limit_words,
            dead_peer_timeout_ms: self
                .dead_peer_timeout
                .map_or(0, |t| u32::try_from(t.as_millis()).unwrap_or(u32::MAX).max(1)),
            transport: match self.transport {
                Transport::Coalescing => capnp_lean_sys::CAPNP_LEAN_TRANSPORT_COALESCING,
                Transport::Stock => capnp_lean_sys::CAPNP_LEAN_TRANSPORT_STOCK,
            },
            handshake_timeout_ms: timeout_ms(self.handshake_timeout),
            stall_timeout_ms: timeout_ms(self.stall_timeout),
            send_queue_limit_bytes: self.send_queue_limit.map_or(capnp_lean_sys::CAPNP_LEAN_UNLIMITED, |b| b.clamp(1, u64::MAX - 1)),
            send_queue_timeout_ms: timeout_ms(self.send_queue_timeout),
        }
    }
}

/// A deadline for the ABI: whole milliseconds (at least 1, below the "off" value), or off.
fn timeout_ms(timeout: Option<std::time::Duration>) -> u32 {
    match timeout {
        None => capnp_lean_sys::CAPNP_LEAN_TIMEOUT_OFF,
        Some(t) => u32::try_from(t.as_millis())
            .unwrap_or(u32::MAX)
            .clamp(1, capnp_lean_sys::CAPNP_LEAN_TIMEOUT_OFF - 1),
    }
}

/// Which end of a two-party connection this is (matters for adopted sockets only).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// The side that initiated the connection.
    Client,
    /// The side that accepted it.
    Server,
}

impl Runtime {
    /// Starts a runtime and its loop thread.
    pub fn new() -> Result<Self, Error> {
        let shared = Arc::new(RuntimeShared { handle: Arc::new(RuntimeHandle::create()?) });
        shared.handle.post(Box::new(mark_loop_thread))?;
        Ok(Self { handle: RuntimeRef { shared } })
    }

    /// A reference for other threads and for server implementations.
    pub fn handle(&self) -> RuntimeRef {
        self.handle.clone()
    }
}

/// The operations of [`RuntimeRef`], delegated to the runtime's own reference (same names, same
/// behaviour), so a `Runtime` is used directly without a [`handle`](Runtime::handle).
impl Runtime {
    /// True when called on this runtime's loop thread (inside a server method or callback).
    pub fn is_loop_thread(&self) -> bool {
        self.handle.is_loop_thread()
    }

    /// Connects to `host:port` or `unix:/path`. A refused or failed connection is a
    /// [`Disconnected`](crate::ErrorKind::Disconnected) error naming the address.
    pub fn connect(&self, address: &str) -> impl Future<Output = Result<Connection, Error>> + Send + 'static {
        self.handle.connect(address)
    }

    /// Like [`connect`](Self::connect), with limits, optionally offering `bootstrap` to the
    /// peer as this side's bootstrap capability.
    pub fn connect_with<C: FromClientHook>(&self, address: &str, bootstrap: Option<&C>, options: &ConnectionOptions) -> impl Future<Output = Result<Connection, Error>> + Send + 'static {
        self.handle.connect_with(address, bootstrap, options)
    }

    /// Listens on `host:port` (port 0 picks one) or `unix:/path`, serving `bootstrap` to every
    /// accepted connection.
    pub fn listen<C: FromClientHook>(&self, address: &str, bootstrap: &C) -> impl Future<Output = Result<Listener, Error>> + Send + 'static {
        self.handle.listen(address, bootstrap)
    }

    /// Like [`listen`](Self::listen), applying `options` to every accepted connection.
    pub fn listen_with<C: FromClientHook>(&self, address: &str, bootstrap: &C, options: &ConnectionOptions) -> impl Future<Output = Result<Listener, Error>> + Send + 'static {
        self.handle.listen_with(address, bootstrap, options)
    }

    /// Runs RPC over an already-connected stream socket (e.g. one end of a socketpair).
    pub fn adopt<C: FromClientHook>(&self, socket: OwnedFd, side: Side, bootstrap: Option<&C>, options: &ConnectionOptions) -> Result<Connection, Error> {
        self.handle.adopt(socket, side, bootstrap, options)
    }

    /// Hosts `server` (a capnpc-rust generated `Server` implementation) as a capability of
    /// interface `C`. Its methods run on the loop thread; they must not block.
    pub fn serve<C, S>(&self, server: S) -> Result<C, Error>
    where
        C: FromServer<S>,
        S: Send + 'static,
    {
        self.handle.serve(server)
    }

    /// Like [`serve`](Self::serve) for servers that are not `Send`; only on the loop thread
    /// (i.e. from inside another server's method).
    pub fn serve_local<C, S>(&self, server: S) -> Result<C, Error>
    where
        C: FromServer<S>,
        S: 'static,
    {
        self.handle.serve_local(server)
    }

    /// Runs the future that `make` builds on the loop thread and returns its output. Code that
    /// makes many calls runs fastest this way: its calls and their completions never cross
    /// threads (the same model as a native KJ program). `make` runs on the loop thread, so the
    /// future may hold `!Send` values such as generated clients; it must not block.
    pub fn run<T, Fut, F>(&self, make: F) -> impl Future<Output = Result<T, Error>> + Send + 'static
    where
        F: FnOnce() -> Fut + Send + 'static,
        Fut: Future<Output = T> + 'static,
        T: Send + 'static,
    {
        self.handle.run(make)
    }

    /// Runs a `!Send` future on the loop thread; only callable there (e.g. from a server
    /// method that wants work to outlive its call). The future is dropped, unfinished, if
    /// nothing can wake it any more or the runtime shuts down.
    pub fn spawn_local(&self, future: impl Future<Output = ()> + 'static) -> Result<(), Error> {
        self.handle.spawn_local(future)
    }

    /// A capability of interface `C` that is a promise until `resolver` settles it. Calls made
    /// meanwhile queue; peers holding it get Resolve (and Disembargo where calls were in flight).
    pub fn promise_client<C: FromClientHook>(&self) -> Result<(C, Resolver<C>), Error> {
        self.handle.promise_client()
    }

    /// A capability whose every call fails with `error`.
    pub fn broken_client<C: FromClientHook>(&self, error: &Error) -> Result<C, Error> {
        self.handle.broken_client(error)
    }

    /// Live object counts, after everything queued so far has been applied.
    pub fn stats(&self) -> Result<Stats, Error> {
        self.handle.stats()
    }

    /// Completes after `delay`, measured by KJ's timer on the loop thread (or early if the
    /// runtime shuts down first). Usable from server methods, which run on that thread.
    pub fn sleep(&self, delay: std::time::Duration) -> impl Future<Output = Result<(), Error>> + Send + 'static {
        self.handle.sleep(delay)
    }

    /// Waits for `future` at most `limit` (measured by KJ's timer); past it the future is
    /// dropped — for a call, that cancels it (Finish) — and the result is an
    /// [`ErrorKind::Overloaded`](crate::ErrorKind::Overloaded) error, KJ's kind for timeouts.
    pub async fn timeout<T>(&self, limit: std::time::Duration, future: impl Future<Output = T>) -> Result<T, Error> {
        self.handle.timeout(limit, future).await
    }

    /// Shuts the runtime down now (dropping the [`Runtime`] does the same). Refused on the
    /// loop thread.
    pub fn shutdown(&self) -> Result<(), Error> {
        self.handle.shutdown()
    }
}

impl RuntimeRef {
    /// True when called on this runtime's loop thread (inside a server method or callback).
    pub fn is_loop_thread(&self) -> bool {
        self.shared.handle.on_loop_thread()
    }

    /// Connects to `host:port` or `unix:/path`. A refused or failed connection is a
    /// [`Disconnected`](crate::ErrorKind::Disconnected) error naming the address.
    pub fn connect(&self, address: &str) -> impl Future<Output = Result<Connection, Error>> + Send + 'static {
        self.connect_with::<capnp::capability::Client>(address, None, &ConnectionOptions::default())
    }

    /// Like [`connect`](Self::connect), with limits, optionally offering `bootstrap` to the
    /// peer as this side's bootstrap capability.
    pub fn connect_with<C: FromClientHook>(&self, address: &str, bootstrap: Option<&C>, options: &ConnectionOptions) -> impl Future<Output = Result<Connection, Error>> + Send + 'static {
        let (sender, receiver) = oneshot::channel();
        let runtime = self.shared.clone();
        let started = bootstrap.map(|b| cap_of(b.as_client_hook())).transpose().and_then(|cap| {
            self.shared.handle.connect(address, cap, &options.to_raw(), Box::new(move |result| {
                let _ = sender.send(result.map(|handle| Connection { handle, _runtime: runtime }));
            }))
        });
        async move {
            started?;
            receiver.await.unwrap_or(Err(Error::ShutDown))
        }
    }

    /// Listens on `host:port` (port 0 picks one) or `unix:/path`, serving `bootstrap` to every
    /// accepted connection.
    pub fn listen<C: FromClientHook>(&self, address: &str, bootstrap: &C) -> impl Future<Output = Result<Listener, Error>> + Send + 'static {
        self.listen_with(address, bootstrap, &ConnectionOptions::default())
    }

    /// Like [`listen`](Self::listen), applying `options` to every accepted connection.
    pub fn listen_with<C: FromClientHook>(&self, address: &str, bootstrap: &C, options: &ConnectionOptions) -> impl Future<Output = Result<Listener, Error>> + Send + 'static {
        let (sender, receiver) = oneshot::channel();
        let started = cap_of(bootstrap.as_client_hook()).and_then(|cap| {
            self.shared.handle.listen(address, cap, &options.to_raw(), Box::new(move |result| {
                let _ = sender.send(result.map(|handle| Listener { handle }));
            }))
        });
        async move {
            started?;
            receiver.await.unwrap_or(Err(Error::ShutDown))
        }
    }

    /// Runs RPC over an already-connected stream socket (e.g. one end of a socketpair).
    pub fn adopt<C: FromClientHook>(&self, socket: OwnedFd, side: Side, bootstrap: Option<&C>, options: &ConnectionOptions) -> Result<Connection, Error> {
        let cap = bootstrap.map(|b| cap_of(b.as_client_hook())).transpose()?;
        let handle = self.shared.handle.adopt_fd(socket, side == Side::Server, cap, &options.to_raw())?;
        Ok(Connection { handle, _runtime: self.shared.clone() })
    }

    /// Hosts `server` (a capnpc-rust generated `Server` implementation) as a capability of
    /// interface `C`. Its methods run on the loop thread; they must not block.
    pub fn serve<C, S>(&self, server: S) -> Result<C, Error>
    where
        C: FromServer<S>,
        S: Send + 'static,
    {
        Ok(C::new(Box::new(BridgeClient::new(self.serve_handle::<C, S>(server)?))))
    }

    /// Like [`serve`](Self::serve) for servers that are not `Send`; only on the loop thread
    /// (i.e. from inside another server's method).
    pub fn serve_local<C, S>(&self, server: S) -> Result<C, Error>
    where
        C: FromServer<S>,
        S: 'static,
    {
        self.require_loop_thread("serve_local")?;
        self.host(Dispatcher::Ready(C::from_server(std::rc::Rc::new(server))))
    }

    fn host<C: FromClientHook, D: capnp::capability::Server + Clone + 'static>(&self, dispatcher: Dispatcher<D>) -> Result<C, Error> {
        Ok(C::new(Box::new(BridgeClient::new(self.host_handle(dispatcher)?))))
    }

    /// Hosts `server` as a bare capability handle (for the Lean glue, which wraps it itself).
    pub(crate) fn serve_handle<C, S>(&self, server: S) -> Result<CapHandle, Error>
    where
        C: FromServer<S>,
        S: Send + 'static,
    {
        let make: Box<dyn FnOnce() -> C::Dispatch + Send> =
            Box::new(move || C::from_server(std::rc::Rc::new(server)));
        self.host_handle(Dispatcher::Later(make))
    }

    fn host_handle<D: capnp::capability::Server + Clone + 'static>(&self, dispatcher: Dispatcher<D>) -> Result<CapHandle, Error> {
        let served = ServedCapability::new(self.shared.clone(), dispatcher);
        self.shared.handle.new_server(Box::new(served))
    }

    /// The ABI handle of this runtime.
    pub(crate) fn handle_arc(&self) -> Arc<RuntimeHandle> {
        self.shared.handle.clone()
    }

    /// A reference to a runtime created through the Lean glue (`Kj.Runtime.new`).
    pub(crate) fn from_handle(handle: Arc<RuntimeHandle>) -> Self {
        Self { shared: Arc::new(RuntimeShared { handle }) }
    }

    /// Runs the future that `make` builds on the loop thread and returns its output. Code that
    /// makes many calls runs fastest this way: its calls and their completions never cross
    /// threads (the same model as a native KJ program). `make` runs on the loop thread, so the
    /// future may hold `!Send` values such as generated clients; it must not block.
    pub fn run<T, Fut, F>(&self, make: F) -> impl Future<Output = Result<T, Error>> + Send + 'static
    where
        F: FnOnce() -> Fut + Send + 'static,
        Fut: Future<Output = T> + 'static,
        T: Send + 'static,
    {
        let (sender, receiver) = oneshot::channel();
        let shared = self.shared.clone();
        let posted = self.shared.handle.post(Box::new(move || {
            let future = make();
            LoopTask::spawn(&shared, async move {
                let _ = sender.send(future.await);
            });
        }));
        async move {
            posted?;
            receiver.await.map_err(|_| Error::ShutDown)
        }
    }

    /// Runs a `!Send` future on the loop thread; only callable there (e.g. from a server
    /// method that wants work to outlive its call). The future is dropped, unfinished, if
    /// nothing can wake it any more or the runtime shuts down.
    pub fn spawn_local(&self, future: impl Future<Output = ()> + 'static) -> Result<(), Error> {
        self.require_loop_thread("spawn_local")?;
        LoopTask::spawn(&self.shared, future);
        Ok(())
    }

    fn require_loop_thread(&self, what: &str) -> Result<(), Error> {
        if self.is_loop_thread() {
            Ok(())
        } else {
            Err(Error::InvalidArgument(format!(
                "{what} only works on the runtime's loop thread (inside a server method)"
            )))
        }
    }

    /// A capability of interface `C` that is a promise until `resolver` settles it. Calls made
    /// meanwhile queue; peers holding it get Resolve (and Disembargo where calls were in flight).
    pub fn promise_client<C: FromClientHook>(&self) -> Result<(C, Resolver<C>), Error> {
        let (cap, handle) = self.shared.handle.new_promise_cap()?;
        Ok((C::new(Box::new(BridgeClient::new(cap))), Resolver { handle, _interface: PhantomData }))
    }

    /// A capability whose every call fails with `error`.
    pub fn broken_client<C: FromClientHook>(&self, error: &Error) -> Result<C, Error> {
        let cap = self.shared.handle.new_broken(error.kind(), &error.message())?;
        Ok(C::new(Box::new(BridgeClient::new(cap))))
    }

    /// Live object counts, after everything queued so far has been applied.
    pub fn stats(&self) -> Result<Stats, Error> {
        let raw = self.shared.handle.stats()?;
        Ok(Stats {
            connections: raw.connections,
            caps: raw.caps,
            calls: raw.calls,
            server_calls: raw.server_calls,
            host_servers: raw.host_servers,
            resolvers: raw.resolvers,
        })
    }

    /// Completes after `delay`, measured by KJ's timer on the loop thread (or early if the
    /// runtime shuts down first). Usable from server methods, which run on that thread.
    pub fn sleep(&self, delay: std::time::Duration) -> impl Future<Output = Result<(), Error>> + Send + 'static {
        let (sender, receiver) = oneshot::channel();
        let armed = self.shared.handle.post_after(delay, Box::new(move || {
            let _ = sender.send(());
        }));
        async move {
            armed?;
            receiver.await.map_err(|_| Error::ShutDown)
        }
    }

    /// Waits for `future` at most `limit` (measured by KJ's timer); past it the future is
    /// dropped — for a call, that cancels it (Finish) — and the result is an
    /// [`ErrorKind::Overloaded`](crate::ErrorKind::Overloaded) error, KJ's kind for timeouts.
    pub async fn timeout<T>(&self, limit: std::time::Duration, future: impl Future<Output = T>) -> Result<T, Error> {
        let timer = self.sleep(limit);
        match futures::future::select(std::pin::pin!(future), std::pin::pin!(timer)).await {
            futures::future::Either::Left((value, _)) => Ok(value),
            futures::future::Either::Right(_) => {
                Err(Error::new(crate::ErrorKind::Overloaded, format!("timed out after {limit:?}")))
            }
        }
    }

    /// Shuts the runtime down now (dropping the [`Runtime`] does the same). Refused on the
    /// loop thread.
    pub fn shutdown(&self) -> Result<(), Error> {
        self.shared.handle.shutdown()
    }
}

impl Drop for Runtime {
    fn drop(&mut self) {
        let shared = &self.handle.shared;
        if shared.handle.on_loop_thread() {
            let shared = shared.clone();
            std::thread::spawn(move || shared.handle.shutdown());
        } else {
            let _ = shared.handle.shutdown();
        }
    }
}

/// Waits for `future` on the calling thread. Refuses (instead of deadlocking) on a runtime's
/// loop thread, where the completion it waits for could never run.
pub fn block_on<F: Future>(future: F) -> Result<F::Output, Error> {
    if on_some_loop_thread() {
        return Err(Error::OnLoopThread(
            "capnp_lean::block_on called on a runtime's loop thread; await the future instead".into(),
        ));
    }
    Ok(futures::executor::block_on(future))
}

/// A two-party RPC connection. Dropping it closes the connection: calls still pending over it
/// fail with `Disconnected`, and capabilities obtained through it become broken.
pub struct Connection {
    handle: ConnectionHandle,
    _runtime: Arc<RuntimeShared>,
}

impl Connection {
    /// The peer's bootstrap capability, as interface `C` (Bootstrap on the wire).
    pub fn bootstrap<C: FromClientHook>(&self) -> Result<C, Error> {
        Ok(C::new(Box::new(BridgeClient::new(self.handle.bootstrap()?))))
    }

    /// Resolves with the reason once the connection has ended.
    pub fn disconnected(&self) -> impl Future<Output = Result<Error, Error>> + Send + 'static {
        let (sender, receiver) = oneshot::channel();
        let registered = self.handle.on_disconnect(Box::new(move |reason| {
            if let Some(reason) = reason {
                let _ = sender.send(reason);
            }
        }));
        async move {
            registered?;
            receiver.await.map_err(|_| Error::failed("the disconnect watch was replaced or the connection released"))
        }
    }
}

/// A listening socket serving a bootstrap capability. Dropping it stops accepting; accepted
/// connections keep running until they end or the runtime shuts down.
pub struct Listener {
    handle: ListenerHandle,
}

impl Listener {
    /// The bound address (`host:port` with the real port, or `unix:/path`).
    pub fn address(&self) -> String {
        self.handle.address()
    }

    /// Connections accepted so far.
    pub fn accepted(&self) -> u64 {
        self.handle.accepted()
    }
}

/// Settles a promise capability made by [`RuntimeRef::promise_client`]. Dropping it unresolved
/// rejects the promise.
pub struct Resolver<C> {
    handle: ResolverHandle,
    _interface: PhantomData<fn(C)>,
}

impl<C: FromClientHook> Resolver<C> {
    /// Resolves the promise to `target` (which must be a capnp-lean capability).
    pub fn fulfill(self, target: &C) -> Result<(), Error> {
        let cap = cap_of(target.as_client_hook())?;
        self.handle.fulfill(cap)
    }

    /// Rejects the promise: calls on it fail with `error`'s kind and message.
    pub fn reject(self, error: &Error) -> Result<(), Error> {
        self.handle.reject(error)
    }
}
