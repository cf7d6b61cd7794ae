//! The numbers: one [`Sample`] per JSON line a client printed (see
//! `rust_peer::bench::Measurement`), the median of a cell's rounds as a [`Run`], and
//! `results.json`.

use serde_json::{json, Value};

use super::plan::ClientSpec;

/// `"seq"` or `"pipe"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
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
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Cell {
    /// The client (with its transport).
    pub spec: ClientSpec,
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
    /// Process CPU time of the run, µs.
    pub cpu_us: f64,
}

impl Sample {
    /// Parses one line printed by a bench client in the matrix form, for `spec`.
    pub fn parse(spec: ClientSpec, line: &str) -> Result<Sample, String> {
        let value: Value = serde_json::from_str(line).map_err(|e| format!("{}: not JSON ({e}): {line}", spec.label()))?;
        let number = |key: &str| value.get(key).and_then(Value::as_f64).ok_or_else(|| format!("{}: no number {key} in {line}", spec.label()));
        let mode = match value.get("mode").and_then(Value::as_str) {
            Some("seq") => Mode::Seq,
            Some("pipe") => Mode::Pipe,
            _ => return Err(format!("{}: no mode in {line}", spec.label())),
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
            cell: Cell { spec, mode, window, payload: number("payload")? as usize },
            calls: number("calls")? as u32,
            seconds: number("seconds")?,
            latency_us,
            cpu_us: number("cpu_us")?,
        })
    }
}

/// One entry of `results.json`: a cell's median over rounds.
#[derive(Debug, Clone, PartialEq)]
pub struct Run {
    /// The cell.
    pub cell: Cell,
    /// Calls per second.
    pub calls_per_sec: f64,
    /// Median and p99 round trip, µs (`seq` only).
    pub latency_us: Option<(f64, f64)>,
    /// Client-process CPU µs per call.
    pub cpu_us_per_call: f64,
    /// Client-process syscalls per call (from the strace pass; `None` without strace).
    pub syscalls_per_call: Option<f64>,
}

impl Run {
    /// The `results.json` object.
    pub fn to_json(&self) -> Value {
        json!({
            "client": self.cell.spec.client,
            "transport": self.cell.spec.transport,
            "mode": self.cell.mode.name(),
            "window": self.cell.window,
            "payload": self.cell.payload,
            "calls_per_sec": round(self.calls_per_sec, 1),
            "p50_us": self.latency_us.map(|l| round(l.0, 1)),
            "p99_us": self.latency_us.map(|l| round(l.1, 1)),
            "cpu_us_per_call": round(self.cpu_us_per_call, 2),
            "syscalls_per_call": self.syscalls_per_call.map(|s| round(s, 2)),
        })
    }
}

fn round(value: f64, digits: i32) -> f64 {
    let scale = 10f64.powi(digits);
    (value * scale).round() / scale
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

/// The median of each cell's samples (each figure separately), in cell order.
pub fn medians(samples: &[Sample]) -> Vec<Run> {
    let mut cells: Vec<Cell> = samples.iter().map(|s| s.cell).collect();
    cells.sort();
    cells.dedup();
    cells
        .into_iter()
        .map(|cell| {
            let mine: Vec<&Sample> = samples.iter().filter(|s| s.cell == cell).collect();
            let pick = |f: &dyn Fn(&Sample) -> f64| median(mine.iter().map(|s| f(s)).collect());
            Run {
                cell,
                calls_per_sec: pick(&|s| f64::from(s.calls) / s.seconds),
                latency_us: mine[0].latency_us.map(|_| {
                    (pick(&|s| s.latency_us.map_or(0.0, |l| l.0)), pick(&|s| s.latency_us.map_or(0.0, |l| l.1)))
                }),
                cpu_us_per_call: pick(&|s| s.cpu_us / f64::from(s.calls)),
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
    use super::super::plan::CLIENTS;
    use super::*;

    const SEQ: &str = r#"{"client":"kj-cxx","mode":"seq","window":null,"calls":100,"payload":16,"seconds":0.01,"p50_us":80.0,"p99_us":120.0,"cpu_us":500}"#;
    const PIPE: &str = r#"{"client":"kj-cxx","mode":"pipe","window":64,"calls":100,"payload":16,"seconds":0.004,"p50_us":null,"p99_us":null,"cpu_us":300}"#;

    #[test]
    fn a_sequential_line_becomes_a_run_with_latencies_and_a_null_window() {
        let sample = Sample::parse(CLIENTS[1], SEQ).unwrap();
        let run = &medians(&[sample])[0];
        let json = run.to_json();
        assert_eq!(json["mode"], "seq");
        assert!(json["window"].is_null() && json["syscalls_per_call"].is_null());
        assert_eq!((json["calls_per_sec"].as_f64(), json["p50_us"].as_f64()), (Some(10_000.0), Some(80.0)));
        assert_eq!(json["cpu_us_per_call"].as_f64(), Some(5.0));
    }

    #[test]
    fn a_pipelined_line_has_a_window_and_no_latencies() {
        let run = &medians(&[Sample::parse(CLIENTS[1], PIPE).unwrap()])[0];
        let json = run.to_json();
        assert_eq!((json["mode"].as_str(), json["window"].as_u64()), (Some("pipe"), Some(64)));
        assert!(json["p50_us"].is_null() && json["p99_us"].is_null());
        assert_eq!(json["calls_per_sec"].as_f64(), Some(25_000.0));
    }

    #[test]
    fn rounds_are_summarized_by_their_median() {
        let slower = SEQ.replace("0.01,", "0.02,").replace("80.0", "90.0");
        let slowest = SEQ.replace("0.01,", "0.04,").replace("80.0", "200.0");
        let samples: Vec<Sample> = [SEQ, &slower, &slowest].iter().map(|l| Sample::parse(CLIENTS[1], l).unwrap()).collect();
        let runs = medians(&samples);
        assert_eq!(runs.len(), 1);
        assert_eq!((runs[0].calls_per_sec, runs[0].latency_us.unwrap().0), (5_000.0, 90.0));
    }
}
