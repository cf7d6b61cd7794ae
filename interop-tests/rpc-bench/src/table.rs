//! The tables `rpc-bench` prints. [`symmetric_table`]: each implementation against itself
//! (KJ↔KJ, capnp-rpc↔capnp-rpc, bridge↔bridge), with the spread over rounds and both ends' CPU
//! per call. [`matrix_table`]: per payload, one row per client × server pair, each figure divided
//! by the native KJ↔KJ pair's ([`BASELINE`]) in the same mode, window and payload; sequential
//! p50 is also divided by the raw TCP floor's.

use std::fmt::Write;

use super::plan::{self, Pair, BASELINE, PAYLOADS, SERVERS, SYMMETRIC, WINDOWS};
use super::results::{Mode, Run, Spread};

fn find<'a>(runs: &'a [Run], pair: &Pair, window: Option<u32>, payload: usize) -> Option<&'a Run> {
    let mode = if window.is_some() { Mode::Pipe } else { Mode::Seq };
    runs.iter().find(|r| r.cell.pair == *pair && r.cell.mode == mode && r.cell.window == window && r.cell.payload == payload)
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

/// `median (min–max)`.
fn spread(value: Option<Spread>, digits: usize) -> String {
    value.map_or_else(|| "-".into(), |s| format!("{:.digits$} ({:.digits$}–{:.digits$})", s.median, s.min, s.max))
}

/// `a|b`.
fn both(a: Option<f64>, b: Option<f64>, digits: usize) -> String {
    format!("{}|{}", figure(a, digits), figure(b, digits))
}

fn p50(run: Option<&Run>) -> Option<Spread> {
    run.and_then(|r| r.latency_us).map(|l| l.0)
}

/// Human-readable payload size.
pub fn payload_name(payload: usize) -> String {
    if payload >= 1024 && payload.is_multiple_of(1024) {
        format!("{} KiB", payload / 1024)
    } else {
        format!("{payload} B")
    }
}

/// Each implementation against itself, every payload in `runs`: sequential p50 and calls/s
/// with 64 in flight (median and min–max over rounds, and against KJ↔KJ), and the CPU µs per
/// call of the client and of the server (sequential | 64 in flight).
pub fn symmetric_table(runs: &[Run]) -> String {
    let mut out = format!(
        "{:<7} {:<40} {:>24} {:>7} {:>26} {:>7} {:>14} {:>14}\n",
        "payload", "client ↔ server", "seq p50 µs (min–max)", "/KJ↔KJ", "w64 calls/s (min–max)", "/KJ↔KJ", "client cpu µs", "server cpu µs"
    );
    let _ = writeln!(out, "{:<7} {:<40} {:>24} {:>7} {:>26} {:>7} {:>14} {:>14}", "", "", "", "", "", "", "seq|64", "seq|64");
    for payload in PAYLOADS {
        for pair in &SYMMETRIC {
            let Some(seq) = find(runs, pair, None, payload) else { continue };
            let w64 = find(runs, pair, Some(64), payload);
            let base_w64 = find(runs, &BASELINE, Some(64), payload);
            let _ = writeln!(
                out,
                "{:<7} {:<40} {:>24} {:>7} {:>26} {:>7} {:>14} {:>14}",
                payload_name(payload),
                format!("{} ↔ itself", pair.client.label()),
                spread(p50(Some(seq)), 1),
                ratio(p50(Some(seq)).map(|s| s.median), p50(find(runs, &BASELINE, None, payload)).map(|s| s.median)),
                spread(w64.map(|r| r.calls_per_sec), 0),
                ratio(w64.map(|r| r.calls_per_sec.median), base_w64.map(|r| r.calls_per_sec.median)),
                both(Some(seq.cpu_us_per_call.median), w64.map(|r| r.cpu_us_per_call.median), 1),
                both(seq.server_cpu_us_per_call.map(|s| s.median), w64.and_then(|r| r.server_cpu_us_per_call).map(|s| s.median), 1),
            );
        }
    }
    out
}

