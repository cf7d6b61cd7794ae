//! The `Interop` client scenario: every method, with every result checked.

use std::future::Future;
use std::sync::atomic::{AtomicI64, AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use capnp::capability::Rc as CapRc;
use capnp::Error;
use capnp_schemas::interop_capnp::{counter, interop, ErrorKind};

use crate::host::CapHost;

/// Each step gets this long; a hung peer fails the scenario instead of hanging it.
pub const STEP_TIMEOUT: Duration = Duration::from_secs(10);

/// A client-hosted `Counter` whose total the scenario can inspect afterwards.
#[derive(Clone, Default)]
pub struct LocalCounter {
    total: Arc<AtomicI64>,
    calls: Arc<AtomicU32>,
}

impl LocalCounter {
    /// The running total.
    pub fn total(&self) -> i64 {
        self.total.load(Ordering::SeqCst)
    }

    /// How many `increment` calls reached this object.
    pub fn calls(&self) -> u32 {
        self.calls.load(Ordering::SeqCst)
    }

    /// A capability for this counter hosted by `host` (all clones share the total).
    pub fn client(&self, host: &impl CapHost) -> Result<counter::Client, String> {
        host.serve(self.clone()).map_err(|e| format!("hosting a local counter: {e}"))
    }
}

impl counter::Server for LocalCounter {
    async fn increment(
        self: CapRc<Self>,
        params: counter::IncrementParams,
        mut results: counter::IncrementResults,
    ) -> Result<(), Error> {
        let by = params.get()?.get_by();
        let total = self.total.fetch_add(by, Ordering::SeqCst) + by;
        self.calls.fetch_add(1, Ordering::SeqCst);
        results.get().set_value(total);
        Ok(())
    }
}

fn check(condition: bool, what: impl FnOnce() -> String) -> Result<(), String> {
    if condition {
        Ok(())
    } else {
        Err(what())
    }
}

/// Awaits `work` for at most [`STEP_TIMEOUT`], naming the step in any failure.
pub async fn step<T>(name: &str, work: impl Future<Output = Result<T, Error>>) -> Result<T, String> {
    match tokio::time::timeout(STEP_TIMEOUT, work).await {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(e)) => Err(format!("{name}: {e}")),
        Err(_) => Err(format!("{name}: no answer within {STEP_TIMEOUT:?}")),
    }
}

/// The scenario's steps by name, in the order [`run_interop_scenario`] runs them.
pub const INTEROP_STEPS: [&str; 8] =
    ["echo", "fail", "counter", "counter-later", "reflect", "call-back", "hang", "not-implemented"];

/// Checks that every name in `skip` is a step.
pub fn check_step_names(skip: &[String]) -> Result<(), String> {
    match skip.iter().find(|s| !INTEROP_STEPS.contains(&s.as_str())) {
        Some(unknown) => Err(format!("unknown step {unknown:?}; steps are {INTEROP_STEPS:?}")),
        None => Ok(()),
    }
}

/// Runs every step not named in `skip`, in order. Returns the first wrong result.
pub async fn run_interop_steps(host: &impl CapHost, interop: &interop::Client, skip: &[String]) -> Result<(), String> {
    check_step_names(skip)?;
    for name in INTEROP_STEPS.iter().filter(|name| !skip.iter().any(|s| s == *name)) {
        run_interop_step(host, interop, name).await?;
    }
    Ok(())
}

/// Runs every step of the scenario. Returns the first wrong result.
pub async fn run_interop_scenario(host: &impl CapHost, interop: &interop::Client) -> Result<(), String> {
    run_interop_steps(host, interop, &[]).await
}

