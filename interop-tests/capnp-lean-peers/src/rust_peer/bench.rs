//! The benchmark client: sequential echo latency and pipelined echo throughput.
//!
//! The KJ bench client (`cxx/kj_bench_client.c++`) measures the same way and prints the same JSON,
//! so results from both can be compared line by line: first `WARMUP_CALLS` unmeasured echoes, then
//! `calls` sequential echoes (each awaited before the next; p50/p99 by nearest rank), then `calls`
//! echoes again with `window` of them always in flight (calls per second over the whole batch).
//!
//! The matrix form ([`BenchPlan::Matrix`], `--windows 1,8,64,256`) used by `rpc-bench` measures
//! one sequential run and one pipelined run per window in one process and prints one
//! [`Measurement`] line for each, with the process CPU time it used. With `marks` (`--marks`) it
//! also prints [`MARK`] before the first run and after each run, and waits for a line on stdin
//! each time: the moments when no call is in flight, at which `rpc-bench` reads the server's CPU
//! time.

use std::cell::Cell;
use std::io::{BufRead, Write};
use std::time::{Duration, Instant};

use capnp::Error;
use capnp_schemas::interop_capnp::interop;

use crate::cpu::CpuClock;
use crate::scenarios::interop::echo;
use super::{connect, Address};

/// The line a client prints, with `--marks`, when no call is in flight between measurements.
pub const MARK: &str = "mark";

/// With `enabled`: prints [`MARK`] and waits for a line on stdin (end of input also continues).
/// Blocks the thread, which is fine: nothing is in flight.
pub fn mark(enabled: bool) -> Result<(), String> {
    if !enabled {
        return Ok(());
    }
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "{MARK}").and_then(|()| stdout.flush()).map_err(|e| format!("cannot print a mark: {e}"))?;
    std::io::stdin().lock().read_line(&mut String::new()).map_err(|e| format!("cannot read after a mark: {e}"))?;
    Ok(())
}

/// Unmeasured calls made first, so connection setup and lazy allocation do not skew p99.
pub const WARMUP_CALLS: u32 = 100;

/// What to measure.
#[derive(Debug, Clone, Copy)]
pub struct BenchConfig {
    /// Calls per measurement.
    pub calls: u32,
    /// Calls kept in flight during the throughput measurement.
    pub window: u32,
    /// Echo payload size in bytes.
    pub payload: usize,
}

/// What was measured.
#[derive(Debug, Clone)]
pub struct BenchResult {
    /// Which client produced it (`rust-capnp-rpc`, `kj-cxx`, ...).
    pub client: String,
    /// The configuration used.
    pub config: BenchConfig,
    /// Median sequential round trip, µs.
    pub p50_us: f64,
    /// 99th percentile sequential round trip, µs.
    pub p99_us: f64,
    /// Pipelined throughput, calls per second.
    pub calls_per_s: f64,
}

impl BenchResult {
    /// One JSON object on one line (the format both bench clients print).
    pub fn to_json(&self) -> String {
        format!(
            "{{\"client\":\"{}\",\"calls\":{},\"window\":{},\"payload\":{},\"p50_us\":{:.1},\"p99_us\":{:.1},\"calls_per_s\":{:.0}}}",
            self.client, self.config.calls, self.config.window, self.config.payload, self.p50_us, self.p99_us, self.calls_per_s
        )
    }
}

/// The matrix form: one sequential run, then one pipelined run per window, same payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MatrixConfig {
    /// Calls per measurement.
    pub calls: u32,
    /// Calls in flight for each pipelined run, in order.
    pub windows: Vec<u32>,
    /// Echo payload size in bytes.
    pub payload: usize,
    /// Print [`MARK`] around the measurements and wait for stdin (see [`mark`]).
    pub marks: bool,
}

/// What one bench process measures.
#[derive(Debug, Clone)]
pub enum BenchPlan {
    /// `--window W`: one JSON line ([`BenchResult`]).
    Single(BenchConfig),
    /// `--windows W,W,...`: one JSON line per measurement ([`Measurement`]).
    Matrix(MatrixConfig),
}

