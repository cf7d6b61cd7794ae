//! The externs of `Capnp.Rpc.Kj`, one per `@[extern "…"]` declaration, in the same order as the
//! Lean file. Parameter kinds: `Borrowed` = `@&` object, `Owned` = consumed object, `U64`/
//! `U32`/`U16` = unboxed scalars. Every function returns an IO result (no world argument).
//!
//! Blocking externs (`connect`, `listen`, `stats`) wait for the loop thread and therefore
//! refuse to run on it; everything else only queues work and returns.

use std::sync::{mpsc, Arc};
use std::time::Duration;

use crate::callbacks::{Completion, Deadline, LeanServer};
use crate::convert::{borrow, cap_table, own, segments, structure, u16_array, with_message};
use crate::objects::{
    classes, expect, wrap_call, wrap_cap, wrap_connection, wrap_listener, wrap_resolver, wrap_runtime, RuntimeObj, Slot,
};
use crate::{kind_from_u32, lean_externs, GlueError};
use capnp_lean::Error;
use capnp_lean::__glue::RuntimeHandle;
use capnp_lean_leanrt::{self as lean, abi::LeanObject, Obj};
use capnp_lean::{ConnectionOptions, Transport};

fn unit() -> Result<Obj, GlueError> {
    Ok(Obj::boxed(0))
}

/// The runtime object behind a borrowed `Runtime` argument.
///
/// # Safety
/// `rt` is a live borrowed Lean object.
unsafe fn runtime_of(rt: *mut LeanObject) -> Result<Arc<RuntimeHandle>, GlueError> {
    // SAFETY: forwarded.
    let rt = unsafe { borrow(rt) };
    let state: &RuntimeObj = expect(&classes().runtime, &rt, "Runtime")?;
    Ok(state.handle.clone())
}

/// Blocks for a loop-thread callback's answer; refused on the loop thread, where it would
/// never come.
fn wait_for<T>(runtime: &RuntimeHandle, what: &str, start: impl FnOnce(mpsc::Sender<T>) -> Result<(), Error>) -> Result<T, GlueError> {
    if runtime.on_loop_thread() {
        return Err(GlueError::failed(format!("{what} blocks and cannot run on the KJ loop thread (call it from a task)")));
    }
    let (tx, rx) = mpsc::channel();
    start(tx)?;
    rx.recv().map_err(|_| GlueError::failed(format!("{what}: the runtime stopped before answering")))
}

/// A borrowed `String` argument.
///
/// # Safety
/// `s` is a live borrowed Lean `String`.
unsafe fn text(s: *mut LeanObject) -> Result<String, GlueError> {
    // SAFETY: forwarded.
    let s = unsafe { borrow(s) };
    match s.header() {
        Some(h) if h.tag == lean::abi::STRING => Ok(lean::string_str(&s).to_string()),
        _ => Err(GlueError::failed("expected a String")),
    }
}

/// `ConnectionOptions` from the scalars `Kj.ConnectionOptions` is unpacked into (0 = default
/// for every field; transport numbered as the C ABI's `CAPNP_LEAN_TRANSPORT_*`).
fn options(nesting_limit: u32, traversal_limit_words: u64, flow_limit_words: u64, dead_peer_timeout_ms: u32, transport: u32) -> Result<ConnectionOptions, GlueError> {
    let transport = match transport {
        capnp_lean_sys::CAPNP_LEAN_TRANSPORT_DEFAULT | capnp_lean_sys::CAPNP_LEAN_TRANSPORT_COALESCING => Transport::Coalescing,
        capnp_lean_sys::CAPNP_LEAN_TRANSPORT_STOCK => Transport::Stock,
        other => return Err(GlueError::failed(format!("unknown transport {other} (1 = stock, 2 = coalescing)"))),
    };
    Ok(ConnectionOptions {
        nesting_limit,
        traversal_limit_words,
        flow_limit_words,
        dead_peer_timeout: (dead_peer_timeout_ms != 0).then(|| Duration::from_millis(u64::from(dead_peer_timeout_ms))),
        transport,
        // Not in `Kj.ConnectionOptions` yet: Lean connections get the default deadlines.
        ..ConnectionOptions::default()
    })
}

/// Connects and waits (the body of both connect externs).
fn connect(runtime: Arc<RuntimeHandle>, address: &str, options: &ConnectionOptions) -> Result<Obj, GlueError> {
    let result = wait_for(&runtime, "connect", |tx| {
        runtime.connect(address, None, &capnp_lean::__glue::raw_options(*options), Box::new(move |r| drop(tx.send(r))))
    })?;
    Ok(wrap_connection(result?, runtime))
}

