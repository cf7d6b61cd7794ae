//! Serving capnpc-rust generated servers through the bridge.
//!
//! Each incoming call reaches the loop thread, where the generated `ServerDispatch` runs the
//! method; its future is driven there by a [`LoopTask`]. The answer goes back through the ABI
//! when the future completes; a call the caller cancels has its future dropped. A method that
//! panics fails its call (`Failed`, "panic in a server method: …"); the panic never reaches C++.

use crate::error::Error;
use crate::executor::{LoopCell, LoopTask, RuntimeShared};
use crate::ffi::{HostServer, ServerCallHandle};
use crate::hooks::{respond_lent, BridgeClient, BridgeParams, BridgeResults, CapTable, ResultsSlot};
use capnp::capability::{Params, Results, Server};
use std::cell::RefCell;
use std::collections::HashMap;
use futures::FutureExt;
use std::panic::AssertUnwindSafe;
use std::rc::Rc;
use std::sync::Arc;

type Calls = Rc<RefCell<HashMap<usize, Arc<LoopTask>>>>;

struct State<D> {
    make: Option<Box<dyn FnOnce() -> D + Send>>,
    dispatch: Option<D>,
    calls: Calls,
}

/// How the dispatch object comes to exist on the loop thread.
pub(crate) enum Dispatcher<D> {
    /// Built on first use from a `Send` constructor (served from another thread).
    Later(Box<dyn FnOnce() -> D + Send>),
    /// Already built (served from the loop thread itself).
    Ready(D),
}

/// A host server whose dispatch object `D` is built lazily on the loop thread.
pub(crate) struct ServedCapability<D> {
    runtime: Arc<RuntimeShared>,
    state: LoopCell<State<D>>,
}

impl<D: Server + Clone + 'static> ServedCapability<D> {
    pub fn new(runtime: Arc<RuntimeShared>, dispatcher: Dispatcher<D>) -> Self {
        let (make, dispatch) = match dispatcher {
            Dispatcher::Later(make) => (Some(make), None),
            Dispatcher::Ready(dispatch) => (None, Some(dispatch)),
        };
        let state = State { make, dispatch, calls: Rc::default() };
        Self { state: LoopCell::new(runtime.clone(), state), runtime }
    }

    fn start(&self, interface_id: u64, method_id: u16, call: ServerCallHandle) -> Result<(), (ServerCallHandle, Error)> {
        let Some((dispatch, calls)) = self.state.with(|state| {
            if state.dispatch.is_none() {
                let make = state.make.take().expect("the server is built once");
                state.dispatch = Some(make());
            }
            (state.dispatch.clone().expect("built above"), state.calls.clone())
        }) else {
            return Err((call, Error::failed("capnp-lean server state was not reachable on the loop thread")));
        };
        let params = match params_of(&call) {
            Ok(params) => params,
            Err(e) => return Err((call, e)),
        };
        let slot = ResultsSlot::default();
        let results = Results::new(Box::new(BridgeResults::new(slot.clone())));
        // A panicking method (while dispatching or while its future runs) fails its own call
        // with the panic's message instead of unwinding into the loop.
        let dispatched = std::panic::catch_unwind(AssertUnwindSafe(|| {
            dispatch.dispatch_call(interface_id, method_id, params, results)
        }));
        let promise = match dispatched {
            Ok(dispatched) => {
                // A `-> stream` method: KJ then hands this capability's calls over one at a
                // time and, after a failed item, fails every later call (the stream's `done`
                // included). Must happen now, inside the dispatch callback, before any answer.
                if dispatched.is_streaming {
                    if let Err(e) = call.set_streaming() {
                        return Err((call, e));
                    }
                }
                dispatched.promise
            }
            Err(panic) => return Err((call, panic_error(panic.as_ref()))),
        };
        let call_id = call.id();
        let finished = calls.clone();
        let task = LoopTask::spawn(&self.runtime, async move {
            let outcome = AssertUnwindSafe(promise)
                .catch_unwind()
                .await
                .unwrap_or_else(|panic| Err(panic_error(panic.as_ref()).into()));
            finished.borrow_mut().remove(&call_id);
            answer(call, outcome, &slot);
        });
        if !task.is_finished() {
            calls.borrow_mut().insert(call_id, task);
        }
        Ok(())
    }
}

/// The error a panicking server method answers with: `failed`, naming the panic.
fn panic_error(panic: &(dyn std::any::Any + Send)) -> Error {
    let what = panic
        .downcast_ref::<&str>()
        .map(|s| (*s).to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".to_string());
    Error::failed(format!("panic in a server method: {what}"))
}

fn params_of(call: &ServerCallHandle) -> Result<Params<capnp::any_pointer::Owned>, Error> {
    let (segments, cap_count) = call.params()?;
    let cap_table: CapTable = (0..cap_count as u32)
        .map(|i| Some(BridgeClient::boxed(call.param_cap(i))))
        .collect();
    Ok(Params::new(Box::new(BridgeParams::new(segments, cap_table))))
}

fn answer(call: ServerCallHandle, outcome: Result<(), capnp::Error>, slot: &ResultsSlot) {
    if let Err(e) = outcome {
        let _ = call.fail(&Error::from(e));
        return;
    }
    let Some((message, cap_table)) = slot.borrow_mut().take() else {
        let _ = call.fail(&Error::failed("the server method kept its Results past the end of the call"));
        return;
    };
    // Errors are already answered (the ABI fails a call whose results it refuses).
    let _ = respond_lent(call, message, &cap_table);
}

impl<D: Server + Clone + 'static> HostServer for ServedCapability<D> {
    fn dispatch(&self, interface_id: u64, method_id: u16, call: ServerCallHandle) {
        if let Err((call, error)) = self.start(interface_id, method_id, call) {
            let _ = call.fail(&error);
        }
    }

    fn cancelled(&self, call_id: usize) {
        let task = self.state.with(|state| state.calls.borrow_mut().remove(&call_id)).flatten();
        if let Some(task) = task {
            task.cancel();
        }
    }
}
