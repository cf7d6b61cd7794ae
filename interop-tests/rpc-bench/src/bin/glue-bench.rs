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
//! glue-bench [--calls N] [--rounds R] [--payload BYTES] [--runtime PATH]
//! ```
//! `PATH` defaults to `.lean-runtime/libleanshared.so` (`bash scripts/fetch-lean-runtime.sh`).
#![allow(unsafe_code)]

use std::path::PathBuf;
use std::process::ExitCode;
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

const USAGE: &str = "usage: glue-bench [--calls N] [--rounds R] [--payload BYTES] [--runtime PATH]";
const PROVISIONED: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../.lean-runtime/libleanshared.so");
const WINDOWS: [u32; 2] = [1, 64];
const WAIT: Duration = Duration::from_secs(60);

/// Completions seen so far, and how many of them were errors.
static COMPLETIONS: Mutex<(u64, u64)> = Mutex::new((0, 0));
static COMPLETED: Condvar = Condvar::new();

type Raw = *mut LeanObject;

/// `fun (r : Except IO.Error Payload) => … : BaseIO Unit` — counts the completion.
unsafe extern "C" fn on_done(result: Raw, _world: Raw) -> Raw {
    // SAFETY: closure arguments are owned by the callee.
    let result = unsafe { Obj::from_raw(result) };
    let mut seen = COMPLETIONS.lock().unwrap_or_else(|p| p.into_inner());
    seen.0 += 1;
    seen.1 += u64::from(result.tag() != 1);
    COMPLETED.notify_all();
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
    let seen = COMPLETIONS.lock().unwrap_or_else(|p| p.into_inner());
    let (seen, timeout) = COMPLETED.wait_timeout_while(seen, WAIT, |s| s.0 < target).unwrap_or_else(|p| p.into_inner());
    match (timeout.timed_out(), seen.1) {
        (true, _) => Err(format!("only {} of {target} completions within {WAIT:?}", seen.0)),
        (false, 0) => Ok(()),
        (false, errors) => Err(format!("{errors} glue calls failed")),
    }
}

/// `calls` echoes of `payload` through the glue with `window` in flight; wall-clock time.
fn glue_calls(cap: &Obj, calls: u32, window: u32, payload: &[u8]) -> Result<Duration, String> {
    let base = COMPLETIONS.lock().unwrap_or_else(|p| p.into_inner()).0;
    let mut in_flight = Vec::with_capacity(calls as usize);
    let start = Instant::now();
    for issued in 0..u64::from(calls) {
        if issued >= u64::from(window) {
            wait_for(base + issued + 1 - u64::from(window))?;
        }
        let mut params = capnp::message::Builder::new_default();
        params.init_root::<interop::echo_params::Builder>().set_payload(payload);
        let segments = lean::mk_array(params.get_segments_for_output().iter().map(|s| lean::mk_byte_array(s)).collect());
        let no_caps = lean::mk_array(Vec::new());
        // SAFETY: `on_done` takes two objects (the result and the world token).
        let closure = unsafe { lean::alloc_closure(on_done as *const _, 2, Vec::new()) };
        // SAFETY: borrowed cap, segments and table outlive the call; the closure is consumed.
        let raw = unsafe { glue::capnp_lean_kj_cap_call(cap.as_ptr(), interop::Client::TYPE_ID, 0, segments.as_ptr(), no_caps.as_ptr(), closure.into_raw()) };
        // Dropping a Call could cancel it: keep every one until the batch is done.
        in_flight.push(ok(raw, "Cap.call")?);
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

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

fn run(args: &[String]) -> Result<(), String> {
    let calls = number_or(args, "--calls", 20_000)?.max(1);
    let rounds = number_or(args, "--rounds", 5)?.max(1);
    let payload = vec![0x5a; number_or(args, "--payload", 16)? as usize];
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
    for window in WINDOWS {
        let (mut glue_us, mut rust_us, mut glue_cpu, mut rust_cpu) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for _ in 0..rounds {
            let cpu = CpuClock::start();
            glue_us.push(per_call(glue_calls(&lean_server, calls, window, &payload)?.as_secs_f64() * 1e6));
            glue_cpu.push(per_call(cpu.elapsed_us()));
            let cpu = CpuClock::start();
            rust_us.push(per_call(rust_calls(&rust_server, calls, window, &payload)?.as_secs_f64() * 1e6));
            rust_cpu.push(per_call(cpu.elapsed_us()));
        }
        let (glue_us, rust_us, glue_cpu, rust_cpu) = (median(glue_us), median(rust_us), median(glue_cpu), median(rust_cpu));
        println!(
            "{window:<8} {glue_us:>14.2} {rust_us:>14.2} {:>16.2} {glue_cpu:>12.2} {rust_cpu:>12.2} {:>12.2}",
            glue_us - rust_us,
            glue_cpu - rust_cpu
        );
    }
    Ok(())
}
