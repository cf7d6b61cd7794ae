//! [`Worker`]: one capability in a supervised child process (or, with the same API, in this
//! process), with per-request timeouts, crash reports, bounded restarts and memory cycling.

use std::cell::RefCell;
use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use capnp_lean::{Connection, ConnectionOptions, ErrorKind, Runtime, RuntimeRef, Side};
use capnp_schemas::worker_capnp::{commands, sink, worker, PROTOCOL_VERSION};
use futures::channel::{mpsc, oneshot};
use futures::future::{select, Either};

use crate::child::WorkerServer;
use crate::parent::config::WorkerConfig;
use crate::parent::process::{describe, Process};
use crate::parent::run::{CommandRun, SinkServer, Summary, EVENT_BUFFER};
use crate::WorkerError;

thread_local! {
    /// Each live worker's clients, on the loop thread of the runtime that hosts it (generated
    /// clients are `!Send`).
    static CLIENTS: RefCell<HashMap<u64, Clients>> = RefCell::new(HashMap::new());
}

/// A live worker's clients.
#[derive(Clone)]
struct Clients {
    _worker: worker::Client,
    commands: commands::Client,
    /// The capability's own interface (`capnp_lean_worker_bootstrap`), if it has one.
    bootstrap: Option<capnp::capability::Client>,
}

static NEXT_LIVE: AtomicU64 = AtomicU64::new(1);

/// What a [`Worker`] reports about itself.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WorkerState {
    /// A child (or the in-process capability) is running and taking commands.
    pub live: bool,
    /// The current child's pid (`None` in process, or when none runs).
    pub pid: Option<u32>,
    /// Replacements after failures (crash, timeout) so far.
    pub restarts: u64,
    /// Planned replacements (max requests, RSS limit) so far.
    pub cycles: u64,
    /// Commands running now.
    pub in_flight: usize,
    /// Commands answered (successfully or not) so far.
    pub served: u64,
    /// The capability's metadata (its `capnp_lean_worker_metadata` export; empty without one).
    pub metadata: String,
}

/// One started child (or the in-process capability).
pub(crate) struct Live {
    id: u64,
    runtime: RuntimeRef,
    pub process: Option<Arc<Process>>,
    connection: Mutex<Option<Connection>>,
    served: AtomicU64,
    /// No longer given new commands (cycled, or failed); dropped once its commands end.
    retired: AtomicBool,
    metadata: String,
}

impl Live {
    fn is_alive(&self) -> bool {
        !self.retired.load(Ordering::SeqCst) && self.process.as_ref().is_none_or(|p| p.exit_status().is_none())
    }
}

impl Drop for Live {
    fn drop(&mut self) {
        let id = self.id;
        // Fire and forget: the clients are dropped on their loop thread.
        drop(self.runtime.run(move || {
            CLIENTS.with(|c| c.borrow_mut().remove(&id));
            async {}
        }));
        // Closing the connection tells the child to exit; one that does not is killed.
        drop(self.connection.lock().unwrap_or_else(|p| p.into_inner()).take());
        if let Some(process) = self.process.clone() {
            let _ = std::thread::Builder::new().name("capnp-lean-worker-reap".into()).spawn(move || {
                if process.wait_exit(Duration::from_secs(2)).is_none() {
                    process.kill();
                }
            });
        }
    }
}

/// Where the capability runs.
#[derive(Clone)]
enum Placement {
    /// In a child process started from this binary.
    Process(PathBuf),
    /// In this process, behind the worker protocol over a socketpair (served on a thread).
    Thread,
    /// In this process, its server called directly.
    Direct,
}

pub(crate) struct Inner {
    config: WorkerConfig,
    placement: Placement,
    runtime: RuntimeRef,
    _own_runtime: Option<Runtime>,
    state: Mutex<State>,
    pub in_flight: AtomicUsize,
    served: AtomicU64,
}

