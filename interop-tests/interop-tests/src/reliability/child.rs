//! A child process that announces it has reached a given point by printing one line on stdout.
//! It is killed and reaped when dropped, and waiting for the line has a deadline.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use capnp_lean_peers::process::wait_for_line;

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
        match wait_for_line(stdout, timeout, |line| (line.trim() == ready).then_some(())) {
            Ok(()) => Ok(ready_child),
            Err(why) => {
                ready_child.kill();
                Err(format!("{name} did not print `{ready}` within {timeout:?} ({why:?})"))
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
