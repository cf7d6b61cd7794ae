//! Where a Lean toolchain with `lake` exists, the whole normal path with a real Lake package:
//! `capnp_lean_toolchain::build_capability` → manifest (prototypes read from Lake's IR) → loader →
//! typed calls, with an `initialize` block that must run before the end of initialization.
//! Skips without `lake` (fails instead under `CAPNP_LEAN_STRICT=1`).

mod loader_support;

use capnp_lean_leanrt::IoError;
use capnp_lean_loader::Capability;
use capnp_lean_toolchain::{build_capability, CapabilitySpec, Discovery};

const LAKEFILE: &str = "name = \"realcap\"\n\n[[lean_lib]]\nname = \"RealCap\"\n";

const SOURCE: &str = r#"
initialize realCapCounter : IO.Ref Nat ← IO.mkRef 41

@[export realcap_add] def add (a b : UInt32) : UInt32 := a + b
@[export realcap_greet] def greet (s : String) : String := "hello, " ++ s
@[export realcap_bump] def bump (_ : Unit) : IO UInt32 := do
  realCapCounter.modify (· + 1)
  return (← realCapCounter.get).toUInt32
@[export realcap_fail] def fail (msg : String) : IO Unit := throw (IO.userError msg)
"#;

#[test]
#[ignore = "needs a Lean toolchain with lake: scripts/test.sh runs it (--ignored) where lake exists"]
fn a_real_lake_package_is_built_described_loaded_and_called() {
    let dir = loader_support::scratch("real-lake");
    let pkg = dir.join("realcap");
    std::fs::create_dir_all(&pkg).unwrap();
    let Some(_toolchain) = capnp_lean_toolchain::test_support::toolchain_or_skip(&pkg) else { return };
    std::fs::write(pkg.join("lakefile.toml"), LAKEFILE).unwrap();
    std::fs::write(pkg.join("RealCap.lean"), SOURCE).unwrap();
    let mut spec = CapabilitySpec::new(&pkg, "realcap", "RealCap", "RealCap");
    spec.exports = Some(["realcap_add", "realcap_greet", "realcap_bump", "realcap_fail"].map(String::from).to_vec());
    let built = build_capability(&spec, &Discovery::new(), &dir).expect("lake build and manifest");

    let cap = Capability::open(&built.manifest_path).expect("capability opens");
    let _t = cap.attach_thread();
    assert_eq!(cap.export::<(u32, u32), u32>("realcap_add").unwrap().call((2, 3)), 5);
    assert_eq!(cap.export::<(&str,), String>("realcap_greet").unwrap().call(("lake",)), "hello, lake");
    let bump = cap.export::<(capnp_lean_leanrt::Obj,), Result<capnp_lean_leanrt::Obj, IoError>>("realcap_bump").unwrap();
    let value = bump.call((capnp_lean_leanrt::Obj::boxed(0),)).unwrap();
    assert_eq!(value.unbox(), Some(42), "the initialize block ran before the first call");
    let fail = cap.export::<(&str,), Result<(), IoError>>("realcap_fail").unwrap();
    assert_eq!(fail.call(("no",)).unwrap_err().message, "no");
}
