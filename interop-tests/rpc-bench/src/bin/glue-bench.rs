//! `glue-bench`: the per-call cost of the Lean glue over the Rust API, with real Lean 4.35
//! objects. Both sides make the same local `Interop.echo` calls from the main thread to a server
//! on the runtime's loop thread, `window` in flight:
//!
//! - **glue**: params built as a Lean `Array ByteArray`, `capnp_lean_kj_cap_call` with a Lean
//!   completion closure, served by a Lean handler closure (`capnp_lean_kj_serve`) that reads
//!   the params (`capnp_lean_kj_server_call_params`) and answers with them
//!   (`capnp_lean_kj_server_call_return`) — what compiled `Capnp.Rpc.Kj` code does;
//! - **rust**: the same calls through the Rust API against the Rust `Interop` server hosted by a
//!   `capnp_lean::Runtime` (`rust_peer::bench::pipelined_throughput`).
//!
//! The difference per call is what the glue adds (both directions, client and server side) —
//! together with the difference in how the main thread waits (a condition variable for the glue
//! completions, a tokio `LocalSet` wake for the Rust API), which dominates at one in flight.
//! Wall-clock and process CPU time (`getrusage`, all threads) per call are both reported.
//!
//! ```text
//! glue-bench [--calls N] [--rounds R] [--payload BYTES] [--windows W,W] [--only glue|rust] [--runtime PATH]
//! ```
//! `--windows` defaults to `1,64`; `--only` runs one side (for `perf record`), printing `-` for
//! the other.
//! `PATH` defaults to `.lean-runtime/libleanshared.so` (`bash scripts/fetch-lean-runtime.sh`).
#![allow(unsafe_code)]

use std::collections::VecDeque;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Condvar, Mutex};
use std::time::{Duration, Instant};

use capnp::capability::FromClientHook;
use capnp::traits::HasTypeId;
use capnp_lean_glue as glue;
use capnp_lean_leanrt::{self as lean, abi::LeanObject, InitMode, IoResult, LeanRuntime, Obj};
use capnp_schemas::interop_capnp::interop;
use capnp_lean_peers::bridge_peer::{bootstrap_for, Service};
use capnp_lean_peers::cli::{number, option};
use capnp_lean_peers::cpu::CpuClock;
use capnp_lean_peers::rust_peer::bench::pipelined_throughput;
use capnp_lean_peers::rust_peer::run_local;

const USAGE: &str = "usage: glue-bench [--calls N] [--rounds R] [--payload BYTES] [--windows W,W] [--only glue|rust] [--runtime PATH]";
const PROVISIONED: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../.lean-runtime/libleanshared.so");
const WINDOWS: [u32; 2] = [1, 64];
const WAIT: Duration = Duration::from_secs(60);

/// Completions seen so far, and how many of them were errors.
static COMPLETIONS: AtomicU64 = AtomicU64::new(0);
static ERRORS: AtomicU64 = AtomicU64::new(0);
/// The count the main thread waits for (0: not waiting). A completion takes the lock and
/// notifies only when it reaches this target, so the waiting side costs what a Lean program's
/// own wait would (one wake per wait), not a lock and a futex call per completion; the Rust API
/// side is woken the same way, by its executor, only when a future it polls is ready.
static WAITING_FOR: AtomicU64 = AtomicU64::new(0);
static WAIT_LOCK: Mutex<()> = Mutex::new(());
static COMPLETED: Condvar = Condvar::new();

type Raw = *mut LeanObject;

/// Which calls have completed: slot `seq % RING` holds `seq + 1` once call `seq` has.
const RING: usize = 4096;
static DONE: [AtomicU64; RING] = [const { AtomicU64::new(0) }; RING];
/// The sequence number of the next call.
static NEXT_SEQ: AtomicU64 = AtomicU64::new(0);

