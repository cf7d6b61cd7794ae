//! The worker child's side: serving `Worker` over the socket the parent handed down, opening the
//! capability, and running its commands (see docs/worker.md).

#[allow(unsafe_code)]
mod closures;
mod runner;
mod server;
mod sinks;

use std::os::fd::OwnedFd;

use capnp_lean::{ConnectionOptions, Runtime, Side};
use capnp_schemas::worker_capnp::worker;

pub use runner::{BOOTSTRAP_EXPORT, DEFAULT_EXPORT, METADATA_EXPORT};
pub use server::{WorkerServer, WORKER_VERSION};
pub use sinks::{BATCH_BYTES, BATCH_ROWS};

/// Why a child stopped serving.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stopped {
    /// The parent called `Worker.shutdown`.
    Shutdown,
    /// The connection to the parent ended (the parent closed it, exited or crashed).
    Disconnected,
}

/// Serves `Worker` over `socket` (one end of the parent's socketpair) until the parent shuts
/// the child down or goes away. Command threads still inside Lean code are not waited for: the
/// caller should exit the process next.
pub fn serve(socket: OwnedFd) -> Result<Stopped, capnp_lean::Error> {
    let runtime = Runtime::new()?;
    let (stop, stopped) = std::sync::mpsc::channel();
    let on_shutdown = stop.clone();
    let server = WorkerServer::new(runtime.handle(), move || {
        let _ = on_shutdown.send(Stopped::Shutdown);
    });
    let bootstrap: worker::Client = runtime.serve(server)?;
    // The parent speaks first when it wants something, and may be idle for hours.
    let options = ConnectionOptions { handshake_timeout: None, ..ConnectionOptions::default() };
    let connection = runtime.adopt(socket, Side::Server, Some(&bootstrap), &options)?;
    drop(bootstrap);
    let disconnected = connection.disconnected();
    std::thread::Builder::new()
        .name("capnp-lean-worker-watch".into())
        .spawn(move || {
            let _ = capnp_lean::block_on(disconnected);
            let _ = stop.send(Stopped::Disconnected);
        })
        .map_err(|e| capnp_lean::Error::failed(format!("cannot start a thread: {e}")))?;
    Ok(stopped.recv().unwrap_or(Stopped::Disconnected))
}
