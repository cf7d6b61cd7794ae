//! The loader relies on the manifest and rpaths alone: the capability is built, copied to a new
//! folder (its original removed), and opened and called there by a child process whose
//! environment is empty (no LD_LIBRARY_PATH, no LD_PRELOAD).

mod loader_support;

use capnp_lean_loader::Capability;

const CHILD_VAR: &str = "CAPNP_LEAN_LOADER_CHILD_MANIFEST";

#[test]
fn capability_loads_and_runs_with_the_environment_cleared() {
    let Some(runtime) = loader_support::runtime() else { return };
    let built = loader_support::scratch("clean-env-built");
    let manifest = loader_support::build_fxcap(&built, &runtime, true);
    let shipped = loader_support::scratch("clean-env-shipped");
    let relocated = capnp_lean_toolchain::ManifestFile::read(&manifest).unwrap().copy_bundle(&shipped, false).unwrap();
    std::fs::remove_dir_all(&built).unwrap();
    let manifest = relocated.path;
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "child_opens_the_capability_from_its_manifest_only", "--nocapture", "--test-threads=1"])
        .env_clear()
        .env(CHILD_VAR, &manifest)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "child failed:\n{stdout}\n{stderr}");
    assert!(stdout.contains("CHILD-OK 41 15 hello, clean"), "child did not run the calls:\n{stdout}\n{stderr}");
}

/// Runs only inside the child started above (it does nothing when the variable is absent).
#[test]
fn child_opens_the_capability_from_its_manifest_only() {
    let Some(manifest) = std::env::var_os(CHILD_VAR) else { return };
    assert!(std::env::var_os("LD_LIBRARY_PATH").is_none() && std::env::var_os("LD_PRELOAD").is_none());
    assert_eq!(std::env::vars_os().count(), 1, "the child's environment holds only the manifest path");
    let cap = Capability::open(manifest.as_ref()).expect("opens without LD_LIBRARY_PATH");
    let _t = cap.attach_thread();
    let scaled = cap.export::<(u32,), u32>("fxcap_scaled").unwrap().call((4,));
    let tripled = cap.export::<(u32,), u32>("fxcap_tripled").unwrap().call((5,));
    let greeting = cap.export::<(&str,), String>("fxcap_greet").unwrap().call(("clean",));
    println!("CHILD-OK {scaled} {tripled} {greeting}");
}