/// `fun (seq : Nat) (r : Except IO.Error Payload) => … : BaseIO Unit` — counts the completion
/// and marks call `seq` done, so the caller can release its `Call` (as a Lean program does once
/// its completion came) instead of keeping every call's results alive to the end.
unsafe extern "C" fn on_done(seq: Raw, result: Raw, _world: Raw) -> Raw {
    // SAFETY: closure arguments are owned by the callee.
    let (seq, result) = unsafe { (Obj::from_raw(seq), Obj::from_raw(result)) };
    let seq = seq.unbox().expect("a boxed sequence number") as u64;
    DONE[seq as usize % RING].store(seq + 1, Ordering::SeqCst);
    if result.tag() != 1 {
        ERRORS.fetch_add(1, Ordering::SeqCst);
    }
    let seen = COMPLETIONS.fetch_add(1, Ordering::SeqCst) + 1;
    let target = WAITING_FOR.load(Ordering::SeqCst);
    if target != 0 && seen >= target {
        // Passing through the lock puts this after the waiter's check or after it started
        // waiting; notifying outside it spares the woken waiter a contended lock.
        drop(WAIT_LOCK.lock().unwrap_or_else(|p| p.into_inner()));
        COMPLETED.notify_all();
    }
    Obj::boxed(0).into_raw()
}

/// `fun (iface : UInt64) (method : UInt16) (call : ServerCall) => … : BaseIO Unit` — answers
/// every call with its own params (an echo: params and results have the same layout).
unsafe extern "C" fn echo_handler(iface: Raw, method: Raw, call: Raw, _world: Raw) -> Raw {
    // SAFETY: closure arguments are owned by the callee; dropping them releases them.
    let (_iface, _method, call) = unsafe { (Obj::from_raw(iface), Obj::from_raw(method), Obj::from_raw(call)) };
    // SAFETY: a borrowed ServerCall; the result is an owned IO result.
    let params = unsafe { IoResult::from_raw(glue::capnp_lean_kj_server_call_params(call.as_ptr())) }.into_result();
    if let Ok(payload) = params {
        let segments = payload.ctor_get_owned(0);
        let no_caps = lean::mk_array(Vec::new());
        // SAFETY: borrowed arguments; the IO result is owned and dropped.
        drop(unsafe { IoResult::from_raw(glue::capnp_lean_kj_server_call_return(call.as_ptr(), segments.as_ptr(), no_caps.as_ptr())) });
    }
    Obj::boxed(0).into_raw()
}

fn ok(raw: Raw, what: &str) -> Result<Obj, String> {
    // SAFETY: `raw` is an owned IO result returned by a glue extern.
    unsafe { IoResult::from_raw(raw) }.into_result().map_err(|e| format!("{what}: {e}"))
}

/// Waits until `target` completions have been counted.
fn wait_for(target: u64) -> Result<(), String> {
    if COMPLETIONS.load(Ordering::SeqCst) < target {
        let lock = WAIT_LOCK.lock().unwrap_or_else(|p| p.into_inner());
        WAITING_FOR.store(target, Ordering::SeqCst);
        let (_lock, timeout) = COMPLETED
            .wait_timeout_while(lock, WAIT, |_| COMPLETIONS.load(Ordering::SeqCst) < target)
            .unwrap_or_else(|p| p.into_inner());
        WAITING_FOR.store(0, Ordering::SeqCst);
        if timeout.timed_out() {
            return Err(format!("only {} of {target} completions within {WAIT:?}", COMPLETIONS.load(Ordering::SeqCst)));
        }
    }
    match ERRORS.load(Ordering::SeqCst) {
        0 => Ok(()),
        errors => Err(format!("{errors} glue calls failed")),
    }
}

