//! Fuzzes what a bridge server does with the bytes a peer sends: each input is written to a
//! fresh connection of one long-lived bridge runtime serving `Interop`, followed by end of
//! stream. The server must close the connection within a few seconds (a hang is a finding) and
//! must not crash; sanitizer builds (cargo fuzz's default) also catch memory errors in the shim.
//!
//! ```text
//! cargo install cargo-fuzz            # once; needs a nightly toolchain
//! cd fuzz && cargo +nightly fuzz run rpc_intake -- -max_total_time=600
//! ```
#![no_main]

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::time::Duration;

use capnp_lean::{ConnectionOptions, Runtime, Side};
use capnp_lean_peers::host::BridgeHost;
use capnp_lean_peers::servers::interop::InteropServer;
use libfuzzer_sys::fuzz_target;

/// The server under test, alive for the whole fuzzing session.
struct Server {
    runtime: Runtime,
    bootstrap: capnp::capability::Client,
}

thread_local! {
    // Generated clients are not `Send`: one server per fuzzing thread (libFuzzer uses one).
    static SERVER: Server = {
        let runtime = Runtime::new().expect("a runtime starts");
        let bootstrap = InteropServer::new(BridgeHost(runtime.handle())).into_client().expect("the server is hosted").client;
        Server { runtime, bootstrap }
    };
}

fuzz_target!(|bytes: &[u8]| SERVER.with(|server| intake(server, bytes)));

/// Feeds `bytes` to a fresh server connection and waits for the server to close it.
fn intake(server: &Server, bytes: &[u8]) {
    let (ours, theirs) = UnixStream::pair().expect("a socketpair");
    let connection = server
        .runtime
        .adopt(theirs.into(), Side::Server, Some(&server.bootstrap), &ConnectionOptions::default())
        .expect("the runtime adopts the socket");
    let mut ours = ours;
    ours.set_read_timeout(Some(Duration::from_secs(5))).expect("a read timeout");
    let _ = ours.write_all(bytes);
    let _ = ours.shutdown(std::net::Shutdown::Write);
    let mut sink = [0u8; 4096];
    loop {
        match ours.read(&mut sink) {
            Ok(0) => break,
            Ok(_) => continue,
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => break,
            Err(e) => panic!("the server neither closed nor answered within 5 s after end of stream: {e}"),
        }
    }
    drop(connection);
}
