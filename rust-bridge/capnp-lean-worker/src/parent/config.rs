//! [`WorkerConfig`] and [`RestartPolicy`].

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::WorkerError;

/// How a [`Worker`](crate::Worker) starts, supervises and replaces its child.
#[derive(Clone, Debug)]
pub struct WorkerConfig {
    /// The capability's manifest (written by `capnp_lean_toolchain::build_capability`).
    pub manifest: PathBuf,
    /// The Lean runtime library (`libleanshared.so`) to load when the manifest names none —
    /// manifests written by lean-rs never do. Default: none (the manifest's).
    pub runtime: Option<PathBuf>,
    /// The capability's command export (default `capnp_lean_worker_run`).
    pub export: String,
    /// The `capnp-lean-worker` binary; `None` looks at `$CAPNP_LEAN_WORKER`, then beside the
    /// current executable and in its parent folder (where cargo puts binaries for tests).
    pub binary: Option<PathBuf>,
    /// The child's whole environment: nothing is inherited from the parent (the manifest says
    /// what to open, so no `LD_LIBRARY_PATH` is needed). Empty by default.
    pub env: Vec<(OsString, OsString)>,
    /// A command that has not finished within this fails with
    /// [`WorkerError::Timeout`]; its worker is killed and replaced. `None`: no limit. Time spent
    /// waiting for a slow consumer of rows counts.
    pub request_timeout: Option<Duration>,
    /// Start-up (spawn, handshake, open) must finish within this (default 30 s).
    pub start_timeout: Duration,
    /// Replacement of crashed, hung or cycled workers.
    pub restart: RestartPolicy,
    /// Replace the worker once it has served this many commands (memory cycling).
    pub max_requests: Option<u64>,
    /// Replace the worker once its resident memory exceeds this many bytes after a command.
    pub max_rss_bytes: Option<u64>,
    /// Lines of the child's stdout/stderr kept for error reports (default 20).
    pub output_lines: usize,
    /// A retired worker with commands still running gets this long to finish them before it is
    /// killed (default 10 s).
    pub drain_timeout: Duration,
}

/// At most `max_restarts` replacements within any `window`; beyond that requests fail with
/// [`WorkerError::RestartLimit`] until the window has passed. Cycling (max requests / RSS) is a
/// planned replacement and does not count.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RestartPolicy {
    /// Replacements allowed per window.
    pub max_restarts: usize,
    /// The window.
    pub window: Duration,
}

impl Default for RestartPolicy {
    fn default() -> Self {
        Self { max_restarts: 5, window: Duration::from_secs(60) }
    }
}

impl WorkerConfig {
    /// Defaults for the capability at `manifest`.
    pub fn new(manifest: impl Into<PathBuf>) -> Self {
        Self {
            manifest: manifest.into(),
            runtime: None,
            export: crate::child::DEFAULT_EXPORT.into(),
            binary: None,
            env: Vec::new(),
            request_timeout: None,
            start_timeout: Duration::from_secs(30),
            restart: RestartPolicy::default(),
            max_requests: None,
            max_rss_bytes: None,
            output_lines: 20,
            drain_timeout: Duration::from_secs(10),
        }
    }

    /// The worker binary this configuration starts.
    pub fn locate_binary(&self) -> Result<PathBuf, WorkerError> {
        let mut looked = Vec::new();
        let mut candidates: Vec<PathBuf> = Vec::new();
        if let Some(binary) = &self.binary {
            candidates.push(binary.clone());
        } else {
            if let Some(from_env) = std::env::var_os("CAPNP_LEAN_WORKER") {
                candidates.push(from_env.into());
            }
            if let Ok(exe) = std::env::current_exe() {
                for dir in exe.ancestors().skip(1).take(2) {
                    candidates.push(dir.join("capnp-lean-worker"));
                }
            }
        }
        for candidate in candidates {
            if is_executable(&candidate) {
                return Ok(candidate);
            }
            looked.push(candidate.display().to_string());
        }
        Err(WorkerError::BinaryMissing { looked: looked.join(", ") })
    }
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}
