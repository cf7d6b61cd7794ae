//! Serving and connecting with capnp-rpc's two-party vat network over an [`Address`].
//!
//! capnp-rpc is single-threaded (`Rc` everywhere), so everything here must run inside a tokio
//! [`LocalSet`](tokio::task::LocalSet); [`run_local`] sets one up for synchronous callers.

use std::future::Future;
use std::io;

use capnp::capability::FromClientHook;
use capnp_rpc::rpc_twoparty_capnp::Side;
use capnp_rpc::twoparty::{VatId, VatNetwork};
use capnp_rpc::{Disconnector, RpcSystem};
use tokio_util::compat::{TokioAsyncReadCompatExt, TokioAsyncWriteCompatExt};

use super::address::{Address, Listener, Stream};

/// Runs `future` to completion on a fresh single-threaded tokio runtime inside a `LocalSet`.
pub fn run_local<F: Future>(future: F) -> F::Output {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a current-thread tokio runtime can always be built");
    tokio::task::LocalSet::new().block_on(&runtime, future)
}

fn rpc_system(stream: Stream, side: Side, bootstrap: Option<capnp::capability::Client>) -> RpcSystem<VatId> {
    let (read, write) = stream.into_split();
    let network = VatNetwork::new(
        futures::io::BufReader::new(read.compat()),
        futures::io::BufWriter::new(write.compat_write()),
        side,
        receive_options(),
    );
    RpcSystem::new(Box::new(network), bootstrap)
}

/// Reader options allowing the large payloads the benchmark sends.
fn receive_options() -> capnp::message::ReaderOptions {
    let mut options = capnp::message::ReaderOptions::new();
    options.traversal_limit_in_words(Some(64 * 1024 * 1024));
    options
}

/// Accepts connections on `listener` forever, giving each its own RPC system whose bootstrap
/// capability is `bootstrap` (shared, so server state is per process, not per connection).
pub async fn serve(listener: Listener, bootstrap: capnp::capability::Client) -> io::Result<()> {
    loop {
        let stream = listener.accept().await?;
        let system = rpc_system(stream, Side::Server, Some(bootstrap.clone()));
        // A connection ending (even with an error) must not stop the server.
        tokio::task::spawn_local(system);
    }
}

/// A client-side connection: its bootstrap capability and a way to shut it down.
pub struct ClientConnection {
    bootstrap: capnp::capability::Client,
    disconnector: Disconnector<VatId>,
}

impl ClientConnection {
    /// The server's bootstrap capability as the typed client `T`.
    pub fn bootstrap<T: FromClientHook>(&self) -> T {
        T::new(self.bootstrap.hook.add_ref())
    }

    /// Closes the connection and waits until it is closed.
    pub async fn disconnect(self) -> capnp::Result<()> {
        self.disconnector.await
    }
}

/// Connects to `address`; the RPC system runs as a local task until disconnected.
pub async fn connect(address: &Address) -> io::Result<ClientConnection> {
    let stream = Stream::connect(address).await?;
    let mut system = rpc_system(stream, Side::Client, None);
    let bootstrap: capnp::capability::Client = system.bootstrap(Side::Server);
    let disconnector = system.get_disconnector();
    tokio::task::spawn_local(system);
    Ok(ClientConnection { bootstrap, disconnector })
}
