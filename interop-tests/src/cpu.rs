//! CPU time consumed by this process, for the benchmark's CPU-per-call figures.
//!
//! [`CpuClock`] reads `getrusage(RUSAGE_SELF)` (user + system time of every thread, µs
//! resolution). Its `getrusage` calls also mark where a measurement starts and ends in an
//! `strace -f` log: no other code in the bench clients makes that syscall (see
//! `rpc_bench::strace`).
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

#[cfg(test)]
mod tests {
    use super::*;

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
