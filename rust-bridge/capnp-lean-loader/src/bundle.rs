//! Opening a capability: runtime first (global), dependencies in manifest order (`RTLD_GLOBAL`
//! where marked), the primary last; module initializers before the end of initialization; every
//! library opened with `RTLD_NODELETE` so code from the bundle stays mapped for as long as the
//! process may run it (Lean objects such as closures can outlive the `Capability`).

use std::ffi::c_void;
use std::marker::PhantomData;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use libloading::os::unix::{Library, RTLD_GLOBAL, RTLD_LOCAL, RTLD_NOW};
use capnp_lean_toolchain::{CapabilityManifest, ManifestFile, RuntimeInit};

use crate::call::{expected_prototype, same_prototype, LeanArgs, LeanRet};
use crate::error::{LoaderCode, LoaderError};
use crate::global::{expected_global, kind_of_declaration, same_global, LeanGlobal, SymbolKind};
use crate::preflight::{cached_info, check_manifest, runtime_path, RUNTIME_FILE_NAME};
use crate::stamp;
use capnp_lean_leanrt::{abi::LeanObject, InitMode, IoResult, LeanRuntime, ThreadAttachment};

/// Keep libraries mapped after `dlclose` (glibc's value).
const RTLD_NODELETE: i32 = 0x1000;

/// Options of [`Capability::open_with`].
#[derive(Clone, Debug, Default)]
pub struct LoadOptions {
    /// Runtime to use when the manifest lists none (otherwise the process's runtime).
    pub runtime: Option<PathBuf>,
    /// Skip the preflight (it reads every library's symbol tables; skip only for speed when the
    /// same bundle was checked before). Without this, a bundle whose preflight record still
    /// matches every file it names is not checked again (see [`Capability::open_with`]).
    pub skip_preflight: bool,
}

struct Bundle {
    manifest: ManifestFile,
    runtime: &'static LeanRuntime,
    /// In opening order; the primary is last. Kept for as long as any `Capability` or `Export`
    /// of the bundle lives; the libraries themselves are never unmapped (`RTLD_NODELETE`).
    libraries: Vec<(PathBuf, Library)>,
}

/// An opened, initialized Lean capability. Cheap to clone.
#[derive(Clone)]
pub struct Capability {
    bundle: Arc<Bundle>,
}

/// Serializes opening: `dlopen` order and initializer runs must not interleave between threads.
static OPENING: Mutex<()> = Mutex::new(());

impl Capability {
    /// Opens the capability described by the manifest at `path` (ours, or one lean-rs wrote:
    /// see [`crate::lean_rs`]).
    pub fn open(path: &Path) -> Result<Capability, LoaderError> {
        Self::open_with(path, &LoadOptions::default())
    }

    /// Opens with options: preflight, runtime, dependencies, primary, initializers. A clean
    /// preflight is recorded beside the manifest (`<manifest>.preflight.json`: the size and
    /// modification time of every file it read); while that record matches, later opens (in any
    /// process) skip the preflight. Any changed, moved or missing file means a full preflight.
    pub fn open_with(path: &Path, options: &LoadOptions) -> Result<Capability, LoaderError> {
        let manifest = crate::lean_rs::read_manifest(path)?;
        let fallback = options.runtime.as_deref();
        // A bundle that passed the preflight and has not changed since is not read again (see
        // `crate::stamp`): the runtime's symbol table alone costs hundreds of milliseconds.
        if !options.skip_preflight && !stamp::still_valid(path, fallback) {
            let (checked, read) = stamp::recording(|| check_manifest(&manifest, fallback));
            checked?;
            stamp::write(path, fallback, &read);
        }
        let _opening = OPENING.lock().unwrap_or_else(|p| p.into_inner());
        let runtime = open_runtime(&manifest, options.runtime.as_deref())?;
        let _attached = runtime.attach_current_thread();
        check_version(&manifest.manifest, runtime)?;

        let mut libraries = Vec::new();
        for entry in manifest.libraries_in_load_order() {
            let path = manifest.library_path(entry);
            if path.file_name().is_some_and(|n| n == RUNTIME_FILE_NAME) {
                continue; // opened (globally, once per process) by `open_runtime`
            }
            let visibility = if entry.global { RTLD_GLOBAL } else { RTLD_LOCAL };
            // SAFETY: loading runs the library's ELF constructors; Lean libraries have none that
            // need more than the runtime, which is loaded and initialized.
            let library = unsafe { Library::open(Some(&path), RTLD_NOW | visibility | RTLD_NODELETE) }.map_err(|e| {
                LoaderError::new(
                    LoaderCode::OpenFailed,
                    format!("dlopen {} failed: {e}", path.display()),
                    "run capnp_lean_loader::preflight on the manifest to see which symbol or library is missing",
                )
            })?;
            libraries.push((path, library));
        }
        run_initializers(&manifest, &libraries, runtime)?;
        Ok(Capability { bundle: Arc::new(Bundle { manifest, runtime, libraries }) })
    }

