//! `-> stream` methods over the bridge: the generated client's `send()` of a streaming request
//! goes through `capnp_lean_call_start_streaming`, i.e. KJ's flow control. Two runtimes in one
//! process (sender and receiver) joined by a socketpair; the receiver is a bridge-hosted Rust
//! server that is deliberately slow.
//!
//! What is measured: calls in flight = items the sender has handed to `send()` minus items the
//! receiver has processed (both counters live in this process). KJ's window for a connection is
//! its socket's send buffer (`SO_SNDBUF`; for an AF_UNIX socketpair, `net.core.wmem_default`),
//! counted in bytes of unacknowledged Call messages, plus one message of slack; a Call carrying
//! an 8-byte chunk is well over [`MIN_CALL_BYTES`], so at most `window / MIN_CALL_BYTES + 2`
//! calls can be in flight. Ordinary sends have no such bound (the last test shows them far past
//! it), so the bound is what the streaming test can fail on.

use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use capnp::capability::Rc;
use capnp_lean::{block_on, ConnectionOptions, Runtime, Side};
use capnp_schemas::stream_test_capnp::byte_sink;

/// Items pushed through the flow-controlled stream. Measured here (2 shared cores), paced by
/// the receiver: debug builds 5k–11k items/s (100k in 10–20 s, so 1M would take minutes);
/// release, 1M items in 59 s with at most 1,776 in flight. The test prints its rate;
/// `CAPNP_LEAN_STREAM_ITEMS=1000000` runs the full million.
const ITEMS: u64 = 100_000;

fn items() -> u64 {
    std::env::var("CAPNP_LEAN_STREAM_ITEMS").ok().and_then(|n| n.parse().ok()).unwrap_or(ITEMS)
}
/// A lower bound on the size of one `write` Call message as KJ counts it (whole RPC message:
/// Message + Call + MessageTarget + Payload + params + 8-byte Data, >= 10 words in practice).
const MIN_CALL_BYTES: u64 = 64;
/// The receiver sleeps this long after every `SLOW_EVERY` items, so the sender outpaces it.
/// (While it sleeps, the sender fills the window: the test checks that it did, >100 calls.)
const SLOW_EVERY: u64 = 5_000;
const SLOW_FOR: Duration = Duration::from_millis(50);

/// What the receiver observed.
#[derive(Default)]
struct Seen {
    /// Items processed (in order; a gap or repeat is recorded in `errors`).
    received: AtomicU64,
    bytes: AtomicU64,
    /// Writes running at once in the server, at most (KJ serializes streaming calls).
    active: AtomicU64,
    max_active: AtomicU64,
    errors: Mutex<Vec<String>>,
    /// While set, the failing item waits before it fails (so a test can finish sending first).
    hold_failure: AtomicBool,
}

struct Sink {
    runtime: capnp_lean::RuntimeRef,
    seen: Arc<Seen>,
    /// The item index whose write fails (breaking the stream), if any.
    fail_at: Option<u64>,
}

impl byte_sink::Server for Sink {
    async fn write(self: Rc<Self>, params: byte_sink::WriteParams) -> Result<(), capnp::Error> {
        let active = self.seen.active.fetch_add(1, Ordering::SeqCst) + 1;
        self.seen.max_active.fetch_max(active, Ordering::SeqCst);
        let chunk = params.get()?.get_chunk()?;
        let index = u64::from_le_bytes(chunk.try_into().map_err(|_| capnp::Error::failed("chunk is not 8 bytes".into()))?);
        let expected = self.seen.received.load(Ordering::SeqCst);
        if index != expected {
            self.seen.errors.lock().unwrap().push(format!("item {index} arrived when {expected} was expected"));
        }
        let result = if Some(index) == self.fail_at {
            while self.seen.hold_failure.load(Ordering::SeqCst) {
                self.runtime.sleep(Duration::from_millis(1)).await.map_err(|e| capnp::Error::failed(e.to_string()))?;
            }
            Err(capnp::Error::failed(format!("the sink refuses item {index}")))
        } else {
            if index % SLOW_EVERY == SLOW_EVERY - 1 {
                self.runtime.sleep(SLOW_FOR).await.map_err(|e| capnp::Error::failed(e.to_string()))?;
            }
            self.seen.bytes.fetch_add(chunk.len() as u64, Ordering::SeqCst);
            self.seen.received.fetch_add(1, Ordering::SeqCst);
            Ok(())
        };
        self.seen.active.fetch_sub(1, Ordering::SeqCst);
        result
    }

    async fn done(self: Rc<Self>, _: byte_sink::DoneParams, mut results: byte_sink::DoneResults) -> Result<(), capnp::Error> {
        results.get().set_total(self.seen.bytes.load(Ordering::SeqCst));
        Ok(())
    }
}

