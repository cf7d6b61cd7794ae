//! A small, version-pinned Rust port of the parts of `lean.h` (Lean **4.35.0**) that the glue
//! and the loader need, with the runtime's entry points resolved at run time.
//!
//! What it hides: object layouts, reference counting (single-threaded, multi-threaded and
//! sticky counts), and *how* objects are allocated — always through the loaded runtime's own
//! allocator, exactly as the inline functions of that `lean.h` do, so the runtime can free what
//! Rust built and vice versa. What it promises: [`Obj`] owns one reference and releases it on
//! drop; every constructor here produces objects byte-compatible with compiled Lean code.
//!
//! Usage:
//! ```no_run
//! use capnp_lean_leanrt::{self as lean, LeanRuntime, InitMode};
//! let rt = LeanRuntime::open("/path/libleanshared.so".as_ref()).unwrap();
//! rt.initialize(InitMode::RuntimeModule).unwrap();
//! let s = lean::mk_string("hello");
//! assert_eq!(lean::string_str(&s), "hello");
//! ```
//!
//! Not ported (add with a runtime test when needed): thunks, tasks, promises, big numbers,
//! `ST.Ref`, float arrays.

#[allow(unsafe_code)]
pub mod abi;
#[allow(unsafe_code)]
mod closure;
#[allow(unsafe_code)]
mod external;
#[allow(unsafe_code)]
mod io;
#[allow(unsafe_code)]
mod lifecycle;
#[allow(unsafe_code)]
mod object;
#[allow(unsafe_code)]
mod runtime;
#[allow(unsafe_code)]
mod values;

pub use closure::{alloc_closure, apply, apply_array};
pub use external::ExternalClass;
pub use io::{io_error_to_string, mk_user_error, IoError, IoResult};
pub use object::{alloc_ctor, alloc_small_object, dec, inc, inc_ref_n, Obj};
pub use lifecycle::{InitMode, ThreadAttachment};
pub use runtime::{runtime, LeanRuntime, RuntimeError, RuntimeFns};
pub use values::{
    array_get, array_len, box_f64, box_u32, box_u64, byte_array_bytes, mk_array, mk_array_from, mk_byte_array, mk_string, string_len,
    string_str, unbox_f64, unbox_u64,
};
