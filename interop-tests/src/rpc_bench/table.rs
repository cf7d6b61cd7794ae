//! The ratio table `rpc-bench` prints: per payload, one row per client, each figure divided by
//! the native KJ client's ([`BASELINE`]) in the same mode, window and payload; sequential p50 is
//! also divided by the raw TCP floor's.

use std::fmt::Write;

use super::plan::{ClientSpec, BASELINE, CLIENTS, PAYLOADS, WINDOWS};
use super::results::{Mode, Run};

fn find(runs: &[Run], spec: &ClientSpec, window: Option<u32>, payload: usize) -> Option<Run> {
    let mode = if window.is_some() { Mode::Pipe } else { Mode::Seq };
    runs.iter()
        .find(|r| r.cell.spec == *spec && r.cell.mode == mode && r.cell.window == window && r.cell.payload == payload)
        .cloned()
}

fn ratio(mine: Option<f64>, baseline: Option<f64>) -> String {
    match (mine, baseline) {
        (Some(mine), Some(baseline)) if baseline > 0.0 => format!("{:.2}×", mine / baseline),
        _ => "-".into(),
    }
}

fn figure(value: Option<f64>, digits: usize) -> String {
    value.map_or_else(|| "-".into(), |v| format!("{v:.digits$}"))
}

/// Human-readable payload size.
pub fn payload_name(payload: usize) -> String {
    if payload >= 1024 && payload.is_multiple_of(1024) {
        format!("{} KiB", payload / 1024)
    } else {
        format!("{payload} B")
    }
}

/// The table for every payload in `runs`.
pub fn ratio_table(runs: &[Run]) -> String {
    let baseline_spec = CLIENTS.iter().find(|c| c.client == BASELINE).expect("the baseline is a client");
    let mut out = String::new();
    for payload in PAYLOADS {
        if !runs.iter().any(|r| r.cell.payload == payload) {
            continue;
        }
        let _ = writeln!(out, "\npayload {}: ratios against {} in the same mode and window", payload_name(payload), baseline_spec.label());
        let mut header = format!("{:<44} {:>8} {:>8} {:>7} {:>9}", "client/transport", "p50 µs", "p99 µs", "p50/KJ", "p50/floor");
        for window in WINDOWS {
            let _ = write!(header, " {:>8}", format!("w{window}/KJ"));
        }
        let _ = write!(header, " {:>10} {:>14} {:>14}", "w64 call/s", "cpu µs seq|64", "sysc seq|64");
        let _ = writeln!(out, "{header}");
        let base_seq = find(runs, baseline_spec, None, payload);
        let floor_seq = CLIENTS.iter().find(|c| c.sequential_only).and_then(|floor| find(runs, floor, None, payload));
        let p50 = |run: &Option<Run>| run.as_ref().and_then(|r| r.latency_us).map(|l| l.0);
        for spec in &CLIENTS {
            let Some(seq) = find(runs, spec, None, payload) else { continue };
            let latency = seq.latency_us;
            let mut row = format!(
                "{:<44} {:>8} {:>8} {:>7} {:>9}",
                spec.label(),
                figure(latency.map(|l| l.0), 1),
                figure(latency.map(|l| l.1), 1),
                ratio(latency.map(|l| l.0), p50(&base_seq)),
                ratio(latency.map(|l| l.0), p50(&floor_seq)),
            );
            for window in WINDOWS {
                let mine = find(runs, spec, Some(window), payload).map(|r| r.calls_per_sec);
                let base = find(runs, baseline_spec, Some(window), payload).map(|r| r.calls_per_sec);
                let _ = write!(row, " {:>8}", ratio(mine, base));
            }
            let w64 = find(runs, spec, Some(64), payload);
            let pair = |a: Option<f64>, b: Option<f64>, digits| format!("{}|{}", figure(a, digits), figure(b, digits));
            let _ = write!(
                row,
                " {:>10} {:>14} {:>14}",
                figure(w64.as_ref().map(|r| r.calls_per_sec), 0),
                pair(Some(seq.cpu_us_per_call), w64.as_ref().map(|r| r.cpu_us_per_call), 1),
                pair(seq.syscalls_per_call, w64.as_ref().and_then(|r| r.syscalls_per_call), 1),
            );
            let _ = writeln!(out, "{row}");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::super::results::Cell;
    use super::*;

    fn run(spec: ClientSpec, window: Option<u32>, calls_per_sec: f64) -> Run {
        let mode = if window.is_some() { Mode::Pipe } else { Mode::Seq };
        Run {
            cell: Cell { spec, mode, window, payload: 16 },
            calls_per_sec,
            latency_us: window.is_none().then_some((calls_per_sec / 100.0, 2.0 * calls_per_sec / 100.0)),
            cpu_us_per_call: 10.0,
            syscalls_per_call: None,
        }
    }

    #[test]
    fn rows_divide_by_the_native_kj_client_in_the_same_window() {
        let kj = CLIENTS[1];
        let bridge = CLIENTS[3];
        let floor = CLIENTS[0];
        let runs = vec![
            run(floor, None, 50.0),
            run(kj, None, 100.0),
            run(kj, Some(64), 1000.0),
            run(bridge, None, 110.0),
            run(bridge, Some(64), 1500.0),
        ];
        let table = ratio_table(&runs);
        let row = table.lines().find(|l| l.starts_with("capnp-lean-bridge/coalescing")).unwrap();
        assert!(row.contains("1.10×") && row.contains("2.20×") && row.contains("1.50×"), "{table}");
        assert!(table.contains("payload 16 B"), "{table}");
    }

    #[test]
    fn payload_names_use_kib() {
        assert_eq!((payload_name(16), payload_name(1024), payload_name(65536)), ("16 B".into(), "1 KiB".into(), "64 KiB".into()));
    }
}
