//! Real network faults between two network namespaces joined by a veth pair (needs root, `ip`
//! and `nft`; CI runs as root). Under 50 ms of latency each way and under random packet loss
//! calls still complete and call timeouts fire; when the link goes down, pending calls fail
//! with `Disconnected` within the configured dead-peer time; after the link comes back,
//! reconnecting works.
//!
//! `tc netem` is not available (this kernel has no `sch_netem`: "Specified qdisc kind is
//! unknown"), so loss comes from nftables and latency from a delaying proxy on the client side of
//! the link; packet reordering cannot be produced here.

#![allow(unsafe_code)] // setns(2), to put one test thread (and the runtime it starts) in a namespace

use std::fs::File;
use std::os::fd::AsRawFd;
use std::process::Command;
use std::time::{Duration, Instant};

use capnp_lean::{ConnectionOptions, ErrorKind, Runtime};
use capnp_schemas::interop_capnp::interop;
use capnp_lean_peers::host::BridgeHost;
use capnp_lean_peers::process::PeerProcess;
use capnp_lean_peers::rust_peer::run_local;
use capnp_lean_peers::scenarios::interop::{echo, run_interop_steps};
use capnp_lean_wiretap::WireTap;

const BRIDGE_PEER: &str = env!("CARGO_BIN_EXE_bridge-peer");
const DEAD_PEER: Duration = Duration::from_millis(1500);
const LATENCY: Duration = Duration::from_millis(50);

/// Runs a command, panicking with its output on failure.
fn run(args: &[&str]) {
    let output = Command::new(args[0]).args(&args[1..]).output().unwrap_or_else(|e| panic!("{args:?}: {e}"));
    assert!(output.status.success(), "{args:?} failed: {}", String::from_utf8_lossy(&output.stderr));
}

/// Two namespaces, `server` and `client`, joined by a veth pair; removed on drop.
struct Link {
    server: String,
    client: String,
    client_if: String,
    server_ip: String,
}

impl Link {
    fn create() -> Link {
        let id = std::process::id() % 200 + 20;
        let (server, client) = (format!("cln-s{id}"), format!("cln-c{id}"));
        let (server_if, client_if) = (format!("cls{id}"), format!("clc{id}"));
        let (server_ip, client_ip) = (format!("10.233.{id}.1"), format!("10.233.{id}.2"));
        let link = Link { server: server.clone(), client: client.clone(), client_if: client_if.clone(), server_ip: server_ip.clone() };
        let _ = Command::new("ip").args(["netns", "del", &server]).output();
        let _ = Command::new("ip").args(["netns", "del", &client]).output();
        run(&["ip", "netns", "add", &server]);
        run(&["ip", "netns", "add", &client]);
        run(&["ip", "link", "add", &server_if, "netns", &server, "type", "veth", "peer", "name", &client_if, "netns", &client]);
        for (ns, interface, ip) in [(&server, &server_if, &server_ip), (&client, &client_if, &client_ip)] {
            run(&["ip", "-n", ns, "addr", "add", &format!("{ip}/30"), "dev", interface]);
            run(&["ip", "-n", ns, "link", "set", interface, "up"]);
            run(&["ip", "-n", ns, "link", "set", "lo", "up"]);
        }
        link
    }

    /// Drops `percent`% of the packets entering and leaving the server namespace.
    fn lose_packets(&self, percent: u32) {
        let ns = self.server.as_str();
        run(&["ip", "netns", "exec", ns, "nft", "add", "table", "inet", "faults"]);
        for hook in ["input", "output"] {
            run(&["ip", "netns", "exec", ns, "nft", "add", "chain", "inet", "faults", hook,
                  &format!("{{ type filter hook {hook} priority 0; }}")]);
            run(&["ip", "netns", "exec", ns, "nft", "add", "rule", "inet", "faults", hook,
                  "numgen", "random", "mod", "100", "<", &percent.to_string(), "counter", "drop"]);
        }
    }

    /// Removes the loss rules and returns how many packets they dropped.
    fn stop_losing_packets(&self) -> u64 {
        let output = Command::new("ip").args(["netns", "exec", &self.server, "nft", "list", "table", "inet", "faults"]).output().unwrap();
        let listing = String::from_utf8_lossy(&output.stdout).into_owned();
        run(&["ip", "netns", "exec", &self.server, "nft", "delete", "table", "inet", "faults"]);
        listing
            .split("packets ")
            .skip(1)
            .filter_map(|rest| rest.split_whitespace().next()?.parse::<u64>().ok())
            .sum()
    }

    fn set_link(&self, up: bool) {
        run(&["ip", "-n", &self.client, "link", "set", &self.client_if, if up { "up" } else { "down" }]);
    }

    /// Moves the calling thread into the client namespace; threads it starts afterwards (such as
    /// a runtime's loop thread) are born there.
    fn enter_client_namespace(&self) {
        let ns = File::open(format!("/var/run/netns/{}", self.client)).unwrap();
        // SAFETY: setns on a valid namespace fd changes only this thread's network namespace.
        let result = unsafe { libc::setns(ns.as_raw_fd(), libc::CLONE_NEWNET) };
        assert_eq!(result, 0, "setns failed: {}", std::io::Error::last_os_error());
    }
}

