//! The safe API end to end, in one process: two runtimes (client and server) joined by a
//! socketpair or loopback TCP, with capnpc-rust generated clients and servers.

use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use capnp::capability::Rc;
use capnp_lean::{block_on, ConnectionOptions, Error, ErrorKind, Runtime, Side, Stats};
use capnp_schemas::interop_capnp::{counter, interop, ErrorKind as WireKind};
use futures::future::{select, Either};

/// Server-side observations the tests assert on.
#[derive(Default)]
struct Seen {
    counters_dropped: AtomicU32,
    hang_dropped: AtomicBool,
    loop_thread_block_on_refused: AtomicBool,
}

struct Counter {
    total: std::sync::atomic::AtomicI64,
    seen: Arc<Seen>,
}

impl Drop for Counter {
    fn drop(&mut self) {
        self.seen.counters_dropped.fetch_add(1, Ordering::SeqCst);
    }
}

impl counter::Server for Counter {
    async fn increment(self: Rc<Self>, params: counter::IncrementParams, mut results: counter::IncrementResults) -> Result<(), capnp::Error> {
        let by = params.get()?.get_by();
        results.get().set_value(self.total.fetch_add(by, Ordering::SeqCst) + by);
        Ok(())
    }
}

struct Probe {
    runtime: capnp_lean::RuntimeRef,
    seen: Arc<Seen>,
}

struct SetOnDrop(Arc<Seen>);

impl Drop for SetOnDrop {
    fn drop(&mut self) {
        self.0.hang_dropped.store(true, Ordering::SeqCst);
    }
}

impl interop::Server for Probe {
    async fn echo(self: Rc<Self>, params: interop::EchoParams, mut results: interop::EchoResults) -> Result<(), capnp::Error> {
        // block_on here would deadlock the loop; the bridge must refuse it instead.
        let refused = matches!(block_on(async {}), Err(Error::OnLoopThread(_)));
        self.seen.loop_thread_block_on_refused.store(refused, Ordering::SeqCst);
        results.get().set_payload(params.get()?.get_payload()?);
        Ok(())
    }

    async fn fail(self: Rc<Self>, params: interop::FailParams, _: interop::FailResults) -> Result<(), capnp::Error> {
        let params = params.get()?;
        let message = params.get_message()?.to_string().unwrap();
        let kind = match params.get_kind()? {
            WireKind::Failed => capnp::ErrorKind::Failed,
            WireKind::Overloaded => capnp::ErrorKind::Overloaded,
            WireKind::Disconnected => capnp::ErrorKind::Disconnected,
            WireKind::Unimplemented => capnp::ErrorKind::Unimplemented,
        };
        if message == "panic" {
            panic!("deliberate panic in a server method");
        }
        if message == "panic later" {
            self.runtime.sleep(Duration::from_millis(1)).await.ok();
            panic!("deliberate panic after an await");
        }
        Err(capnp::Error { kind, extra: message })
    }

    async fn new_counter(self: Rc<Self>, _: interop::NewCounterParams, mut results: interop::NewCounterResults) -> Result<(), capnp::Error> {
        let counter: counter::Client = self.runtime.serve(Counter { total: Default::default(), seen: self.seen.clone() })?;
        results.get().set_counter(counter);
        Ok(())
    }

    async fn call_back(self: Rc<Self>, params: interop::CallBackParams, mut results: interop::CallBackResults) -> Result<(), capnp::Error> {
        let params = params.get()?;
        let counter = params.get_counter()?;
        let mut total = 0;
        for _ in 0..params.get_times() {
            let mut request = counter.increment_request();
            request.get().set_by(10);
            total = request.send().promise.await?.get()?.get_value();
        }
        results.get().set_total(total);
        Ok(())
    }

    async fn hang(self: Rc<Self>, _: interop::HangParams, _: interop::HangResults) -> Result<(), capnp::Error> {
        let _guard = SetOnDrop(self.seen.clone());
        futures::future::pending::<()>().await;
        Ok(())
    }
}

/// A server runtime and a client runtime joined by a socketpair.
struct Pair {
    client: Runtime,
    server: Runtime,
    seen: Arc<Seen>,
    connection: Option<capnp_lean::Connection>,
    _server_connection: capnp_lean::Connection,
}

