//! `kj-bench-server`: the stock C++ KJ RPC stack as an `Interop.echo` server, so `rpc-bench`
//! measures KJ in the server role too.
//!
//! ```text
//! kj-bench-server --listen ADDR
//! ```
//! Prints `listening on ADDR` once ready and serves until killed. The work happens in
//! `cxx/kj_bench_server.c++`; this binary only passes the arguments through.

use std::process::ExitCode;

use rpc_bench::kj_native::{run, Program};

fn main() -> ExitCode {
    run(Program::Server, std::env::args())
}
