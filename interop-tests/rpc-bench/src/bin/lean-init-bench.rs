//! `lean-init-bench`: what it costs to bring up the Lean 4.35 runtime the glue runs on — opening
//! `libleanshared.so` and initializing it with `lean_initialize_runtime_module` (what the loader
//! uses) or the full `lean_initialize` — and to open a capability with the loader
//! (`Capability::open`: preflight, runtime, libraries, module initializers). Initialization
//! happens once per process, so each sample is a fresh child process (`lean-init-bench once
//! --mode M`, `lean-init-bench once-capability --manifest PATH`).
//!
//! The capability is a one-library bundle compiled here with `cc` (no Lean toolchain is needed):
//! a module initializer that runs `initialize_Init`, as every compiled Lean module's does, and
//! one export; its manifest lists the runtime as a global dependency, as lean-toolchain writes
//! it.
//!
//! ```text
//! lean-init-bench [--runtime PATH] [--samples N]
//! lean-init-bench once --mode runtime-module|full [--runtime PATH]
//! lean-init-bench once-capability --manifest PATH
//! ```
//! `PATH` defaults to the provisioned `.lean-runtime/libleanshared.so`
//! (`bash scripts/fetch-lean-runtime.sh`). Prints the median and min–max of `N` (default 5)
//! samples per mode.

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::time::{Duration, Instant};

use capnp_lean_leanrt::{InitMode, LeanRuntime};
use capnp_lean_loader::Capability;
use capnp_lean_toolchain::ManifestBuilder;
use capnp_lean_peers::cli::{number, option};
use capnp_lean_peers::process::run_to_completion;

const USAGE: &str = "usage:
  lean-init-bench [--runtime PATH] [--samples N]
  lean-init-bench once --mode runtime-module|full [--runtime PATH]
  lean-init-bench once-capability --manifest PATH";

/// The benchmark capability's one module: its initializer runs `Init`'s (guarded there), as a
/// compiled module importing only `Init` does, and returns that IO result.
const CAPABILITY_C: &str = "\
#include <stdint.h>
typedef struct lean_object lean_object;
lean_object * initialize_Init(uint8_t builtin);
lean_object * initialize_initbench_InitBench(uint8_t builtin) { return initialize_Init(builtin); }
uint32_t initbench_next(uint32_t x) { return x + 1; }
";
const PROVISIONED: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../.lean-runtime/libleanshared.so");

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let outcome = match args.first().map(String::as_str) {
        Some("once") => once(&args),
        Some("once-capability") => once_capability(&args),
        _ => summary(&args),
    };
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

/// One capability sample in this process: prints `open_us preflight_us` — `Capability::open`
/// as a host calls it (its preflight record, written by an earlier process, is valid, so the
/// preflight is skipped: runtime, libraries, initializers), then the preflight on its own (what
/// the first open of a bundle, or one that changed, adds).
fn once_capability(args: &[String]) -> Result<(), String> {
    let manifest = PathBuf::from(option(args, "--manifest", USAGE)?);
    let start = Instant::now();
    let capability = Capability::open(&manifest).map_err(|e| e.to_string())?;
    let opened = start.elapsed();
    let next = capability.export::<(u32,), u32>("initbench_next").map_err(|e| e.to_string())?;
    if next.call((41,)) != 42 {
        return Err("initbench_next(41) is not 42".into());
    }
    let start = Instant::now();
    capnp_lean_loader::preflight(&manifest, None).map_err(|e| e.to_string())?;
    let checked = start.elapsed();
    println!("{} {}", opened.as_micros(), checked.as_micros());
    Ok(())
}

