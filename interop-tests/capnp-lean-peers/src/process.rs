//! Child processes for cross-process tests: spawned peers are always killed, and every wait has a
//! deadline, so a broken peer fails a test instead of hanging it.
//!
//! A serving peer announces readiness by printing one line `listening on ADDR` on stdout;
//! [`PeerProcess::spawn_listening`] waits for it and hands back `ADDR`.

use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

/// The line prefix a serving peer prints once it accepts connections.
pub const LISTENING_PREFIX: &str = "listening on ";

/// A child process that is killed (and reaped) when dropped.
pub struct PeerProcess {
    child: Child,
    name: String,
    address: Option<String>,
    stderr: Option<thread::JoinHandle<String>>,
}

impl PeerProcess {
    /// Starts `program args...` and waits up to `timeout` for its `listening on ADDR` line.
    /// Fails with the child's stderr if it exits or stays silent instead.
    pub fn spawn_listening(program: impl AsRef<Path>, args: &[&str], timeout: Duration) -> Result<PeerProcess, String> {
        let (mut child, name) = spawn_piped(program.as_ref(), args, Stdio::null())?;
        let stdout = child.stdout.take().expect("stdout is piped");
        let stderr = child.stderr.take().expect("stderr is piped");
        let mut peer = PeerProcess { child, name, address: None, stderr: Some(collect(stderr)) };
        match wait_for_line(stdout, timeout, |line| line.trim().strip_prefix(LISTENING_PREFIX).map(str::to_string)) {
            Ok(address) => {
                peer.address = Some(address);
                Ok(peer)
            }
            Err(LineWait::TimedOut) => {
                Err(format!("{} did not print `{LISTENING_PREFIX}ADDR` within {timeout:?}", peer.name))
            }
            Err(LineWait::Closed) => {
                let stderr = peer.kill_and_collect_stderr();
                Err(format!("{} exited before listening; stderr:\n{stderr}", peer.name))
            }
        }
    }

    /// The address from the `listening on` line.
    pub fn address(&self) -> &str {
        self.address.as_deref().unwrap_or("")
    }

    /// The OS process id.
    pub fn id(&self) -> u32 {
        self.child.id()
    }

    /// Whether the process is still running.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Kills the process now (e.g. to test peer death) and returns what it wrote to stderr.
    pub fn kill_and_collect_stderr(&mut self) -> String {
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.stderr.take().and_then(|h| h.join().ok()).unwrap_or_default()
    }
}

impl Drop for PeerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `program args...` with `stdin` and stdout/stderr piped; also returns the command
/// line, for messages.
fn spawn_piped(program: &Path, args: &[&str], stdin: Stdio) -> Result<(Child, String), String> {
    let name = format!("{} {}", program.display(), args.join(" "));
    let child = Command::new(program)
        .args(args)
        .stdin(stdin)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot start {name}: {e}"))?;
    Ok((child, name))
}

/// Why [`wait_for_line`] found no line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LineWait {
    /// The deadline passed.
    TimedOut,
    /// The child closed its stdout (usually: it exited).
    Closed,
}

/// Reads a child's `stdout` on its own thread and returns what `pick` makes of the first line
/// it accepts, waiting at most `timeout`. The thread keeps draining afterwards, so a chatty
/// child never blocks on a full pipe.
pub fn wait_for_line<T>(
    stdout: impl Read + Send + 'static,
    timeout: Duration,
    mut pick: impl FnMut(&str) -> Option<T>,
) -> Result<T, LineWait> {
    let lines_rx = lines_of(stdout);
    let deadline = Instant::now() + timeout;
    loop {
        match lines_rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
            Ok(line) => {
                if let Some(found) = pick(&line) {
                    return Ok(found);
                }
            }
            Err(mpsc::RecvTimeoutError::Timeout) => return Err(LineWait::TimedOut),
            Err(mpsc::RecvTimeoutError::Disconnected) => return Err(LineWait::Closed),
        }
    }
}

/// The lines of `stdout`, read on their own thread until it ends. The thread keeps reading when
/// the receiver is gone: that is what keeps the child's pipe from filling.
fn lines_of(stdout: impl Read + Send + 'static) -> mpsc::Receiver<String> {
    let (lines_tx, lines_rx) = mpsc::channel();
    thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            let _ = lines_tx.send(line);
        }
    });
    lines_rx
}

fn collect(mut stream: impl Read + Send + 'static) -> thread::JoinHandle<String> {
    thread::spawn(move || {
        let mut text = String::new();
        let _ = stream.read_to_string(&mut text);
        text
    })
}

/// What a finished child process did.
#[derive(Debug)]
pub struct Finished {
    /// Its exit status.
    pub status: ExitStatus,
    /// Everything it wrote to stdout.
    pub stdout: String,
    /// Everything it wrote to stderr.
    pub stderr: String,
}

