//! The `Interop` server, exactly as `interop.capnp` describes each method.

use std::sync::atomic::{AtomicI64, AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use capnp::capability::Rc as CapRc;
use capnp::Error;
use capnp_schemas::interop_capnp::{counter, interop, ErrorKind};

use crate::host::CapHost;

/// Serves `Interop`. State is shared by every connection that bootstraps the same client.
pub struct InteropServer<H> {
    host: H,
    released_counters: Arc<AtomicU32>,
}

impl<H: CapHost + Send> InteropServer<H> {
    /// A server with no counters released yet, creating its capabilities through `host`.
    pub fn new(host: H) -> Self {
        Self { host, released_counters: Arc::default() }
    }

    /// This server as a bootstrap capability.
    pub fn into_client(self) -> Result<interop::Client, Error> {
        let host = self.host.clone();
        host.serve(self)
    }

    fn fresh_counter(&self) -> CounterServer {
        CounterServer { total: AtomicI64::new(0), released_counters: self.released_counters.clone() }
    }
}

/// A server-hosted `Counter`; dropping it (the client released it) is counted.
struct CounterServer {
    total: AtomicI64,
    released_counters: Arc<AtomicU32>,
}

impl Drop for CounterServer {
    fn drop(&mut self) {
        self.released_counters.fetch_add(1, Ordering::SeqCst);
    }
}

impl counter::Server for CounterServer {
    async fn increment(
        self: CapRc<Self>,
        params: counter::IncrementParams,
        mut results: counter::IncrementResults,
    ) -> Result<(), Error> {
        let by = params.get()?.get_by();
        let total = self.total.fetch_add(by, Ordering::SeqCst) + by;
        results.get().set_value(total);
        Ok(())
    }
}

/// The `capnp::Error` for a schema `ErrorKind` and message.
pub fn error_of_kind(kind: ErrorKind, message: String) -> Error {
    let kind = match kind {
        ErrorKind::Failed => capnp::ErrorKind::Failed,
        ErrorKind::Overloaded => capnp::ErrorKind::Overloaded,
        ErrorKind::Disconnected => capnp::ErrorKind::Disconnected,
        ErrorKind::Unimplemented => capnp::ErrorKind::Unimplemented,
    };
    Error { kind, extra: message }
}

fn millis(value: u32) -> Duration {
    Duration::from_millis(u64::from(value))
}

impl<H: CapHost + Send> interop::Server for InteropServer<H> {
    async fn echo(
        self: CapRc<Self>,
        params: interop::EchoParams,
        mut results: interop::EchoResults,
    ) -> Result<(), Error> {
        results.get().set_payload(params.get()?.get_payload()?);
        Ok(())
    }

    async fn fail(
        self: CapRc<Self>,
        params: interop::FailParams,
        _: interop::FailResults,
    ) -> Result<(), Error> {
        let params = params.get()?;
        let message = params.get_message()?.to_string().map_err(|e| Error::failed(e.to_string()))?;
        Err(error_of_kind(params.get_kind()?, message))
    }

    async fn new_counter(
        self: CapRc<Self>,
        _: interop::NewCounterParams,
        mut results: interop::NewCounterResults,
    ) -> Result<(), Error> {
        results.get().set_counter(self.host.serve(self.fresh_counter())?);
        Ok(())
    }

    async fn counter_later(
        self: CapRc<Self>,
        params: interop::CounterLaterParams,
        mut results: interop::CounterLaterResults,
    ) -> Result<(), Error> {
        let wait = self.host.sleep(millis(params.get()?.get_delay_ms()));
        let counter = self.fresh_counter();
        let host = self.host.clone();
        // A promise capability is exported as such; resolving it later puts Resolve on the wire.
        let promise: counter::Client = self.host.future_client(async move {
            wait.await;
            host.serve::<counter::Client, _>(counter)
        })?;
        results.get().set_counter(promise);
        Ok(())
    }

    async fn reflect(
        self: CapRc<Self>,
        params: interop::ReflectParams,
        mut results: interop::ReflectResults,
    ) -> Result<(), Error> {
        let params = params.get()?;
        let wait = self.host.sleep(millis(params.get_delay_ms()));
        let passed_in = params.get_counter()?;
        let promise: counter::Client = self.host.future_client(async move {
            wait.await;
            Ok(passed_in)
        })?;
        results.get().set_counter(promise);
        Ok(())
    }

    async fn call_back(
        self: CapRc<Self>,
        params: interop::CallBackParams,
        mut results: interop::CallBackResults,
    ) -> Result<(), Error> {
        let params = params.get()?;
        let counter = params.get_counter()?;
        let mut total = 0;
        for _ in 0..params.get_times() {
            let mut request = counter.increment_request();
            request.get().set_by(1);
            total = request.send().promise.await?.get()?.get_value();
        }
        results.get().set_total(total);
        Ok(())
    }

    async fn hang(
        self: CapRc<Self>,
        _: interop::HangParams,
        _: interop::HangResults,
    ) -> Result<(), Error> {
        // Finish from the caller drops this future: that is the only way it ends.
        futures::future::pending::<()>().await;
        Ok(())
    }

    async fn released_counters(
        self: CapRc<Self>,
        _: interop::ReleasedCountersParams,
        mut results: interop::ReleasedCountersResults,
    ) -> Result<(), Error> {
        results.get().set_count(self.released_counters.load(Ordering::SeqCst));
        Ok(())
    }
}