impl BenchPlan {
    /// Warms up, runs the plan over `interop` and returns the JSON lines to print.
    pub async fn run(&self, client: &str, interop: &interop::Client) -> Result<Vec<String>, String> {
        match self {
            BenchPlan::Single(config) => Ok(vec![measure(client, interop, *config).await?.to_json()]),
            BenchPlan::Matrix(config) => {
                Ok(measure_matrix(client, interop, config).await?.iter().map(Measurement::to_json).collect())
            }
        }
    }
}

/// One measurement of the matrix form.
#[derive(Debug, Clone, PartialEq)]
pub struct Measurement {
    /// Which client produced it.
    pub client: String,
    /// `None` for the sequential run, else the calls kept in flight.
    pub window: Option<u32>,
    /// Calls made.
    pub calls: u32,
    /// Echo payload size in bytes.
    pub payload: usize,
    /// Wall-clock time of the whole run, seconds.
    pub seconds: f64,
    /// Median and 99th-percentile round trip, µs (sequential run only).
    pub latency_us: Option<(f64, f64)>,
    /// CPU time (all threads of the process) used by the run, µs.
    pub cpu_us: f64,
}

impl Measurement {
    /// One JSON object on one line (the format the KJ bench client prints too):
    /// `{"client","mode":"seq"|"pipe","window","calls","payload","seconds","p50_us","p99_us","cpu_us"}`,
    /// `window` `null` and latencies present for `seq`, latencies `null` for `pipe`.
    pub fn to_json(&self) -> String {
        let (mode, window) = match self.window {
            None => ("seq", "null".to_string()),
            Some(window) => ("pipe", window.to_string()),
        };
        let (p50, p99) = match self.latency_us {
            Some((p50, p99)) => (format!("{p50:.1}"), format!("{p99:.1}")),
            None => ("null".into(), "null".into()),
        };
        format!(
            "{{\"client\":\"{}\",\"mode\":\"{mode}\",\"window\":{window},\"calls\":{},\"payload\":{},\"seconds\":{:.6},\"p50_us\":{p50},\"p99_us\":{p99},\"cpu_us\":{:.0}}}",
            self.client, self.calls, self.payload, self.seconds, self.cpu_us
        )
    }
}

/// The `rank`-th percentile (0..=100) of `samples` by the nearest-rank method.
pub fn percentile(samples: &mut [Duration], rank: f64) -> Duration {
    if samples.is_empty() {
        return Duration::ZERO;
    }
    samples.sort_unstable();
    let index = ((rank / 100.0) * samples.len() as f64).ceil() as usize;
    samples[index.clamp(1, samples.len()) - 1]
}

/// Round-trip time of each of `calls` sequential echoes.
pub async fn sequential_latencies(interop: &interop::Client, calls: u32, payload: &[u8]) -> Result<Vec<Duration>, Error> {
    let mut samples = Vec::with_capacity(calls as usize);
    for _ in 0..calls {
        let start = Instant::now();
        echo(interop, payload).await?;
        samples.push(start.elapsed());
    }
    Ok(samples)
}

/// Calls per second for `calls` echoes with `window` always in flight.
pub async fn pipelined_throughput(interop: &interop::Client, calls: u32, window: u32, payload: &[u8]) -> Result<f64, Error> {
    let remaining = Cell::new(calls);
    // Each lane sends its next call as soon as its previous one returns.
    let lane = || async {
        while remaining.get() > 0 {
            remaining.set(remaining.get() - 1);
            echo(interop, payload).await?;
        }
        Ok::<(), Error>(())
    };
    let start = Instant::now();
    futures::future::try_join_all((0..window.max(1)).map(|_| lane())).await?;
    Ok(f64::from(calls) / start.elapsed().as_secs_f64())
}

/// Connects to an `Interop` server at `address`, runs `plan` and returns the JSON lines to print.
pub async fn bench_interop(address: &str, plan: &BenchPlan) -> Result<Vec<String>, String> {
    let address = Address::parse(address).map_err(|e| e.to_string())?;
    let connection = connect(&address).await.map_err(|e| format!("connect to {address}: {e}"))?;
    let result = plan.run("rust-capnp-rpc", &connection.bootstrap()).await;
    let _ = connection.disconnect().await;
    result
}