/// Compiles the benchmark capability next to this binary and writes its manifest.
fn build_capability(runtime: &Path) -> Result<PathBuf, String> {
    let me = std::env::current_exe().map_err(|e| e.to_string())?;
    let dir = me.parent().ok_or("no folder for the binary")?.join("lean-init-bench-capability");
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let source = dir.join("initbench.c");
    std::fs::write(&source, CAPABILITY_C).map_err(|e| format!("{}: {e}", source.display()))?;
    let library = dir.join("libinitbench.so");
    let status = Command::new("cc")
        .args(["-shared", "-fPIC", "-O1", "-o"])
        .arg(&library)
        .arg(&source)
        .status()
        .map_err(|e| format!("cc: {e} (a C compiler is needed to build the benchmark capability)"))?;
    if !status.success() {
        return Err(format!("cc failed to build {}", library.display()));
    }
    let manifest = ManifestBuilder::new("initbench", "InitBench", "4.35.0", &library)
        .dependency(runtime, true, None)
        .exports(["initbench_next"])
        .build(&dir)
        .map_err(|e| e.to_string())?;
    let path = dir.join("initbench.capability.json");
    manifest.write(&path).map_err(|e| e.to_string())?;
    Ok(path)
}

/// Median, minimum and maximum.
fn stats(mut values: Vec<Duration>) -> (Duration, Duration, Duration) {
    values.sort();
    (values[values.len() / 2], values[0], values[values.len() - 1])
}

/// Runs `samples` fresh processes of `me args…`, each printing two microsecond figures.
fn sample(me: &Path, args: &[&str], samples: u32, what: &str) -> Result<(Vec<Duration>, Vec<Duration>), String> {
    let (mut firsts, mut seconds) = (Vec::new(), Vec::new());
    for _ in 0..samples.max(1) {
        let finished = run_to_completion(me, args, Duration::from_secs(120))?;
        if !finished.status.success() {
            return Err(format!("{what} sample failed: {}", finished.stderr));
        }
        let figures: Vec<u64> = finished.stdout.split_whitespace().filter_map(|f| f.parse().ok()).collect();
        let [first, second] = figures[..] else { return Err(format!("unexpected sample output {:?}", finished.stdout)) };
        firsts.push(Duration::from_micros(first));
        seconds.push(Duration::from_micros(second));
    }
    Ok((firsts, seconds))
}

fn summary(args: &[String]) -> Result<(), String> {
    let path = runtime_path(args)?;
    let samples: u32 = if args.iter().any(|a| a == "--samples") { number(args, "--samples", USAGE)? } else { 5 };
    let me = std::env::current_exe().map_err(|e| e.to_string())?;
    let path_arg = path.display().to_string();
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    let show = |v: Vec<Duration>| {
        let (median, min, max) = stats(v);
        format!("{:.2} ({:.2}–{:.2})", ms(median), ms(min), ms(max))
    };
    println!("Lean runtime {path_arg}: median (min–max) of {samples} fresh processes");
    println!("{:<16} {:>20} {:>20} {:>20}", "mode", "open ms", "initialize ms", "total ms");
    for mode in ["runtime-module", "full"] {
        let (opens, inits) = sample(&me, &["once", "--mode", mode, "--runtime", &path_arg], samples, mode)?;
        let totals = opens.iter().zip(&inits).map(|(o, i)| *o + *i).collect();
        println!("{mode:<16} {:>20} {:>20} {:>20}", show(opens), show(inits), show(totals));
    }
    let manifest = build_capability(&path)?;
    let manifest_arg = manifest.display().to_string();
    let args = ["once-capability", "--manifest", &manifest_arg];
    sample(&me, &args, 1, "capability")?; // the first open checks the new bundle and records it
    let (opens, checks) = sample(&me, &args, samples, "capability")?;
    let firsts = checks.iter().zip(&opens).map(|(c, o)| *c + *o).collect();
    println!("{:<16} {:>20} {:>20} {:>20}", "", "open ms", "preflight ms", "first open ms");
    println!("{:<16} {:>20} {:>20} {:>20}", "capability", show(opens), show(checks), show(firsts));
    println!("(open: Capability::open with a valid preflight record; first open: open + preflight)");
    Ok(())
}
