//! Owned references and the inline parts of `lean.h` v4.35.0 that allocate, count references
//! and build constructors — ported so that every object is allocated by the runtime's own
//! allocator (`lean_alloc_small_object_core` / `mi_malloc` / `lean_alloc_object`) and can be
//! freed by it.

use std::ptr::NonNull;
use std::sync::atomic::{AtomicI32, Ordering};

use crate::abi::{self, LeanObject};
use crate::runtime::{runtime, LeanRuntime};

/// One owned reference to a Lean value (a pointer or a boxed scalar). Dropping it releases the
/// reference through the runtime (`lean_dec`). Not `Send`: single-threaded objects must be
/// marked with [`Obj::mark_mt`] before another thread may touch them, and the caller decides
/// how to move the raw pointer.
#[derive(Debug)]
pub struct Obj {
    ptr: NonNull<LeanObject>,
    _not_send: std::marker::PhantomData<*mut LeanObject>,
}

impl Obj {
    /// Takes ownership of one reference (a "standard" result of a Lean function).
    ///
    /// # Safety
    /// `ptr` is a boxed scalar or a live object whose reference the caller owns, and a runtime
    /// is installed (see [`LeanRuntime`]).
    pub unsafe fn from_raw(ptr: *mut LeanObject) -> Obj {
        Obj { ptr: NonNull::new(ptr).expect("Lean object pointers are never null"), _not_send: std::marker::PhantomData }
    }

    /// A new reference to a borrowed object (`lean_inc` then own).
    ///
    /// # Safety
    /// As for [`Obj::from_raw`], except that the caller keeps its own reference.
    pub unsafe fn from_borrowed(ptr: *mut LeanObject) -> Obj {
        // SAFETY: forwarded caller contract.
        unsafe {
            inc(ptr);
            Obj::from_raw(ptr)
        }
    }

    /// A boxed scalar (`lean_box`): `Nat` below 2^63, `Bool`, enum constructors, `Unit`.
    pub fn boxed(n: usize) -> Obj {
        Obj { ptr: NonNull::new(abi::box_usize(n)).expect("boxed values are odd"), _not_send: std::marker::PhantomData }
    }

    /// The pointer, still owned by `self` (a "borrowed" argument).
    pub fn as_ptr(&self) -> *mut LeanObject {
        self.ptr.as_ptr()
    }

    /// Gives up ownership (a "standard" argument, consumed by the callee).
    pub fn into_raw(self) -> *mut LeanObject {
        let p = self.ptr.as_ptr();
        std::mem::forget(self);
        p
    }

    /// Whether this is a boxed scalar.
    pub fn is_scalar(&self) -> bool {
        abi::is_scalar(self.as_ptr())
    }

    /// The scalar of a boxed value, `None` for pointers.
    pub fn unbox(&self) -> Option<usize> {
        self.is_scalar().then(|| abi::unbox(self.as_ptr()))
    }

    /// The header of a heap object.
    pub fn header(&self) -> Option<&LeanObject> {
        // SAFETY: non-scalar `Obj`s point at a live object for as long as `self` lives.
        (!self.is_scalar()).then(|| unsafe { &*self.as_ptr() })
    }

    /// Tag of a heap object, or the value of a boxed enum (`lean_obj_tag`).
    pub fn tag(&self) -> usize {
        self.header().map_or_else(|| abi::unbox(self.as_ptr()), |h| h.tag as usize)
    }

    /// Current reference count (0 for scalars and persistent objects).
    pub fn rc(&self) -> i32 {
        // SAFETY: reading the count of a live object.
        self.header().map_or(0, |_| unsafe { rc_cell(self.as_ptr()) }.load(Ordering::Relaxed))
    }

    /// Whether this is the only reference (`lean_is_exclusive`).
    pub fn is_exclusive(&self) -> bool {
        self.rc() == 1
    }

    /// Makes the object (and everything reachable from it) safe to share between threads
    /// (`lean_mark_mt`): its count becomes negative and is updated atomically.
    pub fn mark_mt(&self) {
        if !self.is_scalar() {
            // SAFETY: live object; the runtime walks and marks its children.
            unsafe { (runtime().fns().lean_mark_mt)(self.as_ptr()) }
        }
    }
}

impl Clone for Obj {
    fn clone(&self) -> Obj {
        // SAFETY: `self` keeps the object alive; we add one reference for the clone.
        unsafe { Obj::from_borrowed(self.as_ptr()) }
    }
}

