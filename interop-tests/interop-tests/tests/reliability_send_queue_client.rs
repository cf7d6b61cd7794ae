//! The send-queue bound in the client role (docs/reliability.md, "Peers that do not read"): a
//! bridge client process keeps sending calls to a server that accepts the connection and never
//! reads a byte. The client's read is already waiting on a peer that never speaks, so only the
//! write side can notice: once more than the bound is queued and nothing has been written for the
//! timeout, the connection must end with a reason that says so, every pending call must fail
//! `Disconnected` at once, later calls must fail at once too, and the queued bytes must be given
//! back. Without that the client queues everything it sends for as long as it runs.
//!
//! The transport follows `CAPNP_LEAN_TRANSPORT`; scripts/test.sh runs this file on both.

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use interop_tests::reliability::observers::PeakRss;
use interop_tests::reliability::rss_kib;

const RELIABILITY_PEER: &str = env!("CARGO_BIN_EXE_reliability-peer");
const LIMIT_BYTES: u64 = 1 << 20;
const STUCK_TIMEOUT: Duration = Duration::from_secs(2);
const PAYLOAD: usize = 64 * 1024;
const INTERVAL: Duration = Duration::from_millis(5);
/// Long enough to keep calling well past the end of the connection.
const FLOOD_FOR: Duration = Duration::from_secs(7);
/// Loopback socket buffers (several MiB) fill at this rate within about a second; the end must
/// come the timeout after that, plus slack for a loaded machine.
const END_WITHIN: Duration = Duration::from_secs(5);
/// A pending call must fail this soon after the connection ended (docs: "promptly").
const PROMPT: f64 = 1000.0;
/// Slack over what the client may queue (the bound, plus what it sends during the timeout once
/// nothing is written): copies in flight, allocator and runtime overhead.
const PEAK_SLACK_KIB: u64 = 16 * 1024;
/// Memory the client may keep once the connection has ended and it keeps calling: the bound
/// and allocator slack. Without an end it holds every call it made (≈ 80 MiB here, growing).
const KEPT_AFTER_END_KIB: u64 = 8 * 1024;

/// A child whose stdout lines arrive on a channel; killed when dropped.
struct LineChild {
    child: Child,
    lines: mpsc::Receiver<String>,
}

impl LineChild {
    fn spawn(program: &str, args: &[&str], env: &[(&str, String)]) -> LineChild {
        let mut command = Command::new(program);
        command.args(args).stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::inherit());
        for (name, value) in env {
            command.env(name, value);
        }
        let mut child = command.spawn().unwrap_or_else(|e| panic!("cannot start {program}: {e}"));
        let stdout = child.stdout.take().expect("stdout is piped");
        let (sender, lines) = mpsc::channel();
        thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if sender.send(line).is_err() {
                    break;
                }
            }
        });
        LineChild { child, lines }
    }

    fn next_line(&self, within: Duration) -> String {
        self.lines.recv_timeout(within).unwrap_or_else(|e| panic!("no line from the client within {within:?}: {e}"))
    }
}

