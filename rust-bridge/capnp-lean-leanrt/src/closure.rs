//! Closures as compiled Lean code represents them, and applying them through the runtime's
//! `lean_apply_*` (which handles partial application and over-application).

use std::ffi::c_void;

use crate::abi::{self, LeanClosureObject, LeanObject};
use crate::object::{set_st_header, Obj};
use crate::runtime::runtime;

/// `lean_alloc_closure` + `lean_closure_set`: a closure over `fun`, which takes `arity` boxed
/// ("standard", owned) arguments and returns an owned object; `fixed` are its first arguments.
///
/// # Safety
/// `fun` is an `extern "C"` function of exactly `arity` `*mut LeanObject` parameters returning
/// `*mut LeanObject` (arities above 16 take one `*mut *mut LeanObject` array instead, as in
/// Lean).
pub unsafe fn alloc_closure(fun: *const c_void, arity: u16, fixed: Vec<Obj>) -> Obj {
    assert!(arity > 0 && fixed.len() < arity as usize, "a closure needs 0 <= fixed < arity");
    let size = std::mem::size_of::<LeanClosureObject>() + 8 * fixed.len();
    // SAFETY: the runtime's allocator (closures go through lean_alloc_object in lean.h).
    let o = unsafe { (runtime().fns().lean_alloc_object)(size) } as *mut LeanClosureObject;
    // SAFETY: freshly allocated with room for the fixed arguments; their references move in.
    unsafe {
        set_st_header(o as *mut LeanObject, abi::CLOSURE, 0);
        (*o).fun = fun;
        (*o).arity = arity;
        (*o).num_fixed = fixed.len() as u16;
        let objs = (o as *mut u8).add(std::mem::size_of::<LeanClosureObject>()) as *mut *mut LeanObject;
        for (i, arg) in fixed.into_iter().enumerate() {
            *objs.add(i) = arg.into_raw();
        }
        Obj::from_raw(o as *mut LeanObject)
    }
}

/// Applies `f` to `args` (`lean_apply_1..4`, `lean_apply_n` beyond), consuming both.
pub fn apply(f: Obj, args: Vec<Obj>) -> Obj {
    let raw: Vec<*mut LeanObject> = args.into_iter().map(Obj::into_raw).collect();
    apply_raw(f, raw)
}

/// [`apply`] with a fixed number of arguments, without allocating (what per-call code uses).
pub fn apply_array<const N: usize>(f: Obj, args: [Obj; N]) -> Obj {
    apply_raw(f, args.map(Obj::into_raw))
}

fn apply_raw(f: Obj, mut raw: impl AsMut<[*mut LeanObject]>) -> Obj {
    let fns = runtime().fns();
    let raw = raw.as_mut();
    let f = f.into_raw();
    // SAFETY: every reference moves into the runtime, which returns an owned result.
    unsafe {
        let r = match &*raw {
            [] => panic!("apply needs at least one argument"),
            [a] => (fns.lean_apply_1)(f, *a),
            [a, b] => (fns.lean_apply_2)(f, *a, *b),
            [a, b, c] => (fns.lean_apply_3)(f, *a, *b, *c),
            [a, b, c, d] => (fns.lean_apply_4)(f, *a, *b, *c, *d),
            _ => (fns.lean_apply_n)(f, raw.len() as u32, raw.as_mut_ptr()),
        };
        Obj::from_raw(r)
    }
}
