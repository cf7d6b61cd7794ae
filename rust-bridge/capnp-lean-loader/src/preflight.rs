//! The preflight ("doctor"): everything that can be checked before `dlopen` — the manifest, the
//! files, the architecture, initializer and export symbols, `DT_NEEDED` resolution without
//! `LD_LIBRARY_PATH`, and *every* undefined symbol of every library in the bundle, in load
//! order (a symbol only counts as provided if the library defining it is opened earlier and
//! globally, is the library itself, or is one of its needed system libraries).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::SystemTime;

use capnp_lean_toolchain::elf::{host_machine, machine_name, read_dynamic_info, ElfDynamicInfo};
use capnp_lean_toolchain::ManifestFile;

use crate::error::{Findings, LoaderCode, LoaderError};
use crate::providers::{exports_of_needed_closure, likely_provider};

/// File name that marks the Lean runtime among a manifest's dependencies.
pub const RUNTIME_FILE_NAME: &str = "libleanshared.so";

/// What identifies one version of a file: its path, size and modification time.
type FileVersion = (PathBuf, u64, Option<SystemTime>);

/// Reads ELF facts once per version of a file (path, size, modification time): the 230 MB
/// runtime and the system libraries are consulted by every preflight, and a library rebuilt
/// in place while the process runs is read again.
pub(crate) fn cached_info(path: &Path) -> Result<Arc<ElfDynamicInfo>, LoaderError> {
    static CACHE: OnceLock<Mutex<HashMap<FileVersion, Arc<ElfDynamicInfo>>>> = OnceLock::new();
    let cache = CACHE.get_or_init(Default::default);
    crate::stamp::note_read(path);
    let key = std::fs::metadata(path).ok().map(|m| (path.to_path_buf(), m.len(), m.modified().ok()));
    if let Some(info) = key.as_ref().and_then(|k| cache.lock().unwrap_or_else(|p| p.into_inner()).get(k).cloned()) {
        return Ok(info);
    }
    let info = Arc::new(read_dynamic_info(path).map_err(|e| LoaderError::new(LoaderCode::LibraryInvalid, e.message, e.hint))?);
    if let Some(key) = key {
        cache.lock().unwrap_or_else(|p| p.into_inner()).insert(key, info.clone());
    }
    Ok(info)
}

/// The runtime of a bundle: the manifest's `libleanshared.so` dependency, else `fallback`.
pub fn runtime_path(manifest: &ManifestFile, fallback: Option<&Path>) -> Option<PathBuf> {
    manifest
        .manifest
        .dependencies
        .iter()
        .find(|d| d.path.file_name().is_some_and(|n| n == RUNTIME_FILE_NAME))
        .map(|d| manifest.library_path(d))
        .or_else(|| fallback.map(Path::to_path_buf))
}

/// Checks a manifest file (ours or lean-rs's): reads it, then [`check_manifest`].
pub fn preflight(manifest_path: &Path, runtime: Option<&Path>) -> Result<(), Findings> {
    let manifest = crate::lean_rs::read_manifest(manifest_path).map_err(|e| Findings(vec![e]))?;
    check_manifest(&manifest, runtime)
}

/// Runs every check and returns all findings at once (empty means loadable).
pub fn check_manifest(manifest: &ManifestFile, runtime: Option<&Path>) -> Result<(), Findings> {
    let mut findings = Vec::new();
    let m = &manifest.manifest;
    let package_hint = format!("rebuild the capability (`lake build` in the {} package) and regenerate its manifest", m.package);

    // Files, format, architecture, initializers.
    let mut libs: Vec<(PathBuf, bool, Arc<ElfDynamicInfo>)> = Vec::new();
    for entry in manifest.libraries_in_load_order() {
        let path = manifest.library_path(entry);
        if !path.is_file() {
            findings.push(LoaderError::new(LoaderCode::LibraryMissing, format!("{} does not exist", path.display()), &package_hint));
            continue;
        }
        let info = match cached_info(&path) {
            Ok(info) => info,
            Err(e) => {
                findings.push(e);
                continue;
            }
        };
        if info.machine != host_machine() {
            findings.push(LoaderError::new(
                LoaderCode::ArchitectureMismatch,
                format!("{} is built for {}, this process is {}", path.display(), machine_name(info.machine), machine_name(host_machine())),
                format!("build the library on/for {}", machine_name(host_machine())),
            ));
        }
        if let Some(init) = &entry.initializer {
            if !info.defined.contains(init) {
                findings.push(LoaderError::new(
                    LoaderCode::InitializerMissing,
                    format!("{} does not define its initializer {init}", path.display()),
                    "check `package` and `root_module` in the manifest (initializer = initialize_<package>_<Module>)",
                ));
            }
        }
        libs.push((path, entry.global, info));
    }
    if let Some((primary, _, info)) = libs.last().filter(|_| manifest.library_path(&m.primary).is_file()) {
        let missing: Vec<_> = m.exports.iter().filter(|e| !info.defined.contains(&e.symbol)).map(|e| e.symbol.clone()).collect();
        if !missing.is_empty() {
            findings.push(LoaderError::new(
                LoaderCode::ExportMissing,
                format!("{} does not export {}", primary.display(), missing.join(", ")),
                &package_hint,
            ));
        }
    }

    // The runtime, if it is not itself part of the bundle.
    let runtime = runtime_path(manifest, runtime);
    let runtime_info = match &runtime {
        Some(path) if libs.iter().any(|(p, _, _)| p == path) => None,
        Some(path) => match cached_info(path) {
            Ok(info) => Some(info),
            Err(e) => {
                findings.push(LoaderError::new(LoaderCode::RuntimeMissing, e.message, "run `bash scripts/fetch-lean-runtime.sh` or set LEAN_SYSROOT"));
                None
            }
        },
        None => {
            findings.push(LoaderError::new(
                LoaderCode::RuntimeMissing,
                "the manifest lists no libleanshared.so and no runtime was given",
                "regenerate the manifest with lean-toolchain (it lists the runtime first), or pass LoadOptions::runtime",
            ));
            None
        }
    };

    check_symbols(&libs, runtime_info.as_deref(), &mut findings);
    if findings.is_empty() {
        Ok(())
    } else {
        Err(Findings(findings))
    }
}

