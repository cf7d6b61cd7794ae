//! Resident memory of a process, from `/proc/<pid>/status` (Linux).

/// Resident set size now and at its peak, in bytes (0 when unknown).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Memory {
    /// `VmRSS`.
    pub rss: u64,
    /// `VmHWM`.
    pub peak: u64,
}

/// This process's memory.
pub fn own() -> Memory {
    read("/proc/self/status")
}

/// Process `pid`'s memory (zeros once it has exited).
pub fn of(pid: u32) -> Memory {
    read(&format!("/proc/{pid}/status"))
}

fn read(path: &str) -> Memory {
    let status = std::fs::read_to_string(path).unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            .map_or(0, |kib| kib * 1024)
    };
    Memory { rss: field("VmRSS:"), peak: field("VmHWM:") }
}
