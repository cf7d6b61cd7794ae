//! `rpc-bench`: every client against one server, in one run. Starts an `Interop` server (the
//! bridge by default) and a raw TCP echo server, then runs each client of
//! `interop_tests::rpc_bench::plan::CLIENTS` as its own process for every payload (16 B, 1 KiB,
//! 64 KiB): the TCP floor (sequential only), the native C++ KJ client, the bridge on the stock and
//! on the coalescing stream, the bridge with client code off the loop thread, and the Rust
//! capnp-rpc client. Each measures sequential latency and pipelined throughput with 1, 8, 64 and
//! 256 calls in flight, and its own CPU time per run; a shorter pass under `strace -f` (when
//! installed) counts syscalls per call.
//!
//! ```text
//! rpc-bench [--quick] [--server bridge|bridge-stock|rust] [--calls N] [--rounds R]
//!           [--strace-calls N] [--no-strace] [--no-plot] [--out DIR]
//! ```
//! Writes `DIR/results.json` (default `target/rpc-bench/`), prints ratios against the native KJ
//! client (median of the rounds, which alternate clients so machine noise spreads over all), and
//! draws `DIR/throughput.png` with `scripts/plot-bench.py`. Build with `--release`. Defaults:
//! 10,000 calls per measurement (a quarter for 64 KiB), 3 rounds, 1,000 calls per measurement
//! under strace — about three minutes on two cores; `--quick` is 300 calls, 1 round, 100 under
//! strace.

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use clap::{Parser, ValueEnum};
use interop_tests::process::{run_to_completion, PeerProcess};
use interop_tests::rpc_bench::plan::{calls_for, ClientSpec, ServerKind, CLIENTS, PAYLOADS, WINDOWS};
use interop_tests::rpc_bench::results::{document, medians, Run, Sample};
use interop_tests::rpc_bench::strace::syscalls_per_measurement;
use interop_tests::rpc_bench::table::{payload_name, ratio_table};

const PLOT_SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../scripts/plot-bench.py");
const START_TIMEOUT: Duration = Duration::from_secs(20);
const RUN_TIMEOUT: Duration = Duration::from_secs(600);

/// Every client against one server, in one run: sequential latency and pipelined throughput
/// (1, 8, 64, 256 in flight) for 16 B, 1 KiB and 64 KiB payloads, with ratios against the native
/// KJ client. Writes DIR/results.json and DIR/throughput.png. Build with --release.
#[derive(Parser)]
#[command(version)]
struct Cli {
    /// 300 calls per measurement, 1 round, 100 under strace (≈ 30 s).
    #[arg(long)]
    quick: bool,
    /// The server every client talks to.
    #[arg(long, value_enum, default_value_t = Server::Bridge)]
    server: Server,
    /// Calls per measurement (a quarter for 64 KiB) [default: 10000, or 300 with --quick].
    #[arg(long, value_name = "N")]
    calls: Option<u32>,
    /// Rounds; clients alternate within a round and the median is reported [default: 3, or 1
    /// with --quick].
    #[arg(long, value_name = "R")]
    rounds: Option<u32>,
    /// Calls per measurement in the strace pass [default: 1000, or 100 with --quick].
    #[arg(long, value_name = "N")]
    strace_calls: Option<u32>,
    /// Skip the pass under strace that counts syscalls per call.
    #[arg(long)]
    no_strace: bool,
    /// Do not draw throughput.png.
    #[arg(long)]
    no_plot: bool,
    /// Where results go [default: target/rpc-bench].
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
}

/// Which `Interop` server the clients call.
#[derive(Clone, Copy, ValueEnum)]
enum Server {
    /// The bridge on its coalescing stream.
    Bridge,
    /// The bridge on KJ's stock message stream.
    BridgeStock,
    /// Rust capnp-rpc.
    Rust,
}

/// The command line, with defaults applied.
struct Settings {
    server: &'static str,
    calls: u32,
    rounds: u32,
    strace_calls: Option<u32>,
    plot: bool,
    out: PathBuf,
}

fn main() -> ExitCode {
    match settings(Cli::parse()).and_then(|s| run(&s)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("rpc-bench: {message}");
            ExitCode::FAILURE
        }
    }
}

