//! Shared pieces of the interop tests, the demo and the benchmark.
pub mod process;
pub mod rust_peer;
pub mod wiretap;
