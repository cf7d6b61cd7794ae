//! placeholder
pub mod lean;
pub mod loader;
