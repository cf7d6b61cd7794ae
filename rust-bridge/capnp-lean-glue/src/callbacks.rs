//! What runs on the loop thread: call completions delivered to a Lean closure (with an optional
//! deadline), calls to a Lean-implemented capability dispatched to its handler closure, and the
//! end of a connection announced to the Lean closures waiting for it. All attach the loop thread
//! to the Lean runtime first and never let a panic reach C++.

use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use crate::convert::{except, on_loop_thread, payload, world, SharedObj};
use crate::objects::{wrap_server_call, Kind, Live, Slot};
use crate::{panic_text, GlueError};
use capnp_lean::{Error, ErrorKind};
use capnp_lean::__glue::{CallHandle, CompletedCall, ConnectionHandle, HostServer, RuntimeHandle, ServerCallHandle};
use capnp_lean_leanrt::{self as lean, Obj};

/// A call's timeout. Whichever comes first, the answer or the expiry, settles it; an expiry
/// first cancels the call (its handle is released: Finish) and its completion reports
/// `overloaded` "timed out after …", as the Rust API's `RuntimeRef::timeout` does.
pub(crate) struct Deadline {
    limit: Duration,
    state: AtomicU8,
}

const PENDING: u8 = 0;
const SETTLED: u8 = 1;
const EXPIRED: u8 = 2;

impl Deadline {
    pub(crate) fn new(limit: Duration) -> Arc<Self> {
        Arc::new(Self { limit, state: AtomicU8::new(PENDING) })
    }

    /// Starts KJ's timer for the call whose handle is in `call`. Both the expiry and the
    /// completion run on the loop thread, so they cannot interleave. At shutdown the ABI fires
    /// timers early, but only after failing every pending call, which settles it first.
    pub(crate) fn arm(self: &Arc<Self>, runtime: &RuntimeHandle, call: Weak<Slot<CallHandle>>) -> Result<(), Error> {
        let deadline = self.clone();
        runtime.post_after(self.limit, Box::new(move || {
            if deadline.state.compare_exchange(PENDING, EXPIRED, Ordering::AcqRel, Ordering::Acquire).is_ok() {
                // The Lean `Call` may be gone already; then so is the call (dropping cancels it).
                if let Some(slot) = call.upgrade() {
                    drop(slot.take());
                }
            }
        }))
    }

    /// Marks the call answered (or cancelled); true when the timer expired first.
    fn settle(&self) -> bool {
        self.state.swap(SETTLED, Ordering::AcqRel) == EXPIRED
    }

    fn error(&self) -> GlueError {
        GlueError { kind: ErrorKind::Overloaded, message: format!("timed out after {:?}", self.limit) }
    }
}

/// A completion closure (`Except IO.Error Payload → BaseIO Unit`) waiting for its call.
pub(crate) struct Completion {
    on_done: SharedObj,
    runtime: Arc<RuntimeHandle>,
    deadline: Option<Arc<Deadline>>,
    _live: Live,
}

impl Completion {
    pub(crate) fn new(on_done: Obj, runtime: Arc<RuntimeHandle>, deadline: Option<Arc<Deadline>>) -> Self {
        Self { on_done: SharedObj::new(on_done), runtime, deadline, _live: Live::new(Kind::Completion) }
    }

    /// Runs on the loop thread, exactly once: with the completed call, or `None` when the call
    /// was cancelled (by `Call.cancel`, the finalizer, or its deadline) before it completed.
    /// The results are read from the call the ABI hands over, so a completion never waits for
    /// the starting thread (a local call can complete before `start_call` has returned there).
    pub(crate) fn deliver(self, call: Option<CompletedCall<'_>>) {
        on_loop_thread(|| {
            let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                let timed_out = self.deadline.as_ref().is_some_and(|d| d.settle());
                let result = match (timed_out, &call) {
                    (true, _) => Err(self.deadline.as_ref().map_or_else(|| GlueError::failed("timed out"), |d| d.error())),
                    (false, Some(call)) => self.read_results(call),
                    (false, None) => Err(GlueError::failed("the call was cancelled")),
                };
                let argument = except(result);
                // `BaseIO Unit` closures take the world token and return the value itself.
                drop(lean::apply_array(self.on_done.get(), [argument, world()]));
            }));
            if let Err(panic) = outcome {
                log::error!("capnp-lean glue: call completion panicked: {}", panic_text(panic.as_ref()));
            }
            drop(self);
        });
    }

    fn read_results(&self, call: &CompletedCall<'_>) -> Result<Obj, GlueError> {
        let view = call.results()?;
        let caps = (0..view.cap_count)
            .map(|i| call.result_cap(u32::try_from(i).expect("capability tables are small")))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(payload(&view.segments, caps, &self.runtime))
    }
}

/// A capability implemented by a Lean closure
/// `UInt64 → UInt16 → ServerCall → BaseIO Unit` (interface id, method id, the call to answer).
pub(crate) struct LeanServer {
    handler: Option<SharedObj>,
    runtime: Arc<RuntimeHandle>,
    _live: Live,
}

