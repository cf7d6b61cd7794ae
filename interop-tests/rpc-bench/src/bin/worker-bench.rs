//! `worker-bench`: what the worker's process boundary costs. In one run, interleaved over
//! rounds: the round trip of a 16 B `echo` command through a worker child, through the same
//! protocol served on a thread of this process over a socketpair (everything but the process
//! boundary), and through the in-process capability called directly; rows per second streamed
//! from a child with both sides' resident memory; and how soon a crashed child's pending command
//! fails and its replacement answers. The capability is the worker tests' fixture (compiled-Lean
//! conventions, real Lean 4.35 runtime: `bash scripts/fetch-lean-runtime.sh`).
//!
//! Not pinned: the parent and the child are left to the scheduler on this 2-core machine;
//! compare figures within one run only.

use std::path::PathBuf;
use std::future::Future;
use std::time::Instant;

use capnp_lean::block_on;
use capnp_lean_worker::{rss, Event, Worker, WorkerConfig};
use clap::Parser;
use futures::StreamExt;

/// Measures worker round trips, streamed rows and crash recovery (see the crate docs).
#[derive(Parser)]
#[command(version)]
struct Args {
    /// Sequential calls per placement and round.
    #[arg(long, default_value_t = 5000)]
    calls: usize,
    /// Rounds (placements interleaved within each).
    #[arg(long, default_value_t = 3)]
    rounds: usize,
    /// Rows streamed per round (8 bytes each).
    #[arg(long, default_value_t = 1_000_000)]
    rows: u64,
    /// Crash samples.
    #[arg(long, default_value_t = 5)]
    crashes: usize,
    /// Where to write worker.json.
    #[arg(long, default_value = "target/rpc-bench")]
    out: PathBuf,
}

fn main() {
    let args = Args::parse();
    if let Err(e) = run(&args) {
        eprintln!("worker-bench: {e}");
        std::process::exit(1);
    }
}

/// Runs a worker operation to its end on this thread.
fn wait<T>(operation: impl Future<Output = Result<T, capnp_lean_worker::WorkerError>>) -> Result<T, String> {
    block_on(operation).map_err(|e| e.to_string())?.map_err(|e| e.to_string())
}