    /// The manifest the capability was opened from.
    pub fn manifest(&self) -> &CapabilityManifest {
        &self.bundle.manifest.manifest
    }

    /// The runtime it runs on.
    pub fn runtime(&self) -> &'static LeanRuntime {
        self.bundle.runtime
    }

    /// Registers the calling thread with the Lean runtime while the guard lives; required on
    /// threads Lean did not create before calling exports that allocate (most do).
    pub fn attach_thread(&self) -> ThreadAttachment {
        self.bundle.runtime.attach_current_thread()
    }

    /// A typed export: `A` is a tuple of argument types, `R` the result type. The symbol must be
    /// listed in the manifest (when it lists exports) and defined by the primary library; when
    /// the manifest recorded Lean's C prototype, the Rust types must match it. A nullary constant
    /// is a global, not a function, and is refused here (`LOADER-SYMBOL-KIND`): read it with
    /// [`Capability::global`].
    pub fn export<A: LeanArgs, R: LeanRet>(&self, symbol: &str) -> Result<Export<A, R>, LoaderError> {
        let recorded = self.listed(symbol)?;
        if self.kind_of(symbol, recorded) == SymbolKind::Global {
            return Err(LoaderError::new(
                LoaderCode::SymbolKind,
                format!("{symbol} is a global holding a nullary Lean constant (set by the module initializer), not a function"),
                format!("read it with Capability::global::<T>(\"{symbol}\")"),
            ));
        }
        if let Some(proto) = recorded {
            let expected = expected_prototype::<A, R>(symbol);
            if !same_prototype(proto, &expected) {
                return Err(LoaderError::new(
                    LoaderCode::SignatureMismatch,
                    format!("{symbol} was built as `{proto}` but is called as `{expected}`"),
                    "change the Rust argument/result types to match the Lean definition",
                ));
            }
        }
        let f = self.primary_symbol(symbol)?;
        Ok(Export { bundle: self.bundle.clone(), f, _sig: PhantomData })
    }

    /// Reads a nullary `@[export]` constant: a global of the primary library that the module
    /// initializer filled (Lean emits `LEAN_EXPORT lean_object* name;` or a scalar type). Object
    /// values come back as a new reference — the module keeps its own — converted with
    /// [`crate::FromObj`] (`String`, `Vec<u8>`, `Obj`, …); unboxed scalars (`u8` … `u64`,
    /// `usize`, `f64`, `bool`) are copied. The symbol must be a global (per the manifest's
    /// recorded declaration, else the ELF symbol type; a function is refused with
    /// `LOADER-SYMBOL-KIND`) and `T` must match its recorded type (`LOADER-SIGNATURE`).
    pub fn global<T: LeanGlobal>(&self, symbol: &str) -> Result<T, LoaderError> {
        let recorded = self.listed(symbol)?;
        if self.kind_of(symbol, recorded) == SymbolKind::Function {
            return Err(LoaderError::new(
                LoaderCode::SymbolKind,
                format!("{symbol} is a function, not a global holding a nullary Lean constant"),
                format!("call it with Capability::export (e.g. cap.export::<(…), R>(\"{symbol}\"))"),
            ));
        }
        if let Some(declaration) = recorded {
            let expected = expected_global::<T>(symbol);
            if !same_global(declaration, &expected) {
                return Err(LoaderError::new(
                    LoaderCode::SignatureMismatch,
                    format!("{symbol} was built as `{declaration}` but is read as `{expected}`"),
                    "change the Rust type to match the Lean constant's type",
                ));
            }
        }
        let address = self.primary_symbol(symbol)?;
        // SAFETY: `address` is a global of the primary, which stays mapped (RTLD_NODELETE and the
        // bundle reference); it is data (checked above) of `T`'s C type when a declaration was
        // recorded.
        unsafe { T::read(address) }.ok_or_else(|| {
            LoaderError::new(
                LoaderCode::GlobalUninitialized,
                format!("{symbol} is still NULL: the initializer of {} that sets it has not run", self.manifest().package),
                "give the primary library its module initializer in the manifest (initialize_<package>_<Module>)",
            )
        })
    }

    /// The manifest's recorded C declaration of `symbol`, refusing symbols absent from a manifest
    /// that lists its exports.
    fn listed(&self, symbol: &str) -> Result<Option<&str>, LoaderError> {
        let m = self.manifest();
        let recorded = m.exports.iter().find(|e| e.symbol == symbol);
        if !m.exports.is_empty() && recorded.is_none() {
            return Err(LoaderError::new(
                LoaderCode::UnknownExport,
                format!("{symbol} is not among the exports of {} in its manifest", m.package),
                "add it to the exports passed to capnp_lean_toolchain::build_capability and rebuild",
            ));
        }
        Ok(recorded.and_then(|e| e.c_signature.as_deref()))
    }

    /// Function or global: from the recorded declaration, else from the primary's ELF symbol
    /// type (when the library can be read; otherwise assumed a function, as before globals).
    fn kind_of(&self, symbol: &str, recorded: Option<&str>) -> SymbolKind {
        if let Some(declaration) = recorded {
            return kind_of_declaration(declaration);
        }
        let (path, _) = self.bundle.libraries.last().expect("the primary is always opened");
        match cached_info(path) {
            Ok(info) if info.defined_data.contains(symbol) => SymbolKind::Global,
            _ => SymbolKind::Function,
        }
    }

    /// The address of `symbol` in the primary library.
    fn primary_symbol(&self, symbol: &str) -> Result<*const c_void, LoaderError> {
        let (path, primary) = self.bundle.libraries.last().expect("the primary is always opened");
        let mut name = symbol.as_bytes().to_vec();
        name.push(0);
        // SAFETY: only the address is taken here; it is used through a typed `Export` or read
        // as the global's checked type.
        unsafe { primary.get::<*const c_void>(&name) }.map(|s| *s).map_err(|e| {
            LoaderError::new(LoaderCode::UnknownExport, format!("{} does not define {symbol}: {e}", path.display()), "rebuild the capability")
        })
    }
}

