//! Manifest schema: round trip, relocation, schema-version rejection, and the ELF facts it is
//! checked against.

mod common;

use common::{scratch, shared_object};
use capnp_lean_toolchain::elf::{host_machine, read_dynamic_info};
use capnp_lean_toolchain::{CapabilityManifest, ErrorCode, ManifestBuilder, ManifestFile};

const LIB: &str = r#"
#include <stdint.h>
#include <string.h>
int demo_len(const char* s) { return (int)strlen(s); }
extern void* lean_alloc_object(unsigned long);
extern void some_weak_thing(void) __attribute__((weak));
void* initialize_demo_Demo(uint8_t builtin) { if (some_weak_thing) some_weak_thing(); return lean_alloc_object(8); }
uint32_t demo_add(uint32_t a, uint32_t b) { return a + b; }
static int hidden(void) { return 1; }
int demo_hidden_user(void) { return hidden(); }
void* demo_banner; /* a nullary Lean constant: a global the initializer fills */
"#;

#[test]
fn elf_reader_sees_exports_undefined_and_weak_symbols() {
    let dir = scratch("elf");
    let so = dir.join("libdemo.so");
    shared_object(LIB, &so, &["-Wl,-soname,libdemo.so", "-Wl,-rpath,$ORIGIN/deps"]);
    let info = read_dynamic_info(&so).unwrap();
    assert_eq!(info.machine, host_machine());
    assert_eq!(info.soname.as_deref(), Some("libdemo.so"));
    assert!(info.defined.contains("demo_add") && info.defined.contains("initialize_demo_Demo"));
    assert!(!info.defined.contains("hidden"));
    assert!(info.defined.contains("demo_banner") && info.defined_data.contains("demo_banner"), "globals are data symbols");
    assert!(!info.defined_data.contains("demo_add"), "functions are not data");
    let undefined = |name: &str| info.undefined.iter().find(|u| u.name == name).cloned();
    assert_eq!(undefined("lean_alloc_object").map(|u| u.weak), Some(false));
    assert_eq!(undefined("some_weak_thing").map(|u| u.weak), Some(true));
    assert!(info.needed.iter().any(|n| n.starts_with("libc.so")), "{:?}", info.needed);
    assert_eq!(info.runpath.iter().chain(&info.rpath).next().map(String::as_str), Some("$ORIGIN/deps"));
}

#[test]
fn elf_reader_rejects_non_elf_files_with_a_code() {
    let dir = scratch("elf-bad");
    let path = dir.join("not-elf.so");
    std::fs::write(&path, b"hello, this is not an ELF file at all, not even close....................").unwrap();
    assert_eq!(read_dynamic_info(&path).unwrap_err().code, ErrorCode::ElfInvalid);
}

#[test]
fn manifest_round_trips_and_stores_paths_relative_to_its_folder() {
    let dir = scratch("manifest-roundtrip");
    let so = dir.join("lib/libdemo.so");
    shared_object(LIB, &so, &[]);
    let dep = dir.join("lib/libdep.so");
    shared_object("int dep_value(void) { return 7; }\n", &dep, &[]);
    let manifest = ManifestBuilder::new("demo", "Demo", "4.35.0", &so)
        .dependency(&dep, true, None)
        .exports(["demo_add"])
        .build(&dir)
        .unwrap();
    assert_eq!(manifest.primary.path, std::path::Path::new("lib/libdemo.so"));
    let path = dir.join("demo.capability.json");
    manifest.write(&path).unwrap();
    let read = ManifestFile::read(&path).unwrap();
    assert_eq!(read.manifest, manifest);

    // Move the whole bundle: relative paths follow it.
    let moved = scratch("manifest-moved");
    std::fs::remove_dir_all(&moved).unwrap();
    std::fs::rename(&dir, &moved).unwrap();
    let read = ManifestFile::read(&moved.join("demo.capability.json")).unwrap();
    assert!(read.library_path(&read.manifest.primary).is_file());
    let order: Vec<_> = read.libraries_in_load_order().map(|l| l.path.clone()).collect();
    assert_eq!(order, vec![std::path::PathBuf::from("lib/libdep.so"), "lib/libdemo.so".into()]);
}

