//! The `Interop` and `Calculator` servers, written once over [`CapHost`](crate::host::CapHost)
//! so the same behaviour is served by capnp-rpc and by the capnp-lean bridge, and a forwarding
//! `Interop` server (a proxy).

pub mod calculator;
pub mod forwarding;
pub mod interop;