impl Pair {
    fn new() -> Self {
        let server = Runtime::new().unwrap();
        let client = Runtime::new().unwrap();
        let seen = Arc::new(Seen::default());
        let bootstrap: interop::Client = server.serve(Probe { runtime: server.handle(), seen: seen.clone() }).unwrap();
        let (a, b) = UnixStream::pair().unwrap();
        let options = ConnectionOptions::default();
        let server_connection = server.adopt(b.into(), Side::Server, Some(&bootstrap), &options).unwrap();
        let connection = client.adopt::<interop::Client>(a.into(), Side::Client, None, &options).unwrap();
        Pair { client, server, seen, connection: Some(connection), _server_connection: server_connection }
    }

    fn interop(&self) -> interop::Client {
        self.connection.as_ref().unwrap().bootstrap().unwrap()
    }
}

/// Waits for `future`, failing the test after `limit` instead of hanging it.
fn within<T>(runtime: &Runtime, limit: Duration, future: impl std::future::Future<Output = T>) -> T {
    let timer = runtime.sleep(limit);
    match block_on(select(Box::pin(future), Box::pin(timer))).unwrap() {
        Either::Left((value, _)) => value,
        Either::Right(_) => panic!("no result within {limit:?}"),
    }
}

async fn echo(interop: &interop::Client, payload: &[u8]) -> Result<Vec<u8>, capnp::Error> {
    let mut request = interop.echo_request();
    request.get().set_payload(payload);
    Ok(request.send().promise.await?.get()?.get_payload()?.to_vec())
}