#[derive(Default)]
struct State {
    current: Option<Arc<Live>>,
    /// Start times of replacements after failures, within the restart window.
    restarts: VecDeque<Instant>,
    restarts_total: u64,
    cycles_total: u64,
    /// The previous child ended by failure, so the next start counts as a restart.
    failed: Option<String>,
    metadata: String,
}

/// A Lean capability behind the worker protocol: in a child process ([`Worker::spawn`]) or in
/// this process ([`Worker::in_process`]), with the same API, so moving a capability into or out
/// of a worker is a one-line change. Cheap to clone; usable from any thread.
#[derive(Clone)]
pub struct Worker {
    pub(crate) inner: Arc<Inner>,
}

impl Worker {
    /// Starts a child running the capability of `config` and waits until it has opened it.
    pub async fn spawn(config: WorkerConfig) -> Result<Worker, WorkerError> {
        let runtime = Runtime::new()?;
        Self::spawn_on(runtime.handle(), Some(runtime), config).await
    }

    /// Like [`spawn`](Self::spawn), on an existing runtime (a pool shares one).
    pub async fn spawn_with(runtime: RuntimeRef, config: WorkerConfig) -> Result<Worker, WorkerError> {
        Self::spawn_on(runtime, None, config).await
    }

    async fn spawn_on(runtime: RuntimeRef, own: Option<Runtime>, config: WorkerConfig) -> Result<Worker, WorkerError> {
        let binary = config.locate_binary()?;
        Self::open(config, Placement::Process(binary), runtime, own).await
    }

    /// A worker placed as `placement`, once its capability is open.
    async fn open(config: WorkerConfig, placement: Placement, runtime: RuntimeRef, own: Option<Runtime>) -> Result<Worker, WorkerError> {
        let worker = Worker { inner: Arc::new(Inner::new(config, placement, runtime, own)) };
        worker.inner.live().await?;
        Ok(worker)
    }

    /// Opens the capability in this process and serves it to this process, behind the same
    /// protocol and API (no isolation: a crash in the capability is a crash of this process).
    pub async fn in_process(config: WorkerConfig) -> Result<Worker, WorkerError> {
        let runtime = Runtime::new()?;
        Self::open(config, Placement::Direct, runtime.handle(), Some(runtime)).await
    }

    /// Like [`in_process`](Self::in_process), but the capability is served on a thread of this
    /// process behind the worker protocol over a socketpair: everything a worker does except
    /// the process boundary (what `worker-bench` compares a worker with).
    pub async fn in_thread(config: WorkerConfig) -> Result<Worker, WorkerError> {
        let runtime = Runtime::new()?;
        Self::open(config, Placement::Thread, runtime.handle(), Some(runtime)).await
    }

    /// Starts `command` with `input`; read the returned run's events, then its summary.
    pub async fn start(&self, command: &str, input: &[u8]) -> Result<CommandRun, WorkerError> {
        let live = self.inner.live().await?;
        Ok(self.inner.start_on(live, command, input, None))
    }

    /// Runs `command` to its end, discarding events; returns the summary.
    pub async fn call(&self, command: &str, input: &[u8]) -> Result<Summary, WorkerError> {
        self.start(command, input).await?.summary().await
    }

    /// Runs `use_client` on the runtime's loop thread with the capability's typed
    /// `Commands` client (for callers that build requests themselves).
    pub async fn with_client<T, Fut, F>(&self, use_client: F) -> Result<T, WorkerError>
    where
        F: FnOnce(commands::Client) -> Fut + Send + 'static,
        Fut: Future<Output = T> + 'static,
        T: Send + 'static,
    {
        self.with_clients(move |clients| async move { Ok(use_client(clients.commands).await) }).await
    }