impl LeanServer {
    pub(crate) fn new(handler: Obj, runtime: Arc<RuntimeHandle>) -> Self {
        Self { handler: Some(SharedObj::new(handler)), runtime, _live: Live::new(Kind::Server) }
    }
}

impl HostServer for LeanServer {
    fn dispatch(&self, interface_id: u64, method_id: u16, call: ServerCallHandle) {
        let Some(handler) = &self.handler else { return };
        on_loop_thread(|| {
            let context = wrap_server_call(call, self.runtime.clone());
            let args = [lean::box_u64(interface_id), Obj::boxed(usize::from(method_id)), context, world()];
            let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| drop(lean::apply_array(handler.get(), args))));
            if let Err(panic) = outcome {
                // The context was consumed by the closure; if it is dropped unanswered the
                // caller gets a FAILED error from the ABI.
                log::error!("capnp-lean glue: server handler panicked: {}", panic_text(panic.as_ref()));
            }
        });
    }

    fn cancelled(&self, _call_id: usize) {
        // The ABI discards a cancelled call's answer; the Lean handler still answers it.
    }
}

impl Drop for LeanServer {
    fn drop(&mut self) {
        let handler = self.handler.take().map(SharedObj::into_inner);
        if self.runtime.on_loop_thread() {
            on_loop_thread(|| drop(handler));
        } else {
            drop(handler);
        }
    }
}

/// One Lean closure `IO.Error → BaseIO Unit` waiting for a connection to end.
struct Watcher {
    on_end: SharedObj,
    _live: Live,
}

impl Watcher {
    /// Applies the closure to `reason` (on the loop thread, attached; or on the Lean thread that
    /// registered it after the end, or released the connection after shutdown).
    fn fire(self, reason: &GlueError, runtime: &RuntimeHandle) {
        let run = || {
            let applied = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                drop(lean::apply_array(self.on_end.get(), [reason.to_io_error(), world()]));
            }));
            if let Err(panic) = applied {
                log::error!("capnp-lean glue: disconnect closure panicked: {}", panic_text(panic.as_ref()));
            }
            drop(self);
        };
        if runtime.on_loop_thread() { on_loop_thread(run) } else { run() }
    }
}

enum WatchState {
    /// Nothing registered with the connection yet.
    Idle,
    /// Registered once with the ABI; these closures wait for the end.
    Watching(Vec<Watcher>),
    /// The connection ended for this reason.
    Ended(GlueError),
}

/// The closures waiting for one connection's end. The ABI keeps one disconnect callback per
/// connection; this fans it out, so every `Connection.onDisconnect` is applied exactly once:
/// with the reason when the connection ends (`disconnected`, naming the address), with
/// `disconnected` "the connection was closed locally" when this side closes or drops it, and at
/// once when it had already ended.
pub(crate) struct DisconnectWatch {
    state: Mutex<WatchState>,
    runtime: Arc<RuntimeHandle>,
}

/// The reason given when this side closed (or dropped) the connection.
const CLOSED_LOCALLY: &str = "the connection was closed locally";

impl DisconnectWatch {
    pub(crate) fn new(runtime: Arc<RuntimeHandle>) -> Arc<Self> {
        Arc::new(Self { state: Mutex::new(WatchState::Idle), runtime })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, WatchState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Adds `on_end`; the first one registers the ABI callback. `connection` is `None` once
    /// this side has closed the connection.
    pub(crate) fn add(self: &Arc<Self>, connection: Option<&ConnectionHandle>, on_end: Obj) {
        let watcher = Watcher { on_end: SharedObj::new(on_end), _live: Live::new(Kind::DisconnectWatcher) };
        let mut state = self.lock();
        match (&mut *state, connection) {
            (WatchState::Watching(waiting), _) => waiting.push(watcher),
            (WatchState::Ended(reason), _) => {
                let reason = reason.clone();
                drop(state);
                watcher.fire(&reason, &self.runtime);
            }
            (WatchState::Idle, None) => {
                // Closed by this side before anyone watched it.
                *state = WatchState::Ended(closed_locally());
                drop(state);
                watcher.fire(&closed_locally(), &self.runtime);
            }
            (WatchState::Idle, Some(connection)) => {
                *state = WatchState::Watching(vec![watcher]);
                drop(state);
                let watch = self.clone();
                if let Err(e) = connection.on_disconnect(Box::new(move |reason| watch.end(reason))) {
                    // Only refused after shutdown: the connection has ended, say so at once.
                    self.end(Some(e));
                }
            }
        }
    }

    /// The ABI's callback (also called when registering was refused): `None` when this side
    /// released the connection.
    fn end(&self, reason: Option<Error>) {
        let reason = reason.map_or_else(closed_locally, GlueError::from);
        let previous = std::mem::replace(&mut *self.lock(), WatchState::Ended(reason.clone()));
        if let WatchState::Watching(waiting) = previous {
            for watcher in waiting {
                watcher.fire(&reason, &self.runtime);
            }
        }
    }
}

fn closed_locally() -> GlueError {
    GlueError { kind: ErrorKind::Disconnected, message: CLOSED_LOCALLY.into() }
}
