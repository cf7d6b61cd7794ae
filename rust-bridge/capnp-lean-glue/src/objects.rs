//! The Lean `External` objects of the glue and what each owns. One class per handle kind,
//! registered once per process; the finalizer (the runtime calls it when the last Lean
//! reference goes away, on whichever thread that happens) drops the Rust state, which releases
//! the C ABI handle. Every state also keeps the runtime handle alive, so a runtime is never
//! destroyed while a Lean object still refers to something it owns.
//!
//! Live states are counted per kind ([`live_objects`]) so tests can prove that finalizers ran.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use crate::callbacks::DisconnectWatch;
use crate::GlueError;
use capnp_lean::__glue::{CallHandle, CapHandle, ConnectionHandle, ListenerHandle, ResolverHandle, RuntimeHandle, ServerCallHandle};
use capnp_lean_leanrt::{ExternalClass, Obj};

/// Numbers of glue-owned states still alive (created and not yet finalized), per kind.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LiveObjects {
    /// `Kj.Runtime` objects.
    pub runtimes: i64,
    /// `Kj.Connection` objects.
    pub connections: i64,
    /// `Kj.Listener` objects.
    pub listeners: i64,
    /// `Kj.Cap` objects.
    pub caps: i64,
    /// `Kj.Call` objects.
    pub calls: i64,
    /// `Kj.ServerCall` objects.
    pub server_calls: i64,
    /// `Kj.Resolver` objects.
    pub resolvers: i64,
    /// Lean server closures held by hosted capabilities.
    pub servers: i64,
    /// Call-completion closures not yet applied.
    pub pending_completions: i64,
    /// Disconnect closures (`Connection.onDisconnect`) not yet applied.
    pub disconnect_watchers: i64,
}

#[derive(Clone, Copy)]
pub(crate) enum Kind {
    Runtime,
    Connection,
    Listener,
    Cap,
    Call,
    ServerCall,
    Resolver,
    Server,
    Completion,
    DisconnectWatcher,
}

static LIVE: [AtomicI64; 10] = [const { AtomicI64::new(0) }; 10];

/// A counted instance of one kind; decrements on drop.
pub(crate) struct Live(Kind);

impl Live {
    pub(crate) fn new(kind: Kind) -> Self {
        LIVE[kind as usize].fetch_add(1, Ordering::SeqCst);
        Self(kind)
    }
}

impl Drop for Live {
    fn drop(&mut self) {
        LIVE[self.0 as usize].fetch_sub(1, Ordering::SeqCst);
    }
}

/// Current live counts.
pub fn live_objects() -> LiveObjects {
    let n = |k: Kind| LIVE[k as usize].load(Ordering::SeqCst);
    LiveObjects {
        runtimes: n(Kind::Runtime),
        connections: n(Kind::Connection),
        listeners: n(Kind::Listener),
        caps: n(Kind::Cap),
        calls: n(Kind::Call),
        server_calls: n(Kind::ServerCall),
        resolvers: n(Kind::Resolver),
        servers: n(Kind::Server),
        pending_completions: n(Kind::Completion),
        disconnect_watchers: n(Kind::DisconnectWatcher),
    }
}

/// A handle that an explicit release extern can take out before the finalizer runs.
pub(crate) struct Slot<T> {
    inner: Mutex<Option<Arc<T>>>,
}

impl<T> Slot<T> {
    fn new(value: T) -> Self {
        Self::shared(Arc::new(value))
    }

    /// A slot holding a handle that others may also hold (weakly, or briefly).
    pub(crate) fn shared(value: Arc<T>) -> Self {
        Self { inner: Mutex::new(Some(value)) }
    }

    /// A shared reference to the handle, or an error naming `what` once released.
    pub(crate) fn get(&self, what: &str) -> Result<Arc<T>, GlueError> {
        self.inner
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
            .ok_or_else(|| GlueError::failed(format!("this {what} was already released")))
    }

    /// Takes the handle out (it is released when the last shared reference goes).
    pub(crate) fn take(&self) -> Option<Arc<T>> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner()).take()
    }
}

/// `Capnp.Rpc.Kj.Runtime`.
pub(crate) struct RuntimeObj {
    pub handle: Arc<RuntimeHandle>,
    _live: Live,
}

/// `Capnp.Rpc.Kj.Connection`, with the Lean closures waiting for its end.
pub(crate) struct ConnectionObj {
    pub handle: Slot<ConnectionHandle>,
    pub runtime: Arc<RuntimeHandle>,
    pub watch: Arc<DisconnectWatch>,
    _live: Live,
}

/// `Capnp.Rpc.Kj.Listener`.
pub(crate) struct ListenerObj {
    pub handle: Slot<ListenerHandle>,
    _runtime: Arc<RuntimeHandle>,
    _live: Live,
}

