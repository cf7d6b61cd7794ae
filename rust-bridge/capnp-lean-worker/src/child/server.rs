//! The child's servers: `Worker` (control) and `Commands` (the opened capability). They run on
//! the loop thread; commands run on command threads (see `runner.rs`).

use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use capnp::capability::Rc;
use capnp_lean::RuntimeRef;
use capnp_schemas::worker_capnp::{commands, worker};
use futures::channel::oneshot;

use crate::child::runner::{Counters, Runner};
use capnp_lean_loader::LoadOptions;
use crate::child::sinks::CommandSinks;
use crate::rss;

/// The version `hello` reports besides the protocol number.
pub const WORKER_VERSION: &str = env!("CARGO_PKG_VERSION");

/// Serves `Worker` for one process (a worker child, or a host running the capability in
/// process).
pub struct WorkerServer {
    runtime: RuntimeRef,
    started: Instant,
    counters: Arc<Counters>,
    opened: Mutex<Option<(PathBuf, Arc<Runner>)>>,
    on_shutdown: Mutex<Option<Box<dyn FnOnce() + Send>>>,
}

impl WorkerServer {
    /// A server whose `shutdown` calls `on_shutdown` (once, after answering).
    pub fn new(runtime: RuntimeRef, on_shutdown: impl FnOnce() + Send + 'static) -> Self {
        Self {
            runtime,
            started: Instant::now(),
            counters: Arc::default(),
            opened: Mutex::new(None),
            on_shutdown: Mutex::new(Some(Box::new(on_shutdown))),
        }
    }
}

fn failed(message: impl Into<String>) -> capnp::Error {
    capnp::Error::failed(message.into())
}

impl worker::Server for WorkerServer {
    async fn hello(self: Rc<Self>, _: worker::HelloParams, mut results: worker::HelloResults) -> Result<(), capnp::Error> {
        let mut r = results.get();
        r.set_protocol(capnp_schemas::worker_capnp::PROTOCOL_VERSION);
        r.set_pid(std::process::id());
        r.set_worker_version(WORKER_VERSION);
        Ok(())
    }

    async fn open(self: Rc<Self>, params: worker::OpenParams, mut results: worker::OpenResults) -> Result<(), capnp::Error> {
        let p = params.get()?;
        let manifest = PathBuf::from(p.get_manifest()?.to_str()?);
        let export = p.get_export()?.to_str()?.to_owned();
        let runtime = p.get_runtime()?.to_str()?;
        let runtime = (!runtime.is_empty()).then(|| PathBuf::from(runtime));
        let mut opened = self.opened.lock().unwrap_or_else(|p| p.into_inner());
        let runner = match &*opened {
            Some((open, _)) if *open != manifest => {
                return Err(failed(format!(
                    "[WORKER-ALREADY-OPEN] this worker already runs {}; start another worker for {}",
                    open.display(),
                    manifest.display()
                )))
            }
            Some((_, runner)) => runner.clone(),
            None => {
                let runner = Runner::open(&manifest, &export, LoadOptions { runtime, ..LoadOptions::default() }, self.counters.clone())
                    .map_err(|e| failed(format!("[{}] {} (hint: {})", e.code.code(), e.message, e.hint)))?;
                let runner = Arc::new(runner);
                *opened = Some((manifest, runner.clone()));
                runner
            }
        };
        drop(opened);
        let bootstrap = lean_bootstrap(&self.runtime, &runner)?;
        let metadata = runner.metadata.clone();
        let commands: commands::Client =
            self.runtime.serve(CommandsServer { runtime: self.runtime.clone(), runner }).map_err(|e| failed(e.to_string()))?;
        results.get().set_commands(commands);
        results.get().set_metadata(&metadata[..]);
        if let Some(bootstrap) = bootstrap {
            results.get().init_bootstrap().set_as_capability(bootstrap.hook);
        }
        Ok(())
    }

    async fn health(self: Rc<Self>, _: worker::HealthParams, mut results: worker::HealthResults) -> Result<(), capnp::Error> {
        let mut r = results.get();
        r.set_ok(true);
        r.set_uptime_ms(self.started.elapsed().as_millis() as u64);
        r.set_running(self.counters.running.load(Ordering::Relaxed));
        Ok(())
    }