    /// Runs `use_client` on the runtime's loop thread with the capability's own interface `C`:
    /// what its `capnp_lean_worker_bootstrap` export returned (e.g. a capnpc-lean generated
    /// server over the KJ backend), as a capnpc-rust typed client. Fails with `WORKER-OPEN` when
    /// the capability exports no bootstrap.
    pub async fn with_bootstrap<C, T, Fut, F>(&self, use_client: F) -> Result<T, WorkerError>
    where
        C: capnp::capability::FromClientHook,
        F: FnOnce(C) -> Fut + Send + 'static,
        Fut: Future<Output = T> + 'static,
        T: Send + 'static,
    {
        let manifest = self.inner.config.manifest.clone();
        self.with_clients(move |clients| async move {
            match clients.bootstrap {
                Some(client) => Ok(use_client(C::new(client.hook)).await),
                None => Err(WorkerError::Open {
                    manifest,
                    reason: format!("the capability exports no {} (hint: export one, or use commands)", crate::child::BOOTSTRAP_EXPORT),
                }),
            }
        })
        .await
    }

    /// Runs `use_clients` on the loop thread with the live worker's clients (starting a worker
    /// when none runs), keeping that worker until it is done.
    async fn with_clients<T, Fut, F>(&self, use_clients: F) -> Result<T, WorkerError>
    where
        F: FnOnce(Clients) -> Fut + Send + 'static,
        Fut: Future<Output = Result<T, WorkerError>> + 'static,
        T: Send + 'static,
    {
        let live = self.inner.live().await?;
        let id = live.id;
        let ran = self.inner.runtime.run(move || {
            let clients = CLIENTS.with(|c| c.borrow().get(&id).cloned());
            async move {
                match clients {
                    Some(clients) => use_clients(clients).await,
                    None => Err(WorkerError::Closed("the worker was replaced while the request started".into())),
                }
            }
        });
        let result = ran.await?;
        drop(live);
        result
    }

    /// The worker's state now.
    pub fn state(&self) -> WorkerState {
        let state = self.inner.state.lock().unwrap_or_else(|p| p.into_inner());
        let current = state.current.as_ref().filter(|l| l.is_alive());
        WorkerState {
            live: current.is_some(),
            pid: current.and_then(|l| l.process.as_ref().map(|p| p.pid)),
            restarts: state.restarts_total,
            cycles: state.cycles_total,
            in_flight: self.inner.in_flight.load(Ordering::SeqCst),
            served: self.inner.served.load(Ordering::SeqCst),
            metadata: state.metadata.clone(),
        }
    }

    /// The current child's pid, if one runs.
    pub fn pid(&self) -> Option<u32> {
        self.state().pid
    }

    /// Stops the current child (it finishes nothing: running commands fail). The next command
    /// starts a new one without counting a restart.
    pub fn shutdown(&self) {
        let current = self.inner.state.lock().unwrap_or_else(|p| p.into_inner()).current.take();
        if let Some(live) = current {
            live.retired.store(true, Ordering::SeqCst);
        }
    }
}

