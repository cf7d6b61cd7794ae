//! The native C++ KJ programs that `build.rs` compiles into this crate
//! (`cxx/kj_bench_client.c++`, `cxx/kj_bench_server.c++`, `cxx/kj_fail_client.c++`): their C entry points, and the one safe
//! function that calls them with a process's arguments. Both catch every C++ exception and
//! return an exit status, so nothing unwinds into Rust.
#![allow(unsafe_code)]

use std::ffi::{c_char, c_int, CString};
use std::process::ExitCode;

extern "C" {
    /// `kj-bench-client`'s main: runs the benchmark and returns a process exit status.
    fn capnp_lean_kj_bench_main(argc: c_int, argv: *const *const c_char) -> c_int;
    /// `kj-bench-server`'s main: serves until killed; returns only on failure.
    fn capnp_lean_kj_bench_server_main(argc: c_int, argv: *const *const c_char) -> c_int;
    /// `kj-fail-client`'s main: one `Interop.fail` call, the exception printed as KJ reports it.
    fn capnp_lean_kj_fail_client_main(argc: c_int, argv: *const *const c_char) -> c_int;
}

/// Which C++ program to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Program {
    /// The benchmark client (`kj-bench-client`).
    Client,
    /// The `Interop.echo` and `Interop.fail` server (`kj-bench-server`).
    Server,
    /// The error tests' client (`kj-fail-client`).
    FailClient,
}

/// Runs `program` with `args` (the program name first, as `std::env::args` gives them).
pub fn run(program: Program, args: impl Iterator<Item = String>) -> ExitCode {
    let Ok(args) = args.map(CString::new).collect::<Result<Vec<CString>, _>>() else {
        eprintln!("kj-bench: arguments must not contain NUL bytes");
        return ExitCode::from(2);
    };
    let argv: Vec<*const c_char> = args.iter().map(|a| a.as_ptr()).collect();
    let argc = c_int::try_from(argv.len()).expect("argument count fits in a C int");
    let main = match program {
        Program::Client => capnp_lean_kj_bench_main,
        Program::Server => capnp_lean_kj_bench_server_main,
        Program::FailClient => capnp_lean_kj_fail_client_main,
    };
    // SAFETY: `argv` holds `argc` pointers to NUL-terminated strings owned by `args`, which
    // outlive the call; the C++ side only reads them and never unwinds (it catches everything).
    let status = unsafe { main(argc, argv.as_ptr()) };
    ExitCode::from(u8::try_from(status).unwrap_or(1))
}