impl Drop for Obj {
    fn drop(&mut self) {
        // SAFETY: we own exactly one reference.
        unsafe { dec(self.as_ptr()) }
    }
}

/// The reference count as an atomic cell; single-threaded updates use relaxed load/store, which
/// compile to the plain accesses `lean.h` performs.
///
/// # Safety
/// `o` is a live heap object.
unsafe fn rc_cell<'a>(o: *mut LeanObject) -> &'a AtomicI32 {
    // SAFETY: `rc` is the first, 4-aligned `int` of the header; AtomicI32 has the same layout.
    unsafe { &*(o as *const AtomicI32) }
}

/// `lean_inc_ref_n` including the multi-threaded (negative) and sticky cases.
///
/// # Safety
/// `o` is a live heap object (not a scalar).
pub unsafe fn inc_ref_n(o: *mut LeanObject, n: usize) {
    if n > abi::RC_INC_MAX {
        // SAFETY: forwarded contract; the runtime handles huge increments.
        return unsafe { (runtime().fns().lean_inc_ref_huge_n)(o, n) };
    }
    // SAFETY: live object.
    let rc = unsafe { rc_cell(o) };
    let current = rc.load(Ordering::Relaxed);
    if current > 0 {
        rc.store((current as u32).wrapping_add(n as u32) as i32, Ordering::Relaxed);
    } else if (current as u32) > (abi::RC_STICKY as u32) {
        // Shared object: counted downwards, atomically. Persistent (0) and sticky counts are
        // below this threshold when read as unsigned and are left alone.
        rc.fetch_sub(n as i32, Ordering::Relaxed);
    }
}

/// `lean_inc`: no-op on scalars.
///
/// # Safety
/// `o` is a scalar or a live object.
pub unsafe fn inc(o: *mut LeanObject) {
    if !abi::is_scalar(o) {
        // SAFETY: checked not scalar; forwarded contract.
        unsafe { inc_ref_n(o, 1) }
    }
}

/// `lean_dec`: fast path for counts above one, the runtime's `lean_dec_ref_cold` for the last
/// reference (which frees, runs finalizers and releases children) and for shared objects.
///
/// # Safety
/// `o` is a scalar or a live object whose reference the caller gives up.
pub unsafe fn dec(o: *mut LeanObject) {
    if abi::is_scalar(o) {
        return;
    }
    // SAFETY: live object.
    let rc = unsafe { rc_cell(o) };
    let current = rc.load(Ordering::Relaxed);
    if current > 1 {
        rc.store(current - 1, Ordering::Relaxed);
    } else if current != 0 {
        // SAFETY: last single-threaded reference or a shared object: the runtime decides.
        unsafe { (runtime().fns().lean_dec_ref_cold)(o) }
    }
}

/// `lean_alloc_small_object` of a mimalloc build: the runtime's exported fast path for sizes up
/// to `MI_SMALL_SIZE_MAX`, `mi_malloc` (plus the heartbeat) above. Sets `cs_sz`.
pub fn alloc_small_object(rt: &LeanRuntime, size: usize) -> *mut LeanObject {
    let size = abi::align(size, abi::OBJECT_SIZE_DELTA);
    // SAFETY: the runtime's allocator entry points; sizes are aligned as they require.
    unsafe {
        if size <= abi::MI_SMALL_SIZE_MAX {
            return (rt.fns().lean_alloc_small_object_core)(size as u32);
        }
        (rt.fns().lean_inc_heartbeat)();
        let mem = (rt.fns().mi_malloc)(size) as *mut LeanObject;
        assert!(!mem.is_null(), "Lean runtime out of memory");
        (*mem).cs_sz = size as u16;
        mem
    }
}

/// Writes a fresh single-threaded header (`lean_set_st_header`); `cs_sz` was set by the
/// allocator.
///
/// # Safety
/// `o` was just allocated by the runtime and is at least a header long.
pub unsafe fn set_st_header(o: *mut LeanObject, tag: u8, other: u8) {
    // SAFETY: freshly allocated, exclusively ours.
    unsafe {
        (*o).rc = 1;
        (*o).tag = tag;
        (*o).other = other;
    }
}