/// `Capnp.Rpc.Kj.Cap`.
pub(crate) struct CapObj {
    pub handle: Slot<CapHandle>,
    pub runtime: Arc<RuntimeHandle>,
    _live: Live,
}

/// `Capnp.Rpc.Kj.Call`. The slot is shared (weakly) with the call's timeout, which empties it
/// to cancel the call.
pub(crate) struct CallObj {
    pub handle: Arc<Slot<CallHandle>>,
    pub runtime: Arc<RuntimeHandle>,
    _live: Live,
}

/// `Capnp.Rpc.Kj.ServerCall`: answered at most once, from any thread.
pub(crate) struct ServerCallObj {
    pub handle: Mutex<Option<ServerCallHandle>>,
    pub runtime: Arc<RuntimeHandle>,
    _live: Live,
}

/// `Capnp.Rpc.Kj.Resolver`: used at most once.
pub(crate) struct ResolverObj {
    pub handle: Mutex<Option<ResolverHandle>>,
    _runtime: Arc<RuntimeHandle>,
    _live: Live,
}

/// The registered classes (one per kind, registered on first use).
pub(crate) struct Classes {
    pub runtime: ExternalClass<RuntimeObj>,
    pub connection: ExternalClass<ConnectionObj>,
    pub listener: ExternalClass<ListenerObj>,
    pub cap: ExternalClass<CapObj>,
    pub call: ExternalClass<CallObj>,
    pub server_call: ExternalClass<ServerCallObj>,
    pub resolver: ExternalClass<ResolverObj>,
}

pub(crate) fn classes() -> &'static Classes {
    static CLASSES: OnceLock<Classes> = OnceLock::new();
    CLASSES.get_or_init(|| {
        crate::lean_runtime();
        Classes {
            runtime: ExternalClass::register(),
            connection: ExternalClass::register(),
            listener: ExternalClass::register(),
            cap: ExternalClass::register(),
            call: ExternalClass::register(),
            server_call: ExternalClass::register(),
            resolver: ExternalClass::register(),
        }
    })
}

pub(crate) fn wrap_runtime(handle: RuntimeHandle) -> Obj {
    wrap_runtime_shared(Arc::new(handle))
}

/// Wraps a runtime whose handle Rust code also holds.
pub(crate) fn wrap_runtime_shared(handle: Arc<RuntimeHandle>) -> Obj {
    classes().runtime.wrap(RuntimeObj { handle, _live: Live::new(Kind::Runtime) })
}

pub(crate) fn wrap_connection(handle: ConnectionHandle, runtime: Arc<RuntimeHandle>) -> Obj {
    let watch = DisconnectWatch::new(runtime.clone());
    classes().connection.wrap(ConnectionObj { handle: Slot::new(handle), runtime, watch, _live: Live::new(Kind::Connection) })
}

pub(crate) fn wrap_listener(handle: ListenerHandle, runtime: Arc<RuntimeHandle>) -> Obj {
    classes().listener.wrap(ListenerObj { handle: Slot::new(handle), _runtime: runtime, _live: Live::new(Kind::Listener) })
}

pub(crate) fn wrap_cap(handle: CapHandle, runtime: Arc<RuntimeHandle>) -> Obj {
    classes().cap.wrap(CapObj { handle: Slot::new(handle), runtime, _live: Live::new(Kind::Cap) })
}

/// Wraps a call whose handle is already shared (the completion callback holds a weak one, a
/// timeout a weak reference to the slot).
pub(crate) fn wrap_call(slot: Arc<Slot<CallHandle>>, runtime: Arc<RuntimeHandle>) -> Obj {
    classes().call.wrap(CallObj { handle: slot, runtime, _live: Live::new(Kind::Call) })
}

pub(crate) fn wrap_server_call(handle: ServerCallHandle, runtime: Arc<RuntimeHandle>) -> Obj {
    classes().server_call.wrap(ServerCallObj { handle: Mutex::new(Some(handle)), runtime, _live: Live::new(Kind::ServerCall) })
}

pub(crate) fn wrap_resolver(handle: ResolverHandle, runtime: Arc<RuntimeHandle>) -> Obj {
    classes().resolver.wrap(ResolverObj { handle: Mutex::new(Some(handle)), _runtime: runtime, _live: Live::new(Kind::Resolver) })
}

/// Reads the state of an external object of `class`, or says which Lean type was expected.
pub(crate) fn expect<'a, T: 'static>(class: &ExternalClass<T>, o: &'a Obj, what: &str) -> Result<&'a T, GlueError> {
    class.get(o).ok_or_else(|| GlueError::failed(format!("expected a Capnp.Rpc.Kj.{what}")))
}
