//! The capability loader: opens a Lean shared library ("capability") described by a
//! `capnp-lean-toolchain` manifest and calls its `@[export]` functions with typed signatures.
//!
//! What it hides: `dlopen` order and flags, symbol visibility between libraries, initializer
//! names and order, runtime initialization, and library lifetime. What it promises:
//! - a [`preflight`] before any `dlopen` that names every missing file, wrong architecture,
//!   missing initializer/export, unresolvable `DT_NEEDED`, and every undefined symbol with the
//!   library that probably provides it;
//! - libraries opened runtime → dependencies (in manifest order, global where marked) →
//!   primary, all with `RTLD_NODELETE`, so no code of a bundle is unmapped while Lean objects
//!   that point into it may still run;
//! - module initializers run before `lean_io_mark_end_initialization` (deferred to the first
//!   call), and a failing initializer becomes an error carrying Lean's own error text;
//! - nothing relies on `LD_LIBRARY_PATH` or `LD_PRELOAD`: the manifest and rpaths suffice;
//! - a manifest written by lean-rs (0.7.3, schema 2) opens too, translated by [`lean_rs`].
//!
//! ```no_run
//! use capnp_lean_loader::Capability;
//! let cap = Capability::open("target/demo.capability.json".as_ref()).unwrap();
//! let _thread = cap.attach_thread();
//! let add = cap.export::<(u32, u32), u32>("demo_add").unwrap();
//! assert_eq!(add.call((2, 3)), 5);
//! let banner: String = cap.global("demo_banner").unwrap(); // `@[export demo_banner] def banner : String`
//! ```

#[allow(unsafe_code)]
mod bundle;
#[allow(unsafe_code)]
mod call;
mod error;
#[allow(unsafe_code)]
mod global;
pub mod lean_rs;
mod preflight;
mod providers;
mod stamp;

pub use bundle::{Capability, Export, LoadOptions};
pub use call::{expected_prototype, Borrowed, FromObj, LeanArg, LeanArgs, LeanRet};
pub use error::{Findings, LoaderCode, LoaderError};
pub use global::{expected_global, LeanGlobal};
pub use preflight::{check_manifest, preflight, RUNTIME_FILE_NAME};
pub use providers::likely_provider;