/// A resolved export with a fixed Rust signature. Holds the bundle alive.
pub struct Export<A, R> {
    bundle: Arc<Bundle>,
    f: *const c_void,
    _sig: PhantomData<fn(A) -> R>,
}

// SAFETY: `f` is the address of code that stays mapped (RTLD_NODELETE + the bundle `Arc`);
// calling it from another thread is as sound as from this one, provided that thread is attached
// to the runtime — which `call` documents — and the arguments are built on the calling thread.
unsafe impl<A, R> Send for Export<A, R> {}
// SAFETY: as above; `call` takes `&self` and shares nothing mutable.
unsafe impl<A, R> Sync for Export<A, R> {}

impl<A: LeanArgs, R: LeanRet> Export<A, R> {
    /// Calls the export. The first call of the process marks the end of Lean's initialization
    /// phase (so capabilities opened before it could run `initialize` blocks). The calling
    /// thread should be attached (see [`Capability::attach_thread`]).
    pub fn call(&self, args: A) -> R {
        self.bundle.runtime.end_initialization();
        // SAFETY: the symbol was resolved from the primary, which stays mapped (RTLD_NODELETE
        // and the bundle reference), and its prototype was checked when recorded.
        unsafe { args.call::<R>(self.f) }
    }
}

fn open_runtime(manifest: &ManifestFile, fallback: Option<&Path>) -> Result<&'static LeanRuntime, LoaderError> {
    let failed = |e: capnp_lean_leanrt::RuntimeError| LoaderError::new(LoaderCode::RuntimeFailed, e.to_string(), e.hint);
    let runtime = match runtime_path(manifest, fallback) {
        Some(path) => LeanRuntime::open(&path).map_err(failed)?,
        None => LeanRuntime::from_process().map_err(|e| {
            LoaderError::new(LoaderCode::RuntimeMissing, e.to_string(), "list libleanshared.so in the manifest or pass LoadOptions::runtime")
        })?,
    };
    let mode = match manifest.manifest.runtime_init {
        RuntimeInit::RuntimeModule => InitMode::RuntimeModule,
        RuntimeInit::Full => InitMode::Full,
    };
    runtime.initialize(mode).map_err(failed)?;
    Ok(runtime)
}

