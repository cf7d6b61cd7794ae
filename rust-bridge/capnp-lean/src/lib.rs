//! capnp-lean: Cap'n Proto RPC for Rust (and, through the glue, Lean) over KJ's battle-tested
//! C++ implementation (`RpcSystem` + `TwoPartyVatNetwork`), reached through one versioned C ABI.
//!
//! Clients and servers are the ones capnpc-rust generates: a bootstrap capability comes back as
//! `foo::Client`, calls are `client.bar_request()` … `.send().promise.await`, pipelining is
//! `.pipeline.get_baz()`, and servers implement `foo::Server` and are hosted with
//! [`RuntimeRef::serve`]. Underneath, every call runs through KJ on the runtime's loop thread.
//!
//! ```no_run
//! # async fn demo() -> Result<(), capnp_lean::Error> {
//! let runtime = capnp_lean::Runtime::new()?;
//! let connection = runtime.connect("127.0.0.1:4000").await?;
//! let root: capnp::capability::Client = connection.bootstrap()?;
//! # let _ = root; Ok(()) }
//! ```
//!
//! Methods declared `-> stream` get KJ's flow control: the generated streaming request's
//! `send()` resolves when KJ admits the next call (the connection's window has room), and a
//! hosted server receives a stream's items one at a time; [`StreamSink`] wraps such a method as a
//! `futures::Sink`. See `docs/c-abi.md` ("Streaming calls").
//!
//! Threads: every type here may be used from any thread except where noted; generated
//! clients are `!Send` (they are capnp-rust's types), so keep each on one thread or move the
//! [`Connection`]/[`Runtime`] instead. Server methods run on the loop thread and must not block.

mod error;
mod executor;
mod ffi;
mod hooks;
mod runtime;
mod server;
mod stream;

pub use error::{Error, ErrorKind};
pub use stream::StreamSink;
pub use runtime::{block_on, Connection, ConnectionOptions, Listener, Resolver, Runtime, RuntimeRef, Side, Stats, Transport};

/// The C ABI version this crate was built against (also checked at run time by [`abi_version`]).
pub const ABI_VERSION: u32 = capnp_lean_sys::CAPNP_LEAN_ABI_VERSION;

/// The ABI version reported by the linked C++ shim.
pub fn abi_version() -> u32 {
    #[allow(unsafe_code)]
    // SAFETY: a plain function without arguments.
    unsafe {
        capnp_lean_sys::capnp_lean_abi_version()
    }
}

/// Not part of the API, and without any stability promise: the owned ABI handle wrappers and
/// the hooks into the runtime that the Lean glue (the `capnp-lean-glue` crate) is built on.
///
/// The glue hosts Rust servers on runtimes that Lean code created and drives the same loop
/// thread as [`Runtime`], so it needs the very wrappers this crate uses; re-exporting them here
/// keeps one copy of every `unsafe` ABI call (in `ffi.rs`) instead of a second one in the glue.
/// Everything here is safe to call; misuse can only produce ABI errors, never undefined
/// behaviour. Other crates should use the public API above.
#[doc(hidden)]
pub mod __glue {
    use crate::{ConnectionOptions, Error, RuntimeRef};
    use capnp::capability::FromServer;
    use std::sync::Arc;

    pub use crate::executor::mark_loop_thread;
    pub use crate::ffi::{
        CallDoneViewing, CallHandle, CapHandle, CompletedCall, ConnectionHandle, HostServer, ListenerHandle, OutMessage,
        ResolverHandle, RuntimeHandle, ServerCallHandle,
    };

    /// A [`RuntimeRef`] for a runtime handle the glue created (`Kj.Runtime.new`).
    pub fn runtime_ref(handle: Arc<RuntimeHandle>) -> RuntimeRef {
        RuntimeRef::from_handle(handle)
    }

    /// The handle behind `runtime` (for wrapping a Rust-created runtime as a Lean object).
    pub fn runtime_handle(runtime: &RuntimeRef) -> Arc<RuntimeHandle> {
        runtime.handle_arc()
    }

    /// A capnp-rust client over a capability handle the glue holds (e.g. a Lean-hosted server).
    pub fn client(cap: CapHandle) -> capnp::capability::Client {
        capnp::capability::Client::new(Box::new(crate::hooks::BridgeClient::new(cap)))
    }

    /// Hosts `server` on `runtime` as a bare capability handle (the glue wraps it itself).
    pub fn serve_handle<C, S>(runtime: &RuntimeRef, server: S) -> Result<CapHandle, Error>
    where
        C: FromServer<S>,
        S: Send + 'static,
    {
        runtime.serve_handle::<C, S>(server)
    }

    /// The ABI's form of `options`.
    pub fn raw_options(options: ConnectionOptions) -> capnp_lean_sys::capnp_lean_connection_options {
        options.to_raw()
    }
}