fn settings(cli: Cli) -> Result<Settings, String> {
    let quick = cli.quick;
    let server = match cli.server {
        Server::Bridge => "bridge",
        Server::BridgeStock => "bridge-stock",
        Server::Rust => "rust",
    };
    let strace_calls = cli.strace_calls.unwrap_or(if quick { 100 } else { 1000 }).max(1);
    Ok(Settings {
        server,
        calls: cli.calls.unwrap_or(if quick { 300 } else { 10_000 }).max(1),
        rounds: cli.rounds.unwrap_or(if quick { 1 } else { 3 }).max(1),
        strace_calls: (!cli.no_strace).then_some(strace_calls),
        plot: !cli.no_plot,
        out: match cli.out {
            Some(out) => out,
            None => default_out_dir()?,
        },
    })
}

/// `target/rpc-bench`: this binary lives in `target/<profile>/`.
fn default_out_dir() -> Result<PathBuf, String> {
    let me = std::env::current_exe().map_err(|e| format!("cannot find this binary: {e}"))?;
    let target = me.parent().and_then(Path::parent).ok_or("this binary is not in target/<profile>/")?;
    Ok(target.join("rpc-bench"))
}

fn sibling(name: &str) -> PathBuf {
    std::env::current_exe().expect("the running binary has a path").with_file_name(name)
}

fn run(settings: &Settings) -> Result<(), String> {
    if cfg!(debug_assertions) {
        eprintln!("rpc-bench: warning: debug build; use `cargo run --release -p interop-tests --bin rpc-bench` for real numbers");
    }
    let started = Instant::now();
    let (server_binary, server_args): (&str, &[&str]) = match settings.server {
        "bridge" => ("bridge-peer", &["--transport", "coalescing"]),
        "bridge-stock" => ("bridge-peer", &["--transport", "stock"]),
        _ => ("rust-peer", &[]),
    };
    let mut serve = vec!["serve-interop", "--listen", "127.0.0.1:0"];
    serve.extend(server_args);
    let rpc_server = PeerProcess::spawn_listening(sibling(server_binary), &serve, START_TIMEOUT)?;
    let echo_server = PeerProcess::spawn_listening(sibling("tcp-floor"), &["serve-echo", "--listen", "127.0.0.1:0"], START_TIMEOUT)?;
    let address = |spec: &ClientSpec| match spec.server {
        ServerKind::Rpc => rpc_server.address().to_string(),
        ServerKind::TcpEcho => echo_server.address().to_string(),
    };

    let mut samples = Vec::new();
    for round in 0..settings.rounds {
        for payload in PAYLOADS {
            // Rotate the order each round so no client always runs first or last.
            for i in 0..CLIENTS.len() {
                let spec = CLIENTS[(i + round as usize) % CLIENTS.len()];
                let calls = calls_for(settings.calls, payload);
                let command = spec.command(&address(&spec), calls, payload, &WINDOWS);
                eprintln!("rpc-bench: round {}/{}: {} {}", round + 1, settings.rounds, spec.label(), payload_name(payload));
                samples.extend(measure(spec, &command)?);
            }
        }
    }
    let mut runs = medians(&samples);

    let strace_note = match settings.strace_calls {
        None => "syscalls per call: not measured (--no-strace)".to_string(),
        Some(_) if !strace_installed() => {
            "syscalls per call: not measured, `strace` is not installed (apt-get install strace)".to_string()
        }
        Some(calls) => match strace_pass(calls, &address, &settings.out, &mut runs) {
            Ok(()) => format!(
                "syscalls per call: from a separate pass under `strace -f` with {calls} calls per measurement (a quarter for 64 KiB)"
            ),
            Err(e) => format!("syscalls per call: not measured, the strace pass failed: {e}"),
        },
    };

    std::fs::create_dir_all(&settings.out).map_err(|e| format!("cannot create {}: {e}", settings.out.display()))?;
    let results = settings.out.join("results.json");
    let json = serde_json::to_string_pretty(&document(&runs)).map_err(|e| e.to_string())?;
    std::fs::write(&results, json + "\n").map_err(|e| format!("cannot write {}: {e}", results.display()))?;

    println!(
        "server: {server_binary} serve-interop {}; {} calls per measurement (a quarter for 64 KiB), median of {} rounds",
        server_args.join(" "),
        settings.calls,
        settings.rounds
    );
    println!("p50/KJ, p50/floor: sequential latency ratios (lower is faster); wN/KJ: calls/s with N in flight (higher is faster)");
    print!("{}", ratio_table(&runs));
    println!("\n{strace_note}");
    println!("wrote {} ({} entries)", results.display(), runs.len());
    if settings.plot {
        plot(&results, &settings.out.join("throughput.png"));
    }
    println!("took {:.0} s", started.elapsed().as_secs_f64());
    Ok(())
}