/// Runs one step of the scenario by its name in [`INTEROP_STEPS`].
pub async fn run_interop_step(host: &impl CapHost, interop: &interop::Client, name: &str) -> Result<(), String> {
    match name {
        "echo" => echo_round_trips(interop).await,
        "fail" => fail_carries_kind_and_message(interop).await,
        "counter" => counter_counts_and_is_released(interop).await,
        "counter-later" => counter_later_resolves(interop).await,
        "reflect" => reflect_returns_calls_to_caller(host, interop).await,
        "call-back" => call_back_calls_caller(host, interop).await,
        "hang" => hang_is_cancelled(interop).await,
        "not-implemented" => not_implemented_answers_unimplemented(interop).await,
        _ => Err(format!("unknown step {name:?}; steps are {INTEROP_STEPS:?}")),
    }
}

/// Sends `payload` to `echo` and returns what came back.
pub async fn echo(interop: &interop::Client, payload: &[u8]) -> Result<Vec<u8>, Error> {
    let mut request = interop.echo_request();
    request.get().set_payload(payload);
    let response = request.send().promise.await?;
    Ok(response.get()?.get_payload()?.to_vec())
}

async fn increment(counter: &counter::Client, by: i64) -> Result<i64, Error> {
    let mut request = counter.increment_request();
    request.get().set_by(by);
    Ok(request.send().promise.await?.get()?.get_value())
}

async fn released_counters(interop: &interop::Client) -> Result<u32, Error> {
    Ok(interop.released_counters_request().send().promise.await?.get()?.get_count())
}

/// Echo returns empty, small and 100 kB payloads unchanged.
pub async fn echo_round_trips(interop: &interop::Client) -> Result<(), String> {
    for size in [0usize, 5, 100_000] {
        let payload: Vec<u8> = (0..size).map(|i| (i % 251) as u8).collect();
        let back = step("echo", echo(interop, &payload)).await?;
        check(back == payload, || format!("echo of {size} bytes came back as {} different bytes", back.len()))?;
    }
    Ok(())
}

/// Echo payload sizes on both sides of the coalescing transport's large-message threshold
/// (16 KiB: small ones are copied into batches, large ones go on the wire in place), and one
/// larger than its 64 KiB read buffer.
pub const MIXED_ECHO_SIZES: [usize; 4] = [16, 20 * 1024, 64 * 1024, 1024 * 1024];

/// Indexes into [`MIXED_ECHO_SIZES`], in call order: a de Bruijn sequence, so every size is
/// followed by every size (itself included), twice over.
const MIXED_ECHO_ORDER: [usize; 32] =
    [0, 0, 1, 0, 2, 0, 3, 1, 1, 2, 1, 3, 2, 2, 3, 3, 0, 0, 1, 0, 2, 0, 3, 1, 1, 2, 1, 3, 2, 2, 3, 3];

/// The payload sizes [`mixed_size_echoes`] sends, in call order.
pub fn mixed_echo_sizes() -> impl Iterator<Item = usize> {
    MIXED_ECHO_ORDER.iter().map(|&i| MIXED_ECHO_SIZES[i])
}

/// A payload no other call of [`mixed_size_echoes`] sends: it starts with the call's number.
fn mixed_echo_payload(call: usize, size: usize) -> Vec<u8> {
    let mut payload: Vec<u8> = (0..size).map(|j| ((j * 7 + call * 13) % 251) as u8).collect();
    payload[..4].copy_from_slice(&(call as u32).to_le_bytes());
    payload
}

/// Sends every echo of [`mixed_echo_sizes`] before awaiting any (all pipelined), then checks
/// each reply byte for byte against its own call's payload.
pub async fn mixed_size_echoes(interop: &interop::Client) -> Result<(), String> {
    let payloads: Vec<Vec<u8>> = mixed_echo_sizes().enumerate().map(|(call, size)| mixed_echo_payload(call, size)).collect();
    let replies: Vec<_> = payloads
        .iter()
        .map(|payload| {
            let mut request = interop.echo_request();
            request.get().set_payload(payload);
            request.send().promise
        })
        .collect();
    for (call, (reply, payload)) in replies.into_iter().zip(&payloads).enumerate() {
        let reply = step(&format!("echo {call} of {} bytes", payload.len()), reply).await?;
        let back = reply.get().and_then(|r| r.get_payload()).map_err(|e| format!("echo {call}: {e}"))?;
        check(back == &payload[..], || format!("echo {call} of {} bytes came back as {} other bytes", payload.len(), back.len()))?;
    }
    Ok(())
}

