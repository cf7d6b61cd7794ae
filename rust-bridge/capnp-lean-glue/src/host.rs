//! Rust-hosted capabilities for Lean code in the same process: a capnpc-rust generated
//! `Server` implementation becomes a `Capnp.Rpc.Kj.Cap` that Lean calls like any other (through
//! `Cap.call`, or a generated typed client after `Context.register`).
//!
//! The server runs on the Lean runtime's KJ loop thread, exactly as [`capnp_lean::RuntimeRef::serve`]
//! runs it; calls from Lean never leave the process. A method that panics fails only its own
//! call: Lean's `onDone` receives `failed` `"panic in a server method: <panic message>"`.

use crate::objects::{classes, expect, wrap_cap, wrap_runtime_shared};
use crate::GlueError;
use capnp_lean_leanrt::Obj;
use capnp_lean::RuntimeRef;
use capnp::capability::FromServer;

/// The runtime behind a `Capnp.Rpc.Kj.Runtime` object, as a [`RuntimeRef`] for Rust code: to
/// host servers, sleep on KJ's timer, or run futures on its loop thread. It keeps the runtime's
/// handle alive but not the runtime running (`Runtime.shutdown` still stops it).
pub fn runtime_ref(runtime: &Obj) -> Result<RuntimeRef, GlueError> {
    let state = expect(&classes().runtime, runtime, "Runtime")?;
    Ok(capnp_lean::__glue::runtime_ref(state.handle.clone()))
}

/// Hosts `server` (a capnpc-rust generated `Server` implementation of interface `C`) on the
/// runtime of the Lean object `runtime` (a `Capnp.Rpc.Kj.Runtime`) and returns a new
/// `Capnp.Rpc.Kj.Cap` object for Lean, owned by the caller. Hand it to Lean code (an
/// `@[export]`ed Lean function, or the result of a Lean `@[extern]` implemented in Rust); the
/// last Lean reference dropped releases the capability.
///
/// ```no_run
/// use capnp_schemas::calculator_capnp::calculator::value;
///
/// struct Constant(f64);
///
/// impl value::Server for Constant {
///     async fn read(self: capnp::capability::Rc<Self>, _: value::ReadParams, mut results: value::ReadResults) -> Result<(), capnp::Error> {
///         results.get().set_value(self.0);
///         Ok(())
///     }
/// }
///
/// # fn demo(runtime: &capnp_lean_leanrt::Obj) -> Result<(), capnp_lean_glue::GlueError> {
/// // `runtime` is a `Capnp.Rpc.Kj.Runtime` from Lean; `cap` a `Capnp.Rpc.Kj.Cap` to hand back.
/// let cap = capnp_lean_glue::serve::<value::Client, _>(runtime, Constant(2.5))?;
/// # drop(cap); Ok(()) }
/// ```
///
/// Methods run on the loop thread and must not block. A method that panics answers its call
/// with `failed` `"panic in a server method: <message>"`; the server stays usable.
pub fn serve<C, S>(runtime: &Obj, server: S) -> Result<Obj, GlueError>
where
    C: FromServer<S>,
    S: Send + 'static,
{
    let state = expect(&classes().runtime, runtime, "Runtime")?;
    let handle = capnp_lean::__glue::serve_handle::<C, S>(&capnp_lean::__glue::runtime_ref(state.handle.clone()), server)?;
    Ok(wrap_cap(handle, state.handle.clone()))
}

/// A `Capnp.Rpc.Kj.Runtime` object for Lean over a runtime Rust created (e.g. the one a worker
/// child serves its parent on), so a Lean capability can host servers on it. The object keeps
/// the runtime's handle alive; the Rust [`capnp_lean::Runtime`] still decides when it stops.
pub fn runtime_object(runtime: &RuntimeRef) -> Obj {
    wrap_runtime_shared(capnp_lean::__glue::runtime_handle(runtime))
}

/// The capability behind a `Capnp.Rpc.Kj.Cap` object (e.g. a Lean-hosted server) as a
/// capnp-rust client, to serve it to a peer or call it from Rust. Takes a new reference; the
/// Lean object stays valid.
pub fn cap_client(cap: &Obj) -> Result<capnp::capability::Client, GlueError> {
    let state = expect(&classes().cap, cap, "Cap")?;
    let handle = state.handle.get("Cap")?.try_clone()?;
    Ok(capnp_lean::__glue::client(handle))
}

