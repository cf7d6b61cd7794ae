//! `lean-init-bench`: what it costs to bring up the Lean 4.35 runtime the glue runs on — opening
//! `libleanshared.so` and initializing it with `lean_initialize_runtime_module` (what the loader
//! uses) or the full `lean_initialize`. Initialization happens once per process, so each sample
//! is a fresh child process (`lean-init-bench once --mode M`).
//!
//! ```text
//! lean-init-bench [--runtime PATH] [--samples N]
//! lean-init-bench once --mode runtime-module|full [--runtime PATH]
//! ```
//! `PATH` defaults to the provisioned `.lean-runtime/libleanshared.so`
//! (`bash scripts/fetch-lean-runtime.sh`). Prints the median of `N` (default 5) samples per mode.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use capnp_lean_leanrt::{InitMode, LeanRuntime};
use capnp_lean_peers::cli::{number, option};
use capnp_lean_peers::process::run_to_completion;

const USAGE: &str = "usage:
  lean-init-bench [--runtime PATH] [--samples N]
  lean-init-bench once --mode runtime-module|full [--runtime PATH]";
const PROVISIONED: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../.lean-runtime/libleanshared.so");

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let outcome = if args.first().map(String::as_str) == Some("once") { once(&args) } else { summary(&args) };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("lean-init-bench: {message}");
            ExitCode::FAILURE
        }
    }
}

fn runtime_path(args: &[String]) -> Result<PathBuf, String> {
    let path = if args.iter().any(|a| a == "--runtime") { PathBuf::from(option(args, "--runtime", USAGE)?) } else { PathBuf::from(PROVISIONED) };
    if path.exists() {
        Ok(path)
    } else {
        Err(format!("no Lean runtime at {}; get it with: bash scripts/fetch-lean-runtime.sh", path.display()))
    }
}

/// One sample in this process: prints `open_us initialize_us`.
fn once(args: &[String]) -> Result<(), String> {
    let mode = match option(args, "--mode", USAGE)? {
        "runtime-module" => InitMode::RuntimeModule,
        "full" => InitMode::Full,
        other => return Err(format!("unknown mode {other:?}\n{USAGE}")),
    };
    let path = runtime_path(args)?;
    let start = Instant::now();
    let runtime = LeanRuntime::open(&path).map_err(|e| e.to_string())?;
    let opened = start.elapsed();
    runtime.initialize(mode).map_err(|e| e.to_string())?;
    runtime.end_initialization();
    let initialized = start.elapsed() - opened;
    println!("{} {}", opened.as_micros(), initialized.as_micros());
    Ok(())
}

fn median(mut values: Vec<Duration>) -> Duration {
    values.sort();
    values[values.len() / 2]
}

fn summary(args: &[String]) -> Result<(), String> {
    let path = runtime_path(args)?;
    let samples: u32 = if args.iter().any(|a| a == "--samples") { number(args, "--samples", USAGE)? } else { 5 };
    let me = std::env::current_exe().map_err(|e| e.to_string())?;
    let path_arg = path.display().to_string();
    println!("Lean runtime {path_arg}: median of {samples} fresh processes");
    println!("{:<16} {:>10} {:>14} {:>10}", "mode", "open ms", "initialize ms", "total ms");
    for mode in ["runtime-module", "full"] {
        let (mut opens, mut inits) = (Vec::new(), Vec::new());
        for _ in 0..samples.max(1) {
            let finished = run_to_completion(&me, &["once", "--mode", mode, "--runtime", &path_arg], Duration::from_secs(120))?;
            if !finished.status.success() {
                return Err(format!("{mode} sample failed: {}", finished.stderr));
            }
            let figures: Vec<u64> = finished.stdout.split_whitespace().filter_map(|f| f.parse().ok()).collect();
            let [open, init] = figures[..] else { return Err(format!("unexpected sample output {:?}", finished.stdout)) };
            opens.push(Duration::from_micros(open));
            inits.push(Duration::from_micros(init));
        }
        let ms = |d: Duration| d.as_secs_f64() * 1e3;
        let (open, init) = (median(opens), median(inits));
        println!("{mode:<16} {:>10.2} {:>14.2} {:>10.2}", ms(open), ms(init), ms(open + init));
    }
    Ok(())
}
