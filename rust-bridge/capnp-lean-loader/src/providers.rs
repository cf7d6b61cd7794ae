//! Where symbols come from: resolving `DT_NEEDED` entries the way the dynamic linker would
//! without `LD_LIBRARY_PATH` (the loader must work with it cleared), and naming the library that
//! probably provides a missing symbol.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use std::sync::Arc;

use capnp_lean_toolchain::elf::ElfDynamicInfo;

use crate::preflight::cached_info;

/// The system's library folders: `/etc/ld.so.conf(.d)` entries plus the built-in defaults.
pub fn system_library_dirs() -> Vec<PathBuf> {
    let mut dirs = Vec::new();
    let mut confs = vec![PathBuf::from("/etc/ld.so.conf")];
    if let Ok(entries) = std::fs::read_dir("/etc/ld.so.conf.d") {
        let mut more: Vec<_> = entries.flatten().map(|e| e.path()).filter(|p| p.extension().is_some_and(|e| e == "conf")).collect();
        more.sort();
        confs.extend(more);
    }
    for conf in confs {
        let Ok(text) = std::fs::read_to_string(&conf) else { continue };
        for line in text.lines().map(str::trim) {
            if line.starts_with('/') {
                dirs.push(PathBuf::from(line));
            }
        }
    }
    for default in ["/lib/x86_64-linux-gnu", "/usr/lib/x86_64-linux-gnu", "/lib64", "/usr/lib64", "/lib", "/usr/lib"] {
        dirs.push(PathBuf::from(default));
    }
    dirs.dedup();
    dirs
}

/// Finds `name` (a `DT_NEEDED` entry) for the library at `from`, honouring its RUNPATH/RPATH
/// (with `$ORIGIN`) and then the system folders.
pub fn resolve_needed(name: &str, from: &Path, info: &ElfDynamicInfo, system: &[PathBuf]) -> Option<PathBuf> {
    if name.contains('/') {
        return Path::new(name).is_file().then(|| PathBuf::from(name));
    }
    let origin = from.parent().unwrap_or(Path::new("."));
    let expand = |p: &String| PathBuf::from(p.replace("$ORIGIN", &origin.display().to_string()).replace("${ORIGIN}", &origin.display().to_string()));
    let own: Vec<PathBuf> = if info.runpath.is_empty() { info.rpath.iter().map(expand).collect() } else { info.runpath.iter().map(expand).collect() };
    own.iter().chain(system).map(|d| d.join(name)).find(|p| p.is_file())
}

/// Every symbol exported by the libraries `roots` need, transitively (libc, libstdc++, …).
/// Each library is read once per process (see [`cached_info`]).
pub fn exports_of_needed_closure(roots: &[(&Path, &ElfDynamicInfo)], skip: &BTreeSet<String>) -> (BTreeSet<String>, Vec<(PathBuf, String)>) {
    let system = system_library_dirs();
    let mut exports = BTreeSet::new();
    let mut unresolved = Vec::new();
    let mut seen = BTreeSet::new();
    let mut queue: Vec<(PathBuf, Needed<'_>)> = roots.iter().map(|(p, i)| (p.to_path_buf(), Needed::Root(i))).collect();
    while let Some((path, info)) = queue.pop() {
        let info = info.get();
        for name in &info.needed {
            if skip.contains(name) || !seen.insert(name.clone()) {
                continue;
            }
            match resolve_needed(name, &path, info, &system) {
                Some(found) => {
                    if let Ok(dep) = cached_info(&found) {
                        exports.extend(dep.defined.iter().cloned());
                        queue.push((found, Needed::Dependency(dep)));
                    }
                }
                None => unresolved.push((path.clone(), name.clone())),
            }
        }
    }
    (exports, unresolved)
}

/// A library of the closure: a root (borrowed) or a dependency (shared from the cache).
enum Needed<'a> {
    Root(&'a ElfDynamicInfo),
    Dependency(Arc<ElfDynamicInfo>),
}

impl Needed<'_> {
    fn get(&self) -> &ElfDynamicInfo {
        match self {
            Needed::Root(info) => info,
            Needed::Dependency(info) => info,
        }
    }
}

/// A guess at which library defines `symbol`, with the usual fix.
pub fn likely_provider(symbol: &str) -> (&'static str, &'static str) {
    let starts = |prefixes: &[&str]| prefixes.iter().any(|p| symbol.starts_with(p));
    if starts(&["_ZN2kj", "_ZNK2kj", "_ZTVN2kj", "_ZTIN2kj", "_ZTSN2kj"]) {
        ("KJ (libkj.so / libkj-async.so)", "install libcapnp-dev (Cap'n Proto 0.9.2) and list the KJ libraries as global dependencies")
    } else if starts(&["_ZN5capnp", "_ZNK5capnp", "_ZTVN5capnp", "_ZTIN5capnp"]) {
        ("Cap'n Proto (libcapnp.so / libcapnp-rpc.so)", "install libcapnp-dev and list libcapnp/libcapnp-rpc as global dependencies")
    } else if starts(&["capnp_lean_kj_"]) {
        ("the capnp-lean Lean glue (its Capnp.Rpc.Kj externs)", "run the capability in capnp-lean-worker (which exports them), or link libcapnp_lean_glue.a into the program with -rdynamic (docs/lean-kj.md)")
    } else if starts(&["capnp_lean_"]) {
        ("the capnp-lean C ABI shim (ffi-cxx)", "add the capnp-lean bridge library to the manifest's dependencies with global = true")
    } else if starts(&["lean_", "l_", "initialize_", "_init_l_"]) {
        ("the Lean runtime (libleanshared.so) or another Lean package's library", "list libleanshared.so (and the Lean libraries this one imports) as global dependencies before it")
    } else if starts(&["_ZNSt", "_ZSt", "_ZNKSt", "__cxa_", "_Znwm", "_ZdlPv", "__gxx_"]) {
        ("the C++ standard library (libstdc++.so.6)", "link the library with -lstdc++ or add libstdc++ to its DT_NEEDED")
    } else {
        ("an unknown library", "add the library that defines it to the manifest's dependencies (global = true)")
    }
}
