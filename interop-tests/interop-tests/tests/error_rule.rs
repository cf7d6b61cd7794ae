//! One rule for the text and kind of an RPC error (docs/interop.md, "Errors"), checked with every
//! peer in its own process:
//!
//! - a bridge server puts the host's message on the wire as the exception's reason, byte for byte,
//!   with the host's kind as its type — what a native KJ server and a capnp-rpc server put there;
//! - a bridge client reports the reason exactly as the server sent it (KJ's local
//!   `remote exception: ` removed) and the kind from the type, whichever server sent it;
//! - a KJ client and a capnp-rpc client see a bridge server's error exactly as they see their own
//!   servers' errors: the reason behind their one local prefix;
//! - an error that passes through a bridge proxy (a server method that calls another server and
//!   returns its error) keeps its kind and gains no second prefix.
//!
//! The native KJ peers (`kj-bench-server`, `kj-fail-client`) are programs of the `rpc-bench`
//! package; `cargo build --workspace` (scripts/test.sh) builds them. Without them each test runs
//! the other pairings and says `SKIPPED:` for the KJ ones (a failure with `CAPNP_LEAN_STRICT=1`).

use std::path::PathBuf;
use std::time::Duration;

use capnp_lean::Runtime;
use capnp_lean_toolchain::test_support::skip;
use capnp_lean_peers::bridge_peer::connect;
use capnp_lean_peers::process::{built_binary, run_to_completion, PeerProcess};
use capnp_lean_peers::rust_peer::run_local;
use capnp_lean_wiretap::{Direction, MessageKind, ReturnOutcome, RpcMessage, WireTap};
use capnp_schemas::interop_capnp::{interop, ErrorKind};

const RUST_PEER: &str = env!("CARGO_BIN_EXE_rust-peer");
const BRIDGE_PEER: &str = env!("CARGO_BIN_EXE_bridge-peer");
const START_TIMEOUT: Duration = Duration::from_secs(20);
const CALL_TIMEOUT: Duration = Duration::from_secs(10);

/// Each kind: the schema's, the `capnp` crate's, and rpc.capnp's name for it (KJ prints the same).
const KINDS: [(ErrorKind, capnp::ErrorKind, &str); 4] = [
    (ErrorKind::Failed, capnp::ErrorKind::Failed, "failed"),
    (ErrorKind::Overloaded, capnp::ErrorKind::Overloaded, "overloaded"),
    (ErrorKind::Disconnected, capnp::ErrorKind::Disconnected, "disconnected"),
    (ErrorKind::Unimplemented, capnp::ErrorKind::Unimplemented, "unimplemented"),
];

/// KJ's local prefix for an exception that arrived from a peer; capnp-rpc adds the same words.
const REMOTE_PREFIX: &str = "remote exception: ";

/// The message a server is asked to fail with: non-ASCII, with a colon, never a prefix of its own.
fn message_for(kind: &str) -> String {
    format!("précisément ceci: {kind} ✓")
}

#[derive(Debug, Clone, Copy)]
enum Server {
    Kj,
    CapnpRpc,
    Bridge,
}

fn rpc_bench_program(name: &str) -> PathBuf {
    built_binary(name, "rpc-bench").unwrap_or_else(|e| panic!("{e}"))
}

/// Whether the native KJ peers are built; if not, says `SKIPPED:` (or fails when strict).
fn kj_peers_built(test: &str) -> bool {
    let missing: Vec<String> = ["kj-bench-server", "kj-fail-client"]
        .iter()
        .filter_map(|name| built_binary(name, "rpc-bench").err())
        .collect();
    if missing.is_empty() {
        return true;
    }
    skip(&format!("{test}: the native KJ pairings ({}); the others ran", missing.join("; ")));
    false
}

/// The servers to test against: the KJ one only if built.
fn servers(kj: bool) -> Vec<Server> {
    let all = [Server::Kj, Server::CapnpRpc, Server::Bridge];
    all.into_iter().filter(|s| kj || !matches!(s, Server::Kj)).collect()
}

/// The foreign clients to test with: the KJ one only if built.
fn foreign_clients(kj: bool) -> Vec<ForeignClient> {
    let all = [ForeignClient::Kj, ForeignClient::CapnpRpc];
    all.into_iter().filter(|c| kj || !matches!(c, ForeignClient::Kj)).collect()
}