/// Every client × server pair, one block per payload in `runs`.
pub fn matrix_table(runs: &[Run]) -> String {
    // Table order: clients, then servers, as the plan lists them.
    let pairs: Vec<Pair> = plan::pairs(&SERVERS).into_iter().filter(|p| runs.iter().any(|r| r.cell.pair == *p)).collect();
    let floor = pairs.iter().copied().find(|p| p.client.sequential_only);
    let mut out = String::new();
    for payload in PAYLOADS {
        if !runs.iter().any(|r| r.cell.payload == payload) {
            continue;
        }
        let _ = writeln!(out, "\npayload {}: ratios against {} in the same mode and window", payload_name(payload), BASELINE.label());
        let mut header = format!("{:<44} {:<30} {:>22} {:>7} {:>9}", "client/transport", "server/transport", "p50 µs (min–max)", "p50/KJ", "p50/floor");
        for window in WINDOWS {
            let _ = write!(header, " {:>8}", format!("w{window}/KJ"));
        }
        let _ = write!(header, " {:>24} {:>13} {:>13} {:>11}", "w64 calls/s (min–max)", "cpu µs seq|64", "srv µs seq|64", "sysc seq|64");
        let _ = writeln!(out, "{header}");
        let base_p50 = p50(find(runs, &BASELINE, None, payload)).map(|s| s.median);
        let floor_p50 = floor.and_then(|f| p50(find(runs, &f, None, payload))).map(|s| s.median);
        for pair in &pairs {
            let Some(seq) = find(runs, pair, None, payload) else { continue };
            let mine = p50(Some(seq)).map(|s| s.median);
            let mut row = format!(
                "{:<44} {:<30} {:>22} {:>7} {:>9}",
                pair.client.label(),
                pair.server.label(),
                spread(p50(Some(seq)), 1),
                ratio(mine, base_p50),
                ratio(mine, floor_p50),
            );
            for window in WINDOWS {
                let mine = find(runs, pair, Some(window), payload).map(|r| r.calls_per_sec.median);
                let base = find(runs, &BASELINE, Some(window), payload).map(|r| r.calls_per_sec.median);
                let _ = write!(row, " {:>8}", ratio(mine, base));
            }
            let w64 = find(runs, pair, Some(64), payload);
            let _ = write!(
                row,
                " {:>24} {:>13} {:>13} {:>11}",
                spread(w64.map(|r| r.calls_per_sec), 0),
                both(Some(seq.cpu_us_per_call.median), w64.map(|r| r.cpu_us_per_call.median), 1),
                both(seq.server_cpu_us_per_call.map(|s| s.median), w64.and_then(|r| r.server_cpu_us_per_call).map(|s| s.median), 1),
                both(seq.syscalls_per_call, w64.and_then(|r| r.syscalls_per_call), 1),
            );
            let _ = writeln!(out, "{row}");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::super::plan::{BRIDGE_CLIENT, BRIDGE_SERVER, FLOOR_CLIENT, KJ_SERVER, TCP_ECHO_SERVER};
    use super::super::results::Cell;
    use super::*;

    fn flat(value: f64) -> Spread {
        Spread { min: value, median: value, max: value }
    }

    fn run(pair: Pair, window: Option<u32>, calls_per_sec: f64) -> Run {
        let mode = if window.is_some() { Mode::Pipe } else { Mode::Seq };
        Run {
            cell: Cell { pair, mode, window, payload: 16 },
            rounds: 1,
            calls_per_sec: flat(calls_per_sec),
            latency_us: window.is_none().then_some((flat(calls_per_sec / 100.0), flat(2.0 * calls_per_sec / 100.0))),
            cpu_us_per_call: flat(10.0),
            server_cpu_us_per_call: Some(flat(20.0)),
            syscalls_per_call: None,
        }
    }

    fn runs() -> Vec<Run> {
        let floor = Pair { client: FLOOR_CLIENT, server: TCP_ECHO_SERVER };
        let bridge_to_kj = Pair { client: BRIDGE_CLIENT, server: KJ_SERVER };
        let bridge = Pair { client: BRIDGE_CLIENT, server: BRIDGE_SERVER };
        vec![
            run(floor, None, 50.0),
            run(BASELINE, None, 100.0),
            run(BASELINE, Some(64), 1000.0),
            run(bridge_to_kj, None, 110.0),
            run(bridge_to_kj, Some(64), 1500.0),
            run(bridge, None, 90.0),
            run(bridge, Some(64), 3000.0),
        ]
    }

    #[test]
    fn matrix_rows_divide_by_kj_against_kj_in_the_same_window() {
        let table = matrix_table(&runs());
        let row = table.lines().find(|l| l.starts_with("capnp-lean-bridge/coalescing") && l.contains("kj-cxx/stock")).unwrap();
        assert!(row.contains("1.10×") && row.contains("2.20×") && row.contains("1.50×"), "{table}");
        assert!(row.contains("10.0|10.0") && row.contains("20.0|20.0"), "client and server CPU: {table}");
        assert!(table.contains("payload 16 B"), "{table}");
    }

    #[test]
    fn symmetric_rows_show_each_implementation_against_itself_with_both_ends_cpu() {
        let table = symmetric_table(&runs());
        let rows: Vec<&str> = table.lines().filter(|l| l.starts_with("16 B")).collect();
        assert_eq!(rows.len(), 2, "KJ↔KJ and bridge↔bridge have runs:\n{table}");
        let bridge = rows.iter().find(|l| l.contains("capnp-lean-bridge/coalescing ↔ itself")).unwrap();
        assert!(bridge.contains("0.90×") && bridge.contains("3.00×") && bridge.contains("3000 (3000–3000)"), "{table}");
    }

    #[test]
    fn payload_names_use_kib() {
        assert_eq!((payload_name(16), payload_name(1024), payload_name(65536)), ("16 B".into(), "1 KiB".into(), "64 KiB".into()));
    }
}
