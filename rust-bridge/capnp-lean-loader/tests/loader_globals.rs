//! Globals of a capability whose manifest recorded no C declarations (no IR was available):
//! the ELF symbol type still tells a nullary constant (data) from a function (code). Own test
//! binary, so the fixture's initializer runs while the runtime is still initializing.

mod loader_support;

use capnp_lean_loader::{Capability, LoaderCode};

#[test]
fn without_recorded_declarations_the_symbol_type_tells_globals_from_functions() {
    let Some(runtime) = loader_support::runtime() else { return };
    let dir = loader_support::scratch("globals-no-ir");
    let manifest_path = loader_support::build_fxcap(&dir, &runtime, true);
    let mut manifest = capnp_lean_toolchain::ManifestFile::read(&manifest_path).unwrap().manifest;
    manifest.exports.iter_mut().for_each(|e| e.c_signature = None);
    manifest.write(&manifest_path).unwrap();

    let cap = Capability::open(&manifest_path).unwrap();
    let _t = cap.attach_thread();
    assert_eq!(cap.global::<String>("fxcap_banner").unwrap(), "fxcap banner");
    assert_eq!(cap.global::<u32>("fxcap_answer").unwrap(), 42);
    assert_eq!(cap.global::<String>("fxcap_ground").unwrap(), "fxcap ground");
    let err = cap.global::<u32>("fxcap_add").expect_err("code is not data");
    assert_eq!(err.code, LoaderCode::SymbolKind, "{err}");
    let err = cap.export::<(), u32>("fxcap_answer").err().expect("data is not code");
    assert_eq!(err.code, LoaderCode::SymbolKind, "{err}");
    assert_eq!(cap.export::<(u32, u32), u32>("fxcap_add").unwrap().call((1, 2)), 3);
}