fn start(server: Server) -> PeerProcess {
    let program = match server {
        Server::Kj => rpc_bench_program("kj-bench-server"),
        Server::CapnpRpc => PathBuf::from(RUST_PEER),
        Server::Bridge => PathBuf::from(BRIDGE_PEER),
    };
    let args: &[&str] = match server {
        Server::Kj => &["--listen", "127.0.0.1:0"],
        Server::CapnpRpc | Server::Bridge => &["serve-interop", "--listen", "127.0.0.1:0"],
    };
    PeerProcess::spawn_listening(program, args, START_TIMEOUT).unwrap_or_else(|e| panic!("{server:?} server: {e}"))
}

/// A bridge proxy in front of the `Interop` server at `upstream`.
fn start_proxy(upstream: &str) -> PeerProcess {
    let args = ["serve-interop-proxy", "--listen", "127.0.0.1:0", "--upstream", upstream];
    PeerProcess::spawn_listening(BRIDGE_PEER, &args, START_TIMEOUT).unwrap_or_else(|e| panic!("bridge proxy: {e}"))
}

/// What a bridge client (this process) gets from `fail` with each of [`KINDS`], in that order.
fn bridge_client_errors(address: &str) -> Vec<capnp::Error> {
    let runtime = Runtime::new().unwrap();
    run_local(async {
        let connection = tokio::time::timeout(CALL_TIMEOUT, connect(&runtime, address)).await.expect("connect in time").unwrap();
        let interop: interop::Client = connection.bootstrap().unwrap();
        let mut errors = Vec::new();
        for (kind, _, name) in KINDS {
            let mut request = interop.fail_request();
            request.get().set_kind(kind);
            request.get().set_message(&message_for(name)[..]);
            let outcome = tokio::time::timeout(CALL_TIMEOUT, request.send().promise).await.expect("fail answers in time");
            errors.push(outcome.err().unwrap_or_else(|| panic!("fail({name}) succeeded")));
        }
        drop(connection);
        errors
    })
}

/// The exceptions the server side of `tap` returned, as (type, reason), in wire order; waits
/// until `count` have been seen.
fn returned_exceptions(tap: &WireTap, count: usize) -> Vec<(String, String)> {
    let exceptions = |events: &[capnp_lean_wiretap::WireEvent]| -> Vec<(String, String)> {
        events
            .iter()
            .filter(|e| e.direction == Direction::ServerToClient && e.message.kind() == MessageKind::Return)
            .filter_map(|e| match &e.message {
                RpcMessage::Return { outcome: ReturnOutcome::Exception { kind, reason }, .. } => Some((kind.clone(), reason.clone())),
                _ => None,
            })
            .collect()
    };
    assert!(
        tap.wait_until(Duration::from_secs(5), |events| exceptions(events).len() >= count),
        "fewer than {count} exceptions returned:\n{}",
        tap.transcript()
    );
    exceptions(&tap.events())
}

/// Asserts the bridge client's view of `address` (behind a tap) and what was on the wire: every
/// kind, and the text exactly as asked for.
fn assert_bridge_client_gets_the_exact_text(address: &str, label: &str) {
    let tap = WireTap::start("127.0.0.1:0", address).unwrap();
    let errors = bridge_client_errors(&tap.address());
    let wire = returned_exceptions(&tap, KINDS.len());
    for ((error, (_, expected_kind, name)), (wire_kind, wire_reason)) in errors.iter().zip(KINDS).zip(wire) {
        let message = message_for(name);
        assert_eq!((wire_kind.as_str(), wire_reason.as_str()), (name, message.as_str()), "on the wire from {label}");
        assert_eq!((error.kind, error.extra.as_str()), (expected_kind, message.as_str()), "bridge client of {label}");
    }
}

#[test]
fn a_bridge_client_gets_each_kind_with_the_exact_text_from_kj_capnp_rpc_and_bridge_servers() {
    let kj = kj_peers_built("a bridge client against a KJ server");
    for server in servers(kj) {
        let process = start(server);
        assert_bridge_client_gets_the_exact_text(process.address(), &format!("{server:?} server"));
    }
}

