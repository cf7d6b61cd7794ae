//! capnp-rpc (Rust) peers for the project's schemas, to test our bridge against an independent
//! implementation: servers for `Interop` and `Calculator`, client scenarios that assert every
//! result, and the benchmark client.
//!
//! Everything is single-threaded capnp-rpc: run it inside a `LocalSet` (see [`run_local`]).

mod address;
mod rpc;

pub mod bench;
pub mod calculator_client;
pub mod calculator_server;
pub mod interop_client;
pub mod interop_server;

pub use address::{Address, Listener, ReadHalf, Stream, WriteHalf};
pub use rpc::{connect, run_local, serve, ClientConnection};
