//! Nullary `@[export]`s: in compiled Lean a constant (`@[export foo] def foo : T := …`) is not a C
//! function but a global the module owns — `LEAN_EXPORT lean_object* foo;` (or a scalar type for
//! unboxed results) filled by the module initializer (`foo = _init_foo();` then
//! `lean_mark_persistent(foo)`; for `initialize`-style constants the value of an IO action), or a
//! statically initialized `LEAN_EXPORT const lean_object* foo = …;` with reference count 0.
//!
//! What it promises: reading a global never takes the module's reference — object values come
//! back as a new reference (`lean_inc`, a no-op for the persistent objects Lean stores there);
//! the Rust type is checked against the declaration recorded in the manifest; a function is
//! never read as data nor a global called as code (the manifest's prototype says which, or, when
//! none was recorded, the ELF symbol type).

use std::ffi::c_void;

use capnp_lean_leanrt::{abi::LeanObject, Obj};

use crate::call::FromObj;

/// A Rust type that can be read from a Lean global of the matching C type.
pub trait LeanGlobal: Sized {
    /// The global's type in Lean's emitted C (`uint32_t`, `lean_object*`, …).
    const C_TYPE: &'static str;
    /// Reads the value; `None` when an object global is still `NULL` (its module initializer
    /// has not run).
    ///
    /// # Safety
    /// `addr` is the address of a global of C type [`Self::C_TYPE`] that stays mapped while this
    /// runs, and a runtime is installed.
    unsafe fn read(addr: *const c_void) -> Option<Self>;
}

macro_rules! scalar_global {
    ($($t:ty => $c:literal),*) => {$(
        impl LeanGlobal for $t {
            const C_TYPE: &'static str = $c;
            unsafe fn read(addr: *const c_void) -> Option<$t> {
                // SAFETY: the caller guarantees a mapped global of this C type.
                Some(unsafe { (addr as *const $t).read() })
            }
        }
    )*};
}
scalar_global!(u8 => "uint8_t", u16 => "uint16_t", u32 => "uint32_t", u64 => "uint64_t", usize => "size_t", f64 => "double");

/// `Bool` constants are stored unboxed as `uint8_t`.
impl LeanGlobal for bool {
    const C_TYPE: &'static str = "uint8_t";
    unsafe fn read(addr: *const c_void) -> Option<bool> {
        // SAFETY: the caller guarantees a mapped `uint8_t` global.
        Some(unsafe { (addr as *const u8).read() } != 0)
    }
}

/// Object constants (`String`, `ByteArray`, structures, …): a new reference to the module's
/// value, converted with [`FromObj`].
impl<T: FromObj> LeanGlobal for T {
    const C_TYPE: &'static str = "lean_object*";
    unsafe fn read(addr: *const c_void) -> Option<T> {
        // SAFETY: the caller guarantees a mapped `lean_object*` global.
        let ptr = unsafe { (addr as *const *mut LeanObject).read() };
        if ptr.is_null() {
            return None;
        }
        // SAFETY: a value the module initialized and keeps owning; `from_borrowed` adds the
        // reference the returned `Obj` gives back when dropped.
        Some(T::from_obj(unsafe { Obj::from_borrowed(ptr) }))
    }
}

/// Whether a symbol is code or data.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum SymbolKind {
    /// A C function: call it through an `Export`.
    Function,
    /// A global holding a nullary constant: read it with `Capability::global`.
    Global,
}

/// The kind a recorded C declaration describes: functions have a parameter list.
pub(crate) fn kind_of_declaration(declaration: &str) -> SymbolKind {
    if declaration.contains('(') {
        SymbolKind::Function
    } else {
        SymbolKind::Global
    }
}

/// The declaration a Rust type corresponds to, in the spelling Lean's C emitter uses.
pub fn expected_global<T: LeanGlobal>(symbol: &str) -> String {
    format!("{} {symbol}", T::C_TYPE)
}

/// Compares global declarations ignoring whitespace and the `const` of statically initialized
/// objects.
pub(crate) fn same_global(recorded: &str, expected: &str) -> bool {
    let norm = |s: &str| s.trim().trim_start_matches("const ").chars().filter(|c| !c.is_whitespace()).collect::<String>();
    norm(recorded) == norm(expected)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn declarations_with_parameters_are_functions_and_others_globals() {
        assert_eq!(kind_of_declaration("uint32_t demo_add(uint32_t, uint32_t)"), SymbolKind::Function);
        assert_eq!(kind_of_declaration("uint32_t demo_runs(void)"), SymbolKind::Function);
        assert_eq!(kind_of_declaration("lean_object* demo_banner"), SymbolKind::Global);
    }

    #[test]
    fn global_types_compare_modulo_const_and_spacing() {
        assert!(same_global("const lean_object* demo_ground", &expected_global::<String>("demo_ground")));
        assert!(same_global("lean_object *demo_banner", &expected_global::<Obj>("demo_banner")));
        assert!(same_global("uint8_t demo_flag", &expected_global::<bool>("demo_flag")));
        assert!(!same_global("uint32_t demo_answer", &expected_global::<u64>("demo_answer")));
        assert!(!same_global("uint32_t demo_answer", &expected_global::<String>("demo_answer")));
    }
}