/// Symbols the running program exports to the libraries it opens (e.g. the Lean glue's
/// `capnp_lean_kj_*` externs in `capnp-lean-worker`, or in a Lean program linked with
/// `-rdynamic`): a capability may rely on its host for them.
fn host_exports() -> &'static BTreeSet<String> {
    static EXPORTS: std::sync::OnceLock<BTreeSet<String>> = std::sync::OnceLock::new();
    EXPORTS.get_or_init(|| {
        std::env::current_exe().ok().and_then(|exe| read_dynamic_info(&exe).ok()).map(|info| info.defined).unwrap_or_default()
    })
}

fn check_symbols(libs: &[(PathBuf, bool, Arc<ElfDynamicInfo>)], runtime: Option<&ElfDynamicInfo>, findings: &mut Vec<LoaderError>) {
    // Names under which bundle libraries satisfy DT_NEEDED entries (already loaded by then).
    let bundle_names: BTreeSet<String> = libs
        .iter()
        .flat_map(|(p, _, i)| i.soname.iter().cloned().chain(p.file_name().map(|n| n.to_string_lossy().into_owned())))
        .collect();
    // The symbol sets visible to the next library opened (borrowed, not merged: the runtime's
    // holds 230,000 names).
    let mut visible: Vec<&BTreeSet<String>> = runtime.map(|r| &r.defined).into_iter().collect();
    for (index, (path, global, info)) in libs.iter().enumerate() {
        let (system, unresolved) = exports_of_needed_closure(&[(path, info)], &bundle_names);
        for (from, name) in unresolved {
            findings.push(LoaderError::new(
                LoaderCode::NeededLibraryMissing,
                format!("{} needs {name}, which is not found via its RUNPATH or the system folders", from.display()),
                format!("link it with -Wl,-rpath,$ORIGIN (or an absolute rpath), or list {name} as a dependency in the manifest; LD_LIBRARY_PATH is not consulted"),
            ));
        }
        let mut missing: BTreeMap<&str, Vec<String>> = BTreeMap::new();
        let mut misordered = Vec::new();
        for sym in info.undefined.iter().filter(|u| !u.weak) {
            let name = sym.name.as_str();
            if visible.iter().any(|v| v.contains(name)) || info.defined.contains(name) || system.contains(name) {
                continue;
            }
            if host_exports().contains(name) {
                crate::stamp::note_host_symbol();
                continue;
            }
            if let Some((other, _, _)) = libs.iter().enumerate().find(|(j, (_, _, o))| *j != index && o.defined.contains(name)).map(|(_, l)| l) {
                misordered.push(format!("{name} (defined by {}, which is opened later or without global)", other.display()));
                continue;
            }
            missing.entry(likely_provider(name).0).or_default().push(name.to_string());
        }
        if !misordered.is_empty() {
            findings.push(LoaderError::new(
                LoaderCode::UndefinedSymbols,
                format!("{} needs symbols not visible when it is opened: {}", path.display(), misordered.join(", ")),
                "list the defining library before it in `dependencies` with global = true",
            ));
        }
        if !missing.is_empty() {
            let hints: BTreeSet<&str> = missing.values().flatten().map(|s| likely_provider(s).1).collect();
            let groups: Vec<String> = missing.iter().map(|(provider, syms)| format!("{} (likely from {provider})", syms.join(", "))).collect();
            findings.push(LoaderError::new(
                LoaderCode::UndefinedSymbols,
                format!("{} has undefined symbols nothing in the bundle, the runtime or the system provides: {}", path.display(), groups.join("; ")),
                hints.into_iter().collect::<Vec<_>>().join("; "),
            ));
        }
        if *global || path.file_name().is_some_and(|n| n == RUNTIME_FILE_NAME) {
            visible.push(&info.defined);
        }
    }
}