impl Drop for LineChild {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A server that accepts connections and never reads from them; they stay open until dropped.
fn deaf_server() -> (String, mpsc::Receiver<TcpStream>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap().to_string();
    let (sender, accepted) = mpsc::channel();
    thread::spawn(move || {
        for stream in listener.incoming().map_while(Result::ok) {
            if sender.send(stream).is_err() {
                break;
            }
        }
    });
    (address, accepted)
}

/// The summary's `key=value` fields; `reason` is the rest of the line.
fn fields(summary: &str) -> HashMap<String, String> {
    let (head, reason) = summary.split_once(" reason=").unwrap_or_else(|| panic!("no reason in {summary:?}"));
    let mut fields: HashMap<String, String> =
        head.split_whitespace().filter_map(|f| f.split_once('=')).map(|(k, v)| (k.to_string(), v.to_string())).collect();
    fields.insert("reason".into(), reason.to_string());
    fields
}

fn number(fields: &HashMap<String, String>, key: &str) -> f64 {
    fields.get(key).and_then(|v| v.parse().ok()).unwrap_or_else(|| panic!("no number {key} in {fields:?}"))
}

#[test]
fn a_client_whose_server_never_reads_ends_the_connection_after_the_timeout_and_fails_its_calls() {
    let (address, accepted) = deaf_server();
    let env = [
        ("CAPNP_LEAN_SEND_QUEUE_LIMIT_BYTES", LIMIT_BYTES.to_string()),
        ("CAPNP_LEAN_SEND_QUEUE_TIMEOUT_MS", STUCK_TIMEOUT.as_millis().to_string()),
    ];
    let (payload, interval, flood_for) =
        (PAYLOAD.to_string(), INTERVAL.as_millis().to_string(), FLOOD_FOR.as_millis().to_string());
    let args = ["flood-client", "--connect", &address, "--payload", &payload, "--interval-ms", &interval, "--for-ms", &flood_for];
    let client = LineChild::spawn(RELIABILITY_PEER, &args, &env);
    assert_eq!(client.next_line(Duration::from_secs(20)), "ready");
    let _connection = accepted.recv_timeout(Duration::from_secs(5)).expect("the client connected");
    let pid = client.child.id();
    let baseline = rss_kib(pid).expect("the client is running");
    let peak = PeakRss::start(pid, baseline);

    // Late in the flood, long after the end is due, while the client still calls.
    thread::sleep(FLOOD_FOR - Duration::from_millis(500));
    let late = rss_kib(pid).expect("the client is still running");
    let summary = client.next_line(FLOOD_FOR + Duration::from_secs(20));
    let peak = peak.finish();
    println!(
        "client RSS: baseline {baseline} KiB, peak {peak} KiB, {late} KiB at {:.1} s; {summary}",
        (FLOOD_FOR - Duration::from_millis(500)).as_secs_f64()
    );

    let fields = fields(&summary);
    let ended_ms = fields["ended_ms"].parse::<f64>().unwrap_or_else(|_| {
        panic!("the connection to a server that reads nothing never ended: {summary}");
    });
    assert!(ended_ms >= STUCK_TIMEOUT.as_secs_f64() * 1000.0, "ended after {ended_ms} ms, before the timeout: {summary}");
    assert!(ended_ms <= END_WITHIN.as_secs_f64() * 1000.0, "ended only after {ended_ms} ms: {summary}");
    let reason = &fields["reason"];
    assert!(reason.contains("did not read what it was sent"), "unclear reason: {reason}");
    assert_eq!(reason.split(':').next(), Some("Disconnected"), "the end is not a disconnection: {reason}");

    assert!(number(&fields, "pending_at_end") > 0.0, "no call was pending when the connection ended: {summary}");
    assert_eq!(number(&fields, "unfinished"), 0.0, "calls still pending after the end: {summary}");
    assert_eq!(number(&fields, "other_outcomes"), 0.0, "calls ended otherwise than Disconnected: {summary}");
    let slowest = number(&fields, "slowest_failure_after_end_ms");
    assert!(slowest <= PROMPT, "a pending call failed {slowest} ms after the end: {summary}");
    assert!(number(&fields, "calls_after_end") > 0.0, "the client stopped calling before the end: {summary}");
    let slowest_after = number(&fields, "slowest_call_after_end_ms");
    assert!(slowest_after <= PROMPT, "a call made after the end took {slowest_after} ms to fail: {summary}");

    // The client role cannot refuse the host's calls, so the queue is bounded by time: the bound
    // plus what the host sends during the timeout.
    let sent_during_timeout_kib = (PAYLOAD as u64 / 1024) * (STUCK_TIMEOUT.as_millis() / INTERVAL.as_millis()) as u64;
    let peak_limit = baseline + LIMIT_BYTES / 1024 + sent_during_timeout_kib + PEAK_SLACK_KIB;
    assert!(peak <= peak_limit, "the client's RSS peaked at {peak} KiB (baseline {baseline} KiB, allowed {peak_limit} KiB)");
    assert!(late <= baseline + KEPT_AFTER_END_KIB, "the client still holds {late} KiB (baseline {baseline} KiB) after the end");
}
