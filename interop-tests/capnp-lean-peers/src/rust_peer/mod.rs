//! capnp-rpc (Rust) peers for the project's schemas, to test our bridge against an independent
//! implementation: servers for `Interop` and `Calculator`, client scenarios that assert every
//! result, and the benchmark client.
//!
//! Everything is single-threaded capnp-rpc: run it inside a `LocalSet` (see [`run_local`]).

mod address;
mod rpc;

pub mod bench;
mod clients;

pub use address::{Address, Listener, ReadHalf, Stream, WriteHalf};
pub use clients::{client_calculator, client_fail, client_interop, error_kind_named};
pub use rpc::{connect, run_local, serve, ClientConnection};