fn check_version(manifest: &CapabilityManifest, runtime: &LeanRuntime) -> Result<(), LoaderError> {
    let Some((major, minor, patch)) = runtime.lean_version() else { return Ok(()) };
    let actual = format!("{major}.{minor}.{patch}");
    if manifest.toolchain_version == "unknown" || manifest.toolchain_version == actual {
        return Ok(());
    }
    Err(LoaderError::new(
        LoaderCode::VersionMismatch,
        format!("{} was built with Lean {} but the runtime is {actual}", manifest.package, manifest.toolchain_version),
        "rebuild the capability with the runtime's toolchain, or load the runtime it was built with",
    ))
}

/// Runs each library's initializer in load order with `builtin = 1`, as a compiled `main` does,
/// with panic messages off while they run; stops at the first IO error.
fn run_initializers(manifest: &ManifestFile, libraries: &[(PathBuf, Library)], runtime: &LeanRuntime) -> Result<(), LoaderError> {
    for entry in manifest.libraries_in_load_order() {
        let Some(init) = &entry.initializer else { continue };
        let path = manifest.library_path(entry);
        let Some((_, library)) = libraries.iter().find(|(p, _)| *p == path) else { continue };
        let mut name = init.as_bytes().to_vec();
        name.push(0);
        // SAFETY: module initializers of Lean 4.35 take `uint8_t builtin` and return an IO result.
        let f = unsafe { library.get::<unsafe extern "C" fn(u8) -> *mut LeanObject>(&name) }.map(|s| *s).map_err(|e| {
            LoaderError::new(LoaderCode::InitializerMissing, format!("{} lacks {init}: {e}", path.display()), "regenerate the manifest")
        })?;
        // SAFETY: runtime initialized; the initializer is run on an attached thread.
        let result = unsafe {
            (runtime.fns().lean_set_panic_messages)(false);
            let raw = f(1);
            (runtime.fns().lean_set_panic_messages)(true);
            IoResult::from_raw(raw)
        };
        if let Err(e) = result.into_result() {
            let after_end = if runtime.initialization_ended() {
                " (it ran after the end of initialization because another capability was already called; open all capabilities before the first call)"
            } else {
                ""
            };
            return Err(LoaderError::new(
                LoaderCode::InitializerFailed,
                format!("{init} in {} failed: {}{after_end}", path.display(), e.message),
                "fix the failing `initialize`/`builtin_initialize` in the Lean package",
            ));
        }
    }
    Ok(())
}
