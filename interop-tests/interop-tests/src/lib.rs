//! The reliability harness behind the interop tests and `reliability-peer`: hostile frame
//! senders, peers kept busy until killed, children that report readiness, and the ledger of
//! calls a dying peer must fail. The peers, servers and scenarios themselves are in
//! `capnp-lean-peers`; the tests are in `tests/`.
pub mod reliability;