/// Runs the benchmark (warm-up, sequential, pipelined) over an already connected `interop`.
pub async fn measure(client: &str, interop: &interop::Client, config: BenchConfig) -> Result<BenchResult, String> {
    let payload = vec![0x5a; config.payload];
    let failed = |e: Error| format!("echo failed: {e}");
    sequential_latencies(interop, WARMUP_CALLS, &payload).await.map_err(failed)?;
    let mut samples = sequential_latencies(interop, config.calls, &payload).await.map_err(failed)?;
    let calls_per_s = pipelined_throughput(interop, config.calls, config.window, &payload).await.map_err(failed)?;
    let micros = |d: Duration| d.as_secs_f64() * 1e6;
    Ok(BenchResult {
        client: client.into(),
        config,
        p50_us: micros(percentile(&mut samples, 50.0)),
        p99_us: micros(percentile(&mut samples, 99.0)),
        calls_per_s,
    })
}

/// Runs the matrix form over an already connected `interop`: warm-up, then the sequential run,
/// then one pipelined run per window, each bracketed by [`CpuClock`] readings.
pub async fn measure_matrix(client: &str, interop: &interop::Client, config: &MatrixConfig) -> Result<Vec<Measurement>, String> {
    let payload = vec![0x5a; config.payload];
    let failed = |e: Error| format!("echo failed: {e}");
    let micros = |d: Duration| d.as_secs_f64() * 1e6;
    let measurement = |window, seconds, latency_us, cpu_us| Measurement {
        client: client.into(),
        window,
        calls: config.calls,
        payload: config.payload,
        seconds,
        latency_us,
        cpu_us,
    };
    sequential_latencies(interop, WARMUP_CALLS, &payload).await.map_err(failed)?;

    mark(config.marks)?;
    let cpu = CpuClock::start();
    let start = Instant::now();
    let mut samples = sequential_latencies(interop, config.calls, &payload).await.map_err(failed)?;
    let seconds = start.elapsed().as_secs_f64();
    let cpu_us = cpu.elapsed_us();
    mark(config.marks)?;
    let latency = (micros(percentile(&mut samples, 50.0)), micros(percentile(&mut samples, 99.0)));
    let mut measurements = vec![measurement(None, seconds, Some(latency), cpu_us)];

    for &window in &config.windows {
        let cpu = CpuClock::start();
        let start = Instant::now();
        pipelined_throughput(interop, config.calls, window, &payload).await.map_err(failed)?;
        let seconds = start.elapsed().as_secs_f64();
        let cpu_us = cpu.elapsed_us();
        mark(config.marks)?;
        measurements.push(measurement(Some(window), seconds, None, cpu_us));
    }
    Ok(measurements)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentile_uses_nearest_rank() {
        let mut samples: Vec<Duration> = (1..=100).rev().map(Duration::from_micros).collect();
        assert_eq!(percentile(&mut samples, 50.0), Duration::from_micros(50));
        assert_eq!(percentile(&mut samples, 99.0), Duration::from_micros(99));
        assert_eq!(percentile(&mut [Duration::from_micros(7)], 99.0), Duration::from_micros(7));
    }

    #[test]
    fn json_line_has_every_field() {
        let result = BenchResult {
            client: "x".into(),
            config: BenchConfig { calls: 10, window: 4, payload: 64 },
            p50_us: 12.34,
            p99_us: 56.78,
            calls_per_s: 1234.5,
        };
        assert_eq!(
            result.to_json(),
            r#"{"client":"x","calls":10,"window":4,"payload":64,"p50_us":12.3,"p99_us":56.8,"calls_per_s":1234}"#
        );
    }

    #[test]
    fn matrix_lines_say_seq_or_pipe_and_null_the_latencies_of_pipelined_runs() {
        let seq = Measurement {
            client: "x".into(),
            window: None,
            calls: 10,
            payload: 16,
            seconds: 0.5,
            latency_us: Some((12.34, 56.78)),
            cpu_us: 99.4,
        };
        assert_eq!(
            seq.to_json(),
            r#"{"client":"x","mode":"seq","window":null,"calls":10,"payload":16,"seconds":0.500000,"p50_us":12.3,"p99_us":56.8,"cpu_us":99}"#
        );
        let pipe = Measurement { window: Some(8), latency_us: None, ..seq };
        assert_eq!(
            pipe.to_json(),
            r#"{"client":"x","mode":"pipe","window":8,"calls":10,"payload":16,"seconds":0.500000,"p50_us":null,"p99_us":null,"cpu_us":99}"#
        );
    }
}
