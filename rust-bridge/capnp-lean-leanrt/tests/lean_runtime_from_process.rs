//! The glue's situation: the Lean runtime is already in the process and initialized by its host
//! (here: this test plays the Lean program). `LeanRuntime::from_process` must find the entry
//! points without being given a path and must leave the host's lifecycle alone.
#![allow(unsafe_code)]

use capnp_lean_leanrt::{self as lean, InitMode, LeanRuntime};
use libloading::os::unix::{Library, RTLD_GLOBAL, RTLD_NOW};

#[test]
fn runtime_loaded_by_the_host_is_found_in_the_process_and_left_host_managed() {
    let Some(install) = capnp_lean_toolchain::test_support::runtime_or_skip(env!("CARGO_MANIFEST_DIR")) else { return };
    // The "host": loads and initializes Lean the way a compiled Lean main does.
    // SAFETY: loading the runtime; it is never unloaded (leaked below).
    let host = unsafe { Library::open(Some(&install.runtime_library), RTLD_NOW | RTLD_GLOBAL) }.unwrap();
    // SAFETY: the runtime's own initialization entry points, called once, in order.
    unsafe {
        (*host.get::<unsafe extern "C" fn()>(b"lean_initialize_runtime_module\0").unwrap())();
        let init_init = *host.get::<unsafe extern "C" fn(u8) -> *mut lean::abi::LeanObject>(b"initialize_Init\0").unwrap();
        assert_eq!((*init_init(1)).tag, 0, "initialize_Init succeeded");
        (*host.get::<unsafe extern "C" fn()>(b"lean_io_mark_end_initialization\0").unwrap())();
    }
    std::mem::forget(host);

    let rt = LeanRuntime::from_process().expect("entry points resolved from the process");
    assert!(rt.is_host_managed() && rt.path().is_none());
    assert_eq!(rt.initialize(InitMode::RuntimeModule), Ok(InitMode::RuntimeModule), "a no-op for host-managed runtimes");
    assert!(rt.initialization_ended());
    assert_eq!(rt.lean_version(), Some((4, 35, 0)));
    let err = lean::IoResult::user_error("from the glue").into_result().unwrap_err();
    assert_eq!(err.message, "from the glue");
    let joined = lean::mk_array(vec![lean::mk_string("a"), lean::mk_byte_array(b"b")]);
    assert_eq!(lean::array_len(&joined), 2);
}
