//! The Lean closures of `Capnp.Worker.Sinks` (lean-rpc/Capnp/Worker.lean), implemented in Rust.
//!
//! The structure, as compiled Lean lays it out (constructor 0, four object fields):
//! ```lean
//! structure Sinks where
//!   row        : ByteArray → IO Unit
//!   progress   : UInt64 → UInt64 → String → IO Unit
//!   diagnostic : UInt8 → String → String → String → UInt32 → UInt32 → IO Unit
//!   cancelled  : IO Bool
//! ```
//! Each closure fixes one argument, the boxed command id, and is applied the way compiled Lean
//! applies an `IO` value: its explicit arguments, boxed (a `UInt64` as `lean_box_uint64`), then
//! the world token. Every argument is owned. The result is an IO result; an error is
//! `IO.userError "[capnp:<kind>] <reason>"`, as the KJ backend's errors are.

use std::ffi::c_void;

use capnp_lean_leanrt::{self as lean, abi::LeanObject, IoResult, Obj};

use crate::child::sinks::{self, Diagnostic, Emitted};

/// Builds the `Sinks` structure for command `id`, marked for use from any thread (a command may
/// hand its sinks to tasks).
pub(crate) fn make_sinks(id: u64) -> Obj {
    let fixed = || vec![Obj::boxed(id as usize)];
    // SAFETY: each function below takes exactly `arity` owned object arguments (the fixed id,
    // the explicit arguments, the world) and returns an owned object.
    let fields = unsafe {
        [
            lean::alloc_closure(row as *const c_void, 3, fixed()),
            lean::alloc_closure(progress as *const c_void, 5, fixed()),
            lean::alloc_closure(diagnostic as *const c_void, 8, fixed()),
            lean::alloc_closure(cancelled as *const c_void, 2, fixed()),
        ]
    };
    let mut structure = lean::alloc_ctor(0, 4, 0);
    for (i, field) in fields.into_iter().enumerate() {
        structure.ctor_set(i, field);
    }
    structure.mark_mt();
    structure
}

fn io_unit(result: Result<(), String>) -> *mut LeanObject {
    match result {
        Ok(()) => IoResult::ok(Obj::boxed(0)).into_raw(),
        Err(reason) => IoResult::user_error(&reason).into_raw(),
    }
}

/// Takes over an owned argument.
///
/// # Safety
/// `o` is an owned reference passed by Lean.
unsafe fn owned(o: *mut LeanObject) -> Obj {
    // SAFETY: the caller hands over the reference.
    unsafe { Obj::from_raw(o) }
}

fn command_id(o: *mut LeanObject) -> u64 {
    // The id is a scalar box: no reference to take over.
    lean::abi::unbox(o) as u64
}

extern "C" fn row(id: *mut LeanObject, bytes: *mut LeanObject, world: *mut LeanObject) -> *mut LeanObject {
    // SAFETY: Lean hands over its references to the arguments.
    let (bytes, _world) = unsafe { (owned(bytes), owned(world)) };
    let row = lean::byte_array_bytes(&bytes).to_vec();
    io_unit(sinks::with_sinks(command_id(id), |s| s.row(row)))
}

extern "C" fn progress(
    id: *mut LeanObject,
    done: *mut LeanObject,
    total: *mut LeanObject,
    label: *mut LeanObject,
    world: *mut LeanObject,
) -> *mut LeanObject {
    // SAFETY: Lean hands over its references to the arguments.
    let (done, total, label, _world) = unsafe { (owned(done), owned(total), owned(label), owned(world)) };
    let event = Emitted::Progress { done: lean::unbox_u64(&done), total: lean::unbox_u64(&total), label: sinks::text(&label) };
    io_unit(sinks::with_sinks(command_id(id), |s| s.event(event)))
}

#[allow(clippy::too_many_arguments)]
extern "C" fn diagnostic(
    id: *mut LeanObject,
    severity: *mut LeanObject,
    code: *mut LeanObject,
    message: *mut LeanObject,
    file: *mut LeanObject,
    line: *mut LeanObject,
    column: *mut LeanObject,
    world: *mut LeanObject,
) -> *mut LeanObject {
    // SAFETY: Lean hands over its references to the arguments; UInt8 and UInt32 arrive as
    // scalar boxes.
    let (code, message, file, _world) = unsafe { (owned(code), owned(message), owned(file), owned(world)) };
    let file = sinks::text(&file);
    let position = (!file.is_empty()).then(|| (file, lean::abi::unbox(line) as u32, lean::abi::unbox(column) as u32));
    let event = Emitted::Diagnostic(Diagnostic {
        severity: sinks::severity(lean::abi::unbox(severity)),
        code: sinks::text(&code),
        message: sinks::text(&message),
        position,
    });
    io_unit(sinks::with_sinks(command_id(id), |s| s.event(event)))
}

extern "C" fn cancelled(id: *mut LeanObject, world: *mut LeanObject) -> *mut LeanObject {
    // SAFETY: Lean hands over its reference to the world token.
    let _world = unsafe { owned(world) };
    // A finished command's sinks answer true: nothing it does reaches its caller any more.
    let cancelled = sinks::with_sinks(command_id(id), |s| Ok(s.is_cancelled())).unwrap_or(true);
    IoResult::ok(Obj::boxed(cancelled as usize)).into_raw()
}
