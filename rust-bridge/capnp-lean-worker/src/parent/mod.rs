//! The parent's side: starting and supervising worker children, running commands, the pool.

pub(crate) mod check;
pub(crate) mod config;
pub(crate) mod pool;
pub(crate) mod process;
pub(crate) mod run;
pub(crate) mod worker;
