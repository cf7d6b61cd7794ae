//! Lean values ⇄ C ABI values: borrowed arguments, messages (`Array ByteArray` segments and a
//! capability table), `Payload`, `Except`, `Option`, and Lean objects that travel to the loop
//! thread.
//!
//! Layouts used here (Lean 4.35): a structure is constructor 0 with its object fields in order;
//! `Except.error` is constructor 0 and `Except.ok` constructor 1, each with one field;
//! `Option.none` is `box(0)` and `Option.some` constructor 1 with one field; `UInt16` inside an
//! `Array` is boxed (`box(n)`); a `Nat` below 2^63 is `box(n)`.

use std::mem::ManuallyDrop;
use std::sync::Arc;

use crate::objects::{classes, wrap_cap};
use crate::{lean_runtime, GlueError};
use capnp_lean::__glue::{CapHandle, OutMessage, RuntimeHandle};
use capnp_lean_leanrt::{self as lean, abi::LeanObject, alloc_ctor, Obj, ThreadAttachment};

/// A borrowed (`@&`) argument viewed as an [`Obj`] that is never released.
///
/// # Safety
/// `ptr` is a live Lean object or boxed scalar that outlives the returned value.
pub(crate) unsafe fn borrow(ptr: *mut LeanObject) -> ManuallyDrop<Obj> {
    // SAFETY: forwarded; ManuallyDrop keeps us from releasing the caller's reference.
    ManuallyDrop::new(unsafe { Obj::from_raw(ptr) })
}

/// An owned argument.
///
/// # Safety
/// `ptr` is a live Lean object whose reference the caller handed over.
pub(crate) unsafe fn own(ptr: *mut LeanObject) -> Obj {
    // SAFETY: forwarded.
    unsafe { Obj::from_raw(ptr) }
}

/// The bytes of each `ByteArray` of an `Array ByteArray`, borrowed from it. A `ByteArray`'s
/// data starts 24 bytes into an 8-aligned object, so it is 8-aligned as the ABI requires.
pub(crate) fn segments(array: &Obj) -> Result<Vec<&[u8]>, GlueError> {
    expect_array(array, "Array ByteArray")?;
    let mut out = Vec::with_capacity(lean::array_len(array));
    for i in 0..lean::array_len(array) {
        let element = array_element(array, i);
        let ok = element.header().is_some_and(|h| h.tag == lean::abi::SCALAR_ARRAY && h.other == 1);
        if !ok {
            return Err(GlueError::failed(format!("segment {i} is not a ByteArray")));
        }
        let bytes = lean::byte_array_bytes(&element);
        if bytes.len() & 7 != 0 {
            return Err(GlueError::failed(format!("segment {i} has {} bytes, not a multiple of 8", bytes.len())));
        }
        // SAFETY: the element is owned by `array`, which outlives the returned slices.
        out.push(unsafe { std::slice::from_raw_parts(bytes.as_ptr(), bytes.len()) });
    }
    Ok(out)
}

/// Element `i` of an array, borrowed from it.
fn array_element(array: &Obj, i: usize) -> ManuallyDrop<Obj> {
    let data = array.as_ptr() as *mut u8;
    // SAFETY: `i` is in bounds (callers loop below `array_len`); elements live while `array` does.
    unsafe {
        let slots = data.add(std::mem::size_of::<lean::abi::LeanArrayObject>()) as *mut *mut LeanObject;
        borrow(*slots.add(i))
    }
}

fn expect_array(o: &Obj, what: &str) -> Result<(), GlueError> {
    match o.header() {
        Some(h) if h.tag == lean::abi::ARRAY => Ok(()),
        _ => Err(GlueError::failed(format!("expected an {what}"))),
    }
}

/// The capability handles of an `Array (Option Cap)` (`none` = null capability), shared so
/// that they stay alive while a message refers to them.
pub(crate) fn cap_table(array: &Obj) -> Result<Vec<Option<Arc<CapHandle>>>, GlueError> {
    expect_array(array, "Array (Option Cap)")?;
    (0..lean::array_len(array))
        .map(|i| {
            let element = array_element(array, i);
            if element.is_scalar() {
                return Ok(None);
            }
            if element.tag() != 1 || element.ctor_num_objs() != 1 {
                return Err(GlueError::failed(format!("capability {i} is not an Option Cap")));
            }
            // SAFETY: the field of `some` lives as long as the element.
            let cap = unsafe { borrow(element.ctor_get(0)) };
            let state = crate::objects::expect(&classes().cap, &cap, "Cap")?;
            state.handle.get("capability").map(Some)
        })
        .collect()
}

