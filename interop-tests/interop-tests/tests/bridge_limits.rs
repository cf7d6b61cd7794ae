//! Per-connection limits (`ConnectionOptions`), each shown enforced: message size / traversal,
//! nesting depth and the incoming-call flow limit — and that a connection over a limit fails
//! alone while the server keeps serving others.

use std::os::unix::net::UnixStream;
use std::time::Duration;

use capnp_lean::{ConnectionOptions, Runtime, Side};
use capnp_schemas::calculator_capnp::calculator;
use capnp_schemas::interop_capnp::interop;
use capnp_lean_peers::host::BridgeHost;
use capnp_lean_peers::rust_peer::run_local;
use capnp_lean_peers::scenarios::calculator::{evaluate, read, Term};
use capnp_lean_peers::scenarios::interop::echo;
use capnp_lean_peers::servers::calculator::CalculatorServer;
use capnp_lean_peers::servers::interop::InteropServer;

/// A bridge server (runtime + bootstrap) and a way to open client connections to it whose
/// server side uses `options`.
struct Server {
    runtime: Runtime,
    bootstrap: capnp::capability::Client,
    client: Runtime,
    connections: Vec<capnp_lean::Connection>,
}

impl Server {
    fn interop() -> Self {
        let runtime = Runtime::new().unwrap();
        let bootstrap = InteropServer::new(BridgeHost(runtime.handle())).into_client().unwrap().client;
        Server { runtime, bootstrap, client: Runtime::new().unwrap(), connections: Vec::new() }
    }

    fn calculator() -> Self {
        let runtime = Runtime::new().unwrap();
        let bootstrap = CalculatorServer::new_client(BridgeHost(runtime.handle())).unwrap().client;
        Server { runtime, bootstrap, client: Runtime::new().unwrap(), connections: Vec::new() }
    }

    /// A client connection whose server end enforces `options`.
    fn connect<C: capnp::capability::FromClientHook>(&mut self, options: ConnectionOptions) -> C {
        let (a, b) = UnixStream::pair().unwrap();
        self.connections.push(self.runtime.adopt(b.into(), Side::Server, Some(&self.bootstrap), &options).unwrap());
        let connection = self.client.adopt::<C>(a.into(), Side::Client, None, &ConnectionOptions::default()).unwrap();
        let client = connection.bootstrap().unwrap();
        self.connections.push(connection);
        client
    }
}

fn within<T>(limit: Duration, future: impl std::future::Future<Output = T>) -> Option<T> {
    run_local(async { tokio::time::timeout(limit, future).await.ok() })
}

#[test]
fn a_message_over_the_traversal_limit_closes_only_its_connection() {
    let mut server = Server::interop();
    let limited: interop::Client = server.connect(ConnectionOptions { traversal_limit_words: 1024, ..capnp_lean_peers::bridge_peer::connection_options() });
    let normal: interop::Client = server.connect(capnp_lean_peers::bridge_peer::connection_options());
    let small = within(Duration::from_secs(5), echo(&limited, &[7u8; 1000])).expect("small echo answered");
    assert_eq!(small.unwrap(), vec![7u8; 1000], "a message under the limit passes");
    let big = within(Duration::from_secs(5), echo(&limited, &[7u8; 64 * 1024])).expect("the big echo was not answered at all");
    let error = big.expect_err("a 64 KiB message must not pass a 1024-word limit");
    assert_eq!(error.kind, capnp::ErrorKind::Disconnected, "{error}");
    let after = within(Duration::from_secs(5), echo(&normal, &[9u8; 64 * 1024])).expect("the other connection answered");
    assert_eq!(after.unwrap().len(), 64 * 1024, "the other connection keeps working, with the default limit");
}

#[test]
fn a_large_message_under_the_traversal_limit_passes_and_one_over_it_closes_only_its_connection() {
    let mut server = Server::interop();
    // 512 KiB: room for messages larger than the transport's 64 KiB read buffer, read in place.
    let limited: interop::Client = server.connect(ConnectionOptions { traversal_limit_words: 64 * 1024, ..capnp_lean_peers::bridge_peer::connection_options() });
    let normal: interop::Client = server.connect(capnp_lean_peers::bridge_peer::connection_options());
    let under: Vec<u8> = (0..200 * 1024).map(|i| (i % 251) as u8).collect();
    let back = within(Duration::from_secs(5), echo(&limited, &under)).expect("the 200 KiB echo answered");
    assert_eq!(back.unwrap(), under, "a large message under the limit passes intact");
    let over = within(Duration::from_secs(5), echo(&limited, &[7u8; 1 << 20])).expect("the 1 MiB echo was not answered at all");
    let error = over.expect_err("a 1 MiB message must not pass a 512 KiB limit");
    assert_eq!(error.kind, capnp::ErrorKind::Disconnected, "{error}");
    let after = within(Duration::from_secs(5), echo(&normal, &[9u8; 1 << 20])).expect("the other connection answered");
    assert_eq!(after.unwrap().len(), 1 << 20, "the other connection keeps working, with the default limit");
}

/// `((((1 + 1) + 1) + 1) ...)` nested `depth` applications deep.
fn nested_sum(calculator: &calculator::Client, depth: usize) -> Term {
    let add = capnp_lean_peers::scenarios::calculator::operator(calculator, calculator::Operator::Add);
    (0..depth).fold(Term::Literal(0.0), |inner, _| Term::Apply(add.clone(), vec![inner, Term::Literal(1.0)]))
}

#[test]
fn a_message_nested_deeper_than_the_limit_is_refused() {
    let mut server = Server::calculator();
    let shallow_limit = ConnectionOptions { nesting_limit: 24, ..capnp_lean_peers::bridge_peer::connection_options() };
    let calculator: calculator::Client = server.connect(shallow_limit);
    let fine = within(Duration::from_secs(10), read(&evaluate(&calculator, &nested_sum(&calculator, 3)))).expect("answered");
    assert_eq!(fine.unwrap(), 3.0);
    // Each application nests two pointer levels (struct, list), under the RPC envelope's few.
    let deep = within(Duration::from_secs(10), read(&evaluate(&calculator, &nested_sum(&calculator, 20)))).expect("answered");
    let error = deep.expect_err("20 nested applications exceed a nesting limit of 24");
    assert!(error.extra.contains("nest"), "the error should name the nesting limit: {error}");
    // The same expression passes where the default limit applies.
    let calculator: calculator::Client = server.connect(capnp_lean_peers::bridge_peer::connection_options());
    let ok = within(Duration::from_secs(10), read(&evaluate(&calculator, &nested_sum(&calculator, 20)))).expect("answered");
    assert_eq!(ok.unwrap(), 20.0);
}

#[test]
fn over_the_flow_limit_a_connection_stops_reading_until_calls_are_answered() {
    let mut server = Server::interop();
    let tight: interop::Client = server.connect(ConnectionOptions { flow_limit_words: 1, ..capnp_lean_peers::bridge_peer::connection_options() });
    let roomy: interop::Client = server.connect(capnp_lean_peers::bridge_peer::connection_options());
    for (client, limited) in [(&roomy, false), (&tight, true)] {
        // One call the server never answers holds the connection's in-flight words...
        let hanging = client.hang_request().send().promise;
        let answered = within(Duration::from_millis(500), echo(client, b"behind a hanging call"));
        if limited {
            assert!(answered.is_none(), "over the flow limit the server must stop reading new calls");
        } else {
            assert_eq!(answered.expect("under the limit calls keep flowing").unwrap(), b"behind a hanging call");
        }
        drop(hanging);
    }
}
