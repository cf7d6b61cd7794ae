//! `String`, `ByteArray`, `Array` and boxed fixed-width numbers, built the way the inline
//! functions of `lean.h` v4.35.0 build them (big objects through `lean_alloc_object`).

use crate::abi::{self, LeanArrayObject, LeanObject, LeanSArrayObject, LeanStringObject};
use crate::object::{alloc_ctor, set_st_header, Obj};
use crate::runtime::runtime;

fn alloc_object(size: usize) -> *mut LeanObject {
    // SAFETY: the runtime's general allocator; it panics inside on out-of-memory.
    unsafe { (runtime().fns().lean_alloc_object)(size) }
}

/// A new `String` holding `s` (`lean_alloc_string` + copy + NUL).
pub fn mk_string(s: &str) -> Obj {
    let size = s.len() + 1;
    let o = alloc_object(std::mem::size_of::<LeanStringObject>() + size) as *mut LeanStringObject;
    // SAFETY: freshly allocated with room for the header, the three counts and `size` bytes.
    unsafe {
        set_st_header(o as *mut LeanObject, abi::STRING, 0);
        (*o).size = size;
        (*o).capacity = size;
        (*o).length = s.chars().count();
        let data = (o as *mut u8).add(std::mem::size_of::<LeanStringObject>());
        std::ptr::copy_nonoverlapping(s.as_ptr(), data, s.len());
        *data.add(s.len()) = 0;
        Obj::from_raw(o as *mut LeanObject)
    }
}

/// The text of a `String` (`lean_string_cstr` without the NUL).
pub fn string_str(o: &Obj) -> &str {
    let h = o.header().expect("String expected, found a scalar");
    assert_eq!(h.tag, abi::STRING, "String expected");
    let s = o.as_ptr() as *const LeanStringObject;
    // SAFETY: a Lean string holds `size - 1` bytes of valid UTF-8 before the NUL, alive while `o`.
    unsafe {
        let data = (s as *const u8).add(std::mem::size_of::<LeanStringObject>());
        std::str::from_utf8_unchecked(std::slice::from_raw_parts(data, (*s).size - 1))
    }
}

/// Code-point length of a `String` (`lean_string_len`).
pub fn string_len(o: &Obj) -> usize {
    string_str(o);
    // SAFETY: checked to be a string above.
    unsafe { (*(o.as_ptr() as *const LeanStringObject)).length }
}

/// A new `ByteArray` with a copy of `bytes` (`lean_alloc_sarray(1, n, n)`).
pub fn mk_byte_array(bytes: &[u8]) -> Obj {
    let o = alloc_object(std::mem::size_of::<LeanSArrayObject>() + bytes.len()) as *mut LeanSArrayObject;
    // SAFETY: freshly allocated with room for the header, counts and the bytes.
    unsafe {
        set_st_header(o as *mut LeanObject, abi::SCALAR_ARRAY, 1);
        (*o).size = bytes.len();
        (*o).capacity = bytes.len();
        let data = (o as *mut u8).add(std::mem::size_of::<LeanSArrayObject>());
        std::ptr::copy_nonoverlapping(bytes.as_ptr(), data, bytes.len());
        Obj::from_raw(o as *mut LeanObject)
    }
}

/// The bytes of a `ByteArray`.
pub fn byte_array_bytes(o: &Obj) -> &[u8] {
    let h = o.header().expect("ByteArray expected, found a scalar");
    assert!(h.tag == abi::SCALAR_ARRAY && h.other & 0x7f == 1, "ByteArray expected");
    let a = o.as_ptr() as *const LeanSArrayObject;
    // SAFETY: `size` initialized bytes follow the header, alive while `o`.
    unsafe { std::slice::from_raw_parts((a as *const u8).add(std::mem::size_of::<LeanSArrayObject>()), (*a).size) }
}

/// A new `Array` owning `items` (`lean_alloc_array(n, n)` + stores).
pub fn mk_array(items: Vec<Obj>) -> Obj {
    mk_array_from(items.into_iter())
}

/// [`mk_array`] from an iterator of known length, without an intermediate `Vec`.
pub fn mk_array_from(items: impl ExactSizeIterator<Item = Obj>) -> Obj {
    let n = items.len();
    let o = alloc_object(std::mem::size_of::<LeanArrayObject>() + 8 * n) as *mut LeanArrayObject;
    // SAFETY: freshly allocated with room for `n` element pointers; each item's reference moves in.
    unsafe {
        set_st_header(o as *mut LeanObject, abi::ARRAY, 0);
        (*o).size = n;
        (*o).capacity = n;
        let data = (o as *mut u8).add(std::mem::size_of::<LeanArrayObject>()) as *mut *mut LeanObject;
        let mut stored = 0;
        for item in items.take(n) {
            *data.add(stored) = item.into_raw();
            stored += 1;
        }
        // An iterator that reported more than it yielded leaves no slot uninitialized.
        for i in stored..n {
            *data.add(i) = abi::box_usize(0);
        }
        Obj::from_raw(o as *mut LeanObject)
    }
}

/// Number of elements of an `Array`.
pub fn array_len(o: &Obj) -> usize {
    let h = o.header().expect("Array expected, found a scalar");
    assert_eq!(h.tag, abi::ARRAY, "Array expected");
    // SAFETY: checked tag.
    unsafe { (*(o.as_ptr() as *const LeanArrayObject)).size }
}

/// Owned copy of element `i` of an `Array`.
pub fn array_get(o: &Obj, i: usize) -> Obj {
    assert!(i < array_len(o), "index {i} out of bounds");
    // SAFETY: in bounds; elements are live while the array is; we take a new reference.
    unsafe {
        let data = (o.as_ptr() as *mut u8).add(std::mem::size_of::<LeanArrayObject>()) as *mut *mut LeanObject;
        Obj::from_borrowed(*data.add(i))
    }
}

/// `lean_box_uint64`: a constructor with one 8-byte scalar field.
pub fn box_u64(v: u64) -> Obj {
    let mut o = alloc_ctor(0, 0, 8);
    // SAFETY: 8 scalar bytes were allocated.
    unsafe { o.ctor_set_scalar(0, v) };
    o
}

/// `lean_unbox_uint64`.
pub fn unbox_u64(o: &Obj) -> u64 {
    // SAFETY: a boxed UInt64 has 8 scalar bytes.
    unsafe { o.ctor_get_scalar(0) }
}

/// `lean_box_float`.
pub fn box_f64(v: f64) -> Obj {
    let mut o = alloc_ctor(0, 0, 8);
    // SAFETY: 8 scalar bytes were allocated.
    unsafe { o.ctor_set_scalar(0, v) };
    o
}

/// `lean_unbox_float`.
pub fn unbox_f64(o: &Obj) -> f64 {
    // SAFETY: a boxed Float has 8 scalar bytes.
    unsafe { o.ctor_get_scalar(0) }
}

/// `lean_box_uint32` on 64-bit targets: a plain scalar box.
pub fn box_u32(v: u32) -> Obj {
    Obj::boxed(v as usize)
}
