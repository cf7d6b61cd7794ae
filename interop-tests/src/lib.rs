//! Shared pieces of the interop tests, the demo and the benchmark: peers for both RPC systems
//! under test, the servers and client scenarios they run, and the frame-decoding wiretap.
pub mod bridge_peer;
pub mod cli;
pub mod cpu;
pub mod demo;
pub mod host;
pub mod kj_native;
pub mod process;
pub mod reliability;
pub mod rpc_bench;
pub mod rust_peer;
pub mod scenarios;
pub mod servers;
pub mod tcp_floor;
pub mod wiretap;