/// Listens and waits (the body of both listen externs).
///
/// # Safety
/// `bootstrap` is a live borrowed Lean object.
unsafe fn listen(runtime: Arc<RuntimeHandle>, address: &str, bootstrap: *mut LeanObject, options: &ConnectionOptions) -> Result<Obj, GlueError> {
    // SAFETY: forwarded.
    let bootstrap = unsafe { borrow(bootstrap) };
    let cap = expect(&classes().cap, &bootstrap, "Cap")?.handle.get("capability")?;
    let result = wait_for(&runtime, "listen", |tx| {
        runtime.listen(address, &cap, &capnp_lean::__glue::raw_options(*options), Box::new(move |r| drop(tx.send(r))))
    })?;
    Ok(wrap_listener(result?, runtime))
}

/// Starts a call (the body of both call externs), with a deadline when `timeout` is given.
///
/// # Safety
/// `target`, `segs` and `caps` are live borrowed Lean objects; `on_done` is an owned closure.
unsafe fn start_call(target: *mut LeanObject, interface_id: u64, method_id: u16, segs: *mut LeanObject, caps: *mut LeanObject, on_done: *mut LeanObject, timeout: Option<Duration>) -> Result<Obj, GlueError> {
    // SAFETY: borrowed arguments and the owned closure, as declared.
    let (target, segs, caps, on_done) = unsafe { (borrow(target), borrow(segs), borrow(caps), own(on_done)) };
    let state = expect(&classes().cap, &target, "Cap")?;
    let cap = state.handle.get("capability")?;
    let segments = segments(&segs)?;
    let table = cap_table(&caps)?;
    let deadline = timeout.map(Deadline::new);
    let completion = Completion::new(on_done, state.runtime.clone(), deadline.clone());
    let call = with_message(&segments, &table, |params| {
        cap.start_call_viewing(interface_id, method_id, params, Box::new(move |completed| completion.deliver(completed)))
    })?;
    let slot = Arc::new(Slot::shared(Arc::new(call)));
    if let Some(deadline) = deadline {
        // Refused only after shutdown, which fails the call anyway; it is dropped (cancelled) here.
        deadline.arm(&state.runtime, Arc::downgrade(&slot))?;
    }
    Ok(wrap_call(slot, state.runtime.clone()))
}