/// `fail` answers each error kind with the given message.
pub async fn fail_carries_kind_and_message(interop: &interop::Client) -> Result<(), String> {
    let cases = [
        (ErrorKind::Failed, capnp::ErrorKind::Failed),
        (ErrorKind::Overloaded, capnp::ErrorKind::Overloaded),
        (ErrorKind::Disconnected, capnp::ErrorKind::Disconnected),
        (ErrorKind::Unimplemented, capnp::ErrorKind::Unimplemented),
    ];
    for (kind, expected) in cases {
        let message = format!("deliberate {kind:?}");
        let mut request = interop.fail_request();
        request.get().set_kind(kind);
        request.get().set_message(&message[..]);
        match tokio::time::timeout(STEP_TIMEOUT, request.send().promise).await {
            Err(_) => return Err(format!("fail({kind:?}): no answer within {STEP_TIMEOUT:?}")),
            Ok(Ok(_)) => return Err(format!("fail({kind:?}) succeeded")),
            Ok(Err(e)) => check(e.kind == expected && e.extra.contains(&message), || {
                format!("fail({kind:?}, {message:?}) gave {:?} {:?}", e.kind, e.extra)
            })?,
        }
    }
    Ok(())
}

/// A server-hosted counter counts, and dropping it is seen by the server (Release).
pub async fn counter_counts_and_is_released(interop: &interop::Client) -> Result<(), String> {
    let before = step("releasedCounters", released_counters(interop)).await?;
    let counter = interop.new_counter_request().send().pipeline.get_counter();
    let first = step("increment", increment(&counter, 5)).await?;
    let second = step("increment", increment(&counter, 2)).await?;
    check((first, second) == (5, 7), || format!("counter went 5, 2 -> {first}, {second}"))?;
    drop(counter);
    // Release travels asynchronously; the server sees it some time after the drop.
    let waited = tokio::time::timeout(STEP_TIMEOUT, async {
        loop {
            match released_counters(interop).await {
                Ok(now) if now > before => return Ok(now),
                Ok(_) => tokio::time::sleep(Duration::from_millis(10)).await,
                Err(e) => return Err(e),
            }
        }
    });
    match waited.await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(e)) => Err(format!("releasedCounters: {e}")),
        Err(_) => Err(format!("a dropped counter was not released within {STEP_TIMEOUT:?}")),
    }
}

/// Waits until `client` has resolved to its final destination.
///
/// Not plain `when_resolved()`: in capnp-rpc 0.27.3 that never completes when called on an
/// imported promise that has *already* resolved (its waiter queue is drained only once, at
/// resolution). Following the resolved chain first sidesteps that.
pub async fn settled(client: &capnp::capability::Client) -> Result<(), Error> {
    let mut hook = client.hook.add_ref();
    while let Some(next) = hook.get_resolved() {
        hook = next;
    }
    hook.when_resolved().await
}

/// Sends `increment(by)` now; the returned future only waits for the answer.
fn send_increment(counter: &counter::Client, by: i64) -> impl Future<Output = Result<i64, Error>> {
    let mut request = counter.increment_request();
    request.get().set_by(by);
    let answer = request.send().promise;
    async move { Ok(answer.await?.get()?.get_value()) }
}

