//! Where capabilities come from. The servers and client scenarios are written once and run
//! on both RPC systems under test: capnp-rpc ([`RpcHost`]) and the capnp-lean bridge
//! ([`BridgeHost`]). The bridge can only pass on capabilities it hosts itself, so every local
//! capability a server or scenario creates goes through its host.

use std::future::Future;
use std::time::Duration;

use capnp::capability::{FromClientHook, FromServer};
use capnp::Error;
use futures::future::LocalBoxFuture;
use futures::FutureExt;

/// Creates local capabilities and waits, for one RPC system.
pub trait CapHost: Clone + 'static {
    /// Hosts `server` as a capability of interface `C`; callable from any thread.
    fn serve<C: FromServer<S>, S: Send + 'static>(&self, server: S) -> Result<C, Error>;

    /// Hosts a server that is not `Send`; only from inside a server method.
    fn serve_here<C: FromServer<S>, S: 'static>(&self, server: S) -> Result<C, Error>;

    /// A promise capability that resolves to what `future` produces (Resolve on the wire);
    /// only from inside a server method.
    fn future_client<C: FromClientHook + 'static>(
        &self,
        future: impl Future<Output = Result<C, Error>> + 'static,
    ) -> Result<C, Error>;

    /// Completes after `delay`.
    fn sleep(&self, delay: Duration) -> LocalBoxFuture<'static, ()>;
}

/// capnp-rpc's local capabilities; needs a tokio `LocalSet` (see `rust_peer::run_local`).
#[derive(Clone, Copy, Default)]
pub struct RpcHost;

impl CapHost for RpcHost {
    fn serve<C: FromServer<S>, S: Send + 'static>(&self, server: S) -> Result<C, Error> {
        Ok(capnp_rpc::new_client(server))
    }

    fn serve_here<C: FromServer<S>, S: 'static>(&self, server: S) -> Result<C, Error> {
        Ok(capnp_rpc::new_client(server))
    }

    fn future_client<C: FromClientHook + 'static>(
        &self,
        future: impl Future<Output = Result<C, Error>> + 'static,
    ) -> Result<C, Error> {
        Ok(capnp_rpc::new_future_client(future))
    }

    fn sleep(&self, delay: Duration) -> LocalBoxFuture<'static, ()> {
        tokio::time::sleep(delay).boxed_local()
    }
}

/// Capabilities hosted by a capnp-lean runtime (their methods run on its loop thread).
#[derive(Clone)]
pub struct BridgeHost(pub capnp_lean::RuntimeRef);

impl CapHost for BridgeHost {
    fn serve<C: FromServer<S>, S: Send + 'static>(&self, server: S) -> Result<C, Error> {
        Ok(self.0.serve(server)?)
    }

    fn serve_here<C: FromServer<S>, S: 'static>(&self, server: S) -> Result<C, Error> {
        Ok(self.0.serve_local(server)?)
    }

    fn future_client<C: FromClientHook + 'static>(
        &self,
        future: impl Future<Output = Result<C, Error>> + 'static,
    ) -> Result<C, Error> {
        let (client, resolver) = self.0.promise_client::<C>()?;
        self.0.spawn_local(async move {
            // A resolver that cannot be settled (runtime gone) rejects itself when dropped.
            let _ = match future.await {
                Ok(target) => resolver.fulfill(&target),
                Err(error) => resolver.reject(&error.into()),
            };
        })?;
        Ok(client)
    }

    fn sleep(&self, delay: Duration) -> LocalBoxFuture<'static, ()> {
        self.0.sleep(delay).map(|_| ()).boxed_local()
    }
}
