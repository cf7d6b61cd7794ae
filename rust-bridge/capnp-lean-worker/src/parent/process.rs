//! One worker child process: started with a socketpair end as an inherited descriptor and an
//! environment built from scratch, its output kept (last lines), its exit observed by a thread
//! that records the status before reaping, so a signal is never sent to a reused pid.

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Read};
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use crate::parent::config::WorkerConfig;
use crate::WorkerError;

/// The inherited descriptor number the child is told about.
const CHILD_FD: i32 = 3;

/// A running (or exited) child.
pub(crate) struct Process {
    pub pid: u32,
    child: Mutex<Child>,
    exit: Arc<(Mutex<Option<ExitStatus>>, Condvar)>,
    output: Arc<Mutex<VecDeque<String>>>,
    output_done: Arc<(Mutex<usize>, Condvar)>,
    keep_lines: usize,
}

impl Process {
    /// Starts `binary --fd 3` with the child end of a new socketpair as descriptor 3; returns the
    /// process and the parent's end.
    pub fn spawn(binary: &Path, config: &WorkerConfig) -> Result<(Arc<Process>, OwnedFd), WorkerError> {
        let (parent_end, child_end) = UnixStream::pair().map_err(|e| WorkerError::Spawn {
            binary: binary.to_path_buf(),
            reason: format!("socketpair failed: {e}"),
        })?;
        let mut command = Command::new(binary);
        command.arg("--fd").arg(CHILD_FD.to_string());
        command.env_clear().envs(config.env.iter().map(|(k, v)| (k, v)));
        command.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
        let source = child_end.as_raw_fd();
        // SAFETY: the closure runs in the forked child before exec and only calls dup2, which
        // is async-signal-safe; `source` stays open in the parent until spawn returns.
        #[allow(unsafe_code)]
        unsafe {
            command.pre_exec(move || crate::sys::inherit_as(source, CHILD_FD));
        }
        let mut child = command.spawn().map_err(|e| WorkerError::Spawn { binary: binary.to_path_buf(), reason: e.to_string() })?;
        drop(child_end);
        let output = Arc::new(Mutex::new(VecDeque::new()));
        let output_done = Arc::new((Mutex::new(0usize), Condvar::new()));
        let keep_lines = config.output_lines.max(1);
        let pid = child.id();
        for (stream, label) in [
            (child.stdout.take().map(|s| Box::new(s) as Box<dyn Read + Send>), "stdout"),
            (child.stderr.take().map(|s| Box::new(s) as Box<dyn Read + Send>), "stderr"),
        ] {
            let Some(stream) = stream else { continue };
            let (output, done) = (output.clone(), output_done.clone());
            std::thread::Builder::new()
                .name(format!("capnp-lean-worker-{label}"))
                .spawn(move || {
                    for line in BufReader::new(stream).lines() {
                        let Ok(line) = line else { break };
                        log::debug!(target: "capnp_lean_worker::child", "[{pid} {label}] {line}");
                        let mut kept = output.lock().unwrap_or_else(|p| p.into_inner());
                        if kept.len() == keep_lines {
                            kept.pop_front();
                        }
                        kept.push_back(line);
                    }
                    *done.0.lock().unwrap_or_else(|p| p.into_inner()) += 1;
                    done.1.notify_all();
                })
                .map_err(|e| WorkerError::Spawn { binary: binary.to_path_buf(), reason: format!("cannot start a thread: {e}") })?;
        }
        let process = Arc::new(Process { pid, child: Mutex::new(child), exit: Arc::default(), output, output_done, keep_lines });
        let watched = process.clone();
        std::thread::Builder::new()
            .name("capnp-lean-worker-wait".into())
            .spawn(move || watched.wait_for_exit())
            .map_err(|e| WorkerError::Spawn { binary: binary.to_path_buf(), reason: format!("cannot start a thread: {e}") })?;
        Ok((process, parent_end.into()))
    }

    /// Blocks until the child exits, then records its status and reaps it (in that order, under
    /// the lock `kill` takes, so `kill` never signals a reaped pid).
    fn wait_for_exit(&self) {
        crate::sys::wait_exited_without_reaping(self.pid);
        let mut status = self.exit.0.lock().unwrap_or_else(|p| p.into_inner());
        let reaped = self.child.lock().unwrap_or_else(|p| p.into_inner()).wait();
        *status = Some(reaped.unwrap_or_else(|_| ExitStatus::from_raw(0)));
        self.exit.1.notify_all();
    }

    /// The exit status, once the child has exited.
    pub fn exit_status(&self) -> Option<ExitStatus> {
        *self.exit.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Waits at most `limit` for the exit status.
    pub fn wait_exit(&self, limit: Duration) -> Option<ExitStatus> {
        let status = self.exit.0.lock().unwrap_or_else(|p| p.into_inner());
        let (status, _) = self.exit.1.wait_timeout_while(status, limit, |s| s.is_none()).unwrap_or_else(|p| p.into_inner());
        *status
    }

    /// SIGKILLs the child unless it has already exited.
    pub fn kill(&self) {
        let status = self.exit.0.lock().unwrap_or_else(|p| p.into_inner());
        if status.is_none() {
            let _ = self.child.lock().unwrap_or_else(|p| p.into_inner()).kill();
        }
    }

    /// The last lines the child wrote (stdout and stderr interleaved as read), after waiting at
    /// most `limit` for both streams to end (they end when the child exits).
    pub fn last_output(&self, limit: Duration) -> Vec<String> {
        let done = self.output_done.0.lock().unwrap_or_else(|p| p.into_inner());
        let _ = self.output_done.1.wait_timeout_while(done, limit, |n| *n < 2).unwrap_or_else(|p| p.into_inner());
        let kept = self.output.lock().unwrap_or_else(|p| p.into_inner());
        kept.iter().skip(kept.len().saturating_sub(self.keep_lines)).cloned().collect()
    }

    /// Resident memory of the child now.
    pub fn rss_bytes(&self) -> u64 {
        crate::rss::of(self.pid).rss
    }
}

/// "exit status 3", "signal 11 (SIGSEGV)", … for error messages.
pub(crate) fn describe(status: ExitStatus) -> String {
    if let Some(code) = status.code() {
        return format!("exit status {code}");
    }
    let signal = status.signal().unwrap_or(0);
    let name = match signal {
        4 => "SIGILL",
        6 => "SIGABRT",
        7 => "SIGBUS",
        8 => "SIGFPE",
        9 => "SIGKILL",
        11 => "SIGSEGV",
        13 => "SIGPIPE",
        15 => "SIGTERM",
        _ => "",
    };
    if name.is_empty() {
        format!("signal {signal}")
    } else {
        format!("signal {signal} ({name})")
    }
}