/// Runs `f` with the message made of `segments` and `caps`.
pub(crate) fn with_message<R>(segments: &[&[u8]], caps: &[Option<Arc<CapHandle>>], f: impl FnOnce(&OutMessage<'_>) -> R) -> R {
    let cap_refs: Vec<Option<&CapHandle>> = caps.iter().map(|c| c.as_deref()).collect();
    f(&OutMessage { segments, caps: &cap_refs })
}

/// `Capnp.Rpc.Kj.Payload`: `{ segments : Array ByteArray, caps : Array Cap }`.
pub(crate) fn payload(segments: &[&[u8]], caps: Vec<CapHandle>, runtime: &Arc<RuntimeHandle>) -> Obj {
    let segments = lean::mk_array_from(segments.iter().map(|s| lean::mk_byte_array(s)));
    let caps = lean::mk_array_from(caps.into_iter().map(|c| wrap_cap(c, runtime.clone())));
    structure([segments, caps])
}

/// A structure (constructor 0) with these object fields.
pub(crate) fn structure<const N: usize>(fields: [Obj; N]) -> Obj {
    let mut o = alloc_ctor(0, u8::try_from(N).expect("few fields"), 0);
    for (i, f) in fields.into_iter().enumerate() {
        o.ctor_set(i, f);
    }
    o
}

/// `Except IO.Error α`.
pub(crate) fn except(result: Result<Obj, GlueError>) -> Obj {
    let (tag, value) = match result {
        Err(e) => (0, e.to_io_error()),
        Ok(v) => (1, v),
    };
    let mut o = alloc_ctor(tag, 1, 0);
    o.ctor_set(0, value);
    o
}

/// The `UInt16`s of an `Array UInt16` (boxed elements).
pub(crate) fn u16_array(array: &Obj) -> Result<Vec<u16>, GlueError> {
    expect_array(array, "Array UInt16")?;
    (0..lean::array_len(array))
        .map(|i| {
            let v = array_element(array, i).unbox().ok_or_else(|| GlueError::failed("expected a boxed UInt16"))?;
            u16::try_from(v).map_err(|_| GlueError::failed(format!("{v} is not a UInt16")))
        })
        .collect()
}

/// A Lean object made safe to share with the loop thread: marked multi-threaded (atomic
/// reference counts) before it leaves the thread that created it.
pub(crate) struct SharedObj(Obj);

// SAFETY: the object (and everything reachable from it) is marked multi-threaded in `new`, so
// its reference count is updated atomically from any thread; Lean closures and values are
// immutable once shared.
unsafe impl Send for SharedObj {}
// SAFETY: as above; `&SharedObj` only clones (atomic increment) the object.
unsafe impl Sync for SharedObj {}

impl SharedObj {
    pub(crate) fn new(o: Obj) -> Self {
        o.mark_mt();
        Self(o)
    }

    /// A new reference.
    pub(crate) fn get(&self) -> Obj {
        self.0.clone()
    }

    pub(crate) fn into_inner(self) -> Obj {
        self.0
    }
}

/// `box(0)`: the world token closures of `BaseIO`/`IO` type still take as their last argument
/// (the runtime's own `asTask`/`mapTask` apply them the same way).
pub(crate) fn world() -> Obj {
    Obj::boxed(0)
}

thread_local! {
    static LOOP_ATTACHMENT: std::cell::RefCell<Option<ThreadAttachment>> = const { std::cell::RefCell::new(None) };
}

/// Runs `f` on the loop thread with that thread registered with the Lean runtime. The first
/// call on a loop thread attaches it for the rest of its life (detached when it exits), so
/// Lean handlers may allocate, free and run finalizers there.
pub(crate) fn on_loop_thread<R>(f: impl FnOnce() -> R) -> R {
    LOOP_ATTACHMENT.with(|a| {
        let mut slot = a.borrow_mut();
        if slot.is_none() {
            *slot = Some(lean_runtime().attach_current_thread());
        }
    });
    f()
}
