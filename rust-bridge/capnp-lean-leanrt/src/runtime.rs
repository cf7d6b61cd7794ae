//! The Lean runtime's entry points, resolved at run time from the loaded `libleanshared.so`.
//!
//! Nothing in this workspace links against the runtime at build time (most binaries must run
//! where Lean is absent). Instead [`LeanRuntime::open`] `dlopen`s the library (`RTLD_GLOBAL`, so
//! capability libraries opened later resolve their `lean_*` symbols against it), or
//! [`LeanRuntime::from_process`] looks the symbols up in the running process (for glue code
//! that is itself loaded into a Lean program). Either way the table is installed once per
//! process and lives until exit; the runtime is never unloaded.

use std::ffi::c_void;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};

use libloading::os::unix::{Library, RTLD_GLOBAL, RTLD_NOW};

use crate::abi::LeanObject;

type Obj = *mut LeanObject;

/// Failure to find or start the runtime, with a stable code and a repair hint.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("[{code}] {message} (hint: {hint})")]
pub struct RuntimeError {
    /// Stable identifier, e.g. `LEAN-RT-OPEN`.
    pub code: &'static str,
    /// What went wrong.
    pub message: String,
    /// What to do about it.
    pub hint: String,
}

impl RuntimeError {
    pub(crate) fn new(code: &'static str, message: String, hint: &str) -> Self {
        Self { code, message, hint: hint.into() }
    }
}