/// `counterLater`: calls before and after the promise resolves both reach the new counter (Resolve).
pub async fn counter_later_resolves(interop: &interop::Client) -> Result<(), String> {
    let mut request = interop.counter_later_request();
    request.get().set_delay_ms(100);
    let sent = request.send();
    // Pipelined before the promise resolves: the server must queue it until it does.
    let early = send_increment(&sent.pipeline.get_counter(), 1);
    // Holding the returned promise capability until it resolves is what makes the server send
    // Resolve; a client that only pipelines releases it at once and the Resolve is never sent.
    let response = step("counterLater", sent.promise).await?;
    let held = response.get().and_then(|r| r.get_counter()).map_err(|e| format!("counterLater results: {e}"))?;
    let first = step("increment on a promised counter", early).await?;
    step("counterLater resolution", settled(&held.client)).await?;
    let second = step("increment on the resolved counter", send_increment(&held, 1)).await?;
    check((first, second) == (1, 2), || format!("counterLater counter went {first}, {second}, not 1, 2"))
}

/// `reflect`: calls pipelined, on the promise and after resolution all reach our own counter in order
/// (Resolve to a receiver-hosted cap, Disembargo).
pub async fn reflect_returns_calls_to_caller(host: &impl CapHost, interop: &interop::Client) -> Result<(), String> {
    let local = LocalCounter::default();
    let mut request = interop.reflect_request();
    request.get().set_counter(local.client(host)?);
    request.get().set_delay_ms(100);
    let sent = request.send();
    // Three calls: pipelined, on the unresolved promise, and after resolution. The server forwards
    // the first two back to us; all must arrive at our own object in the order sent.
    let pipelined = send_increment(&sent.pipeline.get_counter(), 3);
    let response = step("reflect", sent.promise).await?;
    let held = response.get().and_then(|r| r.get_counter()).map_err(|e| format!("reflect results: {e}"))?;
    let on_promise = send_increment(&held, 4);
    step("reflect resolution", settled(&held.client)).await?;
    let resolved = send_increment(&held, 5);
    let totals = (
        step("increment pipelined on reflect", pipelined).await?,
        step("increment on the reflected promise", on_promise).await?,
        step("increment on the reflected counter", resolved).await?,
    );
    check(totals == (3, 7, 12), || format!("reflected counter went {totals:?}, not (3, 7, 12)"))?;
    check(local.calls() == 3 && local.total() == 12, || {
        format!("our counter saw {} calls totalling {}, not 3 totalling 12", local.calls(), local.total())
    })
}

/// `callBack`: the server calls our counter `times` times.
pub async fn call_back_calls_caller(host: &impl CapHost, interop: &interop::Client) -> Result<(), String> {
    let local = LocalCounter::default();
    let mut request = interop.call_back_request();
    request.get().set_counter(local.client(host)?);
    request.get().set_times(3);
    let total = step("callBack", async { Ok(request.send().promise.await?.get()?.get_total()) }).await?;
    check(total == 3 && local.calls() == 3, || {
        format!("callBack returned {total} after {} calls on our counter, not 3 after 3", local.calls())
    })
}

/// `hang` never completes; dropping it (Finish) leaves the connection usable.
pub async fn hang_is_cancelled(interop: &interop::Client) -> Result<(), String> {
    let hanging = interop.hang_request().send().promise;
    let outcome = tokio::time::timeout(Duration::from_millis(200), hanging).await;
    check(outcome.is_err(), || "hang completed by itself".to_string())?;
    // The timeout dropped the call (Finish); the connection must still serve calls.
    let back = step("echo after cancelling hang", echo(interop, b"still here")).await?;
    check(back == b"still here", || "echo after cancelling hang came back wrong".to_string())
}

/// `notImplemented` answers `unimplemented`.
pub async fn not_implemented_answers_unimplemented(interop: &interop::Client) -> Result<(), String> {
    let answer = tokio::time::timeout(STEP_TIMEOUT, interop.not_implemented_request().send().promise).await;
    match answer {
        Err(_) => Err(format!("notImplemented: no answer within {STEP_TIMEOUT:?}")),
        Ok(Ok(_)) => Err("notImplemented succeeded".to_string()),
        Ok(Err(e)) => check(e.kind == capnp::ErrorKind::Unimplemented, || {
            format!("notImplemented failed with {:?} {:?}, not unimplemented", e.kind, e.extra)
        }),
    }
}
