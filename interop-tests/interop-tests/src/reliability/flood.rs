//! A bridge client that keeps sending calls to a server that reads nothing (the client role of
//! the send-queue bound, docs/reliability.md "Peers that do not read"), run as its own process
//! (`reliability-peer flood-client`) so a test can watch its memory. It records when and why the
//! connection ended and how every call ended, and prints a one-line summary.

use std::cell::RefCell;
use std::rc::Rc;
use std::time::{Duration, Instant};

use capnp_lean::Runtime;
use capnp_lean_peers::bridge_peer::connect;
use capnp_schemas::interop_capnp::interop;

/// How long the client floods and with what.
#[derive(Debug, Clone, Copy)]
pub struct FloodPlan {
    /// Bytes of each echo call's payload.
    pub payload: usize,
    /// Pause between two calls.
    pub interval: Duration,
    /// How long calls keep being started.
    pub duration: Duration,
}

/// What happened, in milliseconds from the first call.
#[derive(Debug, Default)]
struct Ledger {
    /// When the disconnect notification fired, and its reason.
    ended: Option<(f64, String)>,
    /// Per call: when it was started and when it ended (`None`: still pending), and whether it
    /// failed `Disconnected`.
    calls: Vec<(f64, Option<f64>, bool)>,
}

/// Floods the bridge connection to `address` per `plan`; prints `ready` once connected (so the
/// caller can read a baseline) and returns the summary line: `calls=N ended_ms=T
/// pending_at_end=P failed_disconnected=D other_outcomes=O unfinished=U
/// slowest_failure_after_end_ms=S calls_after_end=A slowest_call_after_end_ms=L reason=…` (the
/// reason last: it has spaces; `ended_ms=none` when the connection never ended).
pub async fn flood(address: &str, plan: FloodPlan) -> Result<String, String> {
    let runtime = Runtime::new().map_err(|e| e.to_string())?;
    let connection = connect(&runtime, address).await?;
    let interop: interop::Client = connection.bootstrap().map_err(|e| e.to_string())?;
    let ledger = Rc::new(RefCell::new(Ledger::default()));
    let started = Instant::now();
    let millis = move |at: Instant| at.duration_since(started).as_secs_f64() * 1000.0;
    {
        let ledger = ledger.clone();
        let ended = connection.disconnected();
        tokio::task::spawn_local(async move {
            if let Ok(reason) = ended.await {
                ledger.borrow_mut().ended = Some((millis(Instant::now()), reason.to_string()));
            }
        });
    }
    println!("ready");
    let payload = vec![0xa5u8; plan.payload];
    while started.elapsed() < plan.duration {
        let mut request = interop.echo_request();
        request.get().set_payload(&payload);
        let index = {
            let mut ledger = ledger.borrow_mut();
            ledger.calls.push((millis(Instant::now()), None, false));
            ledger.calls.len() - 1
        };
        let ledger = ledger.clone();
        tokio::task::spawn_local(async move {
            let outcome = request.send().promise.await;
            let disconnected = matches!(&outcome, Err(e) if e.kind == capnp::ErrorKind::Disconnected);
            let call = &mut ledger.borrow_mut().calls[index];
            call.1 = Some(millis(Instant::now()));
            call.2 = disconnected;
        });
        tokio::time::sleep(plan.interval).await;
    }
    // Calls still pending get a second to end (the test expects them to have failed already).
    tokio::time::sleep(Duration::from_secs(1)).await;
    let summary = summarize(&ledger.borrow());
    drop(connection);
    Ok(summary)
}

fn summarize(ledger: &Ledger) -> String {
    let calls = &ledger.calls;
    let failed_disconnected = calls.iter().filter(|c| c.1.is_some() && c.2).count();
    let other_outcomes = calls.iter().filter(|c| c.1.is_some() && !c.2).count();
    let unfinished = calls.iter().filter(|c| c.1.is_none()).count();
    let Some((ended_ms, reason)) = &ledger.ended else {
        return format!(
            "calls={} ended_ms=none failed_disconnected={failed_disconnected} other_outcomes={other_outcomes} unfinished={unfinished} reason=none",
            calls.len()
        );
    };
    let before_end = calls.iter().filter(|c| c.0 < *ended_ms);
    let pending_at_end = before_end.clone().filter(|c| c.1.is_none_or(|done| done >= *ended_ms)).count();
    let slowest_failure_after_end =
        before_end.filter_map(|c| c.1).map(|done| done - ended_ms).fold(0.0f64, f64::max);
    let after_end: Vec<_> = calls.iter().filter(|c| c.0 >= *ended_ms).collect();
    let slowest_after_end = after_end.iter().map(|c| c.1.map_or(f64::INFINITY, |done| done - c.0)).fold(0.0f64, f64::max);
    format!(
        "calls={} ended_ms={ended_ms:.0} pending_at_end={pending_at_end} failed_disconnected={failed_disconnected} \
         other_outcomes={other_outcomes} unfinished={unfinished} slowest_failure_after_end_ms={slowest_failure_after_end:.1} \
         calls_after_end={} slowest_call_after_end_ms={slowest_after_end:.1} reason={reason}",
        calls.len(),
        after_end.len(),
    )
}