/// Runs one client process and parses each line it printed.
fn measure(spec: ClientSpec, command: &[String]) -> Result<Vec<Sample>, String> {
    let command: Vec<&str> = command.iter().map(String::as_str).collect();
    let finished = run_to_completion(sibling(spec.binary), &command, RUN_TIMEOUT)?;
    if !finished.status.success() {
        return Err(format!("{} failed ({}): {}", spec.label(), finished.status, finished.stderr));
    }
    finished.stdout.lines().map(|line| Sample::parse(spec, line)).collect()
}

fn strace_installed() -> bool {
    Command::new("strace").arg("-V").stdout(Stdio::null()).stderr(Stdio::null()).status().is_ok_and(|s| s.success())
}

/// Runs every client and payload once more under `strace -f`, `calls` per measurement.
fn strace_pass(calls: u32, address: &dyn Fn(&ClientSpec) -> String, out: &Path, runs: &mut [Run]) -> Result<(), String> {
    for spec in CLIENTS {
        for payload in PAYLOADS {
            let calls = calls_for(calls, payload);
            eprintln!("rpc-bench: strace pass: {} {}", spec.label(), payload_name(payload));
            count_syscalls(spec, &spec.command(&address(&spec), calls, payload, &WINDOWS), out, runs)?;
        }
    }
    Ok(())
}

/// Runs one client under `strace -f` and records syscalls per call into the matching `runs`.
fn count_syscalls(spec: ClientSpec, command: &[String], out: &Path, runs: &mut [Run]) -> Result<(), String> {
    std::fs::create_dir_all(out).map_err(|e| format!("cannot create {}: {e}", out.display()))?;
    let log = out.join("strace.log");
    let log_arg = log.display().to_string();
    let binary = sibling(spec.binary).display().to_string();
    let mut traced: Vec<&str> = vec!["-f", "-qq", "-o", &log_arg, &binary];
    traced.extend(command.iter().map(String::as_str));
    let finished = run_to_completion("strace", &traced, RUN_TIMEOUT)?;
    if !finished.status.success() {
        return Err(format!("{} under strace failed ({}): {}", spec.label(), finished.status, finished.stderr));
    }
    let text = std::fs::read_to_string(&log).map_err(|e| format!("cannot read {}: {e}", log.display()))?;
    let _ = std::fs::remove_file(&log);
    let counts = syscalls_per_measurement(&text)?;
    let samples: Vec<Sample> = finished.stdout.lines().map(|line| Sample::parse(spec, line)).collect::<Result<_, _>>()?;
    if counts.len() != samples.len() {
        return Err(format!("{}: {} measurements but {} getrusage pairs under strace", spec.label(), samples.len(), counts.len()));
    }
    for (sample, count) in samples.iter().zip(counts) {
        if let Some(run) = runs.iter_mut().find(|r| r.cell == sample.cell) {
            run.syscalls_per_call = Some(count as f64 / f64::from(sample.calls));
        }
    }
    Ok(())
}

/// Draws the throughput plot with `scripts/plot-bench.py` (`$RPC_BENCH_PYTHON`, else `python3`);
/// a missing Python or matplotlib is reported, not fatal.
fn plot(results: &Path, png: &Path) {
    let python = std::env::var("RPC_BENCH_PYTHON").unwrap_or_else(|_| "python3".into());
    match Command::new(&python).arg(PLOT_SCRIPT).arg(results).arg(png).output() {
        Ok(output) if output.status.success() => println!("wrote {}", png.display()),
        Ok(output) => println!("no plot: {} said: {}", PLOT_SCRIPT, String::from_utf8_lossy(&output.stderr).trim()),
        Err(e) => println!("no plot: cannot run {python} ({e}); set RPC_BENCH_PYTHON to a Python with matplotlib"),
    }
}