lean_externs! {
    /// `Runtime.new : IO Runtime` — starts a KJ runtime (one loop thread).
    fn capnp_lean_kj_runtime_new() {
        let runtime = RuntimeHandle::create()?;
        // Rust servers hosted for Lean (`glue::serve`) run there: `block_on` must refuse it.
        runtime.post(Box::new(capnp_lean::__glue::mark_loop_thread))?;
        Ok(wrap_runtime(runtime))
    }

    /// `Runtime.shutdown (rt : @& Runtime) : IO Unit` — stops the loop: pending calls fail with
    /// `disconnected`; handles stay valid to drop.
    fn capnp_lean_kj_runtime_shutdown(rt: Borrowed) {
        // SAFETY: `rt` is the borrowed argument.
        unsafe { runtime_of(rt) }?.shutdown()?;
        unit()
    }

    /// `Runtime.stats (rt : @& Runtime) : IO Stats` — live C ABI objects (connections, caps,
    /// calls, server calls, host servers, resolvers).
    fn capnp_lean_kj_runtime_stats(rt: Borrowed) {
        // SAFETY: `rt` is the borrowed argument.
        let runtime = unsafe { runtime_of(rt) }?;
        if runtime.on_loop_thread() {
            return Err(GlueError::failed("stats blocks and cannot run on the KJ loop thread"));
        }
        let s = runtime.stats()?;
        let nat = |n: u64| Obj::boxed(usize::try_from(n).unwrap_or(usize::MAX >> 1));
        Ok(structure([nat(s.connections), nat(s.caps), nat(s.calls), nat(s.server_calls), nat(s.host_servers), nat(s.resolvers)]))
    }

    /// `Runtime.connect (rt : @& Runtime) (address : @& String) : IO Connection` — `host:port`
    /// or `unix:/path`; blocks until connected.
    fn capnp_lean_kj_connect(rt: Borrowed, address: Borrowed) {
        // SAFETY: borrowed arguments.
        let (runtime, address) = unsafe { (runtime_of(rt)?, text(address)?) };
        connect(runtime, &address, &ConnectionOptions::default())
    }

    /// `Runtime.connectUnpacked (rt : @& Runtime) (address : @& String) (nestingLimit : UInt32)
    /// (traversalLimitWords : UInt64) (flowLimitWords : UInt64) (deadPeerTimeoutMs : UInt32)
    /// (transport : UInt32) : IO Connection` — `connect` with limits (each 0 = the default).
    fn capnp_lean_kj_connect_with_options(rt: Borrowed, address: Borrowed, nesting_limit: U32, traversal_limit_words: U64, flow_limit_words: U64, dead_peer_timeout_ms: U32, transport: U32) {
        let options = options(nesting_limit, traversal_limit_words, flow_limit_words, dead_peer_timeout_ms, transport)?;
        // SAFETY: borrowed arguments.
        let (runtime, address) = unsafe { (runtime_of(rt)?, text(address)?) };
        connect(runtime, &address, &options)
    }

    /// `Connection.bootstrap (c : @& Connection) : IO Cap` — the peer's bootstrap capability.
    fn capnp_lean_kj_connection_bootstrap(conn: Borrowed) {
        // SAFETY: borrowed argument.
        let conn = unsafe { borrow(conn) };
        let state = expect(&classes().connection, &conn, "Connection")?;
        let cap = state.handle.get("connection")?.bootstrap()?;
        Ok(wrap_cap(cap, state.runtime.clone()))
    }

    /// `Connection.close (c : @& Connection) : IO Unit` — closes now (also done by the finalizer).
    fn capnp_lean_kj_connection_close(conn: Borrowed) {
        // SAFETY: borrowed argument.
        let conn = unsafe { borrow(conn) };
        drop(expect(&classes().connection, &conn, "Connection")?.handle.take());
        unit()
    }

    /// `Connection.onDisconnect (c : @& Connection) (onEnd : IO.Error → BaseIO Unit) : IO Unit`
    /// — `onEnd` is applied once with the reason the connection ended (`disconnected`); any
    /// number may wait, and one added after the end is applied at once.
    fn capnp_lean_kj_connection_on_disconnect(conn: Borrowed, on_end: Owned) {
        // SAFETY: borrowed connection, owned closure.
        let (conn, on_end) = unsafe { (borrow(conn), own(on_end)) };
        let state = expect(&classes().connection, &conn, "Connection")?;
        let handle = state.handle.get("connection").ok();
        state.watch.add(handle.as_deref(), on_end);
        unit()
    }

    /// `Runtime.listen (rt : @& Runtime) (address : @& String) (bootstrap : @& Cap) : IO Listener`
    /// — every accepted connection gets `bootstrap`; blocks until bound.
    fn capnp_lean_kj_listen(rt: Borrowed, address: Borrowed, bootstrap: Borrowed) {
        // SAFETY: borrowed arguments.
        unsafe { listen(runtime_of(rt)?, &text(address)?, bootstrap, &ConnectionOptions::default()) }
    }

    /// `Runtime.listenUnpacked (rt : @& Runtime) (address : @& String) (bootstrap : @& Cap)
    /// (nestingLimit : UInt32) (traversalLimitWords : UInt64) (flowLimitWords : UInt64)
    /// (deadPeerTimeoutMs : UInt32) (transport : UInt32) : IO Listener` — `listen` with limits
    /// applied to every accepted connection (each 0 = the default).
    fn capnp_lean_kj_listen_with_options(rt: Borrowed, address: Borrowed, bootstrap: Borrowed, nesting_limit: U32, traversal_limit_words: U64, flow_limit_words: U64, dead_peer_timeout_ms: U32, transport: U32) {
        let options = options(nesting_limit, traversal_limit_words, flow_limit_words, dead_peer_timeout_ms, transport)?;
        // SAFETY: borrowed arguments.
        unsafe { listen(runtime_of(rt)?, &text(address)?, bootstrap, &options) }
    }

    /// `Listener.address (l : @& Listener) : IO String` — the bound address.
    fn capnp_lean_kj_listener_address(listener: Borrowed) {
        // SAFETY: borrowed argument.
        let listener = unsafe { borrow(listener) };
        let state = expect(&classes().listener, &listener, "Listener")?;
        Ok(lean::mk_string(&state.handle.get("listener")?.address()))
    }

    /// `Cap.call (target : @& Cap) (interfaceId : UInt64) (methodId : UInt16)
    /// (segments : @& Array ByteArray) (caps : @& Array (Option Cap))
    /// (onDone : Except IO.Error Payload → BaseIO Unit) : IO Call` — starts a call; `onDone`
    /// runs once on the loop thread with the results or the error (also when cancelled).
    fn capnp_lean_kj_cap_call(target: Borrowed, interface_id: U64, method_id: U16, segs: Borrowed, caps: Borrowed, on_done: Owned) {
        // SAFETY: the arguments as declared, forwarded.
        unsafe { start_call(target, interface_id, method_id, segs, caps, on_done, None) }
    }

    /// `Cap.callWithTimeout (target : @& Cap) (interfaceId : UInt64) (methodId : UInt16)
    /// (segments : @& Array ByteArray) (caps : @& Array (Option Cap)) (timeoutMs : UInt64)
    /// (onDone : Except IO.Error Payload → BaseIO Unit) : IO Call` — like `Cap.call`; if no
    /// answer came `timeoutMs` after the call started (KJ's timer), the call is cancelled
    /// (Finish) and `onDone` receives `overloaded` `"timed out after <limit>"`.
    fn capnp_lean_kj_cap_call_timeout(target: Borrowed, interface_id: U64, method_id: U16, segs: Borrowed, caps: Borrowed, timeout_ms: U64, on_done: Owned) {
        // SAFETY: the arguments as declared, forwarded.
        unsafe { start_call(target, interface_id, method_id, segs, caps, on_done, Some(Duration::from_millis(timeout_ms))) }
    }

    /// `Call.pipeline (c : @& Call) (path : @& Array UInt16) : IO Cap` — the capability at
    /// pointer `path` of the future results, usable at once.
    fn capnp_lean_kj_call_pipeline(call: Borrowed, path: Borrowed) {
        // SAFETY: borrowed arguments.
        let (call, path) = unsafe { (borrow(call), borrow(path)) };
        let state = expect(&classes().call, &call, "Call")?;
        let cap = state.handle.get("call")?.pipeline(&u16_array(&path)?)?;
        Ok(wrap_cap(cap, state.runtime.clone()))
    }

    /// `Call.cancel (c : @& Call) : IO Unit` — drops the call now: Finish on the wire if still
    /// pending (its `onDone` then receives a "cancelled" error).
    fn capnp_lean_kj_call_cancel(call: Borrowed) {
        // SAFETY: borrowed argument.
        let call = unsafe { borrow(call) };
        drop(expect(&classes().call, &call, "Call")?.handle.take());
        unit()
    }

    /// `Cap.release (c : @& Cap) : IO Unit` — drops this handle now (Release on the wire when
    /// it was the last); the finalizer does the same otherwise.
    fn capnp_lean_kj_cap_release(cap: Borrowed) {
        // SAFETY: borrowed argument.
        let cap = unsafe { borrow(cap) };
        drop(expect(&classes().cap, &cap, "Cap")?.handle.take());
        unit()
    }

    /// `Cap.clone (c : @& Cap) : IO Cap` — a new handle to the same capability.
    fn capnp_lean_kj_cap_clone(cap: Borrowed) {
        // SAFETY: borrowed argument.
        let cap = unsafe { borrow(cap) };
        let state = expect(&classes().cap, &cap, "Cap")?;
        let copy = state.handle.get("capability")?.try_clone()?;
        Ok(wrap_cap(copy, state.runtime.clone()))
    }

    /// `Runtime.brokenCap (rt : @& Runtime) (kind : UInt32) (message : @& String) : IO Cap` — a
    /// capability whose every call fails with this error.
    fn capnp_lean_kj_cap_new_broken(rt: Borrowed, kind: U32, message: Borrowed) {
        // SAFETY: borrowed arguments.
        let (runtime, message) = unsafe { (runtime_of(rt)?, text(message)?) };
        let cap = runtime.new_broken(kind_from_u32(kind), &message)?;
        Ok(wrap_cap(cap, runtime))
    }

    /// `Runtime.promiseCap (rt : @& Runtime) : IO (Cap × Resolver)` — a promise capability and
    /// its resolver.
    fn capnp_lean_kj_promise_cap_new(rt: Borrowed) {
        // SAFETY: borrowed argument.
        let runtime = unsafe { runtime_of(rt) }?;
        let (cap, resolver) = runtime.new_promise_cap()?;
        Ok(structure([wrap_cap(cap, runtime.clone()), wrap_resolver(resolver, runtime)]))
    }

    /// `Resolver.fulfill (r : @& Resolver) (cap : @& Cap) : IO Unit` — Resolve on the wire.
    fn capnp_lean_kj_resolver_fulfill(resolver: Borrowed, cap: Borrowed) {
        // SAFETY: borrowed arguments.
        let (resolver, cap) = unsafe { (borrow(resolver), borrow(cap)) };
        let state = expect(&classes().resolver, &resolver, "Resolver")?;
        let target = expect(&classes().cap, &cap, "Cap")?.handle.get("capability")?;
        let handle = state.handle.lock().unwrap_or_else(|p| p.into_inner()).take();
        handle.ok_or_else(|| GlueError::failed("this resolver was already used"))?.fulfill(&target)?;
        unit()
    }

    /// `Resolver.reject (r : @& Resolver) (kind : UInt32) (message : @& String) : IO Unit`.
    fn capnp_lean_kj_resolver_reject(resolver: Borrowed, kind: U32, message: Borrowed) {
        // SAFETY: borrowed arguments.
        let (resolver, message) = unsafe { (borrow(resolver), text(message)?) };
        let state = expect(&classes().resolver, &resolver, "Resolver")?;
        let handle = state.handle.lock().unwrap_or_else(|p| p.into_inner()).take();
        let error = Error::new(kind_from_u32(kind), message);
        handle.ok_or_else(|| GlueError::failed("this resolver was already used"))?.reject(&error)?;
        unit()
    }

    /// `Runtime.serve (rt : @& Runtime) (handler : UInt64 → UInt16 → ServerCall → BaseIO Unit)
    /// : IO Cap` — a capability whose calls run `handler` on the loop thread; the handler
    /// answers the `ServerCall` then or later, from any thread.
    fn capnp_lean_kj_serve(rt: Borrowed, handler: Owned) {
        // SAFETY: borrowed runtime, owned closure.
        let (runtime, handler) = unsafe { (runtime_of(rt)?, own(handler)) };
        let cap = runtime.new_server(Box::new(LeanServer::new(handler, runtime.clone())))?;
        Ok(wrap_cap(cap, runtime))
    }

    /// `ServerCall.params (c : @& ServerCall) : IO Payload` — the params (each capability a new
    /// `Cap`).
    fn capnp_lean_kj_server_call_params(call: Borrowed) {
        // SAFETY: borrowed argument.
        let call = unsafe { borrow(call) };
        let state = expect(&classes().server_call, &call, "ServerCall")?;
        let guard = state.handle.lock().unwrap_or_else(|p| p.into_inner());
        let handle = guard.as_ref().ok_or_else(|| GlueError::failed("this server call was already answered"))?;
        // Read in place (the guard keeps the call unanswered, so the view valid) and copied once,
        // into the Lean `ByteArray`s.
        let view = handle.params_view()?;
        let caps = (0..view.cap_count)
            .map(|i| handle.param_cap(u32::try_from(i).expect("capability tables are small")))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(crate::convert::payload(&view.segments, caps, &state.runtime))
    }

    /// `ServerCall.return (c : @& ServerCall) (segments : @& Array ByteArray)
    /// (caps : @& Array (Option Cap)) : IO Unit` — answers with these results.
    fn capnp_lean_kj_server_call_return(call: Borrowed, segs: Borrowed, caps: Borrowed) {
        // SAFETY: borrowed arguments.
        let (call, segs, caps) = unsafe { (borrow(call), borrow(segs), borrow(caps)) };
        let state = expect(&classes().server_call, &call, "ServerCall")?;
        let segments = segments(&segs)?;
        let table = cap_table(&caps)?;
        let handle = state.handle.lock().unwrap_or_else(|p| p.into_inner()).take();
        let handle = handle.ok_or_else(|| GlueError::failed("this server call was already answered"))?;
        with_message(&segments, &table, |results| handle.respond(results))?;
        unit()
    }

    /// `ServerCall.fail (c : @& ServerCall) (kind : UInt32) (message : @& String) : IO Unit` —
    /// answers with an error.
    fn capnp_lean_kj_server_call_fail(call: Borrowed, kind: U32, message: Borrowed) {
        // SAFETY: borrowed arguments.
        let (call, message) = unsafe { (borrow(call), text(message)?) };
        let state = expect(&classes().server_call, &call, "ServerCall")?;
        let handle = state.handle.lock().unwrap_or_else(|p| p.into_inner()).take();
        let handle = handle.ok_or_else(|| GlueError::failed("this server call was already answered"))?;
        handle.fail(&Error::new(kind_from_u32(kind), message))?;
        unit()
    }
}
