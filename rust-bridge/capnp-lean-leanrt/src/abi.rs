//! Memory layouts and constants of Lean 4.35's object model, as declared in `lean.h` v4.35.0.
//! Only plain data lives here; anything that touches the runtime is in [`crate::runtime`].
//!
//! Every layout is pinned by a test against objects the real runtime allocated
//! (`tests/lean_runtime_port.rs`).

use std::ffi::c_void;

/// Object header. In C the second word is three bitfields (`m_cs_sz:16`, `m_other:8`,
/// `m_tag:8`) in one `unsigned`; on the little-endian targets Lean supports they occupy bytes
/// 4–5, 6 and 7, which is exactly this field order.
#[repr(C)]
#[derive(Debug)]
pub struct LeanObject {
    /// Reference count: `> 0` single-threaded, `< 0` shared between threads (counted
    /// downwards), `0` persistent (never counted, never freed).
    pub rc: i32,
    /// Allocation size of small objects (mimalloc builds keep it in the header).
    pub cs_sz: u16,
    /// Number of object fields of a constructor; element size of a scalar array.
    pub other: u8,
    /// Constructor index (`<= MAX_CTOR_TAG`) or one of the kind tags below.
    pub tag: u8,
}

/// Constructor object: header, then `other` object fields, then scalar fields.
#[repr(C)]
pub struct LeanCtorObject {
    /// Header.
    pub header: LeanObject,
    /// Object fields (flexible array member).
    pub objs: [*mut LeanObject; 0],
}

/// `Array α`.
#[repr(C)]
pub struct LeanArrayObject {
    /// Header (`tag == ARRAY`).
    pub header: LeanObject,
    /// Number of elements.
    pub size: usize,
    /// Allocated element slots.
    pub capacity: usize,
    /// Elements (flexible array member).
    pub data: [*mut LeanObject; 0],
}

/// `ByteArray`, `FloatArray` and other scalar arrays.
#[repr(C)]
pub struct LeanSArrayObject {
    /// Header (`tag == SCALAR_ARRAY`, `other` = element size).
    pub header: LeanObject,
    /// Number of elements.
    pub size: usize,
    /// Allocated elements.
    pub capacity: usize,
    /// Bytes (flexible array member).
    pub data: [u8; 0],
}

/// `String`: UTF-8 bytes plus a NUL terminator.
#[repr(C)]
pub struct LeanStringObject {
    /// Header (`tag == STRING`).
    pub header: LeanObject,
    /// Byte length including the NUL terminator.
    pub size: usize,
    /// Allocated bytes.
    pub capacity: usize,
    /// Length in code points.
    pub length: usize,
    /// Bytes (flexible array member).
    pub data: [u8; 0],
}

/// A closure: code pointer, arity, and the arguments fixed so far.
#[repr(C)]
pub struct LeanClosureObject {
    /// Header (`tag == CLOSURE`).
    pub header: LeanObject,
    /// The function; it takes `arity` boxed arguments.
    pub fun: *const c_void,
    /// Number of arguments the function expects.
    pub arity: u16,
    /// Number already fixed in `objs`.
    pub num_fixed: u16,
    /// Fixed arguments (flexible array member).
    pub objs: [*mut LeanObject; 0],
}

/// Finalizer of an external class: receives the external data pointer.
pub type ExternalFinalize = unsafe extern "C" fn(*mut c_void);
/// Visitor of an external class: calls the given Lean function on each object it holds.
pub type ExternalForeach = unsafe extern "C" fn(*mut c_void, *mut LeanObject);

/// An external class, registered once with the runtime and never freed.
#[repr(C)]
pub struct LeanExternalClass {
    /// Called when the object's count reaches zero.
    pub finalize: ExternalFinalize,
    /// Used by the runtime to visit objects held by the external data.
    pub foreach: ExternalForeach,
}

/// An external object: a class and an opaque pointer.
#[repr(C)]
pub struct LeanExternalObject {
    /// Header (`tag == EXTERNAL`).
    pub header: LeanObject,
    /// Its class.
    pub class: *mut LeanExternalClass,
    /// The host data.
    pub data: *mut c_void,
}

/// Largest constructor tag; larger tags name object kinds.
pub const MAX_CTOR_TAG: u8 = 243;
/// `Promise`.
pub const PROMISE: u8 = 244;
/// Closure.
pub const CLOSURE: u8 = 245;
/// `Array`.
pub const ARRAY: u8 = 246;
/// Struct array (unused by compiled code today).
pub const STRUCT_ARRAY: u8 = 247;
/// Scalar array (`ByteArray`, `FloatArray`).
pub const SCALAR_ARRAY: u8 = 248;
/// `String`.
pub const STRING: u8 = 249;
/// Big number (`Nat`/`Int` beyond the scalar range).
pub const MPZ: u8 = 250;
/// `Thunk`.
pub const THUNK: u8 = 251;
/// `Task`.
pub const TASK: u8 = 252;
/// `ST.Ref`.
pub const REF: u8 = 253;
/// External object.
pub const EXTERNAL: u8 = 254;

/// Most arguments a closure's function takes directly (`LEAN_CLOSURE_MAX_ARGS`).
pub const CLOSURE_MAX_ARGS: usize = 16;
/// Object sizes are multiples of this (`LEAN_OBJECT_SIZE_DELTA`).
pub const OBJECT_SIZE_DELTA: usize = 8;
/// Largest size mimalloc's small-object fast path accepts on 64-bit targets
/// (`MI_SMALL_SIZE_MAX` = 128 words).
pub const MI_SMALL_SIZE_MAX: usize = 128 * std::mem::size_of::<usize>();
/// Below this, counts are frozen even for increments (`LEAN_RC_STICKY`).
pub const RC_STICKY: i32 = i32::MIN + 0x1000_0000;
/// Largest increment applied inline (`LEAN_RC_INC_MAX`).
pub const RC_INC_MAX: usize = 0x10000;

/// Whether `o` is a boxed scalar rather than a pointer.
pub fn is_scalar(o: *const LeanObject) -> bool {
    (o as usize) & 1 == 1
}

/// Boxes a small natural number (`lean_box`).
pub fn box_usize(n: usize) -> *mut LeanObject {
    ((n << 1) | 1) as *mut LeanObject
}

/// Unboxes a scalar (`lean_unbox`).
pub fn unbox(o: *const LeanObject) -> usize {
    (o as usize) >> 1
}

/// Rounds `v` up to a multiple of `a` (`lean_align`).
pub fn align(v: usize, a: usize) -> usize {
    v.div_ceil(a) * a
}
