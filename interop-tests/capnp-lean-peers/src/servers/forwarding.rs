//! An `Interop` server that forwards `echo` and `fail` to another `Interop` server and hands back
//! whatever that server answered, errors included: a proxy, to show that an error passing through
//! a server unchanged keeps its kind and its text (docs/interop.md, "Errors").

use capnp::capability::Rc as CapRc;
use capnp::Error;
use capnp_schemas::interop_capnp::interop;

/// Forwards to the `Interop` capability `upstream` returns (called once per call, so a server
/// whose upstream capability cannot cross threads can still be `Send`). Every other method is
/// left unimplemented.
pub struct ForwardingInterop<U> {
    upstream: U,
}

impl<U: Fn() -> Result<interop::Client, Error>> ForwardingInterop<U> {
    /// A proxy for the server behind `upstream`.
    pub fn new(upstream: U) -> Self {
        Self { upstream }
    }
}

impl<U: Fn() -> Result<interop::Client, Error> + 'static> interop::Server for ForwardingInterop<U> {
    async fn echo(
        self: CapRc<Self>,
        params: interop::EchoParams,
        mut results: interop::EchoResults,
    ) -> Result<(), Error> {
        let mut request = (self.upstream)()?.echo_request();
        request.get().set_payload(params.get()?.get_payload()?);
        let response = request.send().promise.await?;
        results.get().set_payload(response.get()?.get_payload()?);
        Ok(())
    }

    async fn fail(
        self: CapRc<Self>,
        params: interop::FailParams,
        _: interop::FailResults,
    ) -> Result<(), Error> {
        let params = params.get()?;
        let mut request = (self.upstream)()?.fail_request();
        request.get().set_kind(params.get_kind()?);
        request.get().set_message(params.get_message()?);
        // The upstream error as this RPC system received it, returned as it is.
        request.send().promise.await?;
        Ok(())
    }
}