/// Runs `program args...` to completion; kills it and fails if it takes longer than `timeout`.
pub fn run_to_completion(program: impl AsRef<Path>, args: &[&str], timeout: Duration) -> Result<Finished, String> {
    let (mut child, name) = spawn_piped(program.as_ref(), args, Stdio::null())?;
    let stdout = collect(child.stdout.take().expect("stdout is piped"));
    let stderr = collect(child.stderr.take().expect("stderr is piped"));
    let Some(status) = wait_until(&mut child, Instant::now() + timeout) else {
        let stderr = stderr.join().unwrap_or_default();
        return Err(format!("{name} did not finish within {timeout:?}; stderr:\n{stderr}"));
    };
    Ok(Finished { status, stdout: stdout.join().unwrap_or_default(), stderr: stderr.join().unwrap_or_default() })
}

/// Runs `program args...` to completion like [`run_to_completion`], with its stdin piped: each
/// time it prints a line equal to `mark`, calls `on_mark` and then answers with an empty line
/// on its stdin (the handshake of `rust_peer::bench::mark`). The mark lines are left out of
/// [`Finished::stdout`].
pub fn run_with_marks(
    program: impl AsRef<Path>,
    args: &[&str],
    timeout: Duration,
    mark: &str,
    on_mark: &mut dyn FnMut() -> Result<(), String>,
) -> Result<Finished, String> {
    let (mut child, name) = spawn_piped(program.as_ref(), args, Stdio::piped())?;
    let mut stdin = child.stdin.take().expect("stdin is piped");
    let stdout = child.stdout.take().expect("stdout is piped");
    let stderr = collect(child.stderr.take().expect("stderr is piped"));
    let lines_rx = lines_of(stdout);
    let deadline = Instant::now() + timeout;
    let mut printed = String::new();
    let outcome = loop {
        match lines_rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
            Ok(line) if line == mark => {
                if let Err(e) = on_mark() {
                    break Err(e);
                }
                // A child that exited meanwhile is reported by its status below.
                let _ = stdin.write_all(b"\n").and_then(|()| stdin.flush());
            }
            Ok(line) => {
                printed.push_str(&line);
                printed.push('\n');
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => break Ok(()),
            Err(mpsc::RecvTimeoutError::Timeout) => break Err(format!("{name} did not finish within {timeout:?}")),
        }
    };
    drop(stdin);
    if let Err(e) = outcome {
        let _ = child.kill();
        let _ = child.wait();
        return Err(format!("{e}; stderr:\n{}", stderr.join().unwrap_or_default()));
    }
    let Some(status) = wait_until(&mut child, deadline) else {
        let stderr = stderr.join().unwrap_or_default();
        return Err(format!("{name} did not exit within {timeout:?}; stderr:\n{stderr}"));
    };
    Ok(Finished { status, stdout: printed, stderr: stderr.join().unwrap_or_default() })
}

/// Waits for `child` to exit until `deadline`; past it, kills it and returns `None`.
fn wait_until(child: &mut Child, deadline: Instant) -> Option<ExitStatus> {
    loop {
        match child.try_wait() {
            Ok(Some(status)) => return Some(status),
            Ok(None) if Instant::now() < deadline => thread::sleep(Duration::from_millis(20)),
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                return None;
            }
        }
    }
}

/// A unix socket path unique to this process and call, in the temp directory.
pub fn unique_socket_path(label: &str) -> PathBuf {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    std::env::temp_dir().join(format!("capnp-lean-{label}-{}-{n}.sock", std::process::id()))
}

/// The binary `name` of workspace package `package`, built into the same target directory as
/// the running program (a binary in `target/<profile>/`, or a test in `target/<profile>/deps/`).
/// For programs of another package, which `env!("CARGO_BIN_EXE_…")` cannot name: cargo builds
/// them alongside on `cargo build --workspace` or `cargo test --workspace`, not when only this
/// program's package is built. Fails, saying how to build it, when it is not there.
pub fn built_binary(name: &str, package: &str) -> Result<PathBuf, String> {
    let me = std::env::current_exe().map_err(|e| format!("cannot find the running program: {e}"))?;
    let mut dir = me.parent().ok_or("the running program has no folder")?;
    if dir.file_name().is_some_and(|n| n == "deps") {
        dir = dir.parent().ok_or("a deps/ folder without a parent")?;
    }
    let path = dir.join(name);
    if path.is_file() {
        Ok(path)
    } else {
        let release = if dir.file_name().is_some_and(|n| n == "release") { " --release" } else { "" };
        Err(format!("{name} is not built in {}; build it with `cargo build{release} -p {package} --bins`", dir.display()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn marks_are_answered_in_order_and_left_out_of_stdout() {
        let script = "echo mark; read a; echo one; echo mark; read b; echo two";
        let mut marks = 0;
        let finished = run_with_marks("sh", &["-c", script], Duration::from_secs(20), "mark", &mut || {
            marks += 1;
            Ok(())
        })
        .unwrap();
        assert!(finished.status.success());
        assert_eq!((marks, finished.stdout.as_str()), (2, "one\ntwo\n"));
    }

    #[test]
    fn a_failing_mark_handler_stops_the_child() {
        let started = Instant::now();
        let outcome = run_with_marks("sh", &["-c", "echo mark; exec sleep 30"], Duration::from_secs(20), "mark", &mut || Err("no clock".into()));
        assert!(outcome.unwrap_err().contains("no clock"));
        assert!(started.elapsed() < Duration::from_secs(10), "the child was not killed");
    }
}
