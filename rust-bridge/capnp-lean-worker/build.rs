//! The worker binary exports the Lean glue's externs (`capnp_lean_kj_*`, linked in from
//! capnp-lean-glue) to the capabilities it opens, so a Lean capability built against
//! `Capnp.Rpc.Kj` resolves them in the worker, as it would in a Lean program linked with the
//! glue. Only those symbols are exported. Test programs get the same option: the ones that link
//! the glue in (by naming `capnp_lean_glue::externs`) host such capabilities in process.

fn main() {
    println!("cargo:rustc-link-arg-bins=-Wl,--export-dynamic-symbol=capnp_lean_kj_*");
    println!("cargo:rustc-link-arg-tests=-Wl,--export-dynamic-symbol=capnp_lean_kj_*");
}
