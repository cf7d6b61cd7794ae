//! The Lean glue: one `#[no_mangle] extern "C"` function per `@[extern]` declaration of
//! `Capnp.Rpc.Kj` (lean-rpc), implemented over the C ABI handle wrappers of the `capnp-lean`
//! crate (the same ones its safe API uses, reached through its hidden `__glue` module).
//!
//! Built as `libcapnp_lean_glue.a` (this crate is also a `staticlib`): the externs, the C++ shim
//! over KJ they call and the Rust code in between, as one static library for Lake to link; see
//! `docs/lean-kj.md` for the build and link lines. Inside a Lean program the glue finds the Lean
//! runtime in the process itself (the program must export its `lean_*` symbols: link it with
//! `-rdynamic`).
//!
//! What it hides: the Lean 4.35 object model at the boundary (borrowed `@&` and owned
//! arguments, unboxed `UInt64`/`UInt16`/`UInt32`, one-field IO results without a world
//! argument, closures applied with a world token), the KJ loop thread (attached to the Lean
//! runtime before any Lean code runs on it) and panics (caught; they become IO errors).
//!
//! What it promises:
//! - every extern returns an IO result; failures are `IO.userError` whose text starts with
//!   `[capnp:<kind>] ` (`failed`, `overloaded`, `disconnected`, `unimplemented`), which
//!   `Capnp.Rpc.RpcError.ofIOError` (in `Capnp/Rpc/Kj.lean`) parses back into an `RpcError`;
//! - capability, call, server-call, resolver, connection, listener and runtime handles are
//!   Lean `External` objects; their finalizers release the handle (for a capability: Release on
//!   the wire once no other handle refers to it). Explicit release externs exist for
//!   deterministic timing; afterwards the object only answers "released";
//! - Lean closures handed to the glue (call completions, server handlers, disconnect watchers)
//!   are marked multi-threaded, run on the loop thread, and are applied exactly once per event;
//! - Rust servers (capnpc-rust generated `Server` impls) can be handed to Lean as `Kj.Cap`
//!   objects ([`serve`]); their panics fail only their own calls.
//!
//! The contract with the Lean side is checked by `tests/glue_externs.rs` (in this crate), which
//! compares [`externs`] with the `@[extern]` declarations in the Lean sources.

mod callbacks;
#[allow(unsafe_code)]
mod convert;
#[allow(unsafe_code)]
mod externs;
mod host;
mod objects;

pub use externs::*;
pub use host::{cap_client, runtime_object, runtime_ref, serve};
pub use objects::{live_objects, LiveObjects};

use capnp_lean::ErrorKind;
use capnp_lean_leanrt::{self as lean, abi::LeanObject, IoResult, LeanRuntime, Obj};

/// How one parameter of an extern is passed, in the terms of Lean's C calling convention.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ParamKind {
    /// A borrowed object (`@&` in Lean): the callee does not release it.
    Borrowed,
    /// An owned object: the callee consumes the reference.
    Owned,
    /// `UInt64`, passed unboxed as `uint64_t`.
    U64,
    /// `UInt32`, passed unboxed as `uint32_t`.
    U32,
    /// `UInt16`, passed unboxed as `uint16_t`.
    U16,
}

/// One exported extern: its symbol, parameter kinds and address (which also keeps the function
/// linked into every binary that asks for the table).
#[derive(Clone, Debug)]
pub struct ExternSignature {
    /// The C symbol, as written in `@[extern "…"]`.
    pub symbol: &'static str,
    /// Parameter kinds in order (no world argument: Lean 4.35 erased it).
    pub params: Vec<ParamKind>,
    /// The function's address.
    pub address: usize,
}

/// The C type of a parameter kind.
macro_rules! lean_param {
    (Borrowed) => { *mut LeanObject };
    (Owned) => { *mut LeanObject };
    (U64) => { u64 };
    (U32) => { u32 };
    (U16) => { u16 };
}

