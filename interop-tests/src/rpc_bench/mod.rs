//! `rpc-bench`'s pieces: which servers and clients run and how ([`plan`]), where they run
//! ([`pinning`]), the numbers they print and the file written from them ([`results`]), the
//! syscall counts from an `strace -f` log ([`strace`]), and the tables ([`table`]). The binary
//! (`src/bin/rpc-bench.rs`) runs the processes.

pub mod pinning;
pub mod plan;
pub mod results;
pub mod strace;
pub mod table;
