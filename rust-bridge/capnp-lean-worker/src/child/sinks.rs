//! The sinks a command sees, on both sides of the language line: Lean closures (built here, in
//! Rust) that the capability applies on its command thread, and the loop-thread half that turns
//! what they are given into flow-controlled calls on the parent's `RowSink` and `EventSink`.
//!
//! Rows are batched (up to [`BATCH_ROWS`] rows or [`BATCH_BYTES`] bytes, or whatever was
//! waiting when the next progress report, diagnostic or the end of the command comes) so that a
//! million small rows cost a few thousand calls, not a million. Every batch and event waits for
//! KJ's admission before the command thread goes on: a parent that does not keep up slows the
//! command down instead of making the child buffer.

use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use capnp_lean::RuntimeRef;
use capnp_lean_leanrt::{self as lean, Obj};
use capnp_schemas::worker_capnp::{sink, Severity};

/// Rows per batch, at most.
pub const BATCH_ROWS: usize = 1024;
/// Bytes of row data per batch, at most (a single larger row goes alone).
pub const BATCH_BYTES: usize = 64 * 1024;

/// What a command emitted, in order, as it crosses to the loop thread.
pub(crate) enum Emitted {
    Rows(Vec<Vec<u8>>),
    Progress { done: u64, total: u64, label: String },
    Diagnostic(Diagnostic),
}

/// A diagnostic as the command gave it.
pub(crate) struct Diagnostic {
    pub severity: Severity,
    pub code: String,
    pub message: String,
    /// File, line, column; `None` when the command gave no file.
    pub position: Option<(String, u32, u32)>,
}

/// One running command's sink state, shared by its command thread (which emits) and the loop
/// thread (which sees the call cancelled).
pub(crate) struct CommandSinks {
    id: u64,
    runtime: RuntimeRef,
    cancelled: AtomicBool,
    /// The first failure of a sink call (the parent went away, or its sink failed): every later
    /// sink operation reports it, so the command stops instead of emitting into nothing.
    failure: Mutex<Option<String>>,
    /// Rows not sent yet, and their bytes.
    pending: Mutex<(Vec<Vec<u8>>, usize)>,
    /// Rows and diagnostics emitted so far (for the summary and the worker's stats).
    pub rows: AtomicU64,
    pub diagnostics: AtomicU64,
}

/// Running commands' sink states by id, for the Lean closures (which carry only the id).
static LIVE: Mutex<Option<HashMap<u64, Arc<CommandSinks>>>> = Mutex::new(None);
static NEXT_ID: AtomicU64 = AtomicU64::new(1);

thread_local! {
    /// The parent's sink capabilities per running command; only the loop thread touches them
    /// (generated clients are `!Send`).
    static CLIENTS: RefCell<HashMap<u64, sink::Client>> = RefCell::new(HashMap::new());
}

impl CommandSinks {
    /// Registers a command's sinks; call on the loop thread (it keeps the clients there).
    pub fn register(runtime: RuntimeRef, client: sink::Client) -> Arc<Self> {
        let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
        CLIENTS.with(|c| c.borrow_mut().insert(id, client));
        let sinks = Arc::new(Self {
            id,
            runtime,
            cancelled: AtomicBool::new(false),
            failure: Mutex::new(None),
            pending: Mutex::new((Vec::new(), 0)),
            rows: AtomicU64::new(0),
            diagnostics: AtomicU64::new(0),
        });
        LIVE.lock().unwrap_or_else(|p| p.into_inner()).get_or_insert_with(HashMap::new).insert(id, sinks.clone());
        sinks
    }

    /// Forgets the command: its closures fail from now on. Call on the loop thread.
    pub fn unregister(&self) {
        CLIENTS.with(|c| c.borrow_mut().remove(&self.id));
        if let Some(live) = LIVE.lock().unwrap_or_else(|p| p.into_inner()).as_mut() {
            live.remove(&self.id);
        }
    }

    fn lookup(id: u64) -> Option<Arc<Self>> {
        LIVE.lock().unwrap_or_else(|p| p.into_inner()).as_ref()?.get(&id).cloned()
    }

    /// The caller cancelled the command (its call was dropped).
    pub fn cancel(&self) {
        self.cancelled.store(true, Ordering::SeqCst);
    }

    /// True once the command's caller cancelled it.
    pub fn is_cancelled(&self) -> bool {
        self.cancelled.load(Ordering::SeqCst)
    }

    fn check(&self) -> Result<(), String> {
        if self.is_cancelled() {
            return Err("[capnp:failed] the command was cancelled by its caller".into());
        }
        match &*self.failure.lock().unwrap_or_else(|p| p.into_inner()) {
            Some(reason) => Err(reason.clone()),
            None => Ok(()),
        }
    }

