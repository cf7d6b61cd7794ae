//! The independent peers and evidence tools, proven against each other: `rust-peer` clients and
//! servers in separate processes talking through the wiretap over TCP and unix sockets, the
//! wiretap's decoding checked message by message, and both bench clients' output.

use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::Duration;

use capnp::traits::HasTypeId;
use capnp_schemas::interop_capnp::{interop, ErrorKind};
use capnp_lean_peers::process::{built_binary, run_to_completion, unique_socket_path, PeerProcess};
use capnp_lean_peers::host::RpcHost;
use capnp_lean_peers::scenarios::interop::{echo, reflect_returns_calls_to_caller};
use capnp_lean_peers::rust_peer::{connect, run_local, Address};
use capnp_lean_wiretap::{SEVEN_KINDS, CallTarget, Direction, MessageKind, Resolution, ReturnOutcome, RpcMessage, SendResultsTo, WireTap};

const RUST_PEER: &str = env!("CARGO_BIN_EXE_rust-peer");
const START_TIMEOUT: Duration = Duration::from_secs(20);
const RUN_TIMEOUT: Duration = Duration::from_secs(120);
const WIRE_TIMEOUT: Duration = Duration::from_secs(5);

fn serve(command: &str, listen: &str) -> PeerProcess {
    PeerProcess::spawn_listening(RUST_PEER, &[command, "--listen", listen], START_TIMEOUT).unwrap()
}

fn run_client(command: &str, address: &str) {
    let finished = run_to_completion(RUST_PEER, &[command, "--connect", address], RUN_TIMEOUT).unwrap();
    assert!(finished.status.success(), "{command} failed: {}{}", finished.stdout, finished.stderr);
}

/// Runs a client through `tap`; a failure shows what was on the wire.
fn run_client_through(tap: &WireTap, command: &str) {
    let finished = run_to_completion(RUST_PEER, &[command, "--connect", &tap.address()], RUN_TIMEOUT).unwrap();
    assert!(finished.status.success(), "{command} failed: {}{}\nwire:\n{}", finished.stdout, finished.stderr, tap.transcript());
}

/// Waits for each kind in turn: the tap records asynchronously to the client finishing.
fn assert_kinds_seen(tap: &WireTap, kinds: &[MessageKind]) {
    tap.assert_kinds_seen(kinds, WIRE_TIMEOUT);
}

/// Every kind but Disembargo (which only some scenarios produce).
const CORE_KINDS: &[MessageKind] = SEVEN_KINDS.split_last().unwrap().1;

fn report_kinds(label: &str, tap: &WireTap) -> BTreeSet<MessageKind> {
    let kinds = tap.kinds_seen();
    eprintln!("{label}: kinds seen {kinds:?}; {} messages", tap.events().len());
    kinds
}

#[test]
fn interop_scenario_passes_through_the_wiretap_over_tcp() {
    let server = serve("serve-interop", "127.0.0.1:0");
    let tap = WireTap::start("127.0.0.1:0", server.address()).unwrap();
    run_client_through(&tap, "client-interop");
    assert_kinds_seen(&tap, CORE_KINDS);
    let kinds = report_kinds("interop over tcp", &tap);
    assert!(!kinds.contains(&MessageKind::Undecodable), "{}", tap.transcript());
    // capnp-rpc's disconnector ends the connection with Abort; any other Abort is a failure.
    let unexpected_abort = tap.events().into_iter().any(|e| {
        matches!(&e.message, RpcMessage::Abort { reason } if !reason.contains("client requested disconnect"))
    });
    assert!(!unexpected_abort, "{}", tap.transcript());
}

#[test]
fn interop_scenario_passes_through_the_wiretap_over_unix_sockets() {
    let server_path = unique_socket_path("interop-server");
    let tap_path = unique_socket_path("interop-tap");
    let server = serve("serve-interop", &format!("unix:{}", server_path.display()));
    assert_eq!(server.address(), format!("unix:{}", server_path.display()));
    let tap = WireTap::start(&format!("unix:{}", tap_path.display()), server.address()).unwrap();
    run_client_through(&tap, "client-interop");
    assert_kinds_seen(&tap, CORE_KINDS);
    report_kinds("interop over unix", &tap);
}

