//! Runs an opened capability's command export on command threads (Lean code blocks; the loop
//! thread must not), one command per thread at a time, threads kept for the next command.

use std::path::Path;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};

use capnp_lean_leanrt::{self as lean, IoError, Obj};
use capnp_lean_loader::{Capability, Export, LoadOptions, LoaderError};

use crate::child::sinks::{self, CommandSinks};

/// The export a capability runs commands with, unless the parent names another.
pub const DEFAULT_EXPORT: &str = "capnp_lean_worker_run";
/// The optional export describing the capability (`Unit → String`).
pub const METADATA_EXPORT: &str = "capnp_lean_worker_metadata";
/// The optional export giving the capability's own interface (`Kj.Runtime → IO Kj.Cap`).
pub const BOOTSTRAP_EXPORT: &str = "capnp_lean_worker_bootstrap";

/// `capnp_lean_worker_bootstrap`'s Rust signature.
pub(crate) type BootstrapExport = Export<(Obj,), Result<Obj, IoError>>;

type RunExport = Export<(String, Obj, Obj), Result<Vec<u8>, IoError>>;

/// Counters reported by `Worker.stats`.
#[derive(Default)]
pub(crate) struct Counters {
    pub started: AtomicU64,
    pub succeeded: AtomicU64,
    pub failed: AtomicU64,
    pub cancelled: AtomicU64,
    pub rows: AtomicU64,
    pub running: AtomicU32,
}

/// What a finished command reports.
pub(crate) struct Finished {
    pub output: Result<Vec<u8>, String>,
    pub rows: u64,
    pub diagnostics: u64,
    pub elapsed_micros: u64,
}

type Job = Box<dyn FnOnce() + Send>;

/// An opened capability and its command threads.
pub(crate) struct Runner {
    capability: Capability,
    run: Arc<RunExport>,
    pub metadata: String,
    pub counters: Arc<Counters>,
    jobs: Mutex<mpsc::Sender<Job>>,
    idle: Arc<AtomicU32>,
    receiver: Arc<Mutex<mpsc::Receiver<Job>>>,
}

impl Runner {
    /// Opens the capability (preflight, libraries, initializers) and resolves its exports.
    pub fn open(manifest: &Path, export: &str, options: LoadOptions, counters: Arc<Counters>) -> Result<Self, LoaderError> {
        let capability = Capability::open_with(manifest, &options)?;
        let export = if export.is_empty() { DEFAULT_EXPORT } else { export };
        let run = Arc::new(capability.export::<(String, Obj, Obj), Result<Vec<u8>, IoError>>(export)?);
        let metadata = match capability.export::<(Obj,), String>(METADATA_EXPORT) {
            Ok(describe) => {
                let _thread = capability.attach_thread();
                describe.call((Obj::boxed(0),))
            }
            Err(_) => String::new(),
        };
        let (sender, receiver) = mpsc::channel();
        Ok(Self {
            capability,
            run,
            metadata,
            counters,
            jobs: Mutex::new(sender),
            idle: Arc::new(AtomicU32::new(0)),
            receiver: Arc::new(Mutex::new(receiver)),
        })
    }

    /// The capability's bootstrap export, if it has one.
    pub fn bootstrap_export(&self) -> Option<BootstrapExport> {
        self.capability.export::<(Obj,), Result<Obj, IoError>>(BOOTSTRAP_EXPORT).ok()
    }

    /// Keeps the calling thread attached to the Lean runtime while the guard lives.
    pub fn attach_thread(&self) -> capnp_lean_leanrt::ThreadAttachment {
        self.capability.attach_thread()
    }

    /// Runs `command` on a command thread; `done` gets the outcome there.
    pub fn start(&self, command: String, input: Vec<u8>, sinks: Arc<CommandSinks>, done: impl FnOnce(Finished) + Send + 'static) {
        let run = self.run.clone();
        let counters = self.counters.clone();
        counters.started.fetch_add(1, Ordering::Relaxed);
        counters.running.fetch_add(1, Ordering::Relaxed);
        let job: Job = Box::new(move || {
            let started = std::time::Instant::now();
            let lean_sinks = sinks::lean_sinks(&sinks);
            let output = run.call((command, lean::mk_byte_array(&input), lean_sinks)).map_err(|e| e.message);
            // What the command emitted last goes out before its answer.
            let output = output.and_then(|out| sinks.flush().map(|()| out));
            let cancelled = sinks.is_cancelled();
            let counter = match (&output, cancelled) {
                (_, true) => &counters.cancelled,
                (Ok(_), false) => &counters.succeeded,
                (Err(_), false) => &counters.failed,
            };
            counter.fetch_add(1, Ordering::Relaxed);
            let rows = sinks.rows.load(Ordering::Relaxed);
            counters.rows.fetch_add(rows, Ordering::Relaxed);
            counters.running.fetch_sub(1, Ordering::Relaxed);
            done(Finished {
                output,
                rows,
                diagnostics: sinks.diagnostics.load(Ordering::Relaxed),
                elapsed_micros: started.elapsed().as_micros() as u64,
            });
        });
        self.submit(job);
    }

    /// Hands the job to an idle command thread, or starts one.
    fn submit(&self, job: Job) {
        let spare = self.idle.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1)).is_ok();
        if !spare {
            let receiver = self.receiver.clone();
            let idle = self.idle.clone();
            let capability = self.capability.clone();
            std::thread::Builder::new()
                .name("capnp-lean-command".into())
                .spawn(move || {
                    let _attached = capability.attach_thread();
                    loop {
                        let next = receiver.lock().unwrap_or_else(|p| p.into_inner()).recv();
                        let Ok(job) = next else { return };
                        job();
                        idle.fetch_add(1, Ordering::SeqCst);
                    }
                })
                .expect("a command thread starts");
        }
        let _ = self.jobs.lock().unwrap_or_else(|p| p.into_inner()).send(job);
    }
}