#[test]
fn unknown_schema_version_is_rejected_before_anything_else() {
    let err = CapabilityManifest::parse(r#"{"schema_version": 2, "whatever": true}"#).unwrap_err();
    assert_eq!(err.code, ErrorCode::ManifestSchemaUnsupported);
    let err = CapabilityManifest::parse(r#"{"package": "x"}"#).unwrap_err();
    assert_eq!(err.code, ErrorCode::ManifestInvalid);
}

#[test]
fn unknown_fields_are_rejected_rather_than_ignored() {
    let text = r#"{"schema_version": 1, "package": "demo", "root_module": "Demo", "toolchain_version": "4.35.0",
        "primary": {"path": "libdemo.so", "global": false, "surprise": 1}}"#;
    let err = CapabilityManifest::parse(text).unwrap_err();
    assert_eq!(err.code, ErrorCode::ManifestInvalid);
    assert!(err.message.contains("surprise"), "{err}");
}

#[test]
fn initializer_must_exist_in_the_primary_library() {
    let dir = scratch("manifest-no-init");
    let so = dir.join("libdemo.so");
    shared_object(LIB, &so, &[]);
    let err = ManifestBuilder::new("other", "Demo", "4.35.0", &so).build(&dir).unwrap_err();
    assert!(err.message.contains("initialize_other_Demo"), "{err}");
}

#[test]
fn needed_libraries_found_in_build_folders_become_global_dependencies_first() {
    let dir = scratch("manifest-needed");
    let base = dir.join("libbase.so");
    shared_object("int base_value(void) { return 1; }\n", &base, &["-Wl,-soname,libbase.so"]);
    let mid = dir.join("libmid.so");
    shared_object("int base_value(void); int mid_value(void) { return base_value() + 1; }\n", &mid, &["-Wl,-soname,libmid.so", "-L", dir.to_str().unwrap(), "-lbase"]);
    let so = dir.join("libdemo.so");
    let src = format!("{LIB}\nint mid_value(void); int demo_mid(void) {{ return mid_value(); }}\n");
    shared_object(&src, &so, &["-L", dir.to_str().unwrap(), "-lmid"]);
    let manifest = ManifestBuilder::new("demo", "Demo", "4.35.0", &so)
        .dependencies_from_needed(std::slice::from_ref(&dir))
        .unwrap()
        .build(&dir)
        .unwrap();
    let deps: Vec<_> = manifest.dependencies.iter().map(|d| (d.path.to_str().unwrap().to_string(), d.global)).collect();
    assert_eq!(deps, vec![("libbase.so".to_string(), true), ("libmid.so".to_string(), true)]);
}

#[test]
fn initializer_names_follow_lean_mangling() {
    use capnp_lean_toolchain::names::{module_initializer, shared_library_candidates};
    assert_eq!(module_initializer("demo", "Demo.Rpc"), "initialize_demo_Demo_Rpc");
    assert_eq!(module_initializer("my_pkg", "Foo.Bar_baz"), "initialize_my__pkg_Foo_Bar__baz");
    assert_eq!(module_initializer("demo", "Démo"), "initialize_demo_D_xe9mo");
    assert_eq!(shared_library_candidates("my_pkg", "Lib")[0], "libmy__pkg_Lib.so");
}

#[test]
fn copied_bundles_are_relocatable_and_bring_their_rpath_siblings() {
    let dir = scratch("bundle-source");
    let helper = dir.join("libhelper.so");
    shared_object("int helper_value(void) { return 3; }\n", &helper, &["-Wl,-soname,libhelper.so"]);
    let so = dir.join("libdemo.so");
    let src = format!("{LIB}\nint helper_value(void); int demo_helper(void) {{ return helper_value(); }}\n");
    shared_object(&src, &so, &["-L", dir.to_str().unwrap(), "-lhelper", "-Wl,-rpath,$ORIGIN"]);
    let runtime = dir.join("rt/libleanshared.so");
    shared_object("int lean_main(void) { return 0; }\n", &runtime, &[]);
    let manifest = ManifestBuilder::new("demo", "Demo", "4.35.0", &so).dependency(&runtime, true, None).build(&dir).unwrap();
    manifest.write(&dir.join("demo.capability.json")).unwrap();
    let source = ManifestFile::read(&dir.join("demo.capability.json")).unwrap();

    let dest = scratch("bundle-dest");
    let copied = source.copy_bundle(&dest, false).unwrap();
    assert_eq!(copied.manifest.primary.path, std::path::Path::new("lib/libdemo.so"));
    assert!(dest.join("lib/libhelper.so").is_file(), "the rpath sibling travels with the primary");
    assert!(copied.manifest.dependencies[0].path.is_absolute(), "the runtime stays where it is");
    let reread = ManifestFile::read(&dest.join("demo.capability.json")).unwrap();
    assert_eq!(reread.manifest, copied.manifest);
    assert!(reread.library_path(&reread.manifest.primary).is_file());
}
