//! What runs on the loop thread: call completions delivered to a Lean closure, and calls to a
//! Lean-implemented capability dispatched to its handler closure. Both attach the loop thread
//! to the Lean runtime first and never let a panic reach C++.

use std::sync::{Arc, Condvar, Mutex, Weak};

use super::convert::{except, on_loop_thread, payload, world, SharedObj};
use super::objects::{wrap_server_call, Kind, Live};
use super::{panic_text, GlueError};
use crate::ffi::{CallHandle, HostServer, RuntimeHandle, ServerCallHandle};
use crate::lean::{self, Obj};

/// Hands the call handle from the thread that started the call to its completion callback,
/// which may fire on the loop thread before `start_call` has returned to the starter.
#[derive(Default)]
pub(crate) struct CallHandoff {
    slot: Mutex<Option<Weak<CallHandle>>>,
    filled: Condvar,
}

impl CallHandoff {
    pub(crate) fn fill(&self, call: &Arc<CallHandle>) {
        *self.slot.lock().unwrap_or_else(|p| p.into_inner()) = Some(Arc::downgrade(call));
        self.filled.notify_all();
    }

    /// Waits for `fill` (a few instructions away on the starting thread) and upgrades.
    fn wait(&self) -> Option<Arc<CallHandle>> {
        let mut slot = self.slot.lock().unwrap_or_else(|p| p.into_inner());
        while slot.is_none() {
            slot = self.filled.wait(slot).unwrap_or_else(|p| p.into_inner());
        }
        slot.as_ref().and_then(Weak::upgrade)
    }
}

/// A completion closure (`Except IO.Error Payload → BaseIO Unit`) waiting for its call.
pub(crate) struct Completion {
    on_done: SharedObj,
    handoff: Arc<CallHandoff>,
    runtime: Arc<RuntimeHandle>,
    _live: Live,
}

impl Completion {
    pub(crate) fn new(on_done: Obj, handoff: Arc<CallHandoff>, runtime: Arc<RuntimeHandle>) -> Self {
        Self { on_done: SharedObj::new(on_done), handoff, runtime, _live: Live::new(Kind::Completion) }
    }

    /// Runs on the loop thread, exactly once: `completed` is false when the call was cancelled.
    pub(crate) fn deliver(self, completed: bool) {
        on_loop_thread(|| {
            let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                let result = if completed { self.read_results() } else { Err(GlueError::failed("the call was cancelled")) };
                let argument = except(result);
                // `BaseIO Unit` closures take the world token and return the value itself.
                drop(lean::apply(self.on_done.get(), vec![argument, world()]));
            }));
            if let Err(panic) = outcome {
                eprintln!("capnp-lean glue: call completion panicked: {}", panic_text(panic.as_ref()));
            }
            drop(self);
        });
    }

    fn read_results(&self) -> Result<Obj, GlueError> {
        let call = self.handoff.wait().ok_or_else(|| GlueError::failed("the call was cancelled"))?;
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
            let args = vec![lean::box_u64(interface_id), Obj::boxed(usize::from(method_id)), context, world()];
            let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| drop(lean::apply(handler.get(), args))));
            if let Err(panic) = outcome {
                // The context was consumed by the closure; if it is dropped unanswered the
                // caller gets a FAILED error from the ABI.
                eprintln!("capnp-lean glue: server handler panicked: {}", panic_text(panic.as_ref()));
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
