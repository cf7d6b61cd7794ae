//! The preflight names what would make `dlopen` or a call fail, before anything is loaded:
//! undefined symbols with their likely library, misordered or non-global dependencies, missing
//! files, foreign architectures, unresolvable DT_NEEDED entries, missing initializers/exports.

mod loader_support;

use capnp_lean_loader::{check_manifest, preflight, Capability, LoaderCode};
use capnp_lean_toolchain::ManifestFile;

#[test]
fn missing_symbols_are_named_with_the_library_that_probably_provides_them() {
    let Some(runtime) = loader_support::runtime() else { return };
    let dir = loader_support::scratch("preflight-missing");
    let manifest = loader_support::build_single(&dir, &runtime, "fxmissing", "FxMissing");
    let findings = preflight(&manifest, None).unwrap_err();
    let undefined: Vec<_> = findings.with_code(LoaderCode::UndefinedSymbols).collect();
    assert_eq!(undefined.len(), 1, "{findings}");
    let f = undefined[0];
    assert!(f.message.contains("_ZN2kj9EventLoop4pollEv (likely from KJ"), "{f}");
    assert!(f.message.contains("lean_capnp_fixture_nonexistent (likely from the Lean runtime"), "{f}");
    assert!(!f.message.contains("lean_mk_string"), "symbols the runtime exports are not reported: {f}");
    assert!(f.hint.contains("libcapnp-dev"), "{f}");
    assert_eq!(f.code.code(), "LOADER-UNDEFINED-SYMBOLS");

    // Opening refuses before dlopen, with the same finding.
    let err = Capability::open(&manifest).err().expect("refused");
    assert_eq!(err.code, LoaderCode::UndefinedSymbols);
}

#[test]
fn a_dependency_that_is_not_global_is_reported_as_invisible_to_the_primary() {
    let Some(runtime) = loader_support::runtime() else { return };
    let dir = loader_support::scratch("preflight-not-global");
    let manifest = loader_support::build_fxcap(&dir, &runtime, false);
    let findings = preflight(&manifest, None).unwrap_err();
    let text = findings.to_string();
    assert!(text.contains("fxdep_scale (defined by") && text.contains("libfxdep.so, which is opened later or without global"), "{text}");
    assert!(findings.0.iter().any(|f| f.hint.contains("global = true")), "{text}");
}

#[test]
fn a_loadable_bundle_has_no_findings() {
    let Some(runtime) = loader_support::runtime() else { return };
    let dir = loader_support::scratch("preflight-clean");
    let manifest = loader_support::build_fxcap(&dir, &runtime, true);
    preflight(&manifest, None).unwrap();
}

#[test]
fn missing_files_foreign_architectures_and_missing_symbols_in_the_manifest_are_findings() {
    let Some(runtime) = loader_support::runtime() else { return };
    let dir = loader_support::scratch("preflight-files");
    let manifest_path = loader_support::build_fxcap(&dir, &runtime, true);
    let mut file = ManifestFile::read(&manifest_path).unwrap();

    // Foreign architecture: patch e_machine of a copy to aarch64.
    let dep = file.library_path(&file.manifest.dependencies[1]);
    let mut bytes = std::fs::read(&dep).unwrap();
    bytes[18..20].copy_from_slice(&183u16.to_le_bytes());
    let foreign = dir.join("lib/libforeign.so");
    std::fs::write(&foreign, bytes).unwrap();
    file.manifest.dependencies[1].path = foreign;
    file.manifest.dependencies.push(capnp_lean_toolchain::LibraryEntry { path: "lib/libgone.so".into(), global: true, initializer: None });
    file.manifest.primary.initializer = Some("initialize_fxcap_Wrong".into());
    file.manifest.exports.push(capnp_lean_toolchain::ExportEntry { symbol: "fxcap_gone".into(), c_signature: None });

    let findings = check_manifest(&file, None).unwrap_err();
    let codes: Vec<_> = findings.0.iter().map(|f| f.code).collect();
    for code in [LoaderCode::ArchitectureMismatch, LoaderCode::LibraryMissing, LoaderCode::InitializerMissing, LoaderCode::ExportMissing] {
        assert!(codes.contains(&code), "{code} missing from {findings}");
    }
    let arch = findings.with_code(LoaderCode::ArchitectureMismatch).next().unwrap();
    assert!(arch.message.contains("aarch64") && arch.message.contains("libforeign.so"), "{arch}");
    assert!(findings.with_code(LoaderCode::LibraryMissing).next().unwrap().message.contains("libgone.so"));
}