#[test]
fn skipped_interop_steps_never_reach_the_wire() {
    let server = serve("serve-interop", "127.0.0.1:0");
    let tap = WireTap::start("127.0.0.1:0", server.address()).unwrap();
    let args = ["client-interop", "--connect", &tap.address(), "--skip", "reflect,hang"];
    let finished = run_to_completion(RUST_PEER, &args, RUN_TIMEOUT).unwrap();
    assert!(finished.status.success(), "{}", finished.stderr);
    assert!(tap.wait_for(MessageKind::Finish, WIRE_TIMEOUT));
    let interop_methods: BTreeSet<u16> = tap.events().iter().filter_map(|e| match e.message {
        RpcMessage::Call { interface_id, method_id, .. } if interface_id == interop::Client::TYPE_ID => Some(method_id),
        _ => None,
    }).collect();
    assert!(!interop_methods.contains(&4) && !interop_methods.contains(&6), "reflect or hang was called: {interop_methods:?}");
    assert!(interop_methods.contains(&5), "callBack should still run: {interop_methods:?}");

    let unknown = run_to_completion(RUST_PEER, &["client-interop", "--connect", server.address(), "--skip", "nope"], RUN_TIMEOUT).unwrap();
    assert!(!unknown.status.success() && unknown.stderr.contains("unknown step"), "{unknown:?}");
}

#[test]
fn calculator_scenario_passes_through_the_wiretap() {
    let server = serve("serve-calculator", "127.0.0.1:0");
    let tap = WireTap::start("127.0.0.1:0", server.address()).unwrap();
    run_client_through(&tap, "client-calculator");
    assert_kinds_seen(&tap, CORE_KINDS);
    // The server calls back into the client's function: calls flow in both directions.
    assert!(tap.events().iter().any(|e| e.direction == Direction::ServerToClient && e.message.kind() == MessageKind::Call));
    report_kinds("calculator over tcp", &tap);
}

#[test]
fn calculator_client_passes_against_a_direct_unix_server() {
    let path = unique_socket_path("calculator");
    let server = serve("serve-calculator", &format!("unix:{}", path.display()));
    run_client("client-calculator", server.address());
}

/// Runs `scenario` as a capnp-rpc client of an `Interop` server reached through a fresh tap.
fn with_tapped_interop<F, Fut>(scenario: F) -> WireTap
where
    F: FnOnce(interop::Client) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let server = serve("serve-interop", "127.0.0.1:0");
    let tap = WireTap::start("127.0.0.1:0", server.address()).unwrap();
    let address = Address::parse(&tap.address()).unwrap();
    run_local(async {
        let connection = connect(&address).await.unwrap();
        scenario(connection.bootstrap()).await;
        let _ = connection.disconnect().await;
    });
    tap
}

#[test]
fn wiretap_decodes_an_echo_call_and_its_return() {
    let tap = with_tapped_interop(|interop| async move {
        assert_eq!(echo(&interop, b"abc").await.unwrap(), b"abc");
    });
    let found = tap.wait_until(WIRE_TIMEOUT, |events| {
        events.iter().any(|e| {
            matches!(e.message, RpcMessage::Return { outcome: ReturnOutcome::Results { .. }, .. })
                && e.direction == Direction::ServerToClient
        })
    });
    assert!(found, "{}", tap.transcript());
    let echo_call = tap.events().into_iter().find_map(|e| match e.message {
        RpcMessage::Call { interface_id, method_id, send_results_to, target, .. } if e.direction == Direction::ClientToServer => {
            Some((interface_id, method_id, send_results_to, target))
        }
        _ => None,
    });
    let (interface_id, method_id, send_results_to, target) = echo_call.expect("a client-to-server call");
    assert_eq!(interface_id, interop::Client::TYPE_ID);
    assert_eq!(method_id, 0, "echo is method 0");
    assert_eq!(send_results_to, SendResultsTo::Caller);
    // The call goes to the bootstrap answer, pipelined.
    assert!(matches!(target, CallTarget::PromisedAnswer { .. }), "{target:?}");
}

#[test]
fn wiretap_decodes_exception_kind_and_reason() {
    let tap = with_tapped_interop(|interop| async move {
        let mut request = interop.fail_request();
        request.get().set_kind(ErrorKind::Overloaded);
        request.get().set_message("too busy today");
        assert!(request.send().promise.await.is_err());
    });
    let found = tap.wait_until(WIRE_TIMEOUT, |events| {
        events.iter().any(|e| match &e.message {
            RpcMessage::Return { outcome: ReturnOutcome::Exception { kind, reason }, .. } => {
                kind == "overloaded" && reason.contains("too busy today")
            }
            _ => false,
        })
    });
    assert!(found, "{}", tap.transcript());
}

