//! Peers for both RPC systems under test — the bridge ([`bridge_peer`], a `capnp_lean::Runtime`
//! with KJ underneath) and capnp-rpc ([`rust_peer`]) — the servers and client scenarios they run,
//! written once over [`host`] so every pairing runs the same code, and the process, CLI and CPU
//! clock helpers shared by the interop tests, the demo and the benchmark.
pub mod bridge_peer;
pub mod cli;
pub mod cpu;
pub mod host;
pub mod process;
pub mod rust_peer;
pub mod scenarios;
pub mod servers;
