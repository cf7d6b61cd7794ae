//! [`WorkerError`]: every way a worker request can fail, each naming what to do about it.

use std::path::PathBuf;
use std::time::Duration;

/// A worker operation's failure.
#[derive(Debug, thiserror::Error)]
pub enum WorkerError {
    /// The worker binary could not be started.
    #[error("[WORKER-SPAWN] cannot start {binary}: {reason} (hint: build it with `cargo build -p capnp-lean-worker`, or set WorkerConfig::binary or CAPNP_LEAN_WORKER)")]
    Spawn {
        /// The binary tried.
        binary: PathBuf,
        /// What failed.
        reason: String,
    },
    /// No worker binary was found where the parent looked.
    #[error("[WORKER-BINARY-MISSING] no capnp-lean-worker binary found (looked in: {looked}) (hint: build it with `cargo build -p capnp-lean-worker`, or set WorkerConfig::binary or CAPNP_LEAN_WORKER)")]
    BinaryMissing {
        /// The places looked at, comma-separated.
        looked: String,
    },
    /// The child answered the handshake with another protocol version.
    #[error("[WORKER-PROTOCOL] the worker speaks protocol {found}, this parent {expected} (hint: rebuild capnp-lean-worker from the same release as the parent)")]
    Protocol {
        /// The parent's version.
        expected: u32,
        /// The child's version.
        found: u32,
    },
    /// The capability could not be opened in the child (the loader's code and hint are in the
    /// message).
    #[error("[WORKER-OPEN] the worker could not open {manifest}: {reason}")]
    Open {
        /// The manifest.
        manifest: PathBuf,
        /// The loader's error, with its code and hint.
        reason: String,
    },
    /// The child exited while the request was pending (crash, abort, `exit`, or killed).
    #[error("[WORKER-CRASHED] the worker (pid {pid}) ended with {status} while {during}; its last output:\n{}", last_output.join("\n"))]
    Crashed {
        /// The child's pid.
        pid: u32,
        /// "exit status 3", "signal 11 (SIGSEGV)", ….
        status: String,
        /// What was going on.
        during: String,
        /// The last lines the child wrote to stdout/stderr.
        last_output: Vec<String>,
    },
    /// The request took longer than the configured timeout; the worker was killed and will be
    /// replaced.
    #[error("[WORKER-TIMEOUT] {command} did not finish within {limit:?}; the worker (pid {pid}) was killed and will be replaced (hint: raise WorkerConfig::request_timeout)")]
    Timeout {
        /// The command.
        command: String,
        /// The limit.
        limit: Duration,
        /// The killed child's pid.
        pid: u32,
    },
    /// Restarts exceeded the restart policy; no new worker is started until the window passes.
    #[error("[WORKER-RESTART-LIMIT] the worker was restarted {restarts} times within {window:?}; not restarting again (last failure: {last_failure}) (hint: fix the crash, or loosen WorkerConfig::restart)")]
    RestartLimit {
        /// Restarts counted in the window.
        restarts: usize,
        /// The window.
        window: Duration,
        /// The failure that caused the last restart.
        last_failure: String,
    },
    /// The pool's admission queue is full.
    #[error("[WORKER-POOL-FULL] {queued} requests are already waiting for a worker (hint: raise PoolConfig::queue_limit or add workers)")]
    QueueFull {
        /// Requests waiting.
        queued: usize,
    },
    /// The command failed in the capability (its `IO` error), or the RPC failed otherwise.
    #[error("{0}")]
    Rpc(capnp_lean::Error),
    /// The caller dropped the request, or the worker was shut down.
    #[error("[WORKER-CLOSED] {0}")]
    Closed(String),
}

impl From<capnp_lean::Error> for WorkerError {
    fn from(e: capnp_lean::Error) -> Self {
        WorkerError::Rpc(e)
    }
}

impl From<capnp::Error> for WorkerError {
    fn from(e: capnp::Error) -> Self {
        WorkerError::Rpc(capnp_lean::Error::from(e))
    }
}

impl WorkerError {
    /// A stable code (`WORKER-…`), for programs that branch on the kind of failure.
    pub fn code(&self) -> &'static str {
        match self {
            WorkerError::Spawn { .. } => "WORKER-SPAWN",
            WorkerError::BinaryMissing { .. } => "WORKER-BINARY-MISSING",
            WorkerError::Protocol { .. } => "WORKER-PROTOCOL",
            WorkerError::Open { .. } => "WORKER-OPEN",
            WorkerError::Crashed { .. } => "WORKER-CRASHED",
            WorkerError::Timeout { .. } => "WORKER-TIMEOUT",
            WorkerError::RestartLimit { .. } => "WORKER-RESTART-LIMIT",
            WorkerError::QueueFull { .. } => "WORKER-POOL-FULL",
            WorkerError::Rpc(_) => "WORKER-RPC",
            WorkerError::Closed(_) => "WORKER-CLOSED",
        }
    }
}