impl Drop for Link {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.server]).output();
        let _ = Command::new("ip").args(["netns", "del", &self.client]).output();
    }
}

fn tools_available() -> Result<(), String> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return Err("not root (network namespaces need root)".into());
    }
    for tool in ["ip", "nft"] {
        if Command::new(tool).arg("-V").output().is_err() {
            return Err(format!("`{tool}` not found (apt-get install iproute2 nftables)"));
        }
    }
    Ok(())
}

#[test]
fn calls_survive_loss_time_out_fail_on_link_loss_and_reconnect_after() {
    if let Err(reason) = tools_available() {
        capnp_lean_toolchain::test_support::skip(&format!("netns fault test: {reason}"));
        return;
    }
    let link = Link::create();
    let listen = format!("{}:0", link.server_ip);
    let server = PeerProcess::spawn_listening("ip", &["netns", "exec", &link.server, BRIDGE_PEER, "serve-interop", "--listen", &listen], Duration::from_secs(20)).unwrap();
    let address = server.address().to_string();

    std::thread::scope(|scope| {
        scope.spawn(|| {
            link.enter_client_namespace();
            let runtime = Runtime::new().unwrap();
            let options = ConnectionOptions { dead_peer_timeout: Some(DEAD_PEER), ..capnp_lean_peers::bridge_peer::connection_options() };
            // A proxy in the client namespace that delays every chunk 50 ms, both ways.
            let slow_link = WireTap::start_with_delay("127.0.0.1:0", &address, LATENCY).unwrap();
            run_local(async {
                // 0. Under 50 ms of latency each way calls complete, slowly, and timeouts fire.
                let slow = runtime.connect_with::<capnp::capability::Client>(&slow_link.address(), None, &options).await.unwrap();
                let slow_interop: interop::Client = slow.bootstrap().unwrap();
                let started = Instant::now();
                assert_eq!(echo(&slow_interop, b"slow").await.unwrap(), b"slow");
                let round_trip = started.elapsed();
                assert!(round_trip >= LATENCY * 2, "the delay was not applied: a round trip took {round_trip:?}");
                let steps = ["echo", "fail", "counter", "counter-later", "call-back"].map(String::from);
                let skip: Vec<String> = capnp_lean_peers::scenarios::interop::INTEROP_STEPS
                    .iter().map(|s| s.to_string()).filter(|s| !steps.contains(s)).collect();
                run_interop_steps(&BridgeHost(runtime.handle()), &slow_interop, &skip).await.unwrap();
                let timed = runtime.timeout(LATENCY, echo(&slow_interop, b"too slow")).await;
                assert_eq!(timed.err().map(|e| e.kind()), Some(ErrorKind::Overloaded), "a timeout shorter than the round trip must fire");
                eprintln!("netns: under {LATENCY:?} each way a round trip took {round_trip:?}; the scenario completed");
                drop(slow);

                let connection = runtime.connect_with::<capnp::capability::Client>(&address, None, &options).await.unwrap();
                let interop: interop::Client = connection.bootstrap().unwrap();

                // 1. Under 5% packet loss in both directions every step still completes.
                link.lose_packets(5);
                let started = Instant::now();
                for _ in 0..6 {
                    run_interop_steps(&BridgeHost(runtime.handle()), &interop, &skip).await.unwrap();
                }
                let dropped = link.stop_losing_packets();
                eprintln!("netns: 6 scenario rounds under 5% loss took {:?}; {dropped} packets dropped", started.elapsed());
                assert!(dropped > 0, "the loss rule dropped nothing: the test did not test loss");

                // 2. A configured call timeout fires and cancels the call.
                let timed = runtime.timeout(Duration::from_millis(300), interop.hang_request().send().promise).await;
                assert_eq!(timed.err().map(|e| e.kind()), Some(ErrorKind::Overloaded));
                assert_eq!(echo(&interop, b"still fine").await.unwrap(), b"still fine");

                // 3. The link goes down under pending calls: they fail within the dead-peer time.
                let pending: Vec<_> = (0..3).map(|_| interop.hang_request().send().promise).collect();
                let echo_sent = echo(&interop, b"up");
                assert_eq!(echo_sent.await.unwrap(), b"up");
                let down_at = Instant::now();
                link.set_link(false);
                let limit = DEAD_PEER * 2 + Duration::from_secs(1);
                let outcomes = tokio::time::timeout(limit, futures::future::join_all(pending)).await
                    .unwrap_or_else(|_| panic!("pending calls still pending {limit:?} after the link went down"));
                for outcome in outcomes {
                    let error = outcome.err().expect("a call over a dead link cannot succeed");
                    assert_eq!(error.kind, capnp::ErrorKind::Disconnected, "{error}");
                }
                eprintln!("netns: link loss surfaced after {:?} (dead-peer timeout {DEAD_PEER:?})", down_at.elapsed());

                // 4. Back up: a new connection works.
                link.set_link(true);
                let again = runtime.connect_with::<capnp::capability::Client>(&address, None, &options).await.unwrap();
                let interop: interop::Client = again.bootstrap().unwrap();
                assert_eq!(echo(&interop, b"reconnected").await.unwrap(), b"reconnected");
            });
        });
    });
    drop(server);
}