/// Releases a command's place when its run ends.
struct InFlight {
    inner: Arc<Inner>,
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.inner.in_flight.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Inner {
    fn new(config: WorkerConfig, placement: Placement, runtime: RuntimeRef, own: Option<Runtime>) -> Self {
        Self { config, placement, runtime, _own_runtime: own, state: Mutex::default(), in_flight: AtomicUsize::new(0), served: AtomicU64::new(0) }
    }

    /// The live child, starting one (and counting a restart after a failure) when needed.
    pub(crate) async fn live(self: &Arc<Self>) -> Result<Arc<Live>, WorkerError> {
        let failure = {
            let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
            if let Some(live) = state.current.as_ref() {
                if live.is_alive() {
                    return Ok(live.clone());
                }
                let live = state.current.take().expect("checked above");
                if !live.retired.load(Ordering::SeqCst) {
                    let status = live.process.as_ref().and_then(|p| p.exit_status()).map(describe);
                    state.failed.get_or_insert(format!("the worker ended with {}", status.unwrap_or_default()));
                }
            }
            if let Some(failure) = state.failed.clone() {
                let window = self.config.restart.window;
                while state.restarts.front().is_some_and(|t| t.elapsed() > window) {
                    state.restarts.pop_front();
                }
                if state.restarts.len() >= self.config.restart.max_restarts {
                    return Err(WorkerError::RestartLimit { restarts: state.restarts.len(), window, last_failure: failure });
                }
            }
            state.failed.clone()
        };
        let live = self.start_live().await?;
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        if failure.is_some() && state.failed.take().is_some() {
            state.restarts.push_back(Instant::now());
            state.restarts_total += 1;
        }
        state.metadata = live.metadata.clone();
        // Two callers may have started one each; keep the first, retire the other.
        match &state.current {
            Some(existing) if existing.is_alive() => {
                live.retired.store(true, Ordering::SeqCst);
                Ok(existing.clone())
            }
            _ => {
                state.current = Some(live.clone());
                Ok(live)
            }
        }
    }

    /// Spawns a child (or serves in process), handshakes and opens the capability.
    async fn start_live(self: &Arc<Self>) -> Result<Arc<Live>, WorkerError> {
        let id = NEXT_LIVE.fetch_add(1, Ordering::Relaxed);
        let options = ConnectionOptions::default();
        let (process, connection) = match &self.placement {
            Placement::Process(binary) => {
                let (process, socket) = Process::spawn(binary, &self.config)?;
                match self.runtime.adopt::<capnp::capability::Client>(socket, Side::Client, None, &options) {
                    Ok(connection) => (Some(process), Some(Arc::new(connection))),
                    Err(e) => {
                        process.kill();
                        return Err(e.into());
                    }
                }
            }
            Placement::Thread => {
                let (ours, theirs) = std::os::unix::net::UnixStream::pair()
                    .map_err(|e| WorkerError::Closed(format!("socketpair failed: {e}")))?;
                std::thread::Builder::new()
                    .name("capnp-lean-worker-thread".into())
                    .spawn(move || crate::child::serve(theirs.into()))
                    .map_err(|e| WorkerError::Closed(format!("cannot start a thread: {e}")))?;
                let connection = self.runtime.adopt::<capnp::capability::Client>(ours.into(), Side::Client, None, &options)?;
                (None, Some(Arc::new(connection)))
            }
            Placement::Direct => (None, None),
        };
        let manifest = self.config.manifest.clone();
        let export = self.config.export.clone();
        let runtime = self.runtime.clone();
        let bootstrap_from = connection.clone();
        let runtime_library = self.config.runtime.clone();
        let opened = self.runtime.run(move || async move {
            let worker: worker::Client = match &bootstrap_from {
                Some(connection) => connection.bootstrap()?,
                None => runtime.serve_local(WorkerServer::new(runtime.clone(), || {}))?,
            };
            let hello = worker.hello_request().send().promise.await?;
            let found = hello.get()?.get_protocol();
            if found != PROTOCOL_VERSION {
                return Err(WorkerError::Protocol { expected: PROTOCOL_VERSION, found });
            }
            let mut open = worker.open_request();
            open.get().set_manifest(manifest.to_string_lossy().as_ref());
            open.get().set_export(&export[..]);
            open.get().set_runtime(runtime_library.as_deref().map(|p| p.to_string_lossy()).unwrap_or_default().as_ref());
            let opened = open.send().promise.await.map_err(|e| WorkerError::Open { manifest: manifest.clone(), reason: e.to_string() })?;
            let opened = opened.get()?;
            let commands = opened.get_commands()?;
            let bootstrap = if opened.has_bootstrap() { Some(opened.get_bootstrap().get_as_capability()?) } else { None };
            let metadata = opened.get_metadata()?.to_string().map_err(|e| WorkerError::Open { manifest: manifest.clone(), reason: format!("its metadata is not UTF-8: {e}") })?;
            CLIENTS.with(|c| c.borrow_mut().insert(id, Clients { _worker: worker, commands, bootstrap }));
            Ok::<_, WorkerError>(metadata)
        });
        let outcome = match self.runtime.timeout(self.config.start_timeout, opened).await {
            Ok(Ok(result)) => result,
            Ok(Err(e)) => Err(e.into()),
            Err(_) => Err(WorkerError::Spawn {
                binary: match &self.placement {
                    Placement::Process(binary) => binary.clone(),
                    _ => PathBuf::new(),
                },
                reason: format!("start-up did not finish within {:?}", self.config.start_timeout),
            }),
        };
        let connection = connection.map(|c| Arc::try_unwrap(c).ok()).unwrap_or_default();
        let live = |metadata: String| Live {
            id,
            runtime: self.runtime.clone(),
            process: process.clone(),
            connection: Mutex::new(connection),
            served: AtomicU64::new(0),
            retired: AtomicBool::new(false),
            metadata,
        };
        match outcome {
            Ok(metadata) => Ok(Arc::new(live(metadata))),
            Err(error) => {
                let live = live(String::new());
                let error = match (&error, &process) {
                    (WorkerError::Open { .. } | WorkerError::Protocol { .. }, _) | (_, None) => error,
                    (_, Some(process)) => crash_report(process, error, "starting up"),
                };
                live.retired.store(true, Ordering::SeqCst);
                if let Some(process) = &live.process {
                    process.kill();
                }
                Err(error)
            }
        }
    }

    /// Starts one command on `live`; `slot` is released with the run (pool admission).
    pub(crate) fn start_on(self: &Arc<Self>, live: Arc<Live>, command: &str, input: &[u8], slot: Option<Box<dyn Send + Sync>>) -> CommandRun {
        self.in_flight.fetch_add(1, Ordering::SeqCst);
        let in_flight = InFlight { inner: self.clone() };
        let (events, events_out) = mpsc::channel(EVENT_BUFFER);
        let (outcome, outcome_out) = oneshot::channel();
        let (cancel, cancelled) = oneshot::channel::<()>();
        let inner = self.clone();
        let command = command.to_owned();
        let input = input.to_vec();
        let runtime = self.runtime.clone();
        let posted = self.runtime.run(move || {
            let client = CLIENTS.with(|c| c.borrow().get(&live.id).map(|c| c.commands.clone()));
            async move {
                let result = match client {
                    None => Err(WorkerError::Closed("the worker was replaced before the command started".into())),
                    Some(client) => inner.call(&runtime, &client, &live, &command, input, events, cancelled).await,
                };
                inner.settle(live, command, result, outcome, in_flight);
            }
        });
        drop(posted);
        CommandRun { events: events_out, outcome: outcome_out, _cancel: cancel, _slot: slot }
    }

    /// The `run` call, with the timeout and the caller's cancellation (on the loop thread).
    #[allow(clippy::too_many_arguments)]
    async fn call(
        &self,
        runtime: &RuntimeRef,
        client: &commands::Client,
        live: &Arc<Live>,
        command: &str,
        input: Vec<u8>,
        events: mpsc::Sender<Event>,
        cancelled: oneshot::Receiver<()>,
    ) -> Result<Summary, WorkerError> {
        let sink: sink::Client = runtime.serve_local(SinkServer { events: futures::lock::Mutex::new(events) })?;
        let mut request = client.run_request();
        request.get().set_command(command);
        request.get().set_input(&input);
        request.get().set_sink(sink);
        let answer = async move {
            let response = request.send().promise.await?;
            let summary = response.get()?.get_summary()?;
            Ok::<_, WorkerError>(Summary {
                output: summary.get_output()?.to_vec(),
                rows: summary.get_rows(),
                diagnostics: summary.get_diagnostics(),
                elapsed_micros: summary.get_elapsed_micros(),
            })
        };
        let limited = async {
            match self.config.request_timeout {
                None => answer.await,
                Some(limit) => match runtime.timeout(limit, answer).await {
                    Ok(result) => result,
                    Err(_) => {
                        // A worker that does not answer is killed and replaced.
                        live.retired.store(true, Ordering::SeqCst);
                        let pid = live.process.as_ref().map_or(0, |p| {
                            p.kill();
                            p.pid
                        });
                        self.state.lock().unwrap_or_else(|p| p.into_inner()).failed =
                            Some(format!("{command} timed out after {limit:?}"));
                        Err(WorkerError::Timeout { command: command.to_owned(), limit, pid })
                    }
                },
            }
        };
        match select(Box::pin(limited), cancelled).await {
            Either::Left((result, _)) => result,
            Either::Right(_) => Err(WorkerError::Closed("the caller dropped the command".into())),
        }
    }

    /// Counts the command, cycles the worker when due, and answers the caller; a disconnect is
    /// turned into a crash report on a helper thread (it may wait briefly for the exit status).
    fn settle(
        self: &Arc<Self>,
        live: Arc<Live>,
        command: String,
        result: Result<Summary, WorkerError>,
        outcome: oneshot::Sender<Result<Summary, WorkerError>>,
        in_flight: InFlight,
    ) {
        self.served.fetch_add(1, Ordering::SeqCst);
        let served = live.served.fetch_add(1, Ordering::SeqCst) + 1;
        let disconnected = matches!(&result, Err(WorkerError::Rpc(e)) if e.kind() == ErrorKind::Disconnected);
        if disconnected && live.process.is_some() {
            let inner = self.clone();
            let _ = std::thread::Builder::new().name("capnp-lean-worker-crash".into()).spawn(move || {
                let process = live.process.clone().expect("checked above");
                let error = crash_report(&process, result.expect_err("checked above"), &format!("running {command}"));
                live.retired.store(true, Ordering::SeqCst);
                if let WorkerError::Crashed { status, .. } = &error {
                    inner.state.lock().unwrap_or_else(|p| p.into_inner()).failed = Some(format!("the worker ended with {status}"));
                }
                drop(in_flight);
                let _ = outcome.send(Err(error));
            });
            return;
        }
        let over_requests = self.config.max_requests.is_some_and(|max| served >= max);
        let over_memory = self.config.max_rss_bytes.is_some_and(|max| live.process.as_ref().is_some_and(|p| p.rss_bytes() > max));
        if (over_requests || over_memory) && !live.retired.swap(true, Ordering::SeqCst) {
            let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
            state.cycles_total += 1;
            if state.current.as_ref().is_some_and(|c| Arc::ptr_eq(c, &live)) {
                state.current = None;
            }
            drop(state);
            self.kill_after_drain(&live);
        }
        drop(in_flight);
        let _ = outcome.send(result);
    }

    /// A retired child gets `drain_timeout` to finish its commands, then is killed.
    fn kill_after_drain(&self, live: &Arc<Live>) {
        let Some(process) = live.process.clone() else { return };
        let weak: Weak<Live> = Arc::downgrade(live);
        let limit = self.config.drain_timeout;
        let _ = std::thread::Builder::new().name("capnp-lean-worker-drain".into()).spawn(move || {
            if process.wait_exit(limit).is_none() && weak.upgrade().is_some() {
                log::warn!("worker pid {} still had commands running {limit:?} after it was retired; killing it", process.pid);
                process.kill();
            }
        });
    }
}

use crate::parent::run::Event;

/// Turns a failure of a request to `process` into [`WorkerError::Crashed`] when the process
/// has exited (waiting briefly for its status), else returns it unchanged.
fn crash_report(process: &Process, error: WorkerError, during: &str) -> WorkerError {
    match process.wait_exit(Duration::from_millis(500)) {
        Some(status) => WorkerError::Crashed {
            pid: process.pid,
            status: describe(status),
            during: during.to_owned(),
            last_output: process.last_output(Duration::from_millis(200)),
        },
        None => error,
    }
}
