//! Dropping the opener's handles never unmaps code that live Lean objects still point into.
//! Own test binary: it inspects which libraries the process has loaded.
#![allow(unsafe_code)]

mod loader_support;

use std::path::Path;

use capnp_lean_leanrt::{self as lean, Obj};
use capnp_lean_loader::Capability;
use libloading::os::unix::{Library, RTLD_LAZY};

const RTLD_NOLOAD: i32 = 0x4;

fn is_loaded(path: &Path) -> bool {
    // SAFETY: RTLD_NOLOAD never loads anything; it only reports whether `path` is mapped.
    unsafe { Library::open(Some(path), RTLD_LAZY | RTLD_NOLOAD) }.is_ok()
}

#[test]
fn a_dependency_still_in_use_stays_loaded_after_the_capability_is_dropped() {
    let Some(runtime) = loader_support::runtime() else { return };
    let dir = loader_support::scratch("lifetime");
    let manifest = loader_support::build_fxcap(&dir, &runtime, true);
    let dep = dir.join("lib/libfxdep.so");
    let primary = dir.join("lib/libfxcap.so");

    // Control: a library opened without RTLD_NODELETE really is unmapped when its handle drops,
    // so the check below can tell the difference.
    let control = loader_support::compile("fxhelper", &loader_support::scratch("lifetime-control"), &[]);
    // SAFETY: a plain C library without constructors.
    drop(unsafe { Library::open(Some(&control), libloading::os::unix::RTLD_NOW) }.unwrap());
    assert!(!is_loaded(&control), "control library should be unloaded by dlclose");

    let cap = Capability::open(&manifest).unwrap();
    let _t = cap.attach_thread();
    let make_adder = cap.export::<(u32,), Obj>("fxcap_adder").unwrap();
    let add = make_adder.call((7,)); // a closure whose code lives in libfxdep
    let greet = cap.export::<(&str,), String>("fxcap_greet").unwrap();
    drop(make_adder);
    drop(cap);

    // The export still anchors the bundle; the closure needs libfxdep even after that.
    assert_eq!(greet.call(("after drop",)), "hello, after drop");
    drop(greet);
    assert!(is_loaded(&dep), "libfxdep must stay mapped while closures from it live");
    assert!(is_loaded(&primary), "the primary stays mapped too");
    assert_eq!(lean::apply(add, vec![Obj::boxed(5)]).unbox(), Some(12));
}
