//! The loader against the real Lean 4.35 runtime with fixture libraries that follow the
//! compiled-Lean conventions: typed calls of scalars, String, ByteArray and IO results,
//! initializers run once each and before the end of initialization, signature checks, and a
//! failing initializer reported with Lean's error text.

mod loader_support;

use std::sync::OnceLock;

use capnp_lean_leanrt::{self as lean, IoError, Obj};
use capnp_lean_loader::{Capability, LoaderCode};

fn capability() -> Option<&'static Capability> {
    static CAP: OnceLock<Option<Capability>> = OnceLock::new();
    CAP.get_or_init(|| {
        let runtime = loader_support::runtime()?;
        let dir = loader_support::scratch("fixtures-fxcap");
        let manifest = loader_support::build_fxcap(&dir, &runtime, true);
        Some(Capability::open(&manifest).expect("fixture capability opens"))
    })
    .as_ref()
}

macro_rules! require_capability {
    () => {
        match capability() {
            Some(cap) => (cap, cap.attach_thread()),
            None => return,
        }
    };
}

#[test]
fn scalar_exports_are_called_with_their_c_types() {
    let (cap, _t) = require_capability!();
    assert_eq!(cap.export::<(u32, u32), u32>("fxcap_add").unwrap().call((40, 2)), 42);
    assert_eq!(cap.export::<(u64, u64), u64>("fxcap_mul64").unwrap().call((1 << 40, 3)), 3 << 40);
    assert_eq!(cap.export::<(f64,), f64>("fxcap_half").unwrap().call((5.0,)), 2.5);
    let even = cap.export::<(u32,), bool>("fxcap_is_even").unwrap();
    assert!(even.call((4,)) && !even.call((7,)));
}

#[test]
fn primary_reaches_the_global_dependency_and_its_rpath_library() {
    let (cap, _t) = require_capability!();
    assert_eq!(cap.export::<(u32,), u32>("fxcap_scaled").unwrap().call((4,)), 41, "fxdep_scale via RTLD_GLOBAL");
    assert_eq!(cap.export::<(u32,), u32>("fxcap_tripled").unwrap().call((5,)), 15, "fxhelper via RUNPATH");
}

#[test]
fn strings_and_byte_arrays_cross_in_both_directions() {
    let (cap, _t) = require_capability!();
    let greet = cap.export::<(&str,), String>("fxcap_greet").unwrap();
    assert_eq!(greet.call(("Lean λ",)), "hello, Lean λ");
    let reverse = cap.export::<(&[u8],), Vec<u8>>("fxcap_reverse").unwrap();
    assert_eq!(reverse.call((&[1u8, 2, 3, 250][..],)), vec![250, 3, 2, 1]);
}

#[test]
fn io_results_become_rust_results_with_lean_error_text() {
    let (cap, _t) = require_capability!();
    let echo = cap.export::<(&str,), Result<String, IoError>>("fxcap_io_echo").unwrap();
    assert_eq!(echo.call(("ping",)).unwrap(), "ping");
    let fail = cap.export::<(&str,), Result<(), IoError>>("fxcap_io_fail").unwrap();
    let err = fail.call(("x",)).unwrap_err();
    assert_eq!(err.message, "fxcap refused the request");
}

#[test]
fn closures_returned_by_the_capability_can_be_applied() {
    let (cap, _t) = require_capability!();
    let adder: Obj = cap.export::<(u32,), Obj>("fxcap_adder").unwrap().call((100,));
    assert_eq!(lean::apply(adder, vec![Obj::boxed(23)]).unbox(), Some(123));
}

#[test]
fn module_initializers_ran_once_and_before_end_of_initialization() {
    let (cap, _t) = require_capability!();
    // fxcap's initializer fails if the runtime is no longer initializing; it ran and counted.
    assert_eq!(cap.export::<(), u32>("fxcap_init_runs").unwrap().call(()), 1);
    assert!(cap.runtime().initialization_ended(), "the first call marks the end of initialization");
}

#[test]
fn signatures_that_disagree_with_the_built_prototype_are_refused() {
    let (cap, _t) = require_capability!();
    let err = cap.export::<(u64, u64), u32>("fxcap_add").err().expect("mismatch");
    assert_eq!(err.code, LoaderCode::SignatureMismatch);
    assert!(err.message.contains("uint32_t fxcap_add(uint32_t, uint32_t)"), "{err}");
    let err = cap.export::<(&str,), u32>("fxcap_greet").err().expect("mismatch");
    assert_eq!(err.code, LoaderCode::SignatureMismatch);
}

#[test]
fn exports_missing_from_the_manifest_are_refused() {
    let (cap, _t) = require_capability!();
    let err = cap.export::<(), u32>("fxdep_initialized").err().expect("not an export of the primary");
    assert_eq!(err.code, LoaderCode::UnknownExport);
    assert!(err.hint.contains("build_capability"), "{err}");
}

