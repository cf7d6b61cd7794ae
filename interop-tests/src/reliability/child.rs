//! A child process that announces it has reached a given point by printing one line on stdout.
//! It is killed and reaped when dropped, and waiting for the line has a deadline.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

/// A running child that printed its ready line.
pub struct ReadyChild {
    child: Child,
}

impl ReadyChild {
    /// Starts `program args...` and waits up to `timeout` for a stdout line equal to `ready`.
    /// Stderr is inherited so a failing child explains itself in the test output.
    pub fn spawn(program: impl AsRef<Path>, args: &[&str], ready: &str, timeout: Duration) -> Result<ReadyChild, String> {
        let name = format!("{} {}", program.as_ref().display(), args.join(" "));
        let mut child = Command::new(program.as_ref())
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|e| format!("cannot start {name}: {e}"))?;
        let stdout = child.stdout.take().expect("stdout is piped");
        let mut ready_child = ReadyChild { child };
        let (lines_tx, lines_rx) = mpsc::channel();
        // Keep draining stdout so the child never blocks on a full pipe.
        thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                let _ = lines_tx.send(line);
            }
        });
        let deadline = Instant::now() + timeout;
        loop {
            match lines_rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
                Ok(line) if line.trim() == ready => return Ok(ready_child),
                Ok(_) => continue,
                Err(_) => {
                    ready_child.kill();
                    return Err(format!("{name} did not print `{ready}` within {timeout:?}"));
                }
            }
        }
    }

    /// The OS process id.
    pub fn id(&self) -> u32 {
        self.child.id()
    }

    /// Kills the child (SIGKILL) and reaps it.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for ReadyChild {
    fn drop(&mut self) {
        self.kill();
    }
}
