//! The throughput plot, written as SVG by `rpc-bench` itself (no plotting library needed): one
//! panel per payload, calls per second against calls in flight (log scale: 1, 8, 64, 256), one
//! line per implementation against itself (KJ↔KJ, capnp-rpc↔capnp-rpc, bridge↔bridge), each
//! point with a bar from the rounds' minimum to their maximum.

use std::fmt::Write;

use super::plan::{Pair, PAYLOADS, SYMMETRIC};
use super::results::{Mode, Run};
use super::table::payload_name;

const PANEL_W: f64 = 360.0;
const PANEL_H: f64 = 260.0;
const MARGIN_LEFT: f64 = 70.0;
const MARGIN_TOP: f64 = 50.0;
const MARGIN_BOTTOM: f64 = 50.0;
const LEGEND_H: f64 = 22.0;
const COLORS: [&str; 4] = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd"];

/// The pipelined runs of `pair` at `payload`, by window: (window, median, min, max) calls/s.
fn points(runs: &[Run], pair: &Pair, payload: usize) -> Vec<(u32, f64, f64, f64)> {
    let mut points: Vec<_> = runs
        .iter()
        .filter(|r| r.cell.pair == *pair && r.cell.payload == payload && r.cell.mode == Mode::Pipe)
        .filter_map(|r| r.cell.window.map(|w| (w, r.calls_per_sec.median, r.calls_per_sec.min, r.calls_per_sec.max)))
        .collect();
    points.sort_by_key(|p| p.0);
    points
}

/// A round axis top above `max`: 1, 2 or 5 times a power of ten.
fn axis_top(max: f64) -> f64 {
    if max <= 0.0 {
        return 1.0;
    }
    let magnitude = 10f64.powf(max.log10().floor());
    [1.0, 2.0, 5.0, 10.0].iter().map(|m| m * magnitude).find(|top| *top >= max).unwrap_or(10.0 * magnitude)
}