/// What `client` prints for `fail(kind)` against `address`.
fn foreign_client_output(client: ForeignClient, address: &str, name: &str) -> String {
    let message = message_for(name);
    let (program, mut args) = match client {
        ForeignClient::Kj => (rpc_bench_program("kj-fail-client"), vec![]),
        ForeignClient::CapnpRpc => (PathBuf::from(RUST_PEER), vec!["client-fail"]),
    };
    args.extend(["--connect", address, "--kind", name, "--message", &message]);
    let finished = run_to_completion(&program, &args, Duration::from_secs(20)).unwrap();
    assert!(finished.status.success(), "{client:?} client against {address}: {finished:?}");
    finished.stdout.trim_end().to_string()
}

#[derive(Debug, Clone, Copy)]
enum ForeignClient {
    Kj,
    CapnpRpc,
}

/// What the rule says `client` sees for `fail(kind)`: the reason behind its one local prefix.
fn expected_foreign_output(client: ForeignClient, name: &str, kind: capnp::ErrorKind) -> String {
    let message = message_for(name);
    match client {
        ForeignClient::Kj => format!("type: {name}\ndescription: {REMOTE_PREFIX}{message}"),
        ForeignClient::CapnpRpc => format!("kind: {kind:?}\nextra: {REMOTE_PREFIX}{message}\ndisplay: {kind}: {REMOTE_PREFIX}{message}"),
    }
}

#[test]
fn kj_and_capnp_rpc_clients_see_a_bridge_servers_error_as_they_see_their_own_servers_errors() {
    let kj = kj_peers_built("KJ clients and servers");
    let servers: Vec<(Server, PeerProcess)> = servers(kj).into_iter().map(|s| (s, start(s))).collect();
    for client in foreign_clients(kj) {
        for (_, kind, name) in KINDS {
            let expected = expected_foreign_output(client, name, kind);
            for (server, process) in &servers {
                let seen = foreign_client_output(client, process.address(), name);
                assert_eq!(seen, expected, "{client:?} client of the {server:?} server, fail({name})");
            }
        }
    }
}

#[test]
fn an_error_passing_through_a_bridge_proxy_keeps_its_kind_and_gains_no_second_prefix() {
    let kj = kj_peers_built("a bridge proxy with KJ peers");
    for upstream in servers(kj) {
        let origin = start(upstream);
        let proxy = start_proxy(origin.address());
        let label = format!("a bridge proxy of the {upstream:?} server");
        assert_bridge_client_gets_the_exact_text(proxy.address(), &label);
        for client in foreign_clients(kj) {
            for (_, kind, name) in KINDS {
                let seen = foreign_client_output(client, proxy.address(), name);
                assert_eq!(seen, expected_foreign_output(client, name, kind), "{client:?} client of {label}, fail({name})");
            }
        }
    }
}

/// Not our rule, but the documented contrast: capnp-rpc and KJ return a received error with
/// their local prefix in the text, so their proxies put `remote exception: M` on the wire, and a
/// bridge client reports exactly that (rule 2: the text as the server sent it). When either
/// library stops doing so this fails, and docs/interop.md must be updated.
#[test]
fn capnp_rpc_and_kj_proxies_put_their_own_prefix_on_the_wire_and_a_bridge_client_reports_it_as_sent() {
    let kj = kj_peers_built("a KJ proxy");
    let origin = start(Server::Bridge);
    let mut proxies = vec![("capnp-rpc", PathBuf::from(RUST_PEER), vec!["serve-interop-proxy"])];
    if kj {
        proxies.push(("KJ", rpc_bench_program("kj-bench-server"), vec![]));
    }
    for (label, program, mut args) in proxies {
        args.extend(["--listen", "127.0.0.1:0", "--upstream", origin.address()]);
        let proxy = PeerProcess::spawn_listening(&program, &args, START_TIMEOUT).unwrap_or_else(|e| panic!("{label} proxy: {e}"));
        let tap = WireTap::start("127.0.0.1:0", proxy.address()).unwrap();
        let errors = bridge_client_errors(&tap.address());
        let wire = returned_exceptions(&tap, KINDS.len());
        for ((error, (_, kind, name)), (wire_kind, wire_reason)) in errors.iter().zip(KINDS).zip(wire) {
            let as_sent = format!("{REMOTE_PREFIX}{}", message_for(name));
            assert_eq!((wire_kind.as_str(), wire_reason.as_str()), (name, as_sent.as_str()), "on the wire from the {label} proxy");
            assert_eq!((error.kind, error.extra.as_str()), (kind, as_sent.as_str()), "bridge client of the {label} proxy");
        }
    }
}
