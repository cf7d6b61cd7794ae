//! CPU time consumed by this process, for the benchmark's CPU-per-call figures.
//!
//! [`CpuClock`] reads `getrusage(RUSAGE_SELF)` (user + system time of every thread, µs
//! resolution). Its `getrusage` calls also mark where a measurement starts and ends in an
//! `strace -f` log: no other code in the bench clients makes that syscall (see
//! `rpc_bench::strace`). [`ProcessCpuClock`] reads another process's CPU time from outside, for
//! the benchmark servers' CPU per call.
#![allow(unsafe_code)]

use std::time::Duration;

/// CPU time (user + system, all threads) this process has used so far.
pub fn process_cpu_time() -> Duration {
    // SAFETY: an all-zero `rusage` is a valid value of that plain C struct.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: `usage` is a valid, writable `rusage`; RUSAGE_SELF is always a valid `who`.
    let status = unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) };
    assert_eq!(status, 0, "getrusage(RUSAGE_SELF) cannot fail with valid arguments");
    let micros = |t: libc::timeval| Duration::from_secs(t.tv_sec as u64) + Duration::from_micros(t.tv_usec as u64);
    micros(usage.ru_utime) + micros(usage.ru_stime)
}

/// A stopwatch over process CPU time.
#[derive(Debug, Clone, Copy)]
pub struct CpuClock(Duration);

impl CpuClock {
    /// Starts counting from now.
    pub fn start() -> CpuClock {
        CpuClock(process_cpu_time())
    }

    /// CPU time used since [`CpuClock::start`], in µs.
    pub fn elapsed_us(&self) -> f64 {
        process_cpu_time().saturating_sub(self.0).as_secs_f64() * 1e6
    }
}

/// Another process's CPU clock (`clock_getcpuclockid`): user + system time of all its threads,
/// exited ones included, at the scheduler's nanosecond resolution — finer than the 10 ms ticks of
/// `/proc/<pid>/stat`'s `utime`/`stime`, which would swamp a short measurement.
#[derive(Debug, Clone, Copy)]
pub struct ProcessCpuClock {
    pid: u32,
    clock: libc::clockid_t,
}

impl ProcessCpuClock {
    /// The clock of process `pid` (a process, not a thread, id).
    pub fn of(pid: u32) -> Result<ProcessCpuClock, String> {
        let as_pid = libc::pid_t::try_from(pid).map_err(|_| format!("{pid} is not a process id"))?;
        let mut clock: libc::clockid_t = 0;
        // SAFETY: `clock` is a valid, writable `clockid_t`; the call only writes it.
        let status = unsafe { libc::clock_getcpuclockid(as_pid, &mut clock) };
        if status != 0 {
            return Err(format!("no CPU clock for process {pid}: {}", std::io::Error::from_raw_os_error(status)));
        }
        Ok(ProcessCpuClock { pid, clock })
    }

    /// CPU time the process has used so far.
    pub fn now(&self) -> Result<Duration, String> {
        // SAFETY: an all-zero `timespec` is a valid value of that plain C struct.
        let mut time: libc::timespec = unsafe { std::mem::zeroed() };
        // SAFETY: `time` is a valid, writable `timespec`; a stale clock id fails with EINVAL.
        let status = unsafe { libc::clock_gettime(self.clock, &mut time) };
        if status != 0 {
            return Err(format!("cannot read the CPU clock of process {}: {}", self.pid, std::io::Error::last_os_error()));
        }
        Ok(Duration::new(time.tv_sec as u64, time.tv_nsec as u32))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn another_process_cpu_clock_counts_its_busy_work() {
        let mut child = std::process::Command::new("sh")
            .args(["-c", "while :; do :; done"])
            .spawn()
            .unwrap();
        let clock = ProcessCpuClock::of(child.id()).unwrap();
        let first = clock.now().unwrap();
        std::thread::sleep(Duration::from_millis(200));
        let later = clock.now().unwrap();
        let _ = child.kill();
        let _ = child.wait();
        assert!(later > first, "the child's CPU time did not grow ({first:?} then {later:?})");
    }

    #[test]
    fn cpu_clock_counts_busy_work() {
        let clock = CpuClock::start();
        let mut x = 0u64;
        let until = std::time::Instant::now() + Duration::from_millis(30);
        while std::time::Instant::now() < until {
            x = std::hint::black_box(x.wrapping_add(1));
        }
        assert!(clock.elapsed_us() > 5_000.0, "30 ms of spinning used {} µs of CPU", clock.elapsed_us());
    }
}
