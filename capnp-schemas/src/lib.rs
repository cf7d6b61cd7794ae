//! The project's Cap'n Proto schemas as capnpc-rust generated modules.
//!
//! `calculator` is the demo interface (remote evaluation, values as capabilities, client-hosted
//! functions); `interop` holds the interfaces the cross-implementation tests use to make every
//! RPC message kind appear on the wire; `stream_test` has a `-> stream` method for the
//! flow-control tests; `worker` is the
//! protocol of `capnp-lean-worker` (control, commands and their sinks). The `.capnp` sources live beside this crate and are also the input to
//! `capnpc-lean`.

#![allow(missing_docs, clippy::all)]

/// Generated from `calculator.capnp`.
pub mod calculator_capnp {
    include!(concat!(env!("OUT_DIR"), "/calculator_capnp.rs"));
}

/// Generated from `interop.capnp`.
pub mod interop_capnp {
    include!(concat!(env!("OUT_DIR"), "/interop_capnp.rs"));
}

/// Generated from `stream_test.capnp`.
pub mod stream_test_capnp {
    include!(concat!(env!("OUT_DIR"), "/stream_test_capnp.rs"));
}

/// Generated from `worker.capnp`: the protocol between a worker child and its parent.
pub mod worker_capnp {
    include!(concat!(env!("OUT_DIR"), "/worker_capnp.rs"));
}

/// Directory holding the `.capnp` sources (for tools that compile them again, e.g. capnpc-lean).
pub const SCHEMA_DIR: &str = env!("CARGO_MANIFEST_DIR");
