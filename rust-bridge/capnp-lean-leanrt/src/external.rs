//! External objects: a Rust value owned by a Lean object, dropped by the class finalizer when
//! the last Lean reference goes away.

use std::ffi::c_void;
use std::marker::PhantomData;

use crate::abi::{self, LeanExternalClass, LeanExternalObject, LeanObject};
use crate::object::{alloc_small_object, set_st_header, Obj};
use crate::runtime::runtime;

/// A registered external class for values of type `T`. Register once per type (classes are
/// never freed by the runtime) and keep it, e.g. in a `OnceLock`.
pub struct ExternalClass<T> {
    class: *mut LeanExternalClass,
    _marker: PhantomData<fn(T)>,
}

// SAFETY: the class pointer refers to immutable, never-freed runtime data.
unsafe impl<T> Send for ExternalClass<T> {}
// SAFETY: as above.
unsafe impl<T> Sync for ExternalClass<T> {}

unsafe extern "C" fn drop_boxed<T>(data: *mut c_void) {
    // SAFETY: `data` came from `Box::into_raw` in `ExternalClass::wrap` and is finalized once.
    drop(unsafe { Box::from_raw(data as *mut T) });
}

unsafe extern "C" fn visit_nothing(_data: *mut c_void, _f: *mut LeanObject) {}

impl<T: 'static> ExternalClass<T> {
    /// Registers a class whose finalizer drops the boxed `T` (`lean_register_external_class`).
    pub fn register() -> Self {
        // SAFETY: both callbacks have the prototypes lean.h declares.
        let class = unsafe { (runtime().fns().lean_register_external_class)(drop_boxed::<T>, visit_nothing) };
        Self { class, _marker: PhantomData }
    }

    /// Moves `value` into a new external object of this class (`lean_alloc_external`).
    pub fn wrap(&self, value: T) -> Obj {
        let data = Box::into_raw(Box::new(value)) as *mut c_void;
        let o = alloc_small_object(runtime(), std::mem::size_of::<LeanExternalObject>()) as *mut LeanExternalObject;
        // SAFETY: freshly allocated external object.
        unsafe {
            set_st_header(o as *mut LeanObject, abi::EXTERNAL, 0);
            (*o).class = self.class;
            (*o).data = data;
            Obj::from_raw(o as *mut LeanObject)
        }
    }

    /// The `T` inside `o`, if `o` is an external object of this class.
    pub fn get<'a>(&self, o: &'a Obj) -> Option<&'a T> {
        let h = o.header()?;
        if h.tag != abi::EXTERNAL {
            return None;
        }
        let ext = o.as_ptr() as *const LeanExternalObject;
        // SAFETY: an external object of our class holds a live `Box<T>` until finalized, which
        // cannot happen while `o` holds a reference.
        unsafe { ((*ext).class == self.class).then(|| &*((*ext).data as *const T)) }
    }

    /// The raw class pointer.
    pub fn as_ptr(&self) -> *mut LeanExternalClass {
        self.class
    }
}
