//! Module initializers run before `lean_io_mark_end_initialization`, which the loader defers to
//! the first call — so every capability opened before that can register environment
//! extensions. Own test binary: the end of initialization is a once-per-process event.

mod loader_support;

use capnp_lean_loader::{Capability, LoaderCode};

#[test]
fn initializers_run_while_initializing_and_late_ones_report_why_they_failed() {
    let Some(runtime) = loader_support::runtime() else { return };
    let first_dir = loader_support::scratch("init-order-first");
    let second_dir = loader_support::scratch("init-order-second");
    let first = loader_support::build_fxcap(&first_dir, &runtime, true);
    let late = loader_support::build_fxcap(&second_dir, &runtime, true);

    let cap = Capability::open(&first).unwrap();
    let _t = cap.attach_thread();
    assert!(!cap.runtime().initialization_ended(), "opening must not end initialization");
    let runs = cap.export::<(), u32>("fxcap_init_runs").unwrap();
    assert_eq!(runs.call(()), 1, "the initializer registered its extension while initializing");
    assert!(cap.runtime().initialization_ended(), "the first call ends initialization");

    // A capability opened after the first call runs its initializer too late (this is what
    // happens to every module in a loader that ends initialization before initializers).
    let err = Capability::open(&late).err().expect("late initializer fails");
    assert_eq!(err.code, LoaderCode::InitializerFailed);
    assert!(err.message.contains("environment extensions can only be registered during initialization"), "{err}");
    assert!(err.message.contains("open all capabilities before the first call"), "{err}");
}
