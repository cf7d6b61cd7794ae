//! placeholder: capnp-rpc (Rust) peers for the interop schemas.
