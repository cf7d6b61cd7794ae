//! Serving capnpc-rust generated servers through the bridge.
//!
//! Each incoming call reaches the loop thread, where the generated `ServerDispatch` runs the
//! method; its future is driven there by a [`LoopTask`]. The answer goes back through the ABI
//! when the future completes; a call the caller cancels has its future dropped.

use crate::error::Error;
use crate::executor::{LoopCell, LoopTask};
use crate::ffi::{HostServer, ServerCallHandle};
use crate::hooks::{respond_lent, BridgeClient, BridgeParams, BridgeResults, CapTable, ResultsSlot};
use crate::runtime::RuntimeShared;
use capnp::capability::{Params, Results, Server};
use std::cell::RefCell;
use std::collections::HashMap;
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
        let promise = dispatch.dispatch_call(interface_id, method_id, params, results).promise;
        let call_id = call.id();
        let finished = calls.clone();
        let task = LoopTask::spawn(&self.runtime, async move {
            let outcome = promise.await;
            finished.borrow_mut().remove(&call_id);
            answer(call, outcome, &slot);
        });
        if !task.is_finished() {
            calls.borrow_mut().insert(call_id, task);
        }
        Ok(())
    }
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
