//! `rpc-bench`: every client against every server, in one run. Starts each `Interop` server of
//! `rpc_bench::plan::SERVERS` once — native C++ KJ, Rust capnp-rpc, the bridge on
//! the stock and on the coalescing stream — and a raw TCP echo server, then runs each client of
//! `CLIENTS` as its own process against each server for every payload (16 B, 1 KiB, 64 KiB):
//! the TCP floor (sequential only, against the echo server), the native C++ KJ client, the
//! bridge on the stock and on the coalescing stream, the bridge with client code off the loop
//! thread, and the Rust capnp-rpc client. Each measures sequential latency and pipelined
//! throughput with 1, 8, 64 and 256 calls in flight and its own CPU time; between measurements
//! it stops at a mark (`--marks`) while `rpc-bench` reads the server process's CPU clock, so
//! the server's CPU per call is reported beside the client's. A shorter pass under `strace -f`
//! (when installed) counts the client's syscalls per call.
//!
//! ```text
//! rpc-bench [--quick] [--servers kj,rust,bridge-stock,bridge] [--calls N] [--rounds R]
//!           [--strace-calls N] [--no-strace] [--no-pin] [--no-plot] [--out DIR]
//! ```
//! Servers run pinned to one CPU and clients to another (`taskset`; `--no-pin` turns it off).
//! Within a round the order of clients rotates, and each client meets the servers in rotating
//! order one after the other, so the pairs being compared are interleaved in time and machine
//! noise spreads over all of them. Writes `DIR/results.json` (default `target/rpc-bench/`:
//! median, min and max over the rounds), prints the symmetric table (each implementation
//! against itself) and the full matrix with ratios against KJ↔KJ, and draws
//! `DIR/throughput.svg` (no plotting library needed). Build with `--release`. Defaults: 5,000
//! calls per measurement (a quarter for 64 KiB), 3 rounds, 500 calls per measurement under
//! strace — about five minutes on two cores; `--quick` is 300 calls, 1 round, 100 under strace
//! (under a minute).

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use clap::{Parser, ValueEnum};
use capnp_lean_peers::cpu::ProcessCpuClock;
use capnp_lean_peers::process::{built_binary, run_to_completion, run_with_marks, PeerProcess};
use rpc_bench::pinning::{Pinning, Role};
use rpc_bench::plan::{calls_for, pairs, rotated, Pair, ServerSpec, CLIENTS, PAYLOADS, SERVERS, TCP_ECHO_SERVER, WINDOWS};
use rpc_bench::results::{document, summarize, Run, Sample};
use rpc_bench::strace::syscalls_per_measurement;
use rpc_bench::table::{matrix_table, payload_name, symmetric_table};
use capnp_lean_peers::rust_peer::bench::MARK;

const START_TIMEOUT: Duration = Duration::from_secs(20);
const RUN_TIMEOUT: Duration = Duration::from_secs(300);

/// Every client against every server, in one run: sequential latency and pipelined throughput
/// (1, 8, 64, 256 in flight) for 16 B, 1 KiB and 64 KiB payloads, the CPU per call of both
/// ends, a symmetric table (each implementation against itself) and the full matrix with ratios
/// against native KJ on both ends. Writes DIR/results.json and DIR/throughput.svg. Build with
/// --release.
#[derive(Parser)]
#[command(version)]
struct Cli {
    /// 300 calls per measurement, 1 round, 100 under strace (about a minute).
    #[arg(long)]
    quick: bool,
    /// The servers every client is measured against, comma-separated [default: all of them].
    #[arg(long, alias = "server", value_enum, value_delimiter = ',', value_name = "SERVER,...")]
    servers: Vec<ServerChoice>,
    /// Calls per measurement (a quarter for 64 KiB) [default: 5000, or 300 with --quick].
    #[arg(long, value_name = "N")]
    calls: Option<u32>,
    /// Rounds; pairs alternate within a round, and the median, minimum and maximum are reported
    /// [default: 3, or 1 with --quick].
    #[arg(long, value_name = "R")]
    rounds: Option<u32>,
    /// Calls per measurement in the strace pass [default: 500, or 100 with --quick].
    #[arg(long, value_name = "N")]
    strace_calls: Option<u32>,
    /// Skip the pass under strace that counts syscalls per call.
    #[arg(long)]
    no_strace: bool,
    /// Do not pin servers and clients to different CPUs (by default `taskset -c` puts every
    /// server on the first allowed CPU and every client on the last).
    #[arg(long)]
    no_pin: bool,
    /// Do not draw throughput.svg.
    #[arg(long)]
    no_plot: bool,
    /// Where results go [default: target/rpc-bench].
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
}

