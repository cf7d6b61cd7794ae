//! A client that keeps a server busy with every kind of operation at once — hanging calls, a
//! long run of calls back into the client, a promise capability with calls queued on it,
//! pipelined calls on fresh capabilities, a stream of echoes — and never finishes by itself: it
//! is there to be killed at a random point (the peer-death tests).

use std::io::Write;

use capnp_schemas::interop_capnp::interop;
use futures::future::LocalBoxFuture;
use futures::FutureExt;

use capnp_lean_peers::host::CapHost;
use crate::reliability::Rng;
use capnp_lean_peers::scenarios::interop::{echo, LocalCounter};

/// The line the client prints once every kind of operation is under way.
pub const BUSY_LINE: &str = "busy";

/// How many calls back into the client `callBack` is asked for (more than can finish before
/// the kill).
pub const CALL_BACKS: u32 = 1_000_000;

/// Starts the operations (at least one `hang` and the `callBack` are running at the server when
/// the line is printed) (their mix and timing drawn from `seed`), prints [`BUSY_LINE`] and keeps
/// them going. Returns only if they all end, which a live server never lets happen.
pub async fn keep_busy(host: &impl CapHost, interop: &interop::Client, seed: u64) -> Result<(), String> {
    let mut rng = Rng::new(seed);
    echo(interop, b"up").await.map_err(|e| format!("first echo: {e}"))?;
    let mut work: Vec<LocalBoxFuture<'static, ()>> = Vec::new();
    for _ in 0..rng.between(1, 3) {
        let hanging = interop.hang_request().send().promise;
        work.push(hanging.map(drop).boxed_local());
    }
    let counter = LocalCounter::default().client(host)?;
    let mut call_back = interop.call_back_request();
    call_back.get().set_counter(counter);
    call_back.get().set_times(CALL_BACKS);
    work.push(call_back.send().promise.map(drop).boxed_local());
    // Calls queued on a promise capability until the server resolves it.
    let mut later = interop.counter_later_request();
    later.get().set_delay_ms(rng.between(0, 150) as u32);
    let promised = later.send().pipeline.get_counter();
    work.push(
        async move {
            loop {
                let mut request = promised.increment_request();
                request.get().set_by(1);
                if request.send().promise.await.is_err() {
                    return;
                }
            }
        }
        .boxed_local(),
    );
    // Pipelined calls on fresh capabilities, released after each round.
    let pipelining = interop.clone();
    work.push(
        async move {
            loop {
                let fresh = pipelining.new_counter_request().send().pipeline.get_counter();
                let mut request = fresh.increment_request();
                request.get().set_by(2);
                if request.send().promise.await.is_err() {
                    return;
                }
            }
        }
        .boxed_local(),
    );
    let echoing = interop.clone();
    work.push(
        async move {
            for n in 0u64.. {
                if echo(&echoing, &n.to_le_bytes()).await.is_err() {
                    return;
                }
            }
        }
        .boxed_local(),
    );
    // Messages on one connection are delivered in order: once this echo is back, the server has
    // started the hanging calls and the calls back.
    echo(interop, b"all sent").await.map_err(|e| format!("echo after the work was sent: {e}"))?;
    let mut stdout = std::io::stdout();
    writeln!(stdout, "{BUSY_LINE}").and_then(|()| stdout.flush()).map_err(|e| e.to_string())?;
    futures::future::join_all(work).await;
    Err("every operation ended, though a live server keeps some pending forever".into())
}