#[test]
fn cancelling_a_hanging_call_puts_finish_on_the_wire() {
    let tap = with_tapped_interop(|interop| async move {
        let hanging = interop.hang_request().send().promise;
        assert!(tokio::time::timeout(Duration::from_millis(100), hanging).await.is_err());
    });
    // The hang call's question (the second question; the first is bootstrap) must be finished.
    let found = tap.wait_until(WIRE_TIMEOUT, |events| {
        let hang_question = events.iter().find_map(|e| match e.message {
            RpcMessage::Call { question_id, method_id: 6, .. } => Some(question_id),
            _ => None,
        });
        hang_question.is_some_and(|q| {
            events.iter().any(|e| e.direction == Direction::ClientToServer && e.message == RpcMessage::Finish { question_id: q })
        })
    });
    assert!(found, "{}", tap.transcript());
}

#[test]
fn reflecting_the_callers_counter_resolves_to_it_with_an_embargo() {
    let tap = with_tapped_interop(|interop| async move {
        reflect_returns_calls_to_caller(&RpcHost, &interop).await.unwrap();
    });
    let found = tap.wait_until(WIRE_TIMEOUT, |events| {
        let resolved_to_ours = events.iter().any(|e| {
            e.direction == Direction::ServerToClient
                && matches!(&e.message, RpcMessage::Resolve { resolution: Resolution::Cap(kind), .. } if kind == "receiverHosted")
        });
        let loopback = |direction, context: &str| {
            events.iter().any(|e| e.direction == direction && matches!(&e.message, RpcMessage::Disembargo { context: c } if c == context))
        };
        resolved_to_ours && loopback(Direction::ClientToServer, "senderLoopback") && loopback(Direction::ServerToClient, "receiverLoopback")
    });
    assert!(found, "expected Resolve(receiverHosted) and a Disembargo round trip:\n{}", tap.transcript());
    // The three increments all went to our object: the server forwarded the early ones to us.
    let calls_to_client = tap.events().iter().filter(|e| {
        e.direction == Direction::ServerToClient && matches!(e.message, RpcMessage::Call { method_id: 0, .. })
    }).count();
    assert!(calls_to_client >= 1, "{}", tap.transcript());
}

#[test]
fn wiretap_forwards_arbitrary_bytes_unchanged_both_ways() {
    // An upstream that echoes raw bytes: not Cap'n Proto at all, so decoding must not matter.
    let upstream = TcpListener::bind("127.0.0.1:0").unwrap();
    let upstream_address = upstream.local_addr().unwrap().to_string();
    let echoer = std::thread::spawn(move || {
        let (mut socket, _) = upstream.accept().unwrap();
        let mut received = Vec::new();
        socket.read_to_end(&mut received).unwrap();
        socket.write_all(&received).unwrap();
    });
    let tap = WireTap::start("127.0.0.1:0", &upstream_address).unwrap();
    let payload: Vec<u8> = (0..300_000u32).map(|i| (i * 7 % 256) as u8).collect();
    let mut client = TcpStream::connect(tap.address()).unwrap();
    client.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    client.write_all(&payload).unwrap();
    client.shutdown(std::net::Shutdown::Write).unwrap();
    let mut back = Vec::new();
    client.read_to_end(&mut back).unwrap();
    echoer.join().unwrap();
    assert_eq!(back.len(), payload.len());
    assert!(back == payload, "bytes were altered in transit");
}

#[test]
fn injected_bytes_reach_the_chosen_side() {
    let upstream = TcpListener::bind("127.0.0.1:0").unwrap();
    let upstream_address = upstream.local_addr().unwrap().to_string();
    let server = std::thread::spawn(move || {
        let (mut socket, _) = upstream.accept().unwrap();
        socket.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        let mut received = [0u8; 6];
        socket.read_exact(&mut received).unwrap();
        // Returned so it stays open: closing it would close the client's side too.
        (received, socket)
    });
    let tap = WireTap::start("127.0.0.1:0", &upstream_address).unwrap();
    let mut client = TcpStream::connect(tap.address()).unwrap();
    client.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    assert!(tap.wait_for_connections(1, WIRE_TIMEOUT));
    tap.inject(0, Direction::ClientToServer, b"forged").unwrap();
    let (received, _server_socket) = server.join().unwrap();
    assert_eq!(&received, b"forged");
    tap.inject(0, Direction::ServerToClient, b"hi").unwrap();
    let mut back = [0u8; 2];
    client.read_exact(&mut back).unwrap();
    assert_eq!(&back, b"hi");
    assert!(tap.inject(1, Direction::ClientToServer, b"x").is_err(), "there is no connection #1");
}

