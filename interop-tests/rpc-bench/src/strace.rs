//! Syscalls per measurement from an `strace -f -o FILE` log of a bench client.
//!
//! The clients read their CPU time with `getrusage` right before and right after each
//! measurement, and make that syscall nowhere else; so the syscalls between the `2k`-th and
//! `2k+1`-th `getrusage` of the log (any thread) are measurement `k`'s, in the order the client
//! printed its lines.

/// The syscall name a log line starts (after the pid `-f` puts first), or `None` for a resumed
/// call (already counted when it started), a signal or an exit line.
fn syscall_name(line: &str) -> Option<&str> {
    let line = line.trim_start();
    let rest = line.trim_start_matches(|c: char| c.is_ascii_digit()).trim_start();
    if rest.starts_with('<') || rest.starts_with("---") || rest.starts_with("+++") {
        return None;
    }
    let name = &rest[..rest.find('(')?];
    (!name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')).then_some(name)
}

/// The number of syscalls inside each `getrusage` pair of `log`, in order. Fails when the
/// markers do not pair up.
pub fn syscalls_per_measurement(log: &str) -> Result<Vec<u64>, String> {
    let mut counts = Vec::new();
    let mut inside: Option<u64> = None;
    for name in log.lines().filter_map(syscall_name) {
        match (name, inside) {
            ("getrusage", None) => inside = Some(0),
            ("getrusage", Some(count)) => {
                counts.push(count);
                inside = None;
            }
            (_, Some(count)) => inside = Some(count + 1),
            (_, None) => {}
        }
    }
    match inside {
        None => Ok(counts),
        Some(_) => Err("an odd number of getrusage markers in the strace log".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_the_syscalls_of_every_thread_between_marker_pairs() {
        let log = "\
100 execve(\"/x\", [\"x\"], 0x0 /* 3 vars */) = 0
100 getrusage(RUSAGE_SELF, {ru_utime={tv_sec=0, tv_usec=1}, ...}) = 0
100 writev(3, [{iov_base=\"\", iov_len=8}], 1) = 8
101 epoll_wait(4,  <unfinished ...>
100 read(3, \"\", 8) = 8
101 <... epoll_wait resumed>[{events=EPOLLIN}], 16, -1) = 1
100 --- SIGCHLD {si_signo=SIGCHLD} ---
100 getrusage(RUSAGE_SELF,  <unfinished ...>
101 futex(0x1, FUTEX_WAKE, 1) = 1
100 <... getrusage resumed>{ru_utime={tv_sec=0, tv_usec=2}, ...}) = 0
100 getrusage(RUSAGE_SELF, {}) = 0
100 getrusage(RUSAGE_SELF, {}) = 0
100 write(1, \"{}\\n\", 3) = 3
100 +++ exited with 0 +++
";
        assert_eq!(syscalls_per_measurement(log).unwrap(), [3, 0]);
    }

    #[test]
    fn an_unpaired_marker_is_an_error() {
        assert!(syscalls_per_measurement("1 getrusage(RUSAGE_SELF, {}) = 0\n1 read(0, \"\", 1) = 0\n").is_err());
    }
}
