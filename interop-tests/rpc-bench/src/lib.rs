//! `rpc-bench`'s pieces: which servers and clients run and how ([`plan`]), where they run
//! ([`pinning`]), the numbers they print and the file written from them ([`results`]), the
//! syscall counts from an `strace -f` log ([`strace`]), the tables ([`table`]) and the plot
//! ([`plot`]); and two of
//! the programs it runs: the native C++ KJ client and server ([`kj_native`]) and the raw TCP
//! floor ([`tcp_floor`]). The binary (`src/bin/rpc-bench.rs`) runs the processes; the bridge and
//! capnp-rpc peers it runs are `bridge-peer` and `rust-peer` of the `interop-tests` package.

pub mod kj_native;
pub mod pinning;
pub mod plan;
pub mod plot;
pub mod results;
pub mod strace;
pub mod table;
pub mod tcp_floor;
