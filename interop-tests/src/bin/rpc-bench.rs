//! `rpc-bench`: one server, three clients, one run. Starts an `Interop` server (the bridge by
//! default), then runs the native C++ KJ client, the capnp-lean bridge client and the Rust
//! capnp-rpc client against it one after another, each in its own process, and prints
//! sequential latency (p50, p99) and pipelined throughput with ratios against native KJ.
//!
//! ```text
//! rpc-bench [--server bridge|bridge-stock|rust] [--calls N] [--window W] [--payload BYTES] [--rounds R] [--json FILE]
//! ```
//! Rounds alternate the clients so that machine noise spreads over all of them; the table shows
//! the median of each client's rounds. Build with `--release` for meaningful numbers.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use interop_tests::cli::option;
use interop_tests::process::{run_to_completion, PeerProcess};

const USAGE: &str = "usage: rpc-bench [--server bridge|bridge-stock|rust] [--calls N] [--window W] [--payload BYTES] [--rounds R] [--json FILE]";

/// One client's measurement, as its bench command printed it.
#[derive(Debug, Clone)]
struct Sample {
    client: String,
    p50_us: f64,
    p99_us: f64,
    calls_per_s: f64,
}

fn field(json: &str, name: &str) -> Result<f64, String> {
    let key = format!("\"{name}\":");
    let start = json.find(&key).ok_or_else(|| format!("no {name} in {json}"))? + key.len();
    let rest = &json[start..];
    let end = rest.find([',', '}']).unwrap_or(rest.len());
    rest[..end].trim().parse().map_err(|_| format!("{name} is not a number in {json}"))
}

fn sibling(name: &str) -> PathBuf {
    let me = std::env::current_exe().expect("the running binary has a path");
    me.with_file_name(name)
}

fn number_or(args: &[String], name: &str, default: u64) -> Result<u64, String> {
    if args.iter().any(|a| a == name) {
        option(args, name, USAGE)?.parse().map_err(|_| format!("{name} needs a number"))
    } else {
        Ok(default)
    }
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("rpc-bench: {message}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: &[String]) -> Result<(), String> {
    let server_kind = if args.iter().any(|a| a == "--server") { option(args, "--server", USAGE)? } else { "bridge" };
    let (server_binary, server_args): (&str, &[&str]) = match server_kind {
        "bridge" => ("bridge-peer", &[]),
        "bridge-stock" => ("bridge-peer", &["--transport", "stock"]),
        "rust" => ("rust-peer", &[]),
        other => return Err(format!("unknown server {other:?}\n{USAGE}")),
    };
    let calls = number_or(args, "--calls", 20_000)?.to_string();
    let window = number_or(args, "--window", 64)?.to_string();
    let payload = number_or(args, "--payload", 16)?.to_string();
    let rounds = number_or(args, "--rounds", 3)?.max(1);
    if cfg!(debug_assertions) {
        eprintln!("rpc-bench: warning: this is a debug build; run `cargo run --release --bin rpc-bench` for real numbers");
    }

    let mut serve_command = vec!["serve-interop", "--listen", "127.0.0.1:0"];
    serve_command.extend(server_args.iter().copied());
    let server = PeerProcess::spawn_listening(sibling(server_binary), &serve_command, Duration::from_secs(20))?;
    let clients: [(&str, &str, &[&str]); 5] = [
        ("kj-cxx", "kj-bench-client", &[]),
        ("capnp-lean-bridge", "bridge-peer", &[]),
        ("capnp-lean-bridge-stock-stream", "bridge-peer", &["--transport", "stock"]),
        ("capnp-lean-bridge-caller-thread", "bridge-peer", &["--caller-thread"]),
        ("rust-capnp-rpc", "rust-peer", &[]),
    ];
    let mut samples: Vec<Sample> = Vec::new();
    for round in 0..rounds {
        for (name, binary, extra) in clients {
            let mut command: Vec<&str> = Vec::new();
            if binary != "kj-bench-client" {
                command.push("bench");
            }
            command.extend(["--connect", server.address(), "--calls", &calls, "--window", &window, "--payload", &payload]);
            command.extend(extra.iter().copied());
            let finished = run_to_completion(sibling(binary), &command, Duration::from_secs(600))?;
            if !finished.status.success() {
                return Err(format!("{name} failed in round {round}: {}", finished.stderr));
            }
            let line = finished.stdout.lines().last().unwrap_or_default().to_string();
            samples.push(Sample {
                client: name.to_string(),
                p50_us: field(&line, "p50_us")?,
                p99_us: field(&line, "p99_us")?,
                calls_per_s: field(&line, "calls_per_s")?,
            });
        }
    }

    let summary: Vec<Sample> = clients
        .iter()
        .map(|(name, _, _)| {
            let mine: Vec<&Sample> = samples.iter().filter(|s| s.client == *name).collect();
            let pick = |f: fn(&Sample) -> f64| median(&mut mine.iter().map(|s| f(s)).collect::<Vec<_>>());
            Sample {
                client: name.to_string(),
                p50_us: pick(|s| s.p50_us),
                p99_us: pick(|s| s.p99_us),
                calls_per_s: pick(|s| s.calls_per_s),
            }
        })
        .collect();
    let native = summary.iter().find(|s| s.client == "kj-cxx").cloned().ok_or("no native KJ result")?;
    println!("server: {server_kind} ({server_binary} serve-interop); {calls} calls, {window} in flight, {payload}-byte payload, median of {rounds} rounds");
    println!("{:<32} {:>10} {:>10} {:>12} {:>12} {:>14}", "client", "p50 µs", "p99 µs", "calls/s", "p50 / KJ", "calls/s / KJ");
    for s in &summary {
        println!(
            "{:<32} {:>10.1} {:>10.1} {:>12.0} {:>11.2}× {:>13.2}×",
            s.client, s.p50_us, s.p99_us, s.calls_per_s, s.p50_us / native.p50_us, s.calls_per_s / native.calls_per_s
        );
    }
    if args.iter().any(|a| a == "--json") {
        let path = option(args, "--json", USAGE)?;
        let runs: Vec<String> = samples
            .iter()
            .map(|s| format!("{{\"client\":\"{}\",\"p50_us\":{:.1},\"p99_us\":{:.1},\"calls_per_s\":{:.0}}}", s.client, s.p50_us, s.p99_us, s.calls_per_s))
            .collect();
        let json = format!("{{\"server\":\"{server_binary}\",\"calls\":{calls},\"window\":{window},\"payload\":{payload},\"runs\":[{}]}}\n", runs.join(","));
        std::fs::write(path, json).map_err(|e| format!("cannot write {path}: {e}"))?;
    }
    Ok(())
}