/// The SVG document for `runs`; panels without pipelined runs are left out.
pub fn throughput_svg(runs: &[Run]) -> String {
    let payloads: Vec<usize> = PAYLOADS.into_iter().filter(|p| SYMMETRIC.iter().any(|pair| !points(runs, pair, *p).is_empty())).collect();
    let width = MARGIN_LEFT + payloads.len().max(1) as f64 * (PANEL_W + MARGIN_LEFT);
    let height = MARGIN_TOP + PANEL_H + MARGIN_BOTTOM + LEGEND_H * SYMMETRIC.len() as f64;
    let mut svg = String::new();
    let _ = writeln!(
        svg,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{width:.0}" height="{height:.0}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(svg, r#"<rect width="100%" height="100%" fill="white"/>"#);
    let _ = writeln!(
        svg,
        r#"<text x="{:.0}" y="20" text-anchor="middle" font-size="14">rpc-bench: pipelined echo throughput, each implementation against itself (bars: min–max over rounds)</text>"#,
        width / 2.0
    );
    for (index, payload) in payloads.iter().enumerate() {
        let left = MARGIN_LEFT + index as f64 * (PANEL_W + MARGIN_LEFT);
        panel(&mut svg, runs, *payload, left);
    }
    for (index, pair) in SYMMETRIC.iter().enumerate() {
        let y = MARGIN_TOP + PANEL_H + MARGIN_BOTTOM + LEGEND_H * index as f64 + 12.0;
        let color = COLORS[index % COLORS.len()];
        let _ = writeln!(svg, r#"<line x1="{MARGIN_LEFT}" y1="{y}" x2="{}" y2="{y}" stroke="{color}" stroke-width="2"/>"#, MARGIN_LEFT + 24.0);
        let _ = writeln!(svg, r#"<text x="{}" y="{}">{} ↔ itself</text>"#, MARGIN_LEFT + 30.0, y + 4.0, pair.client.label());
    }
    svg.push_str("</svg>\n");
    svg
}

fn panel(svg: &mut String, runs: &[Run], payload: usize, left: f64) {
    let series: Vec<_> = SYMMETRIC.iter().map(|pair| points(runs, pair, payload)).collect();
    let top = axis_top(series.iter().flatten().map(|p| p.3).fold(0.0, f64::max));
    let windows: Vec<u32> = {
        let mut all: Vec<u32> = series.iter().flatten().map(|p| p.0).collect();
        all.sort_unstable();
        all.dedup();
        all
    };
    let (low, high) = (windows.first().map_or(0.0, |w| f64::from(*w).log2()), windows.last().map_or(1.0, |w| f64::from(*w).log2()));
    let x = |window: u32| left + 10.0 + (f64::from(window).log2() - low) / (high - low).max(1.0) * (PANEL_W - 20.0);
    let y = |rate: f64| MARGIN_TOP + PANEL_H - rate / top * PANEL_H;
    let _ = writeln!(svg, r##"<rect x="{left}" y="{MARGIN_TOP}" width="{PANEL_W}" height="{PANEL_H}" fill="none" stroke="#888"/>"##);
    let _ = writeln!(
        svg,
        r#"<text x="{:.0}" y="{}" text-anchor="middle">params {}</text>"#,
        left + PANEL_W / 2.0,
        MARGIN_TOP - 8.0,
        payload_name(payload)
    );
    for step in 0..=5 {
        let rate = top * f64::from(step) / 5.0;
        let _ = writeln!(
            svg,
            r##"<line x1="{left}" y1="{0:.1}" x2="{1}" y2="{0:.1}" stroke="#ddd"/><text x="{2}" y="{3:.1}" text-anchor="end">{4:.0}</text>"##,
            y(rate),
            left + PANEL_W,
            left - 4.0,
            y(rate) + 4.0,
            rate
        );
    }
    for window in &windows {
        let _ = writeln!(
            svg,
            r#"<text x="{:.1}" y="{}" text-anchor="middle">{window}</text>"#,
            x(*window),
            MARGIN_TOP + PANEL_H + 16.0
        );
    }
    let _ = writeln!(
        svg,
        r#"<text x="{:.0}" y="{}" text-anchor="middle">calls in flight</text><text x="{}" y="{}" text-anchor="middle" transform="rotate(-90 {} {})">calls / s</text>"#,
        left + PANEL_W / 2.0,
        MARGIN_TOP + PANEL_H + 34.0,
        left - 52.0,
        MARGIN_TOP + PANEL_H / 2.0,
        left - 52.0,
        MARGIN_TOP + PANEL_H / 2.0
    );
    for (index, points) in series.iter().enumerate() {
        if points.is_empty() {
            continue;
        }
        let color = COLORS[index % COLORS.len()];
        let line: Vec<String> = points.iter().map(|p| format!("{:.1},{:.1}", x(p.0), y(p.1))).collect();
        let _ = writeln!(svg, r#"<polyline points="{}" fill="none" stroke="{color}" stroke-width="2"/>"#, line.join(" "));
        for (window, median, min, max) in points {
            let px = x(*window);
            let _ = writeln!(
                svg,
                r#"<line x1="{px:.1}" y1="{:.1}" x2="{px:.1}" y2="{:.1}" stroke="{color}"/><circle cx="{px:.1}" cy="{:.1}" r="3" fill="{color}"/>"#,
                y(*min),
                y(*max),
                y(*median)
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::results::{Cell, Spread};

    fn run(pair: Pair, payload: usize, window: u32, rate: f64) -> Run {
        Run {
            cell: Cell { pair, payload, mode: Mode::Pipe, window: Some(window) },
            rounds: 3,
            calls_per_sec: Spread { min: rate * 0.9, median: rate, max: rate * 1.1 },
            latency_us: None,
            cpu_us_per_call: Spread { min: 1.0, median: 1.0, max: 1.0 },
            server_cpu_us_per_call: None,
            syscalls_per_call: None,
        }
    }

    #[test]
    fn each_symmetric_pair_is_one_line_per_payload_with_a_bar_per_window() {
        let mut runs = Vec::new();
        for pair in SYMMETRIC {
            for window in [1, 8, 64, 256] {
                runs.push(run(pair, 16, window, 1000.0 * f64::from(window)));
                runs.push(run(pair, 1024, window, 500.0 * f64::from(window)));
            }
        }
        let svg = throughput_svg(&runs);
        assert_eq!(svg.matches("<polyline").count(), 2 * SYMMETRIC.len(), "{svg}");
        assert_eq!(svg.matches("<circle").count(), 2 * 4 * SYMMETRIC.len());
        assert!(svg.contains("params 16 B") && svg.contains("params 1 KiB") && !svg.contains("params 64 KiB"));
        assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
    }

    #[test]
    fn a_higher_rate_is_drawn_higher_and_the_axis_covers_the_maximum() {
        assert_eq!(axis_top(256_000.0 * 1.1), 500_000.0);
        assert_eq!(axis_top(90_000.0), 100_000.0);
        let pair = SYMMETRIC[0];
        let svg = throughput_svg(&[run(pair, 16, 1, 1000.0), run(pair, 16, 64, 9000.0)]);
        let line = svg.lines().find(|l| l.starts_with("<polyline")).unwrap();
        let ys: Vec<f64> = line
            .split('"')
            .nth(1)
            .unwrap()
            .split(' ')
            .map(|p| p.split(',').nth(1).unwrap().parse().unwrap())
            .collect();
        assert!(ys[1] < ys[0], "the faster point must sit higher (smaller y): {ys:?}");
    }
}
