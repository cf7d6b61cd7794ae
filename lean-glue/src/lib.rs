//! `libcapnp_lean_glue.a`: the `#[no_mangle]` externs of `capnp_lean::glue` (one per
//! `@[extern]` of lean-rpc's `Capnp.Rpc.Kj`), the C++ shim over KJ they call, and the Rust code
//! in between, as one static library for Lake to link. Nothing is implemented here; see
//! `docs/lean-kj.md` for the build and link lines.
//!
//! Inside a Lean program the glue finds the Lean runtime in the process itself (the program
//! must export its `lean_*` symbols: link it with `-rdynamic`).

pub use capnp_lean::glue::externs;
