//! IO results in the Lean 4.35 shape ("zero-cost BaseIO", lean4 PR #10625): an `IO` function
//! takes no world argument and returns a constructor with one object field — tag 0 holding the
//! value, tag 1 holding the `IO.Error`. A `BaseIO` function returns its value unwrapped.

use crate::abi::LeanObject;
use crate::object::{alloc_ctor, Obj};
use crate::runtime::runtime;
use crate::values::{mk_string, string_str};

/// The result of an `IO` function.
#[derive(Debug)]
pub struct IoResult(Obj);

/// An `IO.Error` returned by Lean code, with its text (`IO.Error.toString`).
#[derive(Debug)]
pub struct IoError {
    /// The error object.
    pub error: Obj,
    /// Its rendering by Lean's own `toString`.
    pub message: String,
}

impl std::fmt::Display for IoError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for IoError {}

impl IoResult {
    /// Takes ownership of a raw IO result.
    ///
    /// # Safety
    /// `ptr` is an owned IO result returned by Lean code.
    pub unsafe fn from_raw(ptr: *mut LeanObject) -> Self {
        // SAFETY: forwarded caller contract.
        Self(unsafe { Obj::from_raw(ptr) })
    }

    /// `lean_io_result_mk_ok`.
    pub fn ok(value: Obj) -> Self {
        let mut r = alloc_ctor(0, 1, 0);
        r.ctor_set(0, value);
        Self(r)
    }

    /// `lean_io_result_mk_error`.
    pub fn error(error: Obj) -> Self {
        let mut r = alloc_ctor(1, 1, 0);
        r.ctor_set(0, error);
        Self(r)
    }

    /// An error result holding `IO.userError message`.
    pub fn user_error(message: &str) -> Self {
        Self::error(mk_user_error(message))
    }

    /// Whether this is the ok shape (tag 0).
    pub fn is_ok(&self) -> bool {
        self.0.tag() == 0
    }

    /// The value or the error, with the error rendered by Lean.
    pub fn into_result(self) -> Result<Obj, IoError> {
        assert!(self.0.tag() <= 1 && self.0.ctor_num_objs() == 1, "not a Lean 4.35 IO result");
        let payload = self.0.ctor_get_owned(0);
        if self.is_ok() {
            Ok(payload)
        } else {
            let message = io_error_to_string(&payload);
            Err(IoError { error: payload, message })
        }
    }

    /// The raw result, for returning it from an `extern "C"` function.
    pub fn into_raw(self) -> *mut LeanObject {
        self.0.into_raw()
    }

    /// The underlying object.
    pub fn as_obj(&self) -> &Obj {
        &self.0
    }
}

/// `IO.userError message` (`lean_mk_io_user_error`).
pub fn mk_user_error(message: &str) -> Obj {
    // SAFETY: takes an owned String, returns an owned IO.Error.
    unsafe { Obj::from_raw((runtime().fns().lean_mk_io_user_error)(mk_string(message).into_raw())) }
}

/// `IO.Error.toString` (`lean_io_error_to_string`); needs the `Init` module initialized, which
/// [`crate::LeanRuntime::initialize`] does.
pub fn io_error_to_string(error: &Obj) -> String {
    // SAFETY: consumes one reference (we pass a fresh one) and returns an owned String.
    let s = unsafe { Obj::from_raw((runtime().fns().lean_io_error_to_string)(error.clone().into_raw())) };
    string_str(&s).to_string()
}