/// `lean_alloc_ctor`: a constructor with `num_objs` object fields (initially boxed zeros, so
/// dropping a partly filled constructor is safe) and `scalar_size` bytes of scalar fields
/// (zeroed).
pub fn alloc_ctor(tag: u8, num_objs: u8, scalar_size: usize) -> Obj {
    assert!(tag <= abi::MAX_CTOR_TAG, "constructor tag {tag} exceeds {}", abi::MAX_CTOR_TAG);
    assert!(scalar_size < 1024, "constructor scalar area too large");
    let rt = runtime();
    let size = std::mem::size_of::<LeanObject>() + 8 * num_objs as usize + scalar_size;
    let o = alloc_small_object(rt, size);
    // SAFETY: `o` has room for `size` bytes rounded up to 8 (lean_alloc_ctor_memory zeroes the
    // last word; we zero the whole field area, which also covers that).
    unsafe {
        set_st_header(o, tag, num_objs);
        let fields = (o as *mut u8).add(std::mem::size_of::<LeanObject>());
        std::ptr::write_bytes(fields, 0, abi::align(size, 8) - std::mem::size_of::<LeanObject>());
        let objs = fields as *mut *mut LeanObject;
        for i in 0..num_objs as usize {
            *objs.add(i) = abi::box_usize(0);
        }
        Obj::from_raw(o)
    }
}

/// Access to constructor fields. Offsets of scalar fields are in bytes from the start of the
/// scalar area (after the object fields), matching `lean_ctor_get_uint*` minus the object part.
impl Obj {
    fn ctor_fields(&self) -> *mut *mut LeanObject {
        let h = self.header().expect("constructor expected, found a scalar");
        assert!(h.tag <= abi::MAX_CTOR_TAG, "constructor expected, found tag {}", h.tag);
        // SAFETY: constructor fields start right after the header.
        unsafe { (self.as_ptr() as *mut u8).add(std::mem::size_of::<LeanObject>()) as *mut *mut LeanObject }
    }

    /// Number of object fields of a constructor.
    pub fn ctor_num_objs(&self) -> usize {
        self.ctor_fields();
        self.header().map_or(0, |h| h.other as usize)
    }

    /// Borrowed object field `i` (`lean_ctor_get`).
    pub fn ctor_get(&self, i: usize) -> *mut LeanObject {
        assert!(i < self.ctor_num_objs(), "field {i} out of range");
        // SAFETY: in range of the object fields.
        unsafe { *self.ctor_fields().add(i) }
    }

    /// Owned copy of object field `i`.
    pub fn ctor_get_owned(&self, i: usize) -> Obj {
        // SAFETY: the field is live while `self` is; we take a new reference.
        unsafe { Obj::from_borrowed(self.ctor_get(i)) }
    }

    /// Sets object field `i`, releasing the previous value (`lean_ctor_release` + `lean_ctor_set`).
    pub fn ctor_set(&mut self, i: usize, value: Obj) {
        assert!(i < self.ctor_num_objs(), "field {i} out of range");
        assert!(self.is_exclusive(), "ctor_set on a shared constructor");
        // SAFETY: in range; exclusive, so no one else observes the swap.
        unsafe {
            let slot = self.ctor_fields().add(i);
            let old = std::mem::replace(&mut *slot, value.into_raw());
            dec(old);
        }
    }

    fn scalar_ptr(&self, offset: usize) -> *mut u8 {
        let objs = self.ctor_num_objs() * 8;
        // SAFETY: the scalar area follows the object fields.
        unsafe { (self.ctor_fields() as *mut u8).add(objs + offset) }
    }

    /// Writes a scalar field at byte `offset` of the scalar area (`lean_ctor_set_uint*` with the
    /// object fields' `num_objs * 8` already subtracted).
    ///
    /// # Safety
    /// `offset + size_of::<T>()` lies inside the scalar size the constructor was allocated with.
    pub unsafe fn ctor_set_scalar<T: Copy>(&mut self, offset: usize, value: T) {
        assert!(self.is_exclusive(), "ctor_set_scalar on a shared constructor");
        // SAFETY: in bounds by the caller's contract; the area may be unaligned for `T`.
        unsafe { std::ptr::write_unaligned(self.scalar_ptr(offset) as *mut T, value) }
    }

    /// Reads a scalar field at byte `offset` of the scalar area.
    ///
    /// # Safety
    /// As for [`Obj::ctor_set_scalar`].
    pub unsafe fn ctor_get_scalar<T: Copy>(&self, offset: usize) -> T {
        // SAFETY: in bounds by the caller's contract.
        unsafe { std::ptr::read_unaligned(self.scalar_ptr(offset) as *const T) }
    }
}
