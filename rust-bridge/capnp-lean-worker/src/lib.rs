//! capnp-lean-worker: a Lean capability in its own process, behind the project's own Cap'n
//! Proto two-party RPC over a socketpair (no TCP, no port).
//!
//! The parent starts `capnp-lean-worker` (this crate's binary) with an environment built from
//! scratch; the child opens the capability with `capnp-lean-loader` and serves the worker
//! protocol (`capnp-schemas/worker.capnp`). A command runs on a command thread in the child and
//! streams rows, progress and diagnostics back through a flow-controlled `Sink`; its summary is
//! the terminal event. A crash, abort or `exit` in the capability ends only the child: pending
//! commands fail with [`WorkerError::Crashed`] naming the status and the child's last output,
//! and the next command starts a new child (bounded by [`RestartPolicy`]).
//!
//! ```no_run
//! # async fn demo() -> Result<(), capnp_lean_worker::WorkerError> {
//! use capnp_lean_worker::{Event, Worker, WorkerConfig};
//! use futures::StreamExt;
//! let worker = Worker::spawn(WorkerConfig::new("target/demo.capability.json")).await?;
//! // Worker::in_process(...) instead runs the same capability in this process, same API.
//! let mut run = worker.start("count", b"1000").await?;
//! while let Some(event) = run.next().await {
//!     if let Event::Rows(rows) = event { println!("{} rows", rows.len()); }
//! }
//! let summary = run.summary().await?;
//! # let _ = summary; Ok(()) }
//! ```
//!
//! The capability's side of the contract (its exports and the `Sinks` closures) is in
//! `docs/worker.md` and `lean-rpc/Capnp/Worker.lean`.

pub mod child;
mod error;
mod parent;
pub mod rss;
#[allow(unsafe_code)]
mod sys;
#[doc(hidden)]
pub mod test_support;

pub use error::WorkerError;
pub use parent::check::{check, CheckFinding, CheckReport};
pub use parent::config::{RestartPolicy, WorkerConfig};
pub use parent::pool::{PoolConfig, PoolState, WorkerPool};
pub use parent::run::{CommandRun, Diagnostic, Event, Summary};
pub use parent::worker::{Worker, WorkerState};
pub use capnp_schemas::worker_capnp::{self as protocol, Severity};