    /// Adds a row to the batch, sending the batch when it is full.
    pub fn row(&self, row: Vec<u8>) -> Result<(), String> {
        self.check()?;
        self.rows.fetch_add(1, Ordering::Relaxed);
        let full = {
            let mut pending = self.pending.lock().unwrap_or_else(|p| p.into_inner());
            let (rows, bytes) = &mut *pending;
            *bytes += row.len();
            rows.push(row);
            rows.len() >= BATCH_ROWS || *bytes >= BATCH_BYTES
        };
        if full {
            self.flush()?;
        }
        Ok(())
    }

    /// Sends an event after the rows emitted before it.
    pub fn event(&self, event: Emitted) -> Result<(), String> {
        self.check()?;
        if matches!(event, Emitted::Diagnostic(_)) {
            self.diagnostics.fetch_add(1, Ordering::Relaxed);
        }
        self.flush()?;
        self.send(event)
    }

    /// Sends the rows waiting in the batch, if any.
    pub fn flush(&self) -> Result<(), String> {
        let (rows, _) = std::mem::take(&mut *self.pending.lock().unwrap_or_else(|p| p.into_inner()));
        if rows.is_empty() {
            return Ok(());
        }
        self.send(Emitted::Rows(rows))
    }

    /// Starts the call on the loop thread and waits (on this, the command thread) until KJ
    /// admits it; a failure is remembered and fails every later operation.
    fn send(&self, item: Emitted) -> Result<(), String> {
        let id = self.id;
        let admitted = self.runtime.run(move || {
            let clients = CLIENTS.with(|c| c.borrow().get(&id).cloned());
            async move {
                let Some(client) = clients else {
                    return Err("[capnp:failed] the command has already finished".to_string());
                };
                start(&client, item).await.map_err(|e| format!("[capnp:disconnected] the parent's sink failed: {e}"))
            }
        });
        let outcome = capnp_lean::block_on(admitted)
            .map_err(|e| e.to_string())
            .and_then(|r| r.map_err(|e| e.to_string()))
            .and_then(|r| r);
        if let Err(reason) = &outcome {
            self.failure.lock().unwrap_or_else(|p| p.into_inner()).get_or_insert_with(|| reason.clone());
        }
        outcome
    }
}

/// The streaming call for one item; resolves when KJ admits it.
async fn start(client: &sink::Client, item: Emitted) -> Result<(), capnp::Error> {
    match item {
        Emitted::Rows(batch) => {
            let mut request = client.rows_request();
            let mut list = request.get().init_rows(batch.len() as u32);
            for (i, row) in batch.iter().enumerate() {
                list.set(i as u32, row);
            }
            request.send().await
        }
        Emitted::Progress { done, total, label } => {
            let mut request = client.progress_request();
            let mut p = request.get();
            p.set_done(done);
            p.set_total(total);
            p.set_label(&label[..]);
            request.send().await
        }
        Emitted::Diagnostic(d) => {
            let mut request = client.diagnostic_request();
            let mut out = request.get().init_diagnostic();
            out.set_severity(d.severity);
            out.set_code(&d.code[..]);
            out.set_message(&d.message[..]);
            if let Some((file, line, column)) = &d.position {
                let mut position = out.init_position();
                position.set_file(&file[..]);
                position.set_line(*line);
                position.set_column(*column);
            }
            request.send().await
        }
    }
}

/// The Lean `Capnp.Worker.Sinks` structure over a command's sinks (see `closures.rs`).
pub(crate) fn lean_sinks(sinks: &CommandSinks) -> Obj {
    crate::child::closures::make_sinks(sinks.id)
}

/// What the closures call: the command's sinks by id, or the error a finished command reports.
pub(crate) fn with_sinks<T>(id: u64, f: impl FnOnce(&CommandSinks) -> Result<T, String>) -> Result<T, String> {
    match CommandSinks::lookup(id) {
        Some(sinks) => f(&sinks),
        None => Err("[capnp:failed] the command these sinks belong to has finished".into()),
    }
}

/// Lean's `UInt8` severity (0 info, 1 warning, 2 error; anything else is an error).
pub(crate) fn severity(code: usize) -> Severity {
    match code {
        0 => Severity::Info,
        1 => Severity::Warning,
        _ => Severity::Error,
    }
}

/// Reads a Lean `String` argument.
pub(crate) fn text(o: &Obj) -> String {
    lean::string_str(o).to_owned()
}