/// An `Interop` server to measure.
#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum ServerChoice {
    /// Native C++ KJ (`kj-bench-server`).
    Kj,
    /// Rust capnp-rpc (`rust-peer serve-interop`).
    Rust,
    /// The bridge on KJ's stock message stream.
    BridgeStock,
    /// The bridge on its coalescing stream.
    Bridge,
}

impl ServerChoice {
    fn spec(self) -> ServerSpec {
        let choice = match self {
            ServerChoice::Kj => "kj",
            ServerChoice::Rust => "rust",
            ServerChoice::BridgeStock => "bridge-stock",
            ServerChoice::Bridge => "bridge",
        };
        *SERVERS.iter().find(|s| s.choice == choice).expect("every choice names a server")
    }
}

/// The command line, with defaults applied.
struct Settings {
    servers: Vec<ServerSpec>,
    calls: u32,
    rounds: u32,
    strace_calls: Option<u32>,
    pin: bool,
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
    let chosen: Vec<ServerSpec> = cli.servers.iter().map(|c| c.spec()).collect();
    // Table order, each once; none named means all.
    let servers = SERVERS.iter().copied().filter(|s| chosen.is_empty() || chosen.contains(s)).collect();
    let strace_calls = cli.strace_calls.unwrap_or(if quick { 100 } else { 500 }).max(1);
    Ok(Settings {
        servers,
        calls: cli.calls.unwrap_or(if quick { 300 } else { 5_000 }).max(1),
        rounds: cli.rounds.unwrap_or(if quick { 1 } else { 3 }).max(1),
        strace_calls: (!cli.no_strace).then_some(strace_calls),
        pin: !cli.no_pin,
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

/// The program `name`, built next to this binary: the bridge and capnp-rpc peers are the
/// `interop-tests` package's, the other clients and servers this package's.
fn sibling(name: &str) -> Result<PathBuf, String> {
    let package = if matches!(name, "bridge-peer" | "rust-peer") { "interop-tests" } else { "rpc-bench" };
    built_binary(name, package)
}

/// A server process for the whole run, with its CPU clock.
struct RunningServer {
    spec: ServerSpec,
    process: PeerProcess,
    clock: ProcessCpuClock,
}

impl RunningServer {
    fn start(spec: ServerSpec, pinning: Option<Pinning>) -> Result<RunningServer, String> {
        let (program, args) = Pinning::command(pinning, Role::Server, &sibling(spec.binary)?, &spec.command());
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let process = PeerProcess::spawn_listening(program, &args, START_TIMEOUT)?;
        // `taskset` execs the server, so the process id is the server's.
        let clock = ProcessCpuClock::of(process.id())?;
        Ok(RunningServer { spec, process, clock })
    }
}

/// The running server `pair` is measured against.
fn server_of<'a>(running: &'a [RunningServer], pair: &Pair) -> &'a RunningServer {
    running.iter().find(|s| s.spec == pair.server).expect("every pair's server is running")
}

fn run(settings: &Settings) -> Result<(), String> {
    if cfg!(debug_assertions) {
        eprintln!("rpc-bench: warning: debug build; use `cargo build --release -p rpc-bench -p interop-tests --bins && target/release/rpc-bench` for real numbers");
    }
    let started = Instant::now();
    let pinning = if settings.pin { Pinning::choose(&Pinning::allowed_cpus()?) } else { None };
    let pin_note = match (settings.pin, pinning) {
        (false, _) => "not pinned (--no-pin)".to_string(),
        (true, None) => "not pinned: only one CPU is allowed".to_string(),
        (true, Some(p)) => format!("servers pinned to CPU {}, clients to CPU {} (taskset)", p.server_cpu, p.client_cpu),
    };
    let mut running = Vec::new();
    for spec in settings.servers.iter().copied().chain([TCP_ECHO_SERVER]) {
        running.push(RunningServer::start(spec, pinning)?);
    }
    let all_pairs = pairs(&settings.servers);

    let mut samples = Vec::new();
    for round in 0..settings.rounds as usize {
        for payload in PAYLOADS {
            // Rotate clients each round, and each client's servers, so no pair always runs first.
            for (i, client) in rotated(&CLIENTS, round).into_iter().enumerate() {
                let mine: Vec<Pair> = all_pairs.iter().copied().filter(|p| p.client == client).collect();
                for pair in rotated(&mine, round + i) {
                    eprintln!("rpc-bench: round {}/{}: {} {}", round + 1, settings.rounds, pair.label(), payload_name(payload));
                    samples.extend(measure(pair, server_of(&running, &pair), calls_for(settings.calls, payload), payload, pinning)?);
                }
            }
        }
    }
    let mut runs = summarize(&samples);

    let strace_note = match settings.strace_calls {
        None => "syscalls per call: not measured (--no-strace)".to_string(),
        Some(_) if !strace_installed() => {
            "syscalls per call: not measured, `strace` is not installed (apt-get install strace)".to_string()
        }
        Some(calls) => match strace_pass(calls, &all_pairs, &running, pinning, &settings.out, &mut runs) {
            Ok(()) => format!(
                "syscalls per call (client): from a separate pass under `strace -f` with {calls} calls per measurement (a quarter for 64 KiB)"
            ),
            Err(e) => format!("syscalls per call: not measured, the strace pass failed: {e}"),
        },
    };

    for server in &mut running {
        if !server.process.is_running() {
            return Err(format!("the {} server died during the run: {}", server.spec.label(), server.process.kill_and_collect_stderr()));
        }
    }

    std::fs::create_dir_all(&settings.out).map_err(|e| format!("cannot create {}: {e}", settings.out.display()))?;
    let results = settings.out.join("results.json");
    let json = serde_json::to_string_pretty(&document(&runs)).map_err(|e| e.to_string())?;
    std::fs::write(&results, json + "\n").map_err(|e| format!("cannot write {}: {e}", results.display()))?;

    let names: Vec<String> = settings.servers.iter().map(ServerSpec::label).collect();
    println!(
        "servers: {}; {} calls per measurement (a quarter for 64 KiB); median (min–max) of {} round{}; {pin_note}",
        names.join(", "),
        settings.calls,
        settings.rounds,
        if settings.rounds == 1 { "" } else { "s" }
    );
    println!("cpu µs: per call, client process | server process, sequential | 64 in flight");
    println!("\neach implementation against itself:");
    print!("{}", symmetric_table(&runs));
    println!("\nevery client × server: p50/KJ, p50/floor: sequential latency ratios (lower is faster); wN/KJ: calls/s with N in flight (higher is faster)");
    print!("{}", matrix_table(&runs));
    println!("\n{strace_note}");
    println!("wrote {} ({} entries)", results.display(), runs.len());
    if settings.plot {
        plot(&runs, &settings.out.join("throughput.svg"));
    }
    println!("took {:.0} s", started.elapsed().as_secs_f64());
    Ok(())
}

/// Runs one client process against `server`, reading the server's CPU clock at each of the
/// client's marks, and parses each measurement line it printed.
fn measure(pair: Pair, server: &RunningServer, calls: u32, payload: usize, pinning: Option<Pinning>) -> Result<Vec<Sample>, String> {
    let command = pair.client.command(server.process.address(), calls, payload, &WINDOWS, true);
    let (program, args) = Pinning::command(pinning, Role::Client, &sibling(pair.client.binary)?, &command);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let mut readings = Vec::new();
    let finished = run_with_marks(&program, &args, RUN_TIMEOUT, MARK, &mut || {
        readings.push(server.clock.now()?);
        Ok(())
    })?;
    if !finished.status.success() {
        return Err(format!("{} failed ({}): {}", pair.label(), finished.status, finished.stderr));
    }
    let mut samples: Vec<Sample> = finished.stdout.lines().map(|line| Sample::parse(pair, line)).collect::<Result<_, _>>()?;
    // A mark before the first measurement and one after each.
    if readings.len() != samples.len() + 1 {
        return Err(format!("{}: {} measurements but {} marks", pair.label(), samples.len(), readings.len()));
    }
    for (sample, reading) in samples.iter_mut().zip(readings.windows(2)) {
        sample.server_cpu_us = Some(reading[1].saturating_sub(reading[0]).as_secs_f64() * 1e6);
    }
    Ok(samples)
}

fn strace_installed() -> bool {
    Command::new("strace").arg("-V").stdout(Stdio::null()).stderr(Stdio::null()).status().is_ok_and(|s| s.success())
}

/// Runs every pair and payload once more with the client under `strace -f`, `calls` per
/// measurement.
fn strace_pass(
    calls: u32,
    all_pairs: &[Pair],
    running: &[RunningServer],
    pinning: Option<Pinning>,
    out: &Path,
    runs: &mut [Run],
) -> Result<(), String> {
    for pair in all_pairs {
        for payload in PAYLOADS {
            let calls = calls_for(calls, payload);
            eprintln!("rpc-bench: strace pass: {} {}", pair.label(), payload_name(payload));
            let command = pair.client.command(server_of(running, pair).process.address(), calls, payload, &WINDOWS, false);
            count_syscalls(*pair, &command, pinning, out, runs)?;
        }
    }
    Ok(())
}

/// Runs one client under `strace -f` and records syscalls per call into the matching `runs`.
fn count_syscalls(pair: Pair, command: &[String], pinning: Option<Pinning>, out: &Path, runs: &mut [Run]) -> Result<(), String> {
    std::fs::create_dir_all(out).map_err(|e| format!("cannot create {}: {e}", out.display()))?;
    let log = out.join("strace.log");
    let mut traced: Vec<String> = vec!["-f".into(), "-qq".into(), "-o".into(), log.display().to_string()];
    traced.push(sibling(pair.client.binary)?.display().to_string());
    traced.extend(command.iter().cloned());
    let (program, args) = Pinning::command(pinning, Role::Client, Path::new("strace"), &traced);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let finished = run_to_completion(&program, &args, RUN_TIMEOUT)?;
    if !finished.status.success() {
        return Err(format!("{} under strace failed ({}): {}", pair.label(), finished.status, finished.stderr));
    }
    let text = std::fs::read_to_string(&log).map_err(|e| format!("cannot read {}: {e}", log.display()))?;
    let _ = std::fs::remove_file(&log);
    let counts = syscalls_per_measurement(&text)?;
    let samples: Vec<Sample> = finished.stdout.lines().map(|line| Sample::parse(pair, line)).collect::<Result<_, _>>()?;
    if counts.len() != samples.len() {
        return Err(format!("{}: {} measurements but {} getrusage pairs under strace", pair.label(), samples.len(), counts.len()));
    }
    for (sample, count) in samples.iter().zip(counts) {
        if let Some(run) = runs.iter_mut().find(|r| r.cell == sample.cell) {
            run.syscalls_per_call = Some(count as f64 / f64::from(sample.calls));
        }
    }
    Ok(())
}

/// Draws the throughput plot; a file that cannot be written is reported, not fatal (the
/// numbers are already in results.json).
fn plot(runs: &[Run], svg: &Path) {
    match std::fs::write(svg, rpc_bench::plot::throughput_svg(runs)) {
        Ok(()) => println!("wrote {}", svg.display()),
        Err(e) => println!("no plot: cannot write {}: {e}", svg.display()),
    }
}
