//! An `Interop` server that keeps a ledger of the work it has in progress, so a test can see
//! when a dead client's operations have all ended on the server side, and how.
//!
//! Implemented: `echo`, `hang`, `callBack`, `counterLater` and `newCounter`; other methods answer
//! `unimplemented` (the generated default).

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use capnp::capability::Rc as CapRc;
use capnp::Error;
use capnp_lean::RuntimeRef;
use capnp_schemas::interop_capnp::{counter, interop};

/// What the server has in progress and how finished work ended.
#[derive(Default)]
pub struct Ledger {
    in_progress: AtomicI64,
    abandoned: AtomicI64,
    callback_failures: Mutex<Vec<capnp::ErrorKind>>,
}

impl Ledger {
    /// Server methods (and pending promise resolutions) still running.
    pub fn in_progress(&self) -> i64 {
        self.in_progress.load(Ordering::SeqCst)
    }

    /// Server methods dropped before they finished (their caller went away), emptying the count.
    pub fn take_abandoned(&self) -> i64 {
        self.abandoned.swap(0, Ordering::SeqCst)
    }

    /// The error kinds of the calls back to a client that failed, oldest first, emptying the list.
    pub fn take_callback_failures(&self) -> Vec<capnp::ErrorKind> {
        std::mem::take(&mut self.callback_failures.lock().unwrap())
    }
}

/// Counts one piece of work as in progress for as long as it lives, and as abandoned if it is
/// dropped before [`InProgress::finish`].
struct InProgress {
    ledger: Arc<Ledger>,
    finished: bool,
}

impl InProgress {
    fn new(ledger: &Arc<Ledger>) -> InProgress {
        ledger.in_progress.fetch_add(1, Ordering::SeqCst);
        InProgress { ledger: ledger.clone(), finished: false }
    }

    fn finish(mut self) {
        self.finished = true;
    }
}

impl Drop for InProgress {
    fn drop(&mut self) {
        if !self.finished {
            self.ledger.abandoned.fetch_add(1, Ordering::SeqCst);
        }
        self.ledger.in_progress.fetch_sub(1, Ordering::SeqCst);
    }
}

/// The instrumented server; host it with [`WatchedInterop::into_client`].
pub struct WatchedInterop {
    runtime: RuntimeRef,
    ledger: Arc<Ledger>,
}

impl WatchedInterop {
    /// A server on `runtime` recording into `ledger`.
    pub fn new(runtime: RuntimeRef, ledger: Arc<Ledger>) -> WatchedInterop {
        WatchedInterop { runtime, ledger }
    }

    /// This server as a capability hosted by its runtime.
    pub fn into_client(self) -> Result<interop::Client, capnp_lean::Error> {
        let runtime = self.runtime.clone();
        runtime.serve(self)
    }
}

struct Tally(AtomicI64);

impl counter::Server for Tally {
    async fn increment(self: CapRc<Self>, params: counter::IncrementParams, mut results: counter::IncrementResults) -> Result<(), Error> {
        let by = params.get()?.get_by();
        results.get().set_value(self.0.fetch_add(by, Ordering::SeqCst) + by);
        Ok(())
    }
}

impl interop::Server for WatchedInterop {
    async fn echo(self: CapRc<Self>, params: interop::EchoParams, mut results: interop::EchoResults) -> Result<(), Error> {
        results.get().set_payload(params.get()?.get_payload()?);
        Ok(())
    }

    async fn hang(self: CapRc<Self>, _: interop::HangParams, _: interop::HangResults) -> Result<(), Error> {
        let _in_progress = InProgress::new(&self.ledger);
        futures::future::pending::<()>().await;
        Ok(())
    }

    async fn call_back(self: CapRc<Self>, params: interop::CallBackParams, mut results: interop::CallBackResults) -> Result<(), Error> {
        let in_progress = InProgress::new(&self.ledger);
        let params = params.get()?;
        let counter = params.get_counter()?;
        let mut total = 0;
        for _ in 0..params.get_times() {
            let mut request = counter.increment_request();
            request.get().set_by(1);
            match request.send().promise.await.and_then(|r| Ok(r.get()?.get_value())) {
                Ok(value) => total = value,
                Err(error) => {
                    self.ledger.callback_failures.lock().unwrap().push(error.kind);
                    in_progress.finish();
                    return Err(error);
                }
            }
        }
        results.get().set_total(total);
        in_progress.finish();
        Ok(())
    }

    async fn new_counter(self: CapRc<Self>, _: interop::NewCounterParams, mut results: interop::NewCounterResults) -> Result<(), Error> {
        let counter: counter::Client = self.runtime.serve(Tally(AtomicI64::new(0)))?;
        results.get().set_counter(counter);
        Ok(())
    }

    async fn counter_later(self: CapRc<Self>, params: interop::CounterLaterParams, mut results: interop::CounterLaterResults) -> Result<(), Error> {
        let delay = Duration::from_millis(u64::from(params.get()?.get_delay_ms()));
        let (promise, resolver) = self.runtime.promise_client::<counter::Client>()?;
        let in_progress = InProgress::new(&self.ledger);
        let runtime = self.runtime.clone();
        self.runtime.spawn_local(async move {
            if runtime.sleep(delay).await.is_ok() {
                if let Ok(counter) = runtime.serve::<counter::Client, _>(Tally(AtomicI64::new(0))) {
                    // The promise's holder may be gone (the client died): fulfilling is then a no-op.
                    let _ = resolver.fulfill(&counter);
                }
            }
            in_progress.finish();
        })?;
        results.get().set_counter(promise);
        Ok(())
    }
}