/// `calls` echoes of `payload` through the glue with `window` in flight; wall-clock time.
fn glue_calls(cap: &Obj, calls: u32, window: u32, payload: &[u8]) -> Result<Duration, String> {
    let base = COMPLETIONS.load(Ordering::SeqCst);
    let mut in_flight: VecDeque<(u64, Obj)> = VecDeque::with_capacity(window as usize);
    let start = Instant::now();
    for issued in 0..u64::from(calls) {
        if issued >= u64::from(window) {
            wait_for(base + issued + 1 - u64::from(window))?;
        }
        // Release the calls that have completed (oldest first; dropping an unfinished `Call`
        // would cancel it, so one still pending keeps itself and those after it).
        while in_flight.front().is_some_and(|(seq, _)| DONE[*seq as usize % RING].load(Ordering::SeqCst) == seq + 1) {
            in_flight.pop_front();
        }
        if in_flight.len() >= RING / 2 {
            return Err(format!("{} calls waiting behind an unfinished one", in_flight.len()));
        }
        let seq = NEXT_SEQ.fetch_add(1, Ordering::SeqCst);
        let mut params = capnp::message::Builder::new_default();
        params.init_root::<interop::echo_params::Builder>().set_payload(payload);
        let segments = lean::mk_array(params.get_segments_for_output().iter().map(|s| lean::mk_byte_array(s)).collect());
        let no_caps = lean::mk_array(Vec::new());
        // SAFETY: `on_done` takes three objects (the sequence number, fixed here, the result
        // and the world token).
        let closure = unsafe { lean::alloc_closure(on_done as *const _, 3, vec![Obj::boxed(seq as usize)]) };
        // SAFETY: borrowed cap, segments and table outlive the call; the closure is consumed.
        let raw = unsafe { glue::capnp_lean_kj_cap_call(cap.as_ptr(), interop::Client::TYPE_ID, 0, segments.as_ptr(), no_caps.as_ptr(), closure.into_raw()) };
        in_flight.push_back((seq, ok(raw, "Cap.call")?));
    }
    wait_for(base + u64::from(calls))?;
    let elapsed = start.elapsed();
    drop(in_flight);
    Ok(elapsed)
}

/// The same calls through the Rust API.
fn rust_calls(interop: &interop::Client, calls: u32, window: u32, payload: &[u8]) -> Result<Duration, String> {
    let start = Instant::now();
    run_local(pipelined_throughput(interop, calls, window, payload)).map_err(|e| format!("echo failed: {e}"))?;
    Ok(start.elapsed())
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("glue-bench: {message}");
            ExitCode::FAILURE
        }
    }
}

fn number_or(args: &[String], name: &str, default: u32) -> Result<u32, String> {
    if args.iter().any(|a| a == name) { number(args, name, USAGE) } else { Ok(default) }
}

fn median(mut values: Vec<f64>) -> Option<f64> {
    values.sort_by(f64::total_cmp);
    values.get(values.len() / 2).copied()
}

/// `min–max` of the samples, or `-`.
fn range(values: &[f64]) -> String {
    let min = values.iter().copied().reduce(f64::min);
    let max = values.iter().copied().reduce(f64::max);
    min.zip(max).map_or_else(|| "-".to_string(), |(min, max)| format!("{min:.2}–{max:.2}"))
}

fn windows(args: &[String]) -> Result<Vec<u32>, String> {
    if !args.iter().any(|a| a == "--windows") {
        return Ok(WINDOWS.to_vec());
    }
    let text = option(args, "--windows", USAGE)?;
    text.split(',')
        .map(|w| w.parse::<u32>().ok().filter(|&w| w > 0))
        .collect::<Option<Vec<u32>>>()
        .ok_or_else(|| format!("--windows {text:?} is not a list of positive numbers\n{USAGE}"))
}

