//! 500 concurrent connections to a bridge server process (docs/reliability.md, "Many
//! connections"): every connection's calls are answered, and once the clients are gone the
//! server's file descriptors are back at their baseline (nothing is held per closed connection).

use std::thread;
use std::time::{Duration, Instant};

use capnp_lean::Runtime;
use capnp_schemas::interop_capnp::interop;
use capnp_lean_peers::bridge_peer::connection_options;
use capnp_lean_peers::process::PeerProcess;
use capnp_lean_peers::rust_peer::run_local;
use capnp_lean_peers::scenarios::interop::echo;
use interop_tests::reliability::observers::open_fds;

const BRIDGE_PEER: &str = env!("CARGO_BIN_EXE_bridge-peer");
const CONNECTIONS: usize = 500;
const CALLS_PER_CONNECTION: usize = 4;

#[test]
fn five_hundred_concurrent_connections_are_all_answered_and_leave_no_descriptor_behind() {
    let mut server = PeerProcess::spawn_listening(BRIDGE_PEER, &["serve-interop", "--listen", "127.0.0.1:0"], Duration::from_secs(20))
        .expect("the bridge server starts");
    let address = server.address().to_string();
    let pid = server.id();
    thread::sleep(Duration::from_millis(200));
    let fds_before = open_fds(pid);

    let runtime = Runtime::new().unwrap();
    let (answered, fds_during) = run_local(async {
        let connecting = (0..CONNECTIONS).map(|_| runtime.connect_with::<capnp::capability::Client>(&address, None, &connection_options()));
        let connections: Vec<_> = futures::future::join_all(connecting).await.into_iter().map(|c| c.expect("connect")).collect();
        let clients: Vec<interop::Client> = connections.iter().map(|c| c.bootstrap().expect("bootstrap")).collect();
        let calls = clients.iter().enumerate().flat_map(|(i, client)| {
            (0..CALLS_PER_CONNECTION).map(move |j| async move {
                let payload = format!("connection {i} call {j}").into_bytes();
                let back = tokio::time::timeout(Duration::from_secs(20), echo(client, &payload)).await;
                matches!(back, Ok(Ok(ref b)) if *b == payload)
            })
        });
        let answered = futures::future::join_all(calls).await.into_iter().filter(|ok| *ok).count();
        let fds_during = open_fds(pid);
        drop(clients);
        drop(connections);
        (answered, fds_during)
    });

    let deadline = Instant::now() + Duration::from_secs(10);
    let mut fds_after = open_fds(pid);
    while fds_after > fds_before && Instant::now() < deadline {
        thread::sleep(Duration::from_millis(50));
        fds_after = open_fds(pid);
    }
    println!("{answered} of {} calls answered; server fds: {fds_before} before, {fds_during} with {CONNECTIONS} clients, {fds_after} after",
        CONNECTIONS * CALLS_PER_CONNECTION);
    assert!(server.is_running(), "the server died; stderr:\n{}", server.kill_and_collect_stderr());
    assert_eq!(answered, CONNECTIONS * CALLS_PER_CONNECTION, "every call on every connection is answered");
    assert!(fds_during >= fds_before + CONNECTIONS, "the server held only {fds_during} fds with {CONNECTIONS} clients");
    assert!(fds_after <= fds_before, "server fds: {fds_before} before, {fds_after} after every client left");
}
