//! `rpc-bench`'s pieces: which clients run and how ([`plan`]), the numbers they print and the
//! file written from them ([`results`]), the syscall counts from an `strace -f` log
//! ([`strace`]), and the ratio table ([`table`]). The binary (`src/bin/rpc-bench.rs`) runs the
//! processes.

pub mod plan;
pub mod results;
pub mod strace;
pub mod table;
