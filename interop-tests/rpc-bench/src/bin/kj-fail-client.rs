//! `kj-fail-client`: the stock C++ KJ RPC stack calling `Interop.fail` once, printing the
//! exception as KJ reports it to C++ code (for `interop-tests/tests/error_rule.rs`).
//!
//! ```text
//! kj-fail-client --connect ADDR --kind failed|overloaded|disconnected|unimplemented --message TEXT
//! ```
//! Prints `type: KIND` and `description: TEXT` and exits 0 when the call failed. The work happens
//! in `cxx/kj_fail_client.c++`; this binary only passes the arguments through.

use std::process::ExitCode;

use rpc_bench::kj_native::{run, Program};

fn main() -> ExitCode {
    run(Program::FailClient, std::env::args())
}
