//! What a reliability test watches while it stresses a server process: the process's file
//! descriptors, its peak resident memory, and a well-behaved client that must keep being served.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use capnp_lean::Runtime;
use capnp_lean_peers::bridge_peer::connection_options;
use capnp_lean_peers::rust_peer::run_local;
use capnp_lean_peers::scenarios::interop::echo;
use capnp_schemas::interop_capnp::interop;

use super::rss_kib;

/// How many file descriptors process `pid` has open (0 once it is gone).
pub fn open_fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd")).map(|d| d.count()).unwrap_or(0)
}

/// Reads `pid`'s resident memory every 100 ms until it is at most `limit_kib` or `within` has
/// passed: the last reading (`None` once the process is gone).
pub fn rss_settled(pid: u32, limit_kib: u64, within: Duration) -> Option<u64> {
    let deadline = Instant::now() + within;
    loop {
        let rss = rss_kib(pid)?;
        if rss <= limit_kib || Instant::now() >= deadline {
            return Some(rss);
        }
        thread::sleep(Duration::from_millis(100));
    }
}

/// Samples a process's resident memory every 10 ms until finished.
pub struct PeakRss {
    stop: Arc<AtomicBool>,
    peak: Arc<AtomicU64>,
    sampler: thread::JoinHandle<()>,
}

impl PeakRss {
    /// Starts sampling `pid`; the peak is at least `baseline_kib`.
    pub fn start(pid: u32, baseline_kib: u64) -> PeakRss {
        let (stop, peak) = (Arc::new(AtomicBool::new(false)), Arc::new(AtomicU64::new(baseline_kib)));
        let sampler = {
            let (stop, peak) = (stop.clone(), peak.clone());
            thread::spawn(move || {
                while !stop.load(Ordering::SeqCst) {
                    if let Some(rss) = rss_kib(pid) {
                        peak.fetch_max(rss, Ordering::SeqCst);
                    }
                    thread::sleep(Duration::from_millis(10));
                }
            })
        };
        PeakRss { stop, peak, sampler }
    }

    /// Stops sampling; the highest reading, in KiB.
    pub fn finish(self) -> u64 {
        self.stop.store(true, Ordering::SeqCst);
        self.sampler.join().expect("the sampler does not panic");
        self.peak.load(Ordering::SeqCst)
    }
}

/// What the well-behaved client got.
#[derive(Debug, Clone, Copy)]
pub struct Served {
    /// Echo calls answered correctly.
    pub calls: usize,
    /// The slowest of them.
    pub slowest: Duration,
}

/// A bridge client making echo calls back to back (10 ms apart) on its own thread, each within
/// a liveness bound, until finished: the proof that other peers are served meanwhile.
pub struct GoodClient {
    stop: Arc<AtomicBool>,
    connected: Arc<AtomicBool>,
    client: thread::JoinHandle<Result<Served, String>>,
}

impl GoodClient {
    /// Connects to `address` and starts calling; a call slower than `call_timeout` ends the
    /// client with an error.
    pub fn start(address: &str, call_timeout: Duration) -> GoodClient {
        let (stop, connected) = (Arc::new(AtomicBool::new(false)), Arc::new(AtomicBool::new(false)));
        let client = {
            let (stop, connected, address) = (stop.clone(), connected.clone(), address.to_string());
            thread::spawn(move || -> Result<Served, String> {
                let runtime = Runtime::new().map_err(|e| e.to_string())?;
                run_local(async {
                    let connection = runtime
                        .connect_with::<capnp::capability::Client>(&address, None, &connection_options())
                        .await
                        .map_err(|e| e.to_string())?;
                    let interop: interop::Client = connection.bootstrap().map_err(|e| e.to_string())?;
                    let mut served = Served { calls: 0, slowest: Duration::ZERO };
                    while !stop.load(Ordering::SeqCst) {
                        let started = Instant::now();
                        let back = tokio::time::timeout(call_timeout, echo(&interop, b"still served"))
                            .await
                            .map_err(|_| format!("echo {} took over {call_timeout:?}", served.calls))?
                            .map_err(|e| format!("echo {} failed: {e}", served.calls))?;
                        if back != b"still served" {
                            return Err(format!("echo {} came back as {back:?}", served.calls));
                        }
                        served.slowest = served.slowest.max(started.elapsed());
                        served.calls += 1;
                        connected.store(true, Ordering::SeqCst);
                        tokio::time::sleep(Duration::from_millis(10)).await;
                    }
                    Ok(served)
                })
            })
        };
        GoodClient { stop, connected, client }
    }

    /// Waits until the first call has been answered (so its connection counts in the server's
    /// descriptors); false if that takes longer than `within`.
    pub fn wait_served_once(&self, within: Duration) -> bool {
        let deadline = Instant::now() + within;
        while !self.connected.load(Ordering::SeqCst) {
            if Instant::now() > deadline {
                return false;
            }
            thread::sleep(Duration::from_millis(10));
        }
        true
    }

    /// Stops calling; what was served, or the first failure.
    pub fn finish(self) -> Result<Served, String> {
        self.stop.store(true, Ordering::SeqCst);
        self.client.join().unwrap_or_else(|_| Err("the good client panicked".into()))
    }
}
