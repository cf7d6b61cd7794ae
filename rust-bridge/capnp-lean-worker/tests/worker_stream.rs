//! A million rows streamed from a worker child to a slow consumer: every row arrives, in order,
//! and neither side buffers them. 1M rows of 256 B are 256 MB; the stated bounds (child and
//! parent each within `BOUND` of their RSS before the command) hold only if the child is held
//! back by KJ's flow control and the parent's bounded event channel. The child's run time is
//! also checked against the consumer's pauses: a child that raced ahead and buffered would
//! finish long before the consumer did.

mod worker_support;

use std::time::{Duration, Instant};

use capnp_lean::block_on;
use capnp_lean_worker::{rss, Event, Worker};
use futures::StreamExt;

const ROWS: u64 = 1_000_000;
const ROW_BYTES: usize = 256;
/// Growth allowed on each side: a quarter of the data.
const BOUND: u64 = 64 << 20;
/// The consumer pauses this long after every `PAUSE_EVERY` batches.
const PAUSE: Duration = Duration::from_millis(20);
const PAUSE_EVERY: usize = 50;

#[test]
fn a_million_rows_reach_a_slow_consumer_in_order_with_both_sides_memory_bounded() {
    let worker = block_on(Worker::spawn(fixture_config!())).unwrap().unwrap();
    let child = worker.pid().unwrap();
    let (parent_before, child_before) = (rss::own().rss, rss::of(child).rss);
    let (mut parent_peak, mut child_peak) = (parent_before, child_before);
    let started = Instant::now();
    let mut paused = Duration::ZERO;
    let mut next = 0u64;
    let input = format!("{ROWS},{ROW_BYTES}");
    let summary = block_on(async {
        let mut run = worker.start("wide_rows", input.as_bytes()).await.unwrap();
        let mut batches = 0usize;
        while let Some(event) = run.next().await {
            let Event::Rows(rows) = event else { continue };
            for row in rows {
                assert_eq!(row.len(), ROW_BYTES);
                assert_eq!(worker_support::row_index(&row[..8]), next, "rows in order, none lost or repeated");
                next += 1;
            }
            batches += 1;
            if batches.is_multiple_of(PAUSE_EVERY) {
                parent_peak = parent_peak.max(rss::own().rss);
                child_peak = child_peak.max(rss::of(child).rss);
                std::thread::sleep(PAUSE);
                paused += PAUSE;
            }
        }
        run.summary().await.unwrap()
    })
    .unwrap();
    let took = started.elapsed();
    let child_ran = Duration::from_micros(summary.elapsed_micros);
    eprintln!(
        "{ROWS} rows of {ROW_BYTES} B in {took:?} ({:.0} rows/s); consumer paused {paused:?}; child ran {child_ran:?}; \
         parent RSS {} → peak {} MiB, child RSS {} → peak {} MiB",
        ROWS as f64 / took.as_secs_f64(),
        parent_before >> 20,
        parent_peak >> 20,
        child_before >> 20,
        child_peak >> 20
    );
    assert_eq!((next, summary.rows), (ROWS, ROWS));
    assert!(parent_peak - parent_before < BOUND, "parent grew {} MiB", (parent_peak - parent_before) >> 20);
    assert!(child_peak - child_before < BOUND, "child grew {} MiB", (child_peak - child_before) >> 20);
    assert!(child_ran + Duration::from_millis(500) >= paused, "the child finished {child_ran:?} while the consumer paused {paused:?}: it was not held back");
}
