//! The numbers: one [`Sample`] per JSON line a client printed (see
//! `rust_peer::bench::Measurement`) with the server's CPU time over the same measurement, the
//! minimum, median and maximum of a cell's rounds as a [`Run`], and `results.json`.

use serde_json::{json, Value};

use super::plan::Pair;

/// `"seq"` or `"pipe"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Mode {
    /// Each call awaited before the next.
    Seq,
    /// A window of calls always in flight.
    Pipe,
}

impl Mode {
    /// The name in the JSON.
    pub fn name(self) -> &'static str {
        match self {
            Mode::Seq => "seq",
            Mode::Pipe => "pipe",
        }
    }
}

/// Which cell of the matrix a number belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Cell {
    /// The client and the server (each with its transport).
    pub pair: Pair,
    /// Params size, bytes.
    pub payload: usize,
    /// Sequential or pipelined.
    pub mode: Mode,
    /// Calls in flight (`None` for `seq`).
    pub window: Option<u32>,
}

/// One measurement line of one client process.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// Where it belongs.
    pub cell: Cell,
    /// Calls made.
    pub calls: u32,
    /// Wall-clock seconds.
    pub seconds: f64,
    /// Median and p99 round trip, µs (`seq` only).
    pub latency_us: Option<(f64, f64)>,
    /// Client-process CPU time of the run, µs.
    pub cpu_us: f64,
    /// Server-process CPU time over the same run, µs (`None` when not read, e.g. under strace).
    pub server_cpu_us: Option<f64>,
}

impl Sample {
    /// Parses one line printed by a bench client in the matrix form, for `pair`.
    pub fn parse(pair: Pair, line: &str) -> Result<Sample, String> {
        let label = pair.label();
        let value: Value = serde_json::from_str(line).map_err(|e| format!("{label}: not JSON ({e}): {line}"))?;
        let number = |key: &str| value.get(key).and_then(Value::as_f64).ok_or_else(|| format!("{label}: no number {key} in {line}"));
        let mode = match value.get("mode").and_then(Value::as_str) {
            Some("seq") => Mode::Seq,
            Some("pipe") => Mode::Pipe,
            _ => return Err(format!("{label}: no mode in {line}")),
        };
        let window = match mode {
            Mode::Seq => None,
            Mode::Pipe => Some(number("window")? as u32),
        };
        let latency_us = match mode {
            Mode::Seq => Some((number("p50_us")?, number("p99_us")?)),
            Mode::Pipe => None,
        };
        Ok(Sample {
            cell: Cell { pair, mode, window, payload: number("payload")? as usize },
            calls: number("calls")? as u32,
            seconds: number("seconds")?,
            latency_us,
            cpu_us: number("cpu_us")?,
            server_cpu_us: None,
        })
    }
}

/// The minimum, median and maximum of one figure over the rounds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Spread {
    /// The smallest value.
    pub min: f64,
    /// The median (the upper one of an even count).
    pub median: f64,
    /// The largest value.
    pub max: f64,
}

impl Spread {
    /// The spread of `values` (not empty).
    pub fn of(mut values: Vec<f64>) -> Spread {
        assert!(!values.is_empty(), "a spread of no values");
        values.sort_by(f64::total_cmp);
        Spread { min: values[0], median: values[values.len() / 2], max: values[values.len() - 1] }
    }

    fn range_json(&self, digits: i32) -> Value {
        json!([round(self.min, digits), round(self.max, digits)])
    }
}

/// One entry of `results.json`: a cell over all its rounds.
#[derive(Debug, Clone, PartialEq)]
pub struct Run {
    /// The cell.
    pub cell: Cell,
    /// How many rounds measured it.
    pub rounds: usize,
    /// Calls per second.
    pub calls_per_sec: Spread,
    /// Median and p99 round trip, µs (`seq` only).
    pub latency_us: Option<(Spread, Spread)>,
    /// Client-process CPU µs per call.
    pub cpu_us_per_call: Spread,
    /// Server-process CPU µs per call (`None` if never read).
    pub server_cpu_us_per_call: Option<Spread>,
    /// Client-process syscalls per call (from the strace pass; `None` without strace).
    pub syscalls_per_call: Option<f64>,
}

impl Run {
    /// The `results.json` object: each figure is the median of the rounds under its own name,
    /// and `[min, max]` under `range`.
    pub fn to_json(&self) -> Value {
        let pair = &self.cell.pair;
        let range = |spread: Option<Spread>, digits| spread.map(|s| s.range_json(digits));
        json!({
            "client": pair.client.client,
            "transport": pair.client.transport,
            "server": pair.server.server,
            "server_transport": pair.server.transport,
            "mode": self.cell.mode.name(),
            "window": self.cell.window,
            "payload": self.cell.payload,
            "rounds": self.rounds,
            "calls_per_sec": round(self.calls_per_sec.median, 1),
            "p50_us": self.latency_us.map(|l| round(l.0.median, 1)),
            "p99_us": self.latency_us.map(|l| round(l.1.median, 1)),
            "cpu_us_per_call": round(self.cpu_us_per_call.median, 2),
            "server_cpu_us_per_call": self.server_cpu_us_per_call.map(|s| round(s.median, 2)),
            "syscalls_per_call": self.syscalls_per_call.map(|s| round(s, 2)),
            "range": {
                "calls_per_sec": self.calls_per_sec.range_json(1),
                "p50_us": range(self.latency_us.map(|l| l.0), 1),
                "p99_us": range(self.latency_us.map(|l| l.1), 1),
                "cpu_us_per_call": self.cpu_us_per_call.range_json(2),
                "server_cpu_us_per_call": range(self.server_cpu_us_per_call, 2),
            },
        })
    }
}

