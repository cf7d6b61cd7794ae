//! `kj-bench-server`: the stock C++ KJ RPC stack as an `Interop.echo` server, so `rpc-bench`
//! measures KJ in the server role too; it also implements `Interop.fail`, for the error tests.
//!
//! ```text
//! kj-bench-server --listen ADDR [--upstream ADDR]
//! ```
//! Prints `listening on ADDR` once ready and serves until killed. With `--upstream` it forwards
//! `echo` and `fail` to the `Interop` server there (a KJ proxy, for the error tests). The work
//! happens in `cxx/kj_bench_server.c++`; this binary only passes the arguments through.

use std::process::ExitCode;

use rpc_bench::kj_native::{run, Program};

fn main() -> ExitCode {
    run(Program::Server, std::env::args())
}