/// Declares the externs: each becomes a `#[no_mangle] pub unsafe extern "C"` function returning
/// an IO result (body errors and panics included), and an entry of [`externs`].
macro_rules! lean_externs {
    ($(
        $(#[$doc:meta])*
        fn $name:ident($($arg:ident : $kind:ident),* $(,)?) $body:block
    )*) => {
        $(
            $(#[$doc])*
            ///
            /// # Safety
            /// Called by compiled Lean code (or a test standing in for it) with arguments of the
            /// declared kinds: live objects of the declared Lean types, owned ones consumed.
            #[no_mangle]
            pub unsafe extern "C" fn $name($($arg: $crate::lean_param!($kind)),*) -> *mut LeanObject {
                $crate::io_entry(stringify!($name), move || $body)
            }
        )*

        /// Every extern the glue exports, in declaration order.
        pub fn externs() -> Vec<$crate::ExternSignature> {
            vec![$(
                $crate::ExternSignature {
                    symbol: stringify!($name),
                    params: vec![$($crate::ParamKind::$kind),*],
                    address: $name as *const () as usize,
                },
            )*]
        }
    };
}
pub(crate) use {lean_externs, lean_param};

/// An error as the glue reports it to Lean: an RPC kind and a message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GlueError {
    /// The RPC error kind.
    pub kind: ErrorKind,
    /// The message.
    pub message: String,
}

impl GlueError {
    /// A `failed` error.
    pub fn failed(message: impl Into<String>) -> Self {
        Self { kind: ErrorKind::Failed, message: message.into() }
    }

    /// The `IO.userError` text: `[capnp:<kind>] <message>`.
    pub fn to_lean_text(&self) -> String {
        format!("[capnp:{}] {}", kind_name(self.kind), self.message)
    }

    /// Parses a text made by [`GlueError::to_lean_text`].
    pub fn from_lean_text(text: &str) -> Option<Self> {
        let rest = text.strip_prefix("[capnp:")?;
        let (kind, message) = rest.split_once("] ")?;
        let kind = match kind {
            "failed" => ErrorKind::Failed,
            "overloaded" => ErrorKind::Overloaded,
            "disconnected" => ErrorKind::Disconnected,
            "unimplemented" => ErrorKind::Unimplemented,
            _ => return None,
        };
        Some(Self { kind, message: message.to_string() })
    }

    /// The `IO.Error` object.
    pub(crate) fn to_io_error(&self) -> Obj {
        lean::mk_user_error(&self.to_lean_text())
    }
}

impl From<capnp_lean::Error> for GlueError {
    fn from(e: capnp_lean::Error) -> Self {
        Self { kind: e.kind(), message: e.message() }
    }
}

/// The stable lowercase name of a kind, as used in error texts and in Lean's `ErrorKind`.
pub fn kind_name(kind: ErrorKind) -> &'static str {
    match kind {
        ErrorKind::Failed => "failed",
        ErrorKind::Overloaded => "overloaded",
        ErrorKind::Disconnected => "disconnected",
        ErrorKind::Unimplemented => "unimplemented",
    }
}

/// The kind for the C ABI's numbering (0 failed, 1 overloaded, 2 disconnected, 3 unimplemented),
/// which `Capnp.Rpc.Kj` also uses; anything else is `failed`.
pub(crate) fn kind_from_u32(kind: u32) -> ErrorKind {
    match kind {
        1 => ErrorKind::Overloaded,
        2 => ErrorKind::Disconnected,
        3 => ErrorKind::Unimplemented,
        _ => ErrorKind::Failed,
    }
}

/// The installed Lean runtime, or the one in this process (the glue linked into a Lean program).
pub(crate) fn lean_runtime() -> &'static LeanRuntime {
    match LeanRuntime::get() {
        Some(rt) => rt,
        None => LeanRuntime::from_process().expect("the glue runs inside a process with the Lean 4.35 runtime"),
    }
}

/// Runs an extern body: its value becomes an ok IO result, its error or a panic an IO error.
/// Every extern goes through it; public so tests can prove panic containment with the Lean
/// runtime (and its bundled unwinder) loaded.
pub fn io_entry(name: &str, body: impl FnOnce() -> Result<Obj, GlueError>) -> *mut LeanObject {
    lean_runtime();
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(body));
    let result = match outcome {
        Ok(Ok(value)) => IoResult::ok(value),
        Ok(Err(e)) => IoResult::error(e.to_io_error()),
        Err(panic) => {
            let what = panic_text(panic.as_ref());
            IoResult::error(GlueError::failed(format!("panic in {name}: {what}")).to_io_error())
        }
    };
    result.into_raw()
}

/// The message of a caught panic.
pub(crate) fn panic_text(panic: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = panic.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = panic.downcast_ref::<String>() {
        s.clone()
    } else {
        "unknown panic".to_string()
    }
}