fn round(value: f64, digits: i32) -> f64 {
    let scale = 10f64.powi(digits);
    (value * scale).round() / scale
}

/// Each cell's samples summarized as a [`Run`], in cell order.
pub fn summarize(samples: &[Sample]) -> Vec<Run> {
    let mut cells: Vec<Cell> = samples.iter().map(|s| s.cell).collect();
    cells.sort();
    cells.dedup();
    cells
        .into_iter()
        .map(|cell| {
            let mine: Vec<&Sample> = samples.iter().filter(|s| s.cell == cell).collect();
            let spread = |f: &dyn Fn(&Sample) -> f64| Spread::of(mine.iter().map(|s| f(s)).collect());
            let server: Vec<f64> = mine.iter().filter_map(|s| s.server_cpu_us.map(|cpu| cpu / f64::from(s.calls))).collect();
            Run {
                cell,
                rounds: mine.len(),
                calls_per_sec: spread(&|s| f64::from(s.calls) / s.seconds),
                latency_us: mine[0].latency_us.map(|_| {
                    (spread(&|s| s.latency_us.map_or(0.0, |l| l.0)), spread(&|s| s.latency_us.map_or(0.0, |l| l.1)))
                }),
                cpu_us_per_call: spread(&|s| s.cpu_us / f64::from(s.calls)),
                server_cpu_us_per_call: (!server.is_empty()).then(|| Spread::of(server)),
                syscalls_per_call: None,
            }
        })
        .collect()
}

/// The whole `results.json` document.
pub fn document(runs: &[Run]) -> Value {
    json!({ "runs": runs.iter().map(Run::to_json).collect::<Vec<_>>() })
}

#[cfg(test)]
mod tests {
    use super::super::plan::{BASELINE, SYMMETRIC};
    use super::*;

    const SEQ: &str = r#"{"client":"kj-cxx","mode":"seq","window":null,"calls":100,"payload":16,"seconds":0.01,"p50_us":80.0,"p99_us":120.0,"cpu_us":500}"#;
    const PIPE: &str = r#"{"client":"kj-cxx","mode":"pipe","window":64,"calls":100,"payload":16,"seconds":0.004,"p50_us":null,"p99_us":null,"cpu_us":300}"#;

    #[test]
    fn a_sequential_line_becomes_a_run_with_latencies_and_a_null_window() {
        let sample = Sample { server_cpu_us: Some(700.0), ..Sample::parse(BASELINE, SEQ).unwrap() };
        let run = &summarize(&[sample])[0];
        let json = run.to_json();
        assert_eq!((json["mode"].as_str(), json["server"].as_str(), json["server_transport"].as_str()), (Some("seq"), Some("kj-cxx"), Some("stock")));
        assert!(json["window"].is_null() && json["syscalls_per_call"].is_null());
        assert_eq!((json["calls_per_sec"].as_f64(), json["p50_us"].as_f64()), (Some(10_000.0), Some(80.0)));
        assert_eq!((json["cpu_us_per_call"].as_f64(), json["server_cpu_us_per_call"].as_f64()), (Some(5.0), Some(7.0)));
    }

    #[test]
    fn a_pipelined_line_has_a_window_and_no_latencies() {
        let run = &summarize(&[Sample::parse(SYMMETRIC[2], PIPE).unwrap()])[0];
        let json = run.to_json();
        assert_eq!((json["mode"].as_str(), json["window"].as_u64()), (Some("pipe"), Some(64)));
        assert_eq!((json["server"].as_str(), json["server_transport"].as_str()), (Some("capnp-lean-bridge"), Some("coalescing")));
        assert!(json["p50_us"].is_null() && json["p99_us"].is_null() && json["range"]["p50_us"].is_null());
        assert!(json["server_cpu_us_per_call"].is_null(), "no server CPU was read: {json}");
        assert_eq!(json["calls_per_sec"].as_f64(), Some(25_000.0));
    }

    #[test]
    fn rounds_are_summarized_by_their_minimum_median_and_maximum() {
        let slower = SEQ.replace("0.01,", "0.02,").replace("80.0", "90.0");
        let slowest = SEQ.replace("0.01,", "0.04,").replace("80.0", "200.0");
        let samples: Vec<Sample> = [SEQ, &slower, &slowest].iter().map(|l| Sample::parse(BASELINE, l).unwrap()).collect();
        let runs = summarize(&samples);
        assert_eq!(runs.len(), 1);
        assert_eq!(runs[0].calls_per_sec, Spread { min: 2_500.0, median: 5_000.0, max: 10_000.0 });
        let json = runs[0].to_json();
        assert_eq!((json["rounds"].as_u64(), json["p50_us"].as_f64()), (Some(3), Some(90.0)));
        assert_eq!(json["range"]["p50_us"], json!([80.0, 200.0]));
    }

    #[test]
    fn the_same_line_against_two_servers_is_two_cells() {
        let runs = summarize(&[Sample::parse(BASELINE, SEQ).unwrap(), Sample::parse(SYMMETRIC[1], SEQ).unwrap()]);
        assert_eq!(runs.len(), 2);
    }
}
