//! Typed calls of `@[export]` functions: Rust argument and result types map to the C types Lean
//! emits, and the mapping doubles as a signature check against the prototype recorded in the
//! manifest.

use std::ffi::c_void;

use capnp_lean_leanrt::{self as lean, abi::LeanObject, IoError, IoResult, Obj};

/// A Rust value passed to a Lean export.
pub trait LeanArg {
    /// The C-level type.
    type Raw: Copy;
    /// Its name in Lean's emitted C (`uint32_t`, `lean_object*`, …).
    const C_TYPE: &'static str;
    /// Converts (object arguments hand over one reference: Lean's default "owned" convention).
    fn into_raw(self) -> Self::Raw;
}

/// A result of a Lean export converted to Rust.
pub trait LeanRet: Sized {
    /// The C-level type.
    type Raw: Copy;
    /// Its name in Lean's emitted C.
    const C_TYPE: &'static str;
    /// Converts, taking ownership of object results.
    ///
    /// # Safety
    /// `raw` is what a Lean function with this result type returned.
    unsafe fn from_raw(raw: Self::Raw) -> Self;
}

macro_rules! scalar {
    ($($t:ty => $c:literal),*) => {$(
        impl LeanArg for $t {
            type Raw = $t;
            const C_TYPE: &'static str = $c;
            fn into_raw(self) -> $t { self }
        }
        impl LeanRet for $t {
            type Raw = $t;
            const C_TYPE: &'static str = $c;
            unsafe fn from_raw(raw: $t) -> $t { raw }
        }
    )*};
}
scalar!(u8 => "uint8_t", u16 => "uint16_t", u32 => "uint32_t", u64 => "uint64_t", usize => "size_t", f64 => "double");

impl LeanArg for bool {
    type Raw = u8;
    const C_TYPE: &'static str = "uint8_t";
    fn into_raw(self) -> u8 {
        self as u8
    }
}

impl LeanRet for bool {
    type Raw = u8;
    const C_TYPE: &'static str = "uint8_t";
    unsafe fn from_raw(raw: u8) -> bool {
        raw != 0
    }
}

impl LeanArg for Obj {
    type Raw = *mut LeanObject;
    const C_TYPE: &'static str = "lean_object*";
    fn into_raw(self) -> *mut LeanObject {
        Obj::into_raw(self)
    }
}

/// An object argument the Lean function only borrows (`@&` in Lean): no reference is handed over.
pub struct Borrowed<'a>(pub &'a Obj);

impl LeanArg for Borrowed<'_> {
    type Raw = *mut LeanObject;
    const C_TYPE: &'static str = "lean_object*";
    fn into_raw(self) -> *mut LeanObject {
        self.0.as_ptr()
    }
}

/// `&str` becomes a new Lean `String`.
impl LeanArg for &str {
    type Raw = *mut LeanObject;
    const C_TYPE: &'static str = "lean_object*";
    fn into_raw(self) -> *mut LeanObject {
        lean::mk_string(self).into_raw()
    }
}

/// An owned `String` becomes a new Lean `String`.
impl LeanArg for String {
    type Raw = *mut LeanObject;
    const C_TYPE: &'static str = "lean_object*";
    fn into_raw(self) -> *mut LeanObject {
        lean::mk_string(&self).into_raw()
    }
}

/// `&[u8]` becomes a new Lean `ByteArray`.
impl LeanArg for &[u8] {
    type Raw = *mut LeanObject;
    const C_TYPE: &'static str = "lean_object*";
    fn into_raw(self) -> *mut LeanObject {
        lean::mk_byte_array(self).into_raw()
    }
}

/// Conversion of an owned Lean object into a Rust value (for object results and IO payloads).
pub trait FromObj: Sized {
    /// Converts `o`.
    fn from_obj(o: Obj) -> Self;
}

impl FromObj for Obj {
    fn from_obj(o: Obj) -> Obj {
        o
    }
}

impl FromObj for String {
    fn from_obj(o: Obj) -> String {
        lean::string_str(&o).to_string()
    }
}

impl FromObj for Vec<u8> {
    fn from_obj(o: Obj) -> Vec<u8> {
        lean::byte_array_bytes(&o).to_vec()
    }
}

impl FromObj for () {
    fn from_obj(_: Obj) {}
}

macro_rules! object_ret {
    ($($t:ty),*) => {$(
        impl LeanRet for $t {
            type Raw = *mut LeanObject;
            const C_TYPE: &'static str = "lean_object*";
            unsafe fn from_raw(raw: *mut LeanObject) -> $t {
                // SAFETY: an owned object result, per the caller's contract.
                <$t>::from_obj(unsafe { Obj::from_raw(raw) })
            }
        }
    )*};
}
object_ret!(Obj, String, Vec<u8>);

/// An `IO α` result: the value, or the IO error with Lean's rendering of it.
impl<T: FromObj> LeanRet for Result<T, IoError> {
    type Raw = *mut LeanObject;
    const C_TYPE: &'static str = "lean_object*";
    unsafe fn from_raw(raw: *mut LeanObject) -> Self {
        // SAFETY: an owned IO result, per the caller's contract.
        unsafe { IoResult::from_raw(raw) }.into_result().map(T::from_obj)
    }
}

/// Argument tuples of arity 0 to 6.
pub trait LeanArgs {
    /// C types of the parameters, in order.
    fn c_types() -> Vec<&'static str>;
    /// Calls `f` with these arguments.
    ///
    /// # Safety
    /// `f` is a C function whose prototype is exactly these parameter types returning `R`.
    unsafe fn call<R: LeanRet>(self, f: *const c_void) -> R;
}

macro_rules! args {
    ($($name:ident),*) => {
        impl<$($name: LeanArg),*> LeanArgs for ($($name,)*) {
            fn c_types() -> Vec<&'static str> {
                vec![$($name::C_TYPE),*]
            }
            #[allow(non_snake_case)]
            unsafe fn call<R: LeanRet>(self, f: *const c_void) -> R {
                let ($($name,)*) = self;
                // SAFETY: the caller guarantees the prototype; function pointers and data
                // pointers have the same size on the platforms Lean supports.
                unsafe {
                    let f: unsafe extern "C" fn($($name::Raw),*) -> R::Raw = std::mem::transmute(f);
                    R::from_raw(f($($name.into_raw()),*))
                }
            }
        }
    };
}
args!();
args!(A);
args!(A, B);
args!(A, B, C);
args!(A, B, C, D);
args!(A, B, C, D, E);
args!(A, B, C, D, E, G);

/// The prototype a Rust signature corresponds to, in the spelling Lean's C emitter uses.
pub fn expected_prototype<A: LeanArgs, R: LeanRet>(symbol: &str) -> String {
    format!("{} {symbol}({})", R::C_TYPE, A::c_types().join(", "))
}

/// Compares prototypes ignoring whitespace and `(void)` vs `()`.
pub fn same_prototype(a: &str, b: &str) -> bool {
    let norm = |s: &str| s.replace("(void)", "()").chars().filter(|c| !c.is_whitespace()).collect::<String>();
    norm(a) == norm(b)
}