struct Pair {
    sender: Runtime,
    _receiver: Runtime,
    seen: Arc<Seen>,
    sink: byte_sink::Client,
    _connections: (capnp_lean::Connection, capnp_lean::Connection),
}

impl Pair {
    fn new(fail_at: Option<u64>) -> Self {
        let receiver = Runtime::new().unwrap();
        let sender = Runtime::new().unwrap();
        let seen = Arc::new(Seen::default());
        let bootstrap: byte_sink::Client = receiver.serve(Sink { runtime: receiver.handle(), seen: seen.clone(), fail_at }).unwrap();
        let (a, b) = UnixStream::pair().unwrap();
        let options = ConnectionOptions::default();
        let served = receiver.adopt(b.into(), Side::Server, Some(&bootstrap), &options).unwrap();
        let connection = sender.adopt::<byte_sink::Client>(a.into(), Side::Client, None, &options).unwrap();
        let sink = connection.bootstrap().unwrap();
        Pair { sender, _receiver: receiver, seen, sink, _connections: (connection, served) }
    }
}

fn write_request(sink: &byte_sink::Client, index: u64) -> capnp::capability::StreamingRequest<byte_sink::write_params::Owned> {
    let mut request = sink.write_request();
    request.get().set_chunk(&index.to_le_bytes());
    request
}

/// KJ's flow-control window for a socketpair: its send buffer size (bytes).
fn socketpair_window() -> u64 {
    std::fs::read_to_string("/proc/sys/net/core/wmem_default")
        .ok()
        .and_then(|text| text.trim().parse().ok())
        .unwrap_or(4 << 20)
}

/// The most calls that can be in flight under KJ's window (see the module comment).
fn in_flight_bound() -> u64 {
    socketpair_window() / MIN_CALL_BYTES + 2
}

fn in_flight(sent: u64, seen: &Seen) -> u64 {
    sent.saturating_sub(seen.received.load(Ordering::SeqCst))
}

#[test]
fn a_slow_receiver_holds_the_sender_to_the_window_and_gets_every_item_in_order() {
    let pair = Pair::new(None);
    let bound = in_flight_bound();
    let items = items();
    let started = Instant::now();
    let max_in_flight = block_on(async {
        let mut max_in_flight = 0;
        for index in 0..items {
            max_in_flight = max_in_flight.max(in_flight(index, &pair.seen));
            write_request(&pair.sink, index).send().await.unwrap();
        }
        max_in_flight.max(in_flight(items, &pair.seen))
    })
    .unwrap();
    let total = block_on(pair.sink.done_request().send().promise).unwrap().unwrap().get().unwrap().get_total();
    let elapsed = started.elapsed();
    eprintln!(
        "{items} items in {elapsed:?} ({:.0}/s); max in flight {max_in_flight}, bound {bound}, \
         max concurrent writes in the server {}",
        items as f64 / elapsed.as_secs_f64(),
        pair.seen.max_active.load(Ordering::SeqCst)
    );
    assert_eq!(pair.seen.errors.lock().unwrap().as_slice(), &[] as &[String]);
    assert_eq!(pair.seen.received.load(Ordering::SeqCst), items, "every item arrived exactly once");
    assert_eq!(total, items * 8, "done() runs after every write");
    assert!(max_in_flight <= bound, "{max_in_flight} calls were in flight; KJ's window allows {bound}");
    // The receiver was slow enough for the window to matter (otherwise the bound proves nothing).
    assert!(max_in_flight > 100, "only {max_in_flight} calls were ever in flight: the receiver never fell behind");
    assert_eq!(pair.seen.max_active.load(Ordering::SeqCst), 1, "KJ hands streaming calls to the server one at a time");
    let _ = &pair.sender;
}

#[test]
fn without_flow_control_the_same_sends_pile_up_far_past_the_window() {
    let pair = Pair::new(None);
    let bound = in_flight_bound();
    let items = 4 * bound;
    let type_id = <byte_sink::Client as capnp::traits::HasTypeId>::TYPE_ID;
    let mut pending = Vec::new();
    let mut max_in_flight = 0;
    for index in 0..items {
        // The same method as an ordinary call: send() does not wait for anything.
        let mut request = pair.sink.client.new_call::<byte_sink::write_params::Owned, capnp::any_pointer::Owned>(type_id, 0, None);
        request.get().set_chunk(&index.to_le_bytes());
        pending.push(request.send().promise);
        max_in_flight = max_in_flight.max(in_flight(index + 1, &pair.seen));
    }
    eprintln!("ordinary sends: max in flight {max_in_flight} of {items}; the streaming bound is {bound}");
    assert!(max_in_flight > bound, "ordinary sends stayed within {bound} ({max_in_flight}): the bound would not catch a missing window");
    block_on(futures::future::try_join_all(pending)).unwrap().unwrap();
    assert_eq!(pair.seen.received.load(Ordering::SeqCst), items);
}