fn run(args: &Args) -> Result<(), String> {
    let dir = std::env::temp_dir().join(format!("worker-bench-{}", std::process::id()));
    let manifest = capnp_lean_worker::test_support::build_fixture(&dir).ok_or("the Lean runtime is not provisioned: bash scripts/fetch-lean-runtime.sh")?;
    let mut config = WorkerConfig::new(&manifest);
    config.binary = Some(std::env::current_exe().map_err(|e| e.to_string())?.with_file_name("capnp-lean-worker"));
    let placements = [
        ("worker (child process)", wait(Worker::spawn(config.clone()))?),
        ("in process over a socketpair", wait(Worker::in_thread(config.clone()))?),
        ("in process, direct", wait(Worker::in_process(config.clone()))?),
    ];
    let mut p50s: Vec<Vec<f64>> = vec![Vec::new(); placements.len()];
    for round in 0..args.rounds {
        for (i, (name, worker)) in placements.iter().enumerate().cycle().skip(round).take(placements.len()) {
            let mut samples = Vec::with_capacity(args.calls);
            for _ in 0..100 {
                wait(worker.call("echo", &[7; 16]))?;
            }
            for _ in 0..args.calls {
                let started = Instant::now();
                wait(worker.call("echo", &[7; 16]))?;
                samples.push(started.elapsed().as_secs_f64() * 1e6);
            }
            samples.sort_by(f64::total_cmp);
            let p50 = samples[samples.len() / 2];
            eprintln!("round {round}: {name}: p50 {p50:.1} µs, p99 {:.1} µs", samples[samples.len() * 99 / 100]);
            p50s[i].push(p50);
        }
    }
    println!("16 B echo command, sequential round trip (µs, median of {} rounds [min–max]):", args.rounds);
    let spread = |v: &Vec<f64>| {
        let mut v = v.clone();
        v.sort_by(f64::total_cmp);
        (v[0], v[v.len() / 2], v[v.len() - 1])
    };
    let mut json_round_trips = Vec::new();
    for (i, (name, _)) in placements.iter().enumerate() {
        let (min, median, max) = spread(&p50s[i]);
        println!("  {name:32} {median:8.1} [{min:.1}–{max:.1}]");
        json_round_trips.push(serde_json::json!({"placement": name, "p50_us": {"min": min, "median": median, "max": max}}));
    }
    let ratio = spread(&p50s[0]).1 / spread(&p50s[1]).1;
    println!("  worker / in process over a socketpair: {ratio:.2}× (target ≤ 2×)");

    let worker = &placements[0].1;
    let mut rates = Vec::new();
    let mut memory = (0, 0);
    for _ in 0..args.rounds {
        let child = worker.pid().ok_or("the worker has no child")?;
        let (parent_before, child_before) = (rss::own().rss, rss::of(child).rss);
        let started = Instant::now();
        let mut received = 0u64;
        let mut peaks = (parent_before, child_before);
        let summary = wait(async {
            let mut run = worker.start("rows", args.rows.to_string().as_bytes()).await?;
            let mut batches = 0u64;
            while let Some(event) = run.next().await {
                if let Event::Rows(rows) = event {
                    received += rows.len() as u64;
                    batches += 1;
                    if batches.is_multiple_of(64) {
                        peaks = (peaks.0.max(rss::own().rss), peaks.1.max(rss::of(child).rss));
                    }
                }
            }
            run.summary().await
        })?;
        let took = started.elapsed();
        if received != args.rows || summary.rows != args.rows {
            return Err(format!("streamed {received} of {} rows", args.rows));
        }
        rates.push(args.rows as f64 / took.as_secs_f64());
        memory = (memory.0.max(peaks.0 - parent_before), memory.1.max(peaks.1 - child_before));
    }
    let (rmin, rmed, rmax) = spread(&rates);
    println!("rows streamed from a child (8 B each): {rmed:.0} rows/s [{rmin:.0}–{rmax:.0}] (target ≥ 500k); RSS growth at most: parent {} KiB, child {} KiB", memory.0 >> 10, memory.1 >> 10);

    let mut failed_after = Vec::new();
    let mut replaced_after = Vec::new();
    let mut crash_config = config.clone();
    crash_config.restart.max_restarts = args.crashes + 1;
    let crashing = wait(Worker::spawn(crash_config))?;
    for _ in 0..args.crashes {
        let started = Instant::now();
        match block_on(crashing.call("segv", b"")).map_err(|e| e.to_string())? {
            Err(capnp_lean_worker::WorkerError::Crashed { .. }) => {}
            other => return Err(format!("segv did not crash the worker: {other:?}")),
        }
        failed_after.push(started.elapsed().as_secs_f64() * 1e3);
        let started = Instant::now();
        wait(crashing.call("echo", b"x"))?;
        replaced_after.push(started.elapsed().as_secs_f64() * 1e3);
    }
    let (fmin, fmed, fmax) = spread(&failed_after);
    let (pmin, pmed, pmax) = spread(&replaced_after);
    println!("crash: pending command failed after {fmed:.1} ms [{fmin:.1}–{fmax:.1}] (target ≤ 100 ms); replacement answered after {pmed:.1} ms [{pmin:.1}–{pmax:.1}] (target ≤ 50 ms + the capability's initialization)");

    std::fs::create_dir_all(&args.out).map_err(|e| e.to_string())?;
    let json = serde_json::json!({
        "calls": args.calls, "rounds": args.rounds,
        "round_trips": json_round_trips, "worker_over_socketpair": ratio,
        "rows": {"count": args.rows, "rows_per_s": {"min": rmin, "median": rmed, "max": rmax},
                 "parent_rss_growth_bytes": memory.0, "child_rss_growth_bytes": memory.1},
        "crash_ms": {"failed": {"min": fmin, "median": fmed, "max": fmax}, "replacement_answered": {"min": pmin, "median": pmed, "max": pmax}},
    });
    let path = args.out.join("worker.json");
    std::fs::write(&path, serde_json::to_string_pretty(&json).map_err(|e| e.to_string())?).map_err(|e| e.to_string())?;
    println!("wrote {}", path.display());
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}