fn run(args: &[String]) -> Result<(), String> {
    let calls = number_or(args, "--calls", 20_000)?.max(1);
    let rounds = number_or(args, "--rounds", 5)?.max(1);
    let payload = vec![0x5a; number_or(args, "--payload", 16)? as usize];
    let windows = windows(args)?;
    let (glue_on, rust_on) = match args.iter().any(|a| a == "--only").then(|| option(args, "--only", USAGE)).transpose()? {
        None => (true, true),
        Some("glue") => (true, false),
        Some("rust") => (false, true),
        Some(other) => return Err(format!("unknown side {other:?}\n{USAGE}")),
    };
    let path = if args.iter().any(|a| a == "--runtime") { PathBuf::from(option(args, "--runtime", USAGE)?) } else { PathBuf::from(PROVISIONED) };
    if !path.exists() {
        return Err(format!("no Lean runtime at {}; get it with: bash scripts/fetch-lean-runtime.sh", path.display()));
    }
    let lean_runtime = LeanRuntime::open(&path).map_err(|e| e.to_string())?;
    lean_runtime.initialize(InitMode::RuntimeModule).map_err(|e| e.to_string())?;
    let _attached = lean_runtime.attach_current_thread();

    // SAFETY: no arguments; returns an owned IO result.
    let glue_runtime = ok(unsafe { glue::capnp_lean_kj_runtime_new() }, "Runtime.new")?;
    // SAFETY: `echo_handler` takes four objects (iface, method, call, world).
    let handler = unsafe { lean::alloc_closure(echo_handler as *const _, 4, Vec::new()) };
    // SAFETY: borrowed runtime, consumed closure.
    let lean_server = ok(unsafe { glue::capnp_lean_kj_serve(glue_runtime.as_ptr(), handler.into_raw()) }, "serve")?;

    let rust_runtime = capnp_lean::Runtime::new().map_err(|e| e.to_string())?;
    let rust_server: interop::Client = bootstrap_for(&rust_runtime, Service::Interop)?.cast_to();

    glue_calls(&lean_server, 1000, 64, &payload)?;
    rust_calls(&rust_server, 1000, 64, &payload)?;
    println!("local echo of {} B, {calls} calls per sample, median of {rounds} rounds (alternating)", payload.len());
    println!("{:<8} {:>14} {:>14} {:>16} {:>12} {:>12} {:>12}", "window", "glue µs/call", "rust µs/call", "glue − rust µs", "glue cpu µs", "rust cpu µs", "cpu diff µs");
    let per_call = |v: f64| v / f64::from(calls);
    let show = |v: Option<f64>| v.map_or_else(|| "-".to_string(), |v| format!("{v:.2}"));
    let minus = |a: Option<f64>, b: Option<f64>| a.zip(b).map(|(a, b)| a - b);
    for window in windows {
        let (mut glue_us, mut rust_us, mut glue_cpu, mut rust_cpu) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for _ in 0..rounds {
            if glue_on {
                let cpu = CpuClock::start();
                glue_us.push(per_call(glue_calls(&lean_server, calls, window, &payload)?.as_secs_f64() * 1e6));
                glue_cpu.push(per_call(cpu.elapsed_us()));
            }
            if rust_on {
                let cpu = CpuClock::start();
                rust_us.push(per_call(rust_calls(&rust_server, calls, window, &payload)?.as_secs_f64() * 1e6));
                rust_cpu.push(per_call(cpu.elapsed_us()));
            }
        }
        let spread = [&glue_us, &rust_us, &glue_cpu, &rust_cpu].map(|v| range(v));
        let (glue_us, rust_us, glue_cpu, rust_cpu) = (median(glue_us), median(rust_us), median(glue_cpu), median(rust_cpu));
        println!(
            "{window:<8} {:>14} {:>14} {:>16} {:>12} {:>12} {:>12}",
            show(glue_us),
            show(rust_us),
            show(minus(glue_us, rust_us)),
            show(glue_cpu),
            show(rust_cpu),
            show(minus(glue_cpu, rust_cpu))
        );
        println!("{:<8} {:>14} {:>14} {:>16} {:>12} {:>12}", "  min–max", spread[0], spread[1], "", spread[2], spread[3]);
    }
    Ok(())
}
