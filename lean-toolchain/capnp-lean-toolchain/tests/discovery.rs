//! Discovery order and failure modes, driven through fake environments.

mod common;

use common::{fake_toolchain, scratch, script};
use capnp_lean_toolchain::{discovery::elan_dir_name, Discovery, DiscoverySource, Env, ErrorCode, InstallKind};

fn runtime_dir(root: &std::path::Path) -> std::path::PathBuf {
    let dir = root.join("runtime");
    common::shared_object("int lean_main(void) { return 0; }\n", &dir.join("libleanshared.so"), &[]);
    std::fs::write(dir.join("VERSION"), "4.35.0\n").unwrap();
    dir
}

#[test]
fn explicit_path_wins_over_lean_sysroot() {
    let root = scratch("explicit-wins");
    let tc = fake_toolchain(&root, "exit 0");
    let rt = runtime_dir(&root);
    let env = Env::from_pairs([("LEAN_SYSROOT", tc.as_os_str())]);
    let found = Discovery::new().with_env(env).with_explicit(&rt).find().unwrap();
    assert_eq!(found.found_via, DiscoverySource::Explicit);
    assert_eq!(found.kind, InstallKind::RuntimeOnly);
    assert_eq!(found.version.as_deref(), Some("4.35.0"));
}

#[test]
fn lean_sysroot_beats_provisioned_runtime_and_reads_version_header() {
    let root = scratch("sysroot");
    let tc = fake_toolchain(&root, "exit 0");
    let rt = runtime_dir(&root);
    let env = Env::from_pairs([("LEAN_SYSROOT", tc.as_os_str())]);
    let found = Discovery::new().with_env(env).with_provisioned_runtime(&rt).find().unwrap();
    assert_eq!(found.found_via, DiscoverySource::LeanSysroot);
    assert_eq!(found.kind, InstallKind::Toolchain);
    assert_eq!(found.version.as_deref(), Some("4.35.0"));
    assert_eq!(found.lake(), Some(tc.join("bin/lake")));
}

#[test]
fn lean_sysroot_without_lean_is_an_error_not_a_fallthrough() {
    let root = scratch("sysroot-bad");
    let rt = runtime_dir(&root);
    let env = Env::from_pairs([("LEAN_SYSROOT", root.join("nothing-here").into_os_string())]);
    let err = Discovery::new().with_env(env).with_provisioned_runtime(&rt).find().unwrap_err();
    assert_eq!(err.code, ErrorCode::ToolchainInvalid);
    assert!(err.hint.contains("LEAN_SYSROOT"), "{err}");
}

#[test]
fn provisioned_runtime_is_used_when_nothing_is_configured() {
    let root = scratch("provisioned");
    let rt = runtime_dir(&root);
    let found = Discovery::new().with_env(Env::default()).with_provisioned_runtime(&rt).find().unwrap();
    assert_eq!(found.found_via, DiscoverySource::ProvisionedRuntime);
    assert_eq!(found.runtime_library, rt.join("libleanshared.so"));
}

#[test]
fn provisioned_runtime_is_not_enough_when_lake_is_required() {
    let root = scratch("needs-toolchain");
    let rt = runtime_dir(&root);
    let err = Discovery::new().with_env(Env::default()).with_provisioned_runtime(&rt).require_toolchain(true).find().unwrap_err();
    assert_eq!(err.code, ErrorCode::ToolchainNotFound);
    assert!(err.hint.contains("elan"), "{err}");
}

#[test]
fn package_toolchain_file_resolves_through_elan_folder_naming() {
    assert_eq!(elan_dir_name("leanprover/lean4:v4.35.0"), "leanprover--lean4---v4.35.0");
    assert_eq!(elan_dir_name("v4.35.0"), "leanprover--lean4---v4.35.0");
    let root = scratch("elan");
    let elan_home = root.join("elan");
    let toolchains = elan_home.join("toolchains");
    std::fs::create_dir_all(&toolchains).unwrap();
    let tc = fake_toolchain(&root, "exit 0");
    std::fs::rename(&tc, toolchains.join("leanprover--lean4---v4.35.0")).unwrap();
    let pkg = root.join("pkg");
    std::fs::create_dir_all(&pkg).unwrap();
    std::fs::write(pkg.join("lean-toolchain"), "leanprover/lean4:v4.35.0\n").unwrap();
    let env = Env::from_pairs([("ELAN_HOME", elan_home.as_os_str())]);
    let found = Discovery::new().with_env(env).with_package_dir(&pkg).require_toolchain(true).find().unwrap();
    assert_eq!(found.found_via, DiscoverySource::ElanToolchainFile);
    assert_eq!(found.root, toolchains.join("leanprover--lean4---v4.35.0"));
}

#[test]
fn lean_print_prefix_is_the_last_resort() {
    let root = scratch("print-prefix");
    let tc = fake_toolchain(&root, "exit 0");
    let bin = root.join("pathbin");
    script(&bin.join("lean"), &format!("[ \"$1\" = --print-prefix ] && echo {}\n", tc.display()));
    let env = Env::from_pairs([("PATH", bin.as_os_str())]);
    let found = Discovery::new().with_env(env).find().unwrap();
    assert_eq!(found.found_via, DiscoverySource::LeanOnPath);
    assert_eq!(found.root, tc);
}

#[test]
fn nothing_found_names_the_fetch_script() {
    let err = Discovery::new().with_env(Env::default()).find().unwrap_err();
    assert_eq!(err.code, ErrorCode::ToolchainNotFound);
    assert_eq!(err.code.code(), "LT-TOOLCHAIN-NOT-FOUND");
    assert!(err.hint.contains("scripts/fetch-lean-runtime.sh"), "{err}");
}
