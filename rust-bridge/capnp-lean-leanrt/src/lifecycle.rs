//! The runtime's lifecycle in this process: initialization (once, with `initialize_Init`),
//! the end of initialization (after which module initializers can no longer register
//! environment extensions), and attaching threads Lean did not create.
//!
//! Kept apart from [`crate::runtime`] (the resolved function table) because initialization
//! reads an IO result ([`crate::io`]), and `io` itself needs the function table.

use std::sync::OnceLock;

use crate::abi::LeanObject;
use crate::io::IoResult;
use crate::runtime::{LeanRuntime, RuntimeError, INIT_THREAD};

type Obj = *mut LeanObject;

/// How the runtime is initialized (see `capnp_lean_toolchain::RuntimeInit`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InitMode {
    /// `lean_initialize_runtime_module` then `initialize_Init`: enough for code that does not
    /// import the `Lean` package.
    RuntimeModule,
    /// `lean_initialize`: also the compiler's own modules.
    Full,
}

static INITIALIZED: OnceLock<Result<InitMode, RuntimeError>> = OnceLock::new();
static END_OF_INIT: OnceLock<()> = OnceLock::new();

impl LeanRuntime {
    /// Initializes the runtime once per process (later calls return the first outcome) and runs
    /// `initialize_Init`, so Lean-side helpers such as `IO.Error.toString` work. Module
    /// initializers of capabilities come after this and *before* [`Self::end_initialization`].
    pub fn initialize(&self, mode: InitMode) -> Result<InitMode, RuntimeError> {
        if self.is_host_managed() {
            return Ok(mode);
        }
        INITIALIZED
            .get_or_init(|| {
                let _ = INIT_THREAD.set(std::thread::current().id());
                // SAFETY: first and only runtime initialization in this process (OnceLock).
                unsafe {
                    match mode {
                        InitMode::RuntimeModule => (self.fns().lean_initialize_runtime_module)(),
                        InitMode::Full => (self.fns().lean_initialize)(),
                    }
                }
                // SAFETY: `initialize_Init` has the 4.35 module-initializer prototype
                // (`uint8_t builtin` → IO result).
                let init: Option<unsafe extern "C" fn(u8) -> Obj> = unsafe { self.symbol("initialize_Init") };
                let init = init.ok_or_else(|| {
                    RuntimeError::new("LEAN-RT-SYMBOLS", "the runtime lacks initialize_Init".into(), "use a full libleanshared.so")
                })?;
                // SAFETY: the runtime module is initialized; `builtin = 1` as compiled mains pass.
                let result = unsafe { IoResult::from_raw(init(1)) };
                result.into_result().map(drop).map_err(|e| {
                    RuntimeError::new("LEAN-RT-INIT", format!("initialize_Init failed: {e}"), "check that the runtime is intact")
                })?;
                Ok(mode)
            })
            .clone()
    }

    /// Whether [`Self::initialize`] has succeeded.
    pub fn is_initialized(&self) -> bool {
        self.is_host_managed() || matches!(INITIALIZED.get(), Some(Ok(_)))
    }

    /// Marks the end of initialization and starts the task manager, once per process. After
    /// this, module initializers can no longer register environment extensions.
    pub fn end_initialization(&self) {
        if self.is_host_managed() {
            return;
        }
        END_OF_INIT.get_or_init(|| {
            // SAFETY: runtime initialized (callers go through the loader, which ensures it);
            // both calls are once-per-process and guarded by the OnceLock.
            unsafe {
                (self.fns().lean_io_mark_end_initialization)();
                (self.fns().lean_init_task_manager)();
            }
        });
    }

    /// Whether [`Self::end_initialization`] has run.
    pub fn initialization_ended(&self) -> bool {
        self.is_host_managed() || END_OF_INIT.get().is_some()
    }

    /// Registers the current thread with the runtime until the guard is dropped. Needed on
    /// threads Lean did not create (e.g. the KJ event-loop thread) before they run Lean code.
    /// Nested calls on one thread are cheap and only the outermost guard detaches. Never use it
    /// on Lean's own threads (task workers, a Lean host's main thread): detaching would tear
    /// down their runtime state. The thread that initialized the runtime is left alone.
    pub fn attach_current_thread(&'static self) -> ThreadAttachment {
        let outermost = ATTACH_DEPTH.with(|d| {
            let depth = d.get();
            d.set(depth + 1);
            depth == 0
        });
        if outermost && !is_main_thread() {
            // SAFETY: runtime initialized by the caller's loader; first attach on this thread.
            unsafe { (self.fns().lean_initialize_thread)() };
        }
        ThreadAttachment { runtime: self, _not_send: std::marker::PhantomData }
    }
}

thread_local! {
    static ATTACH_DEPTH: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}


/// The thread that ran runtime initialization is already registered by it.
fn is_main_thread() -> bool {
    INIT_THREAD.get() == Some(&std::thread::current().id())
}

/// Keeps the current thread registered with the Lean runtime; see
/// [`LeanRuntime::attach_current_thread`].
pub struct ThreadAttachment {
    runtime: &'static LeanRuntime,
    _not_send: std::marker::PhantomData<*const ()>,
}

impl Drop for ThreadAttachment {
    fn drop(&mut self) {
        let last = ATTACH_DEPTH.with(|d| {
            let depth = d.get() - 1;
            d.set(depth);
            depth == 0
        });
        if last && !is_main_thread() {
            // SAFETY: balances the `lean_initialize_thread` of the outermost attach.
            unsafe { (self.runtime.fns().lean_finalize_thread)() };
        }
    }
}