fn wait_for_stats(runtime: &Runtime, wanted: impl Fn(&Stats) -> bool) -> Stats {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let stats = runtime.stats().unwrap();
        if wanted(&stats) || Instant::now() > deadline {
            return stats;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn echo_round_trips_over_a_socketpair_including_large_payloads() {
    let pair = Pair::new();
    let interop = pair.interop();
    for size in [0usize, 7, 1 << 20] {
        let payload: Vec<u8> = (0..size).map(|i| (i * 31 % 251) as u8).collect();
        let back = within(&pair.client, Duration::from_secs(10), echo(&interop, &payload)).unwrap();
        assert_eq!(back, payload, "echo of {size} bytes");
    }
}

#[test]
fn a_pipelined_capability_is_usable_before_the_results_arrive() {
    let pair = Pair::new();
    let counter = pair.interop().new_counter_request().send().pipeline.get_counter();
    let mut first = counter.increment_request();
    first.get().set_by(5);
    let mut second = counter.increment_request();
    second.get().set_by(2);
    let (a, b) = (first.send().promise, second.send().promise);
    let totals = within(&pair.client, Duration::from_secs(5), async {
        (a.await.unwrap().get().unwrap().get_value(), b.await.unwrap().get().unwrap().get_value())
    });
    assert_eq!(totals, (5, 7));
}

#[test]
fn dropping_the_last_reference_releases_the_server_object() {
    let pair = Pair::new();
    let response = within(&pair.client, Duration::from_secs(5), pair.interop().new_counter_request().send().promise).unwrap();
    let counter = response.get().unwrap().get_counter().unwrap();
    drop(response);
    assert_eq!(pair.seen.counters_dropped.load(Ordering::SeqCst), 0);
    drop(counter);
    let deadline = Instant::now() + Duration::from_secs(5);
    while pair.seen.counters_dropped.load(Ordering::SeqCst) == 0 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    assert_eq!(pair.seen.counters_dropped.load(Ordering::SeqCst), 1, "the server's Counter was not dropped");
}

#[test]
fn a_client_hosted_capability_in_params_is_called_back_by_the_server() {
    let pair = Pair::new();
    let seen = Arc::new(Seen::default());
    let local: counter::Client = pair.client.serve(Counter { total: Default::default(), seen: seen.clone() }).unwrap();
    let mut request = pair.interop().call_back_request();
    request.get().set_counter(local);
    request.get().set_times(3);
    let total = within(&pair.client, Duration::from_secs(5), request.send().promise).unwrap().get().unwrap().get_total();
    assert_eq!(total, 30);
}

#[test]
fn server_failures_reach_the_client_with_kind_and_message_intact() {
    let pair = Pair::new();
    let interop = pair.interop();
    for (kind, expected) in [
        (WireKind::Failed, capnp::ErrorKind::Failed),
        (WireKind::Overloaded, capnp::ErrorKind::Overloaded),
        (WireKind::Disconnected, capnp::ErrorKind::Disconnected),
        (WireKind::Unimplemented, capnp::ErrorKind::Unimplemented),
    ] {
        let message = format!("exactly this text for {kind:?}");
        let mut request = interop.fail_request();
        request.get().set_kind(kind);
        request.get().set_message(&message[..]);
        let error = within(&pair.client, Duration::from_secs(5), request.send().promise).err().expect("fail must fail");
        assert_eq!(error.kind, expected);
        assert_eq!(error.extra, message);
    }
}

#[test]
fn a_method_the_server_lacks_answers_unimplemented() {
    let pair = Pair::new();
    let error = within(&pair.client, Duration::from_secs(5), pair.interop().not_implemented_request().send().promise)
        .err()
        .expect("notImplemented must fail");
    assert_eq!(error.kind, capnp::ErrorKind::Unimplemented);
}

#[test]
fn a_panicking_server_method_fails_that_call_and_the_server_keeps_serving() {
    let pair = Pair::new();
    let interop = pair.interop();
    let mut request = interop.fail_request();
    request.get().set_message("panic");
    let error = within(&pair.client, Duration::from_secs(5), request.send().promise).err().expect("a panic must fail the call");
    assert_eq!(error.kind, capnp::ErrorKind::Failed);
    // A panic after the method's first await (in a later poll) is contained too.
    let mut request = interop.fail_request();
    request.get().set_message("panic later");
    let error = within(&pair.client, Duration::from_secs(5), request.send().promise).err().expect("a late panic must fail the call");
    assert_eq!(error.kind, capnp::ErrorKind::Failed);
    assert_eq!(within(&pair.client, Duration::from_secs(5), echo(&interop, b"after")).unwrap(), b"after");
}

#[test]
fn block_on_is_refused_on_the_loop_thread_instead_of_deadlocking() {
    let pair = Pair::new();
    within(&pair.client, Duration::from_secs(5), echo(&pair.interop(), b"x")).unwrap();
    assert!(pair.seen.loop_thread_block_on_refused.load(Ordering::SeqCst));
    assert!(block_on(async { 1 }).is_ok(), "an ordinary thread may block");
}

#[test]
fn cancelling_a_call_drops_the_server_side_future() {
    let pair = Pair::new();
    let hanging = pair.interop().hang_request().send();
    // Let the call reach the server before cancelling it.
    within(&pair.client, Duration::from_secs(5), echo(&pair.interop(), b"sync")).unwrap();
    assert!(!pair.seen.hang_dropped.load(Ordering::SeqCst));
    drop(hanging);
    let deadline = Instant::now() + Duration::from_secs(5);
    while !pair.seen.hang_dropped.load(Ordering::SeqCst) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    assert!(pair.seen.hang_dropped.load(Ordering::SeqCst), "the server future survived the caller's Finish");
    let stats = wait_for_stats(&pair.server, |s| s.server_calls == 0);
    assert_eq!(stats.server_calls, 0, "{stats:?}");
}

#[test]
fn a_call_timeout_fails_the_call_as_overloaded_and_cancels_it() {
    let pair = Pair::new();
    let started = Instant::now();
    let hanging = pair.interop().hang_request().send().promise;
    let outcome = block_on(pair.client.timeout(Duration::from_millis(200), hanging)).unwrap();
    let error = outcome.err().expect("hang never answers");
    assert_eq!(error.kind(), ErrorKind::Overloaded, "{error}");
    assert!(started.elapsed() < Duration::from_secs(2), "took {:?}", started.elapsed());
    let deadline = Instant::now() + Duration::from_secs(5);
    while !pair.seen.hang_dropped.load(Ordering::SeqCst) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    assert!(pair.seen.hang_dropped.load(Ordering::SeqCst), "the timed-out call was not cancelled at the server");
}

#[test]
fn a_promise_capability_queues_calls_until_it_is_fulfilled() {
    let runtime = Runtime::new().unwrap();
    let seen = Arc::new(Seen::default());
    let (promise, resolver) = runtime.promise_client::<counter::Client>().unwrap();
    let mut request = promise.increment_request();
    request.get().set_by(4);
    let pending = request.send().promise;
    let target: counter::Client = runtime.serve(Counter { total: Default::default(), seen }).unwrap();
    resolver.fulfill(&target).unwrap();
    let value = within(&runtime, Duration::from_secs(5), pending).unwrap().get().unwrap().get_value();
    assert_eq!(value, 4);
}

#[test]
fn a_rejected_promise_capability_fails_calls_with_its_kind_and_message() {
    let runtime = Runtime::new().unwrap();
    let (promise, resolver) = runtime.promise_client::<counter::Client>().unwrap();
    resolver.reject(&Error::new(ErrorKind::Overloaded, "try later")).unwrap();
    let error = within(&runtime, Duration::from_secs(5), promise.increment_request().send().promise).err().unwrap();
    assert_eq!((error.kind, error.extra.as_str()), (capnp::ErrorKind::Overloaded, "try later"));
}

#[test]
fn connection_refused_is_a_disconnected_error_naming_the_address() {
    let runtime = Runtime::new().unwrap();
    // Bind then drop a listener so the port is (almost certainly) closed.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let address = format!("127.0.0.1:{port}");
    let error = within(&runtime, Duration::from_secs(10), runtime.connect(&address)).err().expect("nothing listens there");
    assert_eq!(error.kind(), ErrorKind::Disconnected, "{error}");
    assert!(error.message().contains(&address), "{error}");
}

#[test]
fn shutting_down_the_client_runtime_fails_its_pending_calls_promptly() {
    let pair = Pair::new();
    let hanging = pair.interop().hang_request().send().promise;
    within(&pair.client, Duration::from_secs(5), echo(&pair.interop(), b"sync")).unwrap();
    let started = Instant::now();
    pair.client.shutdown().unwrap();
    let error = futures::executor::block_on(hanging).err().expect("a shut-down runtime cannot answer");
    assert_eq!(error.kind, capnp::ErrorKind::Disconnected);
    assert!(started.elapsed() < Duration::from_secs(1), "took {:?}", started.elapsed());
}

#[test]
fn live_handle_counts_return_to_zero_once_everything_is_dropped() {
    let mut pair = Pair::new();
    {
        let interop = pair.interop();
        let counter = interop.new_counter_request().send().pipeline.get_counter();
        let mut request = counter.increment_request();
        request.get().set_by(1);
        within(&pair.client, Duration::from_secs(5), request.send().promise).unwrap();
        within(&pair.client, Duration::from_secs(5), echo(&interop, b"x")).unwrap();
    }
    pair.connection = None;
    let client = wait_for_stats(&pair.client, |s| *s == Stats::default());
    assert_eq!(client, Stats::default(), "client side still holds objects");
    let server = wait_for_stats(&pair.server, |s| s.caps <= 1 && s.calls == 0 && s.server_calls == 0);
    // The server keeps its bootstrap capability (held by the test) and its end of the socket
    // until that connection notices the disconnect.
    assert!(server.caps <= 1 && server.calls == 0 && server.server_calls == 0, "{server:?}");
    let deadline = Instant::now() + Duration::from_secs(5);
    while pair.seen.counters_dropped.load(Ordering::SeqCst) == 0 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    assert_eq!(pair.seen.counters_dropped.load(Ordering::SeqCst), 1, "the released Counter was not dropped");
}

#[test]
fn many_calls_from_a_host_thread_completing_together_each_get_their_own_results() {
    // Completions of calls started off the loop thread are delivered in batches at the end of
    // a loop turn; some are dropped (released) while their outcome may already be queued.
    let pair = Pair::new();
    let interop = pair.interop();
    let mut kept = Vec::new();
    for round in 0..4u32 {
        let mut started = Vec::new();
        for i in 0..128u32 {
            let payload = format!("call {round}/{i}").into_bytes();
            let mut request = interop.echo_request();
            request.get().set_payload(&payload);
            started.push((payload, request.send().promise));
        }
        for (n, (payload, promise)) in started.into_iter().enumerate() {
            if n % 3 == 0 {
                drop(promise);
            } else {
                kept.push((payload, promise));
            }
        }
    }
    let answers = within(&pair.client, Duration::from_secs(20), futures::future::join_all(kept.into_iter().map(|(payload, promise)| async move {
        let response = promise.await.unwrap();
        (payload, response.get().unwrap().get_payload().unwrap().to_vec())
    })));
    assert_eq!(answers.len(), 4 * 128 - 4 * 43);
    for (sent, got) in answers {
        assert_eq!(got, sent);
    }
    let stats = wait_for_stats(&pair.client, |s| s.calls == 0);
    assert_eq!(stats.calls, 0, "released calls are freed: {stats:?}");
}

#[test]
fn the_linked_shim_speaks_the_abi_this_crate_was_built_for() {
    assert_eq!(capnp_lean::abi_version(), capnp_lean::ABI_VERSION);
}