#[test]
fn needed_libraries_only_findable_through_ld_library_path_are_reported() {
    let Some(runtime) = loader_support::runtime() else { return };
    let dir = loader_support::scratch("preflight-needed");
    let hidden = dir.join("hidden");
    std::fs::create_dir_all(&hidden).unwrap();
    loader_support::compile("fxhelper", &hidden, &["-Wl,-soname,libfxhelper.so"]);
    // fxcap linked against the helper but without an rpath: only LD_LIBRARY_PATH would find it.
    let lib = dir.join("lib");
    std::fs::create_dir_all(&lib).unwrap();
    let dep = loader_support::compile("fxdep", &lib, &[]);
    let primary = loader_support::compile("fxcap", &lib, &[&format!("-L{}", hidden.display()), "-lfxhelper"]);
    let manifest = capnp_lean_toolchain::ManifestBuilder::new("fxcap", "FxCap", "4.35.0", &primary)
        .dependency(&runtime.runtime_library, true, None)
        .dependency(&dep, true, Some("initialize_fxdep_FxDep"))
        .exports(["fxcap_add"])
        .build(&dir)
        .unwrap();
    let path = dir.join("m.json");
    manifest.write(&path).unwrap();
    let findings = preflight(&path, None).unwrap_err();
    let f = findings.with_code(LoaderCode::NeededLibraryMissing).next().unwrap_or_else(|| panic!("{findings}"));
    assert!(f.message.contains("libfxhelper.so"), "{f}");
    assert!(f.hint.contains("rpath"), "{f}");
}

#[test]
fn an_unknown_manifest_schema_is_a_finding_not_a_crash() {
    let dir = loader_support::scratch("preflight-schema");
    let path = dir.join("m.json");
    std::fs::write(&path, r#"{"schema_version": 99}"#).unwrap();
    let findings = preflight(&path, None).unwrap_err();
    assert_eq!(findings.0[0].code, LoaderCode::ManifestInvalid);
    assert!(findings.0[0].message.contains("schema version 99"), "{findings}");
}

#[test]
fn symbols_of_the_lean_glue_are_reported_with_where_to_get_them() {
    let Some(runtime) = loader_support::runtime() else { return };
    let dir = loader_support::scratch("preflight-glue");
    let path = loader_support::build_single(&dir, &runtime, "fxneedsglue", "FxNeedsGlue");
    // This test program does not export the glue's externs, so nothing provides them.
    let findings = preflight(&path, None).unwrap_err();
    let f = findings.with_code(LoaderCode::UndefinedSymbols).next().unwrap_or_else(|| panic!("{findings}"));
    assert!(f.message.contains("capnp_lean_kj_serve (likely from the capnp-lean Lean glue"), "{f}");
    assert!(f.hint.contains("capnp-lean-worker") && f.hint.contains("libcapnp_lean_glue.a"), "{f}");
}

#[test]
fn a_clean_open_is_recorded_and_an_unchanged_bundle_is_not_checked_again() {
    let Some(runtime) = loader_support::runtime() else { return };
    let dir = loader_support::scratch("preflight-record");
    let manifest = loader_support::build_fxcap(&dir, &runtime, true);
    let record = dir.join("fxcap.capability.json.preflight.json");
    assert!(!record.exists());
    Capability::open(&manifest).unwrap();
    let written = std::fs::read_to_string(&record).expect("a clean preflight is recorded beside the manifest");
    assert!(written.contains("libfxcap.so") && written.contains("libfxdep.so") && written.contains("libleanshared.so"), "{written}");
    let stamp = std::fs::metadata(&record).unwrap().modified().unwrap();
    // A second open finds the record valid: no preflight runs, so nothing is recorded again;
    // also when the manifest is named differently (relative to the working directory).
    Capability::open(&manifest).unwrap();
    let relative = pathdiff(&manifest);
    Capability::open(&relative).unwrap();
    assert_eq!(std::fs::metadata(&record).unwrap().modified().unwrap(), stamp, "the record was rewritten: the preflight ran again");
}

/// `path` relative to the working directory (`..` as needed).
fn pathdiff(path: &std::path::Path) -> std::path::PathBuf {
    let cwd = std::env::current_dir().unwrap().canonicalize().unwrap();
    let path = path.canonicalize().unwrap();
    let common = cwd.ancestors().find(|a| path.starts_with(a)).unwrap().to_path_buf();
    let ups = cwd.strip_prefix(&common).unwrap().components().count();
    let mut relative: std::path::PathBuf = std::iter::repeat_n("..", ups).collect();
    relative.push(path.strip_prefix(&common).unwrap());
    relative
}

#[test]
fn a_bundle_changed_after_its_record_is_checked_again() {
    let Some(runtime) = loader_support::runtime() else { return };
    let dir = loader_support::scratch("preflight-record-stale");
    let manifest = loader_support::build_fxcap(&dir, &runtime, true);
    Capability::open(&manifest).unwrap();
    assert!(dir.join("fxcap.capability.json.preflight.json").exists());
    // The same libraries, the dependency no longer global. They are all loaded already
    // (RTLD_NODELETE), so dlopen would succeed: only the preflight can refuse this bundle.
    let mut file = ManifestFile::read(&manifest).unwrap();
    assert!(file.library_path(&file.manifest.dependencies[1]).ends_with("lib/libfxdep.so"));
    file.manifest.dependencies[1].global = false;
    file.manifest.write(&manifest).unwrap();
    let err = Capability::open(&manifest).err().expect("the changed bundle is checked and refused");
    assert_eq!(err.code, LoaderCode::UndefinedSymbols, "{err}");
}