#[test]
fn failing_initializer_is_an_error_carrying_the_lean_message() {
    let Some(runtime) = loader_support::runtime() else { return };
    capability(); // same process runtime as the other tests
    let dir = loader_support::scratch("fixtures-fxfail");
    let manifest = loader_support::build_single(&dir, &runtime, "fxfail", "FxFail");
    let err = Capability::open(&manifest).err().expect("initializer fails");
    assert_eq!(err.code, LoaderCode::InitializerFailed);
    assert!(err.message.contains("initialize_fxfail_FxFail"), "{err}");
    assert!(err.message.contains("FxFail configuration missing: set FXFAIL_CONFIG"), "{err}");
}

#[test]
fn exports_are_callable_from_foreign_attached_threads() {
    let (cap, _t) = require_capability!();
    let greet = std::sync::Arc::new(cap.export::<(String,), String>("fxcap_greet").unwrap());
    let threads: Vec<_> = (0..3)
        .map(|i| {
            let (cap, greet) = (cap.clone(), greet.clone());
            std::thread::spawn(move || {
                let _attached = cap.attach_thread();
                // 200 calls per thread; the last answer is checked.
                let mut last = None;
                for _ in 0..200 {
                    last = Some(greet.call((format!("thread {i}"),)));
                }
                last.unwrap()
            })
        })
        .collect();
    for (i, t) in threads.into_iter().enumerate() {
        assert_eq!(t.join().unwrap(), format!("hello, thread {i}"));
    }
}

#[test]
fn a_manifest_built_for_another_lean_version_is_refused() {
    let Some(runtime) = loader_support::runtime() else { return };
    capability();
    let dir = loader_support::scratch("fixtures-version");
    let manifest_path = loader_support::build_single(&dir, &runtime, "fxfail", "FxFail");
    let mut manifest = capnp_lean_toolchain::ManifestFile::read(&manifest_path).unwrap().manifest;
    manifest.toolchain_version = "4.34.0".into();
    manifest.write(&manifest_path).unwrap();
    let err = Capability::open(&manifest_path).err().expect("version mismatch");
    assert_eq!(err.code, LoaderCode::VersionMismatch);
    assert!(err.message.contains("4.34.0") && err.message.contains("4.35.0"), "{err}");
}

#[test]
fn nullary_constants_are_read_from_the_globals_the_initializer_filled() {
    let (cap, _t) = require_capability!();
    assert_eq!(cap.global::<String>("fxcap_banner").unwrap(), "fxcap banner");
    assert_eq!(cap.global::<u32>("fxcap_answer").unwrap(), 42);
    assert_eq!(cap.global::<String>("fxcap_config").unwrap(), "config from initialize", "an IO-initialized constant");
    assert_eq!(cap.global::<String>("fxcap_ground").unwrap(), "fxcap ground", "a statically laid out constant");
    assert_eq!(cap.global::<Obj>("fxcap_small").unwrap().unbox(), Some(7), "a small Nat is a boxed scalar in an object global");
    let banner = cap.global::<Obj>("fxcap_banner").unwrap();
    assert_eq!(banner.rc(), 0, "the initializer marked it persistent, as Lean does");
    assert_eq!(banner.as_ptr(), cap.global::<Obj>("fxcap_banner").unwrap().as_ptr(), "the module's own object, not a copy");
}

#[test]
fn reading_a_global_adds_a_reference_and_leaves_the_modules_own() {
    let (cap, _t) = require_capability!();
    let before = cap.global::<Obj>("fxcap_unmarked").unwrap();
    let held = before.rc();
    assert!(held >= 2, "the module's reference plus ours, got {held}");
    let again = cap.global::<Obj>("fxcap_unmarked").unwrap();
    assert_eq!(again.rc(), held + 1);
    drop(again);
    drop(before);
    for _ in 0..100 {
        assert_eq!(cap.global::<String>("fxcap_unmarked").unwrap(), "counted, not persistent");
    }
    assert_eq!(cap.global::<Obj>("fxcap_unmarked").unwrap().rc(), held, "every read gave its reference back");
}

#[test]
fn functions_and_globals_are_not_mistaken_for_each_other() {
    let (cap, _t) = require_capability!();
    let err = cap.global::<u32>("fxcap_add").expect_err("a function is not a global");
    assert_eq!(err.code, LoaderCode::SymbolKind);
    assert!(err.message.contains("fxcap_add is a function") && err.hint.contains("Capability::export"), "{err}");
    let err = cap.export::<(), u32>("fxcap_answer").err().expect("a global is not a function");
    assert_eq!(err.code, LoaderCode::SymbolKind);
    assert!(err.hint.contains("Capability::global"), "{err}");
}

#[test]
fn globals_read_with_the_wrong_type_are_refused() {
    let (cap, _t) = require_capability!();
    let err = cap.global::<u64>("fxcap_answer").expect_err("uint32_t read as u64");
    assert_eq!(err.code, LoaderCode::SignatureMismatch);
    assert!(err.message.contains("uint32_t fxcap_answer") && err.message.contains("uint64_t fxcap_answer"), "{err}");
    let err = cap.global::<u32>("fxcap_ground").expect_err("an object read as a scalar");
    assert_eq!(err.code, LoaderCode::SignatureMismatch);
}
