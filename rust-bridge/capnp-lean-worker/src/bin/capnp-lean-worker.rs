//! `capnp-lean-worker`: the child process a `capnp_lean_worker::Worker` starts. It serves the
//! worker protocol (capnp-schemas/worker.capnp) over the socket it inherits as file descriptor
//! `--fd`, opens the capability the parent names, and exits when the parent shuts it down or
//! goes away. Not meant to be run by hand; `--help` says so.

use std::os::fd::{FromRawFd, OwnedFd};

use clap::Parser;

/// Runs a Lean capability for a parent process over an inherited socket (started by
/// capnp_lean_worker::Worker; see docs/worker.md).
#[derive(Parser)]
#[command(version)]
struct Args {
    /// The inherited file descriptor of the parent's socketpair end.
    #[arg(long, required_unless_present = "preflight")]
    fd: Option<i32>,
    /// Instead of serving: run the loader's preflight on this manifest in this program (which
    /// exports the glue's externs to capabilities) and print each finding as
    /// `CODE<TAB>message<TAB>hint`; exit status 1 when there is any.
    #[arg(long, value_name = "MANIFEST")]
    preflight: Option<std::path::PathBuf>,
    /// With --preflight: the Lean runtime to check against when the manifest names none.
    #[arg(long, value_name = "LIBLEANSHARED", requires = "preflight")]
    runtime: Option<std::path::PathBuf>,
}

fn main() {
    let args = Args::parse();
    // Link every glue extern in (the table holds their addresses), so build.rs can export them
    // to the capability: nothing else here calls them.
    std::hint::black_box(capnp_lean_glue::externs());
    if let Some(manifest) = &args.preflight {
        let findings = capnp_lean_loader::preflight(manifest, args.runtime.as_deref()).err().map(|f| f.0).unwrap_or_default();
        for finding in &findings {
            let line = |s: &str| s.replace(['\t', '\n'], " ");
            println!("{}\t{}\t{}", finding.code.code(), line(&finding.message), line(&finding.hint));
        }
        std::process::exit(i32::from(!findings.is_empty()));
    }
    let fd = args.fd.unwrap_or(-1);
    if fd < 3 || std::fs::metadata(format!("/proc/self/fd/{fd}")).is_err() {
        eprintln!("capnp-lean-worker: --fd {fd} is not an open inherited descriptor; this program is started by capnp_lean_worker::Worker");
        std::process::exit(2);
    }
    #[allow(unsafe_code)]
    // SAFETY: the descriptor is open (checked above), inherited for this purpose, and nothing
    // else in this process owns it.
    let socket = unsafe { OwnedFd::from_raw_fd(fd) };
    match capnp_lean_worker::child::serve(socket) {
        // Exit without unwinding: command threads may still be inside Lean code.
        Ok(_) => std::process::exit(0),
        Err(e) => {
            eprintln!("capnp-lean-worker: {e}");
            std::process::exit(1);
        }
    }
}