macro_rules! runtime_fns {
    ($( $(#[$doc:meta])* $name:ident : fn($($arg:ty),*) $(-> $ret:ty)? ; )*) => {
        /// Entry points of the runtime used by the port, one field per exported C function of
        /// the same name.
        #[allow(missing_docs)]
        #[derive(Clone, Copy)]
        pub struct RuntimeFns {
            $( $(#[$doc])* pub $name: unsafe extern "C" fn($($arg),*) $(-> $ret)?, )*
        }

        impl RuntimeFns {
            fn resolve(lib: &Library) -> Result<Self, Vec<&'static str>> {
                let mut missing = Vec::new();
                $(
                    // SAFETY: the symbol is declared with the prototype lean.h v4.35.0 gives it;
                    // the library stays loaded for the life of the process (see `install`).
                    let $name = unsafe {
                        lib.get::<unsafe extern "C" fn($($arg),*) $(-> $ret)?>(concat!(stringify!($name), "\0").as_bytes())
                    }.ok().map(|s| *s);
                    if $name.is_none() { missing.push(stringify!($name)); }
                )*
                if !missing.is_empty() {
                    return Err(missing);
                }
                Ok(Self { $( $name: $name.expect("checked above"), )* })
            }
        }
    };
}

runtime_fns! {
    lean_initialize_runtime_module: fn();
    lean_initialize: fn();
    lean_io_mark_end_initialization: fn();
    lean_init_task_manager: fn();
    lean_initialize_thread: fn();
    lean_finalize_thread: fn();
    lean_set_panic_messages: fn(bool);
    lean_alloc_small_object_core: fn(u32) -> Obj;
    lean_alloc_object: fn(usize) -> Obj;
    lean_free_object: fn(Obj);
    lean_inc_heartbeat: fn();
    mi_malloc: fn(usize) -> *mut c_void;
    lean_dec_ref_cold: fn(Obj);
    lean_inc_ref_huge_n: fn(Obj, usize);
    lean_mark_mt: fn(Obj);
    lean_mark_persistent: fn(Obj);
    lean_register_external_class: fn(crate::abi::ExternalFinalize, crate::abi::ExternalForeach) -> *mut crate::abi::LeanExternalClass;
    lean_apply_1: fn(Obj, Obj) -> Obj;
    lean_apply_2: fn(Obj, Obj, Obj) -> Obj;
    lean_apply_3: fn(Obj, Obj, Obj, Obj) -> Obj;
    lean_apply_4: fn(Obj, Obj, Obj, Obj, Obj) -> Obj;
    lean_apply_n: fn(Obj, u32, *mut Obj) -> Obj;
    lean_mk_io_user_error: fn(Obj) -> Obj;
    lean_io_error_to_string: fn(Obj) -> Obj;
    lean_utf8_strlen: fn(*const std::ffi::c_char) -> usize;
}

/// The resolved runtime: its function table and where it came from.
pub struct LeanRuntime {
    fns: RuntimeFns,
    library: Library,
    path: Option<PathBuf>,
}

static RUNTIME: OnceLock<LeanRuntime> = OnceLock::new();
static INSTALL: Mutex<()> = Mutex::new(());
/// The thread that initialized the runtime (or installed a host-managed one); it is already
/// registered with the runtime, so it is never attached or detached.
pub(crate) static INIT_THREAD: OnceLock<std::thread::ThreadId> = OnceLock::new();

impl LeanRuntime {
    /// Opens `libleanshared.so` at `path` with `RTLD_NOW | RTLD_GLOBAL` and installs it as the
    /// process's runtime. Opening the same runtime again returns the installed one; a different
    /// path once one is installed is an error (two Lean runtimes cannot share a process).
    pub fn open(path: &Path) -> Result<&'static LeanRuntime, RuntimeError> {
        let _guard = INSTALL.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(rt) = RUNTIME.get() {
            return match &rt.path {
                Some(p) if same_file(p, path) => Ok(rt),
                other => Err(RuntimeError::new(
                    "LEAN-RT-CONFLICT",
                    format!(
                        "a Lean runtime is already installed from {}; cannot also load {}",
                        other.as_ref().map_or("the process".into(), |p| p.display().to_string()),
                        path.display()
                    ),
                    "use one runtime per process: pass the same libleanshared.so everywhere",
                )),
            };
        }
        // SAFETY: loading the Lean runtime runs its ELF constructors, which only set up
        // allocator and thread state; it is never unloaded (the Library lives in a static).
        let library = unsafe { Library::open(Some(path), RTLD_NOW | RTLD_GLOBAL) }.map_err(|e| {
            RuntimeError::new(
                "LEAN-RT-OPEN",
                format!("cannot load the Lean runtime {}: {e}", path.display()),
                "run `bash scripts/fetch-lean-runtime.sh` or set LEAN_SYSROOT to a Lean 4.35.0 toolchain",
            )
        })?;
        Self::install(library, Some(path.to_path_buf()))
    }

    /// Uses the runtime already present in this process (the glue loaded into a Lean program).
    /// Such a runtime is *host-managed*: the Lean program initialized it and owns the end of
    /// initialization, so [`Self::initialize`] and [`Self::end_initialization`] do nothing, and
    /// the calling thread (a Lean thread) is never attached or detached.
    pub fn from_process() -> Result<&'static LeanRuntime, RuntimeError> {
        let _guard = INSTALL.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(rt) = RUNTIME.get() {
            return Ok(rt);
        }
        let rt = Self::install(Library::this(), None)?;
        let _ = INIT_THREAD.set(std::thread::current().id());
        Ok(rt)
    }

    /// Whether the runtime was taken from the process and its lifecycle belongs to the host.
    pub fn is_host_managed(&self) -> bool {
        self.path.is_none()
    }

    /// The installed runtime, if any.
    pub fn get() -> Option<&'static LeanRuntime> {
        RUNTIME.get()
    }

    fn install(library: Library, path: Option<PathBuf>) -> Result<&'static LeanRuntime, RuntimeError> {
        let fns = RuntimeFns::resolve(&library).map_err(|missing| {
            RuntimeError::new(
                "LEAN-RT-SYMBOLS",
                format!(
                    "{} does not export {} — not a Lean 4.35 runtime",
                    path.as_ref().map_or("the process".into(), |p| p.display().to_string()),
                    missing.join(", ")
                ),
                "use the runtime from `bash scripts/fetch-lean-runtime.sh` (Lean 4.35.0)",
            )
        })?;
        Ok(RUNTIME.get_or_init(|| LeanRuntime { fns, library, path }))
    }

    /// The function table.
    pub fn fns(&self) -> &RuntimeFns {
        &self.fns
    }

    /// Where the runtime was loaded from (`None` when taken from the process).
    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    /// Looks up any other symbol of the runtime, e.g. an `IO` primitive a test wants to call.
    ///
    /// # Safety
    /// `T` must be the symbol's real type (a function pointer of the right prototype, or a
    /// pointer for data symbols).
    pub unsafe fn symbol<T: Copy>(&self, name: &str) -> Option<T> {
        let mut bytes = name.as_bytes().to_vec();
        bytes.push(0);
        // SAFETY: the caller vouches for `T`; the library outlives every use (it is static).
        unsafe { self.library.get::<T>(&bytes) }.ok().map(|s| *s)
    }

    /// Reads `Lean.version.{major,minor,patch}`; `None` until the `Init` module is initialized.
    pub fn lean_version(&self) -> Option<(usize, usize, usize)> {
        let read = |name: &str| {
            // SAFETY: these are `lean_object*` globals of Init; reading the pointer value is
            // enough, a boxed scalar is decoded without dereferencing.
            let slot: *const *mut LeanObject = unsafe { self.symbol(name) }?;
            // SAFETY: `slot` points into the runtime's data segment, valid while it is loaded.
            let value = unsafe { *slot };
            crate::abi::is_scalar(value).then(|| crate::abi::unbox(value))
        };
        Some((read("l_Lean_version_major")?, read("l_Lean_version_minor")?, read("l_Lean_version_patch")?))
    }
}

fn same_file(a: &Path, b: &Path) -> bool {
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => a == b,
    }
}

/// The installed runtime; panics with the repair hint when none is installed. Use this in code
/// that only runs after a loader or glue entry point installed one.
pub fn runtime() -> &'static LeanRuntime {
    LeanRuntime::get().expect("no Lean runtime installed: call LeanRuntime::open or LeanRuntime::from_process first")
}
