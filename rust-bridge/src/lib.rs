//! capnp-lean: Cap'n Proto RPC for Rust (and, through the glue, Lean) over KJ's battle-tested
//! C++ implementation (`RpcSystem` + `TwoPartyVatNetwork`), reached through one versioned C ABI.
//!
//! Clients and servers are the ones capnpc-rust generates: a bootstrap capability comes back as
//! `foo::Client`, calls are `client.bar_request()` … `.send().promise.await`, pipelining is
//! `.pipeline.get_baz()`, and servers implement `foo::Server` and are hosted with
//! [`Runtime::serve`]. Underneath, every call runs through KJ on the runtime's loop thread.
//!
//! ```no_run
//! # async fn demo() -> Result<(), capnp_lean::Error> {
//! let runtime = capnp_lean::Runtime::new()?;
//! let connection = runtime.connect("127.0.0.1:4000").await?;
//! let root: capnp::capability::Client = connection.bootstrap()?;
//! # let _ = root; Ok(()) }
//! ```
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

pub use error::{Error, ErrorKind};
pub use runtime::{block_on, Connection, ConnectionOptions, Listener, Resolver, Runtime, RuntimeRef, Side, Stats, Transport};

/// The C ABI version this crate was built against (also checked at run time by [`abi_version`]).
pub const ABI_VERSION: u32 = capnp_lean_ffi::CAPNP_LEAN_ABI_VERSION;

/// The ABI version reported by the linked C++ shim.
pub fn abi_version() -> u32 {
    #[allow(unsafe_code)]
    // SAFETY: a plain function without arguments.
    unsafe {
        capnp_lean_ffi::capnp_lean_abi_version()
    }
}

#[allow(unsafe_code)]
pub mod glue;
#[allow(unsafe_code)]
pub mod lean;
#[allow(unsafe_code)]
pub mod loader;