#[test]
fn a_failed_item_fails_a_later_send_and_the_final_call() {
    let fail_at = 1_000;
    let pair = Pair::new(Some(fail_at));
    let bound = in_flight_bound();
    let outcome = block_on(async {
        for index in 0..fail_at + 10 * bound {
            if let Err(e) = write_request(&pair.sink, index).send().await {
                return Some((index, e));
            }
        }
        None
    })
    .unwrap();
    let (failed_at, error) = outcome.expect("no send_streaming failed after the receiver failed an item");
    assert!(failed_at > fail_at, "send {failed_at} failed before the receiver failed item {fail_at}");
    assert!(failed_at <= fail_at + bound + 1, "the failure surfaced only at send {failed_at}");
    assert!(error.extra.contains("the sink refuses item 1000"), "{error:?}");
    let done = block_on(pair.sink.done_request().send().promise).unwrap();
    let error = done.err().expect("done() succeeded after a failed stream");
    assert!(error.extra.contains("the sink refuses item 1000"), "{error:?}");
    // KJ dispatched nothing after the failed item.
    assert_eq!(pair.seen.received.load(Ordering::SeqCst), fail_at);
    assert_eq!(pair.seen.errors.lock().unwrap().as_slice(), &[] as &[String]);
}

#[test]
fn a_short_stream_whose_sends_all_succeeded_still_fails_its_final_call() {
    // Three items fit in the window at once, so every send() is admitted at once; item 1 fails
    // only once all three were sent (without the hold, its failure could come back before the
    // third send and fail that one instead); the stream's final regular call is where it surfaces.
    let pair = Pair::new(Some(1));
    pair.seen.hold_failure.store(true, Ordering::SeqCst);
    block_on(async {
        for index in 0..3 {
            write_request(&pair.sink, index).send().await.unwrap();
        }
    })
    .unwrap();
    pair.seen.hold_failure.store(false, Ordering::SeqCst);
    let error = block_on(pair.sink.done_request().send().promise).unwrap().err().expect("done() succeeded after a failed stream");
    assert!(error.extra.contains("the sink refuses item 1"), "{error:?}");
    assert_eq!(pair.seen.received.load(Ordering::SeqCst), 1);
}

#[test]
fn a_streaming_call_to_a_capability_in_the_same_runtime_waits_for_its_return() {
    let runtime = Runtime::new().unwrap();
    let seen = Arc::new(Seen::default());
    let sink: byte_sink::Client = runtime.serve(Sink { runtime: runtime.handle(), seen: seen.clone(), fail_at: Some(5) }).unwrap();
    block_on(async {
        for index in 0..5 {
            write_request(&sink, index).send().await.unwrap();
            assert_eq!(seen.received.load(Ordering::SeqCst), index + 1, "admitted before the item was processed");
        }
        let error = write_request(&sink, 5).send().await.expect_err("item 5 fails");
        assert!(error.extra.contains("the sink refuses item 5"), "{error:?}");
        let error = write_request(&sink, 6).send().await.expect_err("items after a failure fail");
        assert!(error.extra.contains("the sink refuses item 5"), "{error:?}");
        let error = sink.done_request().send().promise.await.err().expect("done() fails after a failed stream");
        assert!(error.extra.contains("the sink refuses item 5"), "{error:?}");
    })
    .unwrap();
}

#[test]
fn a_stream_forwarded_into_a_stream_sink_arrives_whole_and_a_failure_ends_it() {
    use futures::StreamExt;
    let items = 10_000u64;
    let pair = Pair::new(None);
    let sink = capnp_lean::StreamSink::new(|index: u64| write_request(&pair.sink, index));
    block_on(futures::stream::iter(0..items).map(Ok).forward(sink)).unwrap().unwrap();
    let total = block_on(pair.sink.done_request().send().promise).unwrap().unwrap().get().unwrap().get_total();
    assert_eq!(total, items * 8);
    assert_eq!(pair.seen.received.load(Ordering::SeqCst), items);
    assert_eq!(pair.seen.errors.lock().unwrap().as_slice(), &[] as &[String]);

    let pair = Pair::new(Some(100));
    let sink = capnp_lean::StreamSink::new(|index: u64| write_request(&pair.sink, index));
    let error = block_on(futures::stream::iter(0..10 * in_flight_bound()).map(Ok).forward(sink)).unwrap().expect_err("the sink reports the failed item");
    assert!(error.to_string().contains("the sink refuses item 100"), "{error}");
    assert_eq!(pair.seen.received.load(Ordering::SeqCst), 100);
}