#[test]
fn severing_the_tap_disconnects_a_connected_client() {
    let server = serve("serve-interop", "127.0.0.1:0");
    let tap = WireTap::start("127.0.0.1:0", server.address()).unwrap();
    let address = Address::parse(&tap.address()).unwrap();
    run_local(async {
        let connection = connect(&address).await.unwrap();
        let interop: interop::Client = connection.bootstrap();
        echo(&interop, b"before").await.unwrap();
        let hanging = interop.hang_request().send().promise;
        tap.sever_all();
        let outcome = tokio::time::timeout(WIRE_TIMEOUT, hanging).await.expect("the pending call must end");
        let error = outcome.err().expect("a severed call cannot succeed");
        assert_eq!(error.kind, capnp::ErrorKind::Disconnected, "{error}");
    });
}

#[test]
fn dropping_a_peer_process_kills_it() {
    let server = serve("serve-interop", "127.0.0.1:0");
    let proc_entry = format!("/proc/{}", server.id());
    assert!(std::path::Path::new(&proc_entry).exists());
    drop(server);
    assert!(!std::path::Path::new(&proc_entry).exists(), "the server outlived its guard");
}

#[test]
fn a_peer_that_exits_before_listening_is_reported_with_its_stderr() {
    let error = match PeerProcess::spawn_listening(RUST_PEER, &["serve-interop", "--listen", "nonsense"], START_TIMEOUT) {
        Ok(_) => panic!("a bad address must not produce a listening peer"),
        Err(error) => error,
    };
    assert!(error.contains("exited before listening") && error.contains("nonsense"), "{error}");
}

/// The native C++ KJ bench client, a product of the `rpc-bench` package.
fn kj_bench_client() -> String {
    built_binary("kj-bench-client", "rpc-bench").unwrap().display().to_string()
}

/// Runs a bench client and parses its single JSON line.
fn bench_json(program: &str, address: &str) -> serde_json::Map<String, serde_json::Value> {
    let args = ["--connect", address, "--calls", "300", "--window", "8", "--payload", "256"];
    let args: Vec<&str> = if program == RUST_PEER { std::iter::once("bench").chain(args).collect() } else { args.to_vec() };
    let finished = run_to_completion(program, &args, RUN_TIMEOUT).unwrap();
    assert!(finished.status.success(), "{program} failed: {}", finished.stderr);
    let lines: Vec<&str> = finished.stdout.lines().collect();
    assert_eq!(lines.len(), 1, "expected one JSON line, got {:?}", finished.stdout);
    match serde_json::from_str(lines[0]) {
        Ok(serde_json::Value::Object(fields)) => fields,
        other => panic!("not a JSON object: {other:?} from {:?}", lines[0]),
    }
}

fn number(fields: &serde_json::Map<String, serde_json::Value>, key: &str) -> f64 {
    fields.get(key).and_then(serde_json::Value::as_f64).unwrap_or_else(|| panic!("no number {key} in {fields:?}"))
}

#[test]
fn kj_and_rust_bench_clients_measure_a_rust_peer_and_print_the_same_json_shape() {
    let server = serve("serve-interop", "127.0.0.1:0");
    let kj = bench_json(&kj_bench_client(), server.address());
    let rust = bench_json(RUST_PEER, server.address());
    let keys = |fields: &serde_json::Map<String, serde_json::Value>| fields.keys().cloned().collect::<BTreeSet<_>>();
    assert_eq!(keys(&kj), keys(&rust));
    assert_eq!(kj["client"], "kj-cxx");
    assert_eq!(rust["client"], "rust-capnp-rpc");
    for fields in [&kj, &rust] {
        assert_eq!((number(fields, "calls"), number(fields, "window"), number(fields, "payload")), (300.0, 8.0, 256.0));
        let (p50, p99, rate) = (number(fields, "p50_us"), number(fields, "p99_us"), number(fields, "calls_per_s"));
        assert!(p50 > 0.0 && p99 >= p50 && rate > 0.0, "implausible measurement {fields:?}");
    }
    eprintln!("kj: {kj:?}\nrust: {rust:?}");
}

#[test]
fn kj_bench_client_works_over_unix_sockets() {
    let path = unique_socket_path("kj-bench");
    let server = serve("serve-interop", &format!("unix:{}", path.display()));
    let fields = bench_json(&kj_bench_client(), server.address());
    assert!(number(&fields, "calls_per_s") > 0.0);
}

#[test]
fn kj_bench_client_reports_a_refused_connection_instead_of_crashing() {
    // Bind then drop a listener: its port is very likely free and refusing connections.
    let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let address = format!("127.0.0.1:{port}");
    let args = ["--connect", address.as_str(), "--calls", "1", "--window", "1", "--payload", "1"];
    let finished = run_to_completion(kj_bench_client(), &args, RUN_TIMEOUT).unwrap();
    assert_eq!(finished.status.code(), Some(1), "{finished:?}");
    assert!(finished.stderr.contains("kj-bench-client:"), "{}", finished.stderr);
    assert!(finished.stdout.is_empty());
}
