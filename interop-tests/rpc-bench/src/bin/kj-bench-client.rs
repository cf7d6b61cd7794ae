//! `kj-bench-client`: the stock C++ KJ RPC stack as a benchmark client, for comparison with
//! `rust-peer bench` and our bridge. Same CLI and the same one-line JSON:
//!
//! ```text
//! kj-bench-client --connect ADDR --calls N --window W --payload BYTES
//! kj-bench-client --connect ADDR --calls N --windows W,W,... --payload BYTES [--marks]
//! ```
//! `--marks` (matrix form only) prints `mark` before the first measurement and after each one,
//! and waits for a line on stdin each time, so `rpc-bench` can read the server's CPU time
//! between measurements. The work happens in `cxx/kj_bench_client.c++`; this binary only passes
//! the arguments through.

use std::process::ExitCode;

use rpc_bench::kj_native::{run, Program};

fn main() -> ExitCode {
    run(Program::Client, std::env::args())
}
