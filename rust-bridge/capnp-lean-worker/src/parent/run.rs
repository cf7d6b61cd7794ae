//! A running command as its caller sees it: an ordered stream of [`Event`]s, then a
//! [`Summary`]. The parent's `Sink` server feeds the stream through a bounded channel and answers
//! each streaming call only once the batch is in the channel, so a caller that does not read
//! events holds the child back (KJ's flow control) instead of buffering rows without bound.

use std::pin::Pin;
use std::task::{Context, Poll};

use capnp::capability::Rc;
use capnp_schemas::worker_capnp::{sink, Severity};
use futures::channel::{mpsc, oneshot};
use futures::{SinkExt, Stream, StreamExt};

use crate::WorkerError;

/// Batches of events buffered between the child and the caller (each batch up to
/// [`BATCH_ROWS`](crate::child::BATCH_ROWS) rows).
pub(crate) const EVENT_BUFFER: usize = 16;

/// Something a command emitted, in emission order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// Rows, in order (a batch of one or more).
    Rows(Vec<Vec<u8>>),
    /// A progress report.
    Progress {
        /// Units done.
        done: u64,
        /// Units in all (0 when unknown).
        total: u64,
        /// What is being done.
        label: String,
    },
    /// A diagnostic.
    Diagnostic(Diagnostic),
}

/// A diagnostic a command reported.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Diagnostic {
    /// How serious.
    pub severity: Severity,
    /// A stable code chosen by the capability.
    pub code: String,
    /// The message.
    pub message: String,
    /// Source position (file, line, column), when it has one.
    pub position: Option<(String, u32, u32)>,
}

/// A command's terminal summary.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Summary {
    /// What the command's export returned.
    pub output: Vec<u8>,
    /// Rows it emitted.
    pub rows: u64,
    /// Diagnostics it emitted.
    pub diagnostics: u64,
    /// Time it ran in the worker, in microseconds.
    pub elapsed_micros: u64,
}

/// A running command. Read its [`Event`]s as a `futures::Stream` (they end when the command's
/// output has all arrived), then [`summary`](Self::summary). Dropping it cancels the command in
/// the worker (its next sink operation fails there).
pub struct CommandRun {
    pub(crate) events: mpsc::Receiver<Event>,
    pub(crate) outcome: oneshot::Receiver<Result<Summary, WorkerError>>,
    /// Dropped with the run: the loop-thread task then drops the call (Finish on the wire).
    pub(crate) _cancel: oneshot::Sender<()>,
    /// Released when the run ends (pool admission, in-flight counts).
    pub(crate) _slot: Option<Box<dyn Send + Sync>>,
}

impl CommandRun {
    /// Waits for the terminal summary. Events not yet read are discarded (and the child is no
    /// longer held back by them).
    pub async fn summary(mut self) -> Result<Summary, WorkerError> {
        self.events.close();
        while self.events.next().await.is_some() {}
        let outcome = (&mut self.outcome).await;
        outcome.unwrap_or_else(|_| Err(WorkerError::Closed("the worker went away before the command ended".into())))
    }

    /// Reads every event (rows, progress, diagnostics) into `on_event`, then returns the summary.
    pub async fn for_each(mut self, mut on_event: impl FnMut(Event)) -> Result<Summary, WorkerError> {
        while let Some(event) = self.events.next().await {
            on_event(event);
        }
        self.summary().await
    }
}

impl Stream for CommandRun {
    type Item = Event;
    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Event>> {
        self.events.poll_next_unpin(cx)
    }
}

/// The parent's `Sink` for one command.
pub(crate) struct SinkServer {
    /// One sender, held across the send: a fresh clone per batch would each get a guaranteed
    /// slot and defeat the bound.
    pub events: futures::lock::Mutex<mpsc::Sender<Event>>,
}

impl SinkServer {
    async fn deliver(&self, event: Event) -> Result<(), capnp::Error> {
        // A caller that stopped reading (closed the stream) no longer wants events: drop them
        // and keep the command going.
        let _ = self.events.lock().await.send(event).await;
        Ok(())
    }
}

impl sink::Server for SinkServer {
    async fn rows(self: Rc<Self>, params: sink::RowsParams) -> Result<(), capnp::Error> {
        let list = params.get()?.get_rows()?;
        let mut rows = Vec::with_capacity(list.len() as usize);
        for row in list.iter() {
            rows.push(row?.to_vec());
        }
        self.deliver(Event::Rows(rows)).await
    }

    async fn progress(self: Rc<Self>, params: sink::ProgressParams) -> Result<(), capnp::Error> {
        let p = params.get()?;
        self.deliver(Event::Progress { done: p.get_done(), total: p.get_total(), label: p.get_label()?.to_string()? }).await
    }

    async fn diagnostic(self: Rc<Self>, params: sink::DiagnosticParams) -> Result<(), capnp::Error> {
        let d = params.get()?.get_diagnostic()?;
        let position = if d.has_position() {
            let p = d.get_position()?;
            Some((p.get_file()?.to_string()?, p.get_line(), p.get_column()))
        } else {
            None
        };
        let diagnostic = Diagnostic {
            severity: d.get_severity().unwrap_or(Severity::Error),
            code: d.get_code()?.to_string()?,
            message: d.get_message()?.to_string()?,
            position,
        };
        self.deliver(Event::Diagnostic(diagnostic)).await
    }
}
