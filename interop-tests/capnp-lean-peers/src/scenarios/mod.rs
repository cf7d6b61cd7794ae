//! Client scenarios that check every result: written once over
//! [`CapHost`](crate::host::CapHost), run by capnp-rpc clients and bridge clients alike.

pub mod calculator;
pub mod interop;
