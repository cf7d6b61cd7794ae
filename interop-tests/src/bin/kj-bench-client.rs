//! `kj-bench-client`: the stock C++ KJ RPC stack as a benchmark client, for comparison with
//! `rust-peer bench` and our bridge. Same CLI and the same one-line JSON:
//!
//! ```text
//! kj-bench-client --connect ADDR --calls N --window W --payload BYTES
//! kj-bench-client --connect ADDR --calls N --windows W,W,... --payload BYTES
//! ```
//! The work happens in `cxx/kj_bench_client.c++`; this binary only passes the arguments through.
#![allow(unsafe_code)]

use std::ffi::{c_char, c_int, CString};
use std::process::ExitCode;

// Linking the library crate pulls in the static C++ library its build script produced.
extern crate interop_tests as _;

extern "C" {
    /// Runs the benchmark; catches every C++ exception and returns a process exit status.
    fn capnp_lean_kj_bench_main(argc: c_int, argv: *const *const c_char) -> c_int;
}

fn main() -> ExitCode {
    let args: Vec<CString> = match std::env::args().map(CString::new).collect() {
        Ok(args) => args,
        Err(_) => {
            eprintln!("kj-bench-client: arguments must not contain NUL bytes");
            return ExitCode::from(2);
        }
    };
    let argv: Vec<*const c_char> = args.iter().map(|a| a.as_ptr()).collect();
    let argc = c_int::try_from(argv.len()).expect("argument count fits in a C int");
    // SAFETY: `argv` holds `argc` pointers to NUL-terminated strings owned by `args`, which
    // outlive the call; the C++ side only reads them and never unwinds (it catches everything).
    let status = unsafe { capnp_lean_kj_bench_main(argc, argv.as_ptr()) };
    ExitCode::from(u8::try_from(status).unwrap_or(1))
}