    async fn stats(self: Rc<Self>, _: worker::StatsParams, mut results: worker::StatsResults) -> Result<(), capnp::Error> {
        let memory = rss::own();
        let c = &self.counters;
        let mut s = results.get().init_stats();
        s.set_rss_bytes(memory.rss);
        s.set_peak_rss_bytes(memory.peak);
        s.set_commands_started(c.started.load(Ordering::Relaxed));
        s.set_commands_succeeded(c.succeeded.load(Ordering::Relaxed));
        s.set_commands_failed(c.failed.load(Ordering::Relaxed));
        s.set_commands_cancelled(c.cancelled.load(Ordering::Relaxed));
        s.set_rows_sent(c.rows.load(Ordering::Relaxed));
        Ok(())
    }

    async fn shutdown(self: Rc<Self>, _: worker::ShutdownParams, _: worker::ShutdownResults) -> Result<(), capnp::Error> {
        let stop = self.on_shutdown.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(stop) = stop {
            // After this answer is written: let the loop run once more first.
            let runtime = self.runtime.clone();
            self.runtime
                .spawn_local(async move {
                    let _ = runtime_sleep_briefly(&runtime).await;
                    stop();
                })
                .map_err(|e| failed(e.to_string()))?;
        }
        Ok(())
    }
}

thread_local! {
    /// The capability's own bootstrap, once made (one per loop thread: a child serves one
    /// capability; in process each worker has its own runtime).
    static BOOTSTRAP: std::cell::RefCell<Option<Option<capnp::capability::Client>>> = const { std::cell::RefCell::new(None) };
}

/// The capability's `capnp_lean_worker_bootstrap : Kj.Runtime → IO Kj.Cap`, called once on the
/// loop thread with this runtime as a Lean object; `None` when it exports none.
fn lean_bootstrap(runtime: &RuntimeRef, runner: &Runner) -> Result<Option<capnp::capability::Client>, capnp::Error> {
    if let Some(made) = BOOTSTRAP.with(|b| b.borrow().clone()) {
        return Ok(made);
    }
    let made = match runner.bootstrap_export() {
        None => None,
        Some(export) => {
            let _attached = runner.attach_thread();
            let cap = export
                .call((capnp_lean_glue::runtime_object(runtime),))
                .map_err(|e| failed(format!("[WORKER-BOOTSTRAP] {} failed: {}", crate::child::BOOTSTRAP_EXPORT, e.message)))?;
            Some(capnp_lean_glue::cap_client(&cap).map_err(|e| failed(format!("[WORKER-BOOTSTRAP] {}", e.message)))?)
        }
    };
    BOOTSTRAP.with(|b| *b.borrow_mut() = Some(made.clone()));
    Ok(made)
}

async fn runtime_sleep_briefly(runtime: &RuntimeRef) -> Result<(), capnp_lean::Error> {
    runtime.sleep(std::time::Duration::from_millis(20)).await
}

struct CommandsServer {
    runtime: RuntimeRef,
    runner: Arc<Runner>,
}

/// Marks the command cancelled when the call's future is dropped before it finished (the
/// caller sent Finish, or the connection went away).
struct CancelOnDrop {
    sinks: Arc<CommandSinks>,
    finished: bool,
}

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        if !self.finished {
            self.sinks.cancel();
        }
        self.sinks.unregister();
    }
}

impl commands::Server for CommandsServer {
    async fn run(self: Rc<Self>, params: commands::RunParams, mut results: commands::RunResults) -> Result<(), capnp::Error> {
        let p = params.get()?;
        let command = p.get_command()?.to_string()?;
        let input = p.get_input()?.to_vec();
        let sinks = CommandSinks::register(self.runtime.clone(), p.get_sink()?);
        let mut guard = CancelOnDrop { sinks: sinks.clone(), finished: false };
        let (sender, receiver) = oneshot::channel();
        self.runner.start(command, input, sinks, move |finished| {
            let _ = sender.send(finished);
        });
        let finished = receiver.await.map_err(|_| failed("the command thread went away"))?;
        guard.finished = true;
        let output = finished.output.map_err(failed)?;
        let mut summary = results.get().init_summary();
        summary.set_output(&output);
        summary.set_rows(finished.rows);
        summary.set_diagnostics(finished.diagnostics);
        summary.set_elapsed_micros(finished.elapsed_micros);
        Ok(())
    }
}
