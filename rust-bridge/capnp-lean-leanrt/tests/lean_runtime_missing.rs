//! Opening something that is not a Lean 4.35 runtime fails with the missing entry points named
//! (own test binary: a process can install only one runtime).

use capnp_lean_leanrt::LeanRuntime;

#[test]
fn a_library_without_lean_symbols_is_rejected_with_the_missing_names() {
    let err = LeanRuntime::open("/lib/x86_64-linux-gnu/libm.so.6".as_ref()).err().expect("libm is not Lean");
    assert_eq!(err.code, "LEAN-RT-SYMBOLS");
    assert!(err.message.contains("lean_alloc_small_object_core"), "{err}");
    assert!(err.hint.contains("fetch-lean-runtime.sh"), "{err}");
    let err = LeanRuntime::open("/nonexistent/libleanshared.so".as_ref()).err().expect("missing file");
    assert_eq!(err.code, "LEAN-RT-OPEN");
}
