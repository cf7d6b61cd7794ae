//! What `rpc-bench` runs: the servers, the clients, every client × server pair, the payload
//! sizes, the windows, and the command line of each process.

/// What a peer speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Protocol {
    /// Cap'n Proto RPC, the `Interop` interface.
    Rpc,
    /// Raw bytes echoed back (the TCP floor).
    TcpEcho,
}

/// One server of the matrix, run as its own process for the whole run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ServerSpec {
    /// The `server` field of its results, named like the clients.
    pub server: &'static str,
    /// The `server_transport` field of its results.
    pub transport: &'static str,
    /// Its name for `rpc-bench --servers`.
    pub choice: &'static str,
    /// The binary (a sibling of `rpc-bench`).
    pub binary: &'static str,
    /// Arguments before the common `--listen 127.0.0.1:0`.
    pub args: &'static [&'static str],
    /// What it serves.
    pub protocol: Protocol,
}

impl ServerSpec {
    /// `server/transport`, as in the tables.
    pub fn label(&self) -> String {
        format!("{}/{}", self.server, self.transport)
    }

    /// The arguments that start it listening on a free loopback port.
    pub fn command(&self) -> Vec<String> {
        let mut command: Vec<String> = self.args.iter().map(|a| a.to_string()).collect();
        command.extend(["--listen".into(), "127.0.0.1:0".into()]);
        command
    }
}

/// The native C++ KJ server (`cxx/kj_bench_server.c++`).
pub const KJ_SERVER: ServerSpec =
    ServerSpec { server: "kj-cxx", transport: "stock", choice: "kj", binary: "kj-bench-server", args: &[], protocol: Protocol::Rpc };
/// The Rust capnp-rpc server (`rust-peer serve-interop`).
pub const RUST_SERVER: ServerSpec = ServerSpec {
    server: "rust-capnp-rpc",
    transport: "capnp-rpc",
    choice: "rust",
    binary: "rust-peer",
    args: &["serve-interop"],
    protocol: Protocol::Rpc,
};
/// The bridge server on KJ's stock message stream.
pub const BRIDGE_STOCK_SERVER: ServerSpec = ServerSpec {
    server: "capnp-lean-bridge",
    transport: "stock",
    choice: "bridge-stock",
    binary: "bridge-peer",
    args: &["serve-interop", "--transport", "stock"],
    protocol: Protocol::Rpc,
};
/// The bridge server on the coalescing stream.
pub const BRIDGE_SERVER: ServerSpec = ServerSpec {
    server: "capnp-lean-bridge",
    transport: "coalescing",
    choice: "bridge",
    binary: "bridge-peer",
    args: &["serve-interop", "--transport", "coalescing"],
    protocol: Protocol::Rpc,
};
/// The raw TCP echo server, which only the floor client talks to.
pub const TCP_ECHO_SERVER: ServerSpec =
    ServerSpec { server: "tcp-floor", transport: "tcp", choice: "tcp-echo", binary: "tcp-floor", args: &["serve-echo"], protocol: Protocol::TcpEcho };

/// Every RPC server, in table order.
pub const SERVERS: [ServerSpec; 4] = [KJ_SERVER, RUST_SERVER, BRIDGE_STOCK_SERVER, BRIDGE_SERVER];

/// One client of the matrix, run as its own process per server, payload and round.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ClientSpec {
    /// The `client` field of its results.
    pub client: &'static str,
    /// The `transport` field of its results.
    pub transport: &'static str,
    /// The binary (a sibling of `rpc-bench`).
    pub binary: &'static str,
    /// Arguments before the common `--connect`, `--calls`, `--payload` (and `--windows`).
    pub args: &'static [&'static str],
    /// What it speaks, so which servers it is paired with.
    pub protocol: Protocol,
    /// Whether it measures only the sequential run (the TCP floor has no pipelining).
    pub sequential_only: bool,
}

impl ClientSpec {
    /// `client/transport`, the row label in the tables.
    pub fn label(&self) -> String {
        format!("{}/{}", self.client, self.transport)
    }

    /// The arguments for one process: `calls` per measurement, `payload` bytes, `windows`, and
    /// `--marks` when the server's CPU time is read between measurements.
    pub fn command(&self, address: &str, calls: u32, payload: usize, windows: &[u32], marks: bool) -> Vec<String> {
        let mut command: Vec<String> = self.args.iter().map(|a| a.to_string()).collect();
        command.extend(["--connect".into(), address.into(), "--calls".into(), calls.to_string()]);
        command.extend(["--payload".into(), payload.to_string()]);
        if !self.sequential_only {
            let windows: Vec<String> = windows.iter().map(u32::to_string).collect();
            command.extend(["--windows".into(), windows.join(",")]);
        }
        if marks {
            command.push("--marks".into());
        }
        command
    }
}

/// The raw TCP ping-pong client: the latency floor.
pub const FLOOR_CLIENT: ClientSpec =
    ClientSpec { client: "tcp-floor", transport: "tcp", binary: "tcp-floor", args: &["bench"], protocol: Protocol::TcpEcho, sequential_only: true };
/// The native C++ KJ client (`cxx/kj_bench_client.c++`).
pub const KJ_CLIENT: ClientSpec =
    ClientSpec { client: "kj-cxx", transport: "stock", binary: "kj-bench-client", args: &[], protocol: Protocol::Rpc, sequential_only: false };
/// The bridge client on the stock stream, client code on the loop thread.
pub const BRIDGE_STOCK_CLIENT: ClientSpec = ClientSpec {
    client: "capnp-lean-bridge",
    transport: "stock",
    binary: "bridge-peer",
    args: &["bench", "--transport", "stock"],
    protocol: Protocol::Rpc,
    sequential_only: false,
};
/// The bridge client on the coalescing stream, client code on the loop thread.
pub const BRIDGE_CLIENT: ClientSpec = ClientSpec {
    client: "capnp-lean-bridge",
    transport: "coalescing",
    binary: "bridge-peer",
    args: &["bench", "--transport", "coalescing"],
    protocol: Protocol::Rpc,
    sequential_only: false,
};
/// The bridge client on the coalescing stream, client code on the caller's thread.
pub const BRIDGE_CALLER_THREAD_CLIENT: ClientSpec = ClientSpec {
    client: "capnp-lean-bridge-caller-thread",
    transport: "coalescing",
    binary: "bridge-peer",
    args: &["bench", "--transport", "coalescing", "--caller-thread"],
    protocol: Protocol::Rpc,
    sequential_only: false,
};
/// The Rust capnp-rpc client.
pub const RUST_CLIENT: ClientSpec =
    ClientSpec { client: "rust-capnp-rpc", transport: "capnp-rpc", binary: "rust-peer", args: &["bench"], protocol: Protocol::Rpc, sequential_only: false };

/// Every client, in table order.
pub const CLIENTS: [ClientSpec; 6] = [FLOOR_CLIENT, KJ_CLIENT, BRIDGE_STOCK_CLIENT, BRIDGE_CLIENT, BRIDGE_CALLER_THREAD_CLIENT, RUST_CLIENT];

/// One client against one server: a cell group of the matrix.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Pair {
    /// Who calls.
    pub client: ClientSpec,
    /// Who answers.
    pub server: ServerSpec,
}

impl Pair {
    /// `client/transport → server/transport`.
    pub fn label(&self) -> String {
        format!("{} → {}", self.client.label(), self.server.label())
    }
}

/// The pair every ratio is taken against: native KJ on both ends.
pub const BASELINE: Pair = Pair { client: KJ_CLIENT, server: KJ_SERVER };

/// Each implementation against itself, in the symmetric table's order.
pub const SYMMETRIC: [Pair; 4] = [
    BASELINE,
    Pair { client: RUST_CLIENT, server: RUST_SERVER },
    Pair { client: BRIDGE_CLIENT, server: BRIDGE_SERVER },
    Pair { client: BRIDGE_STOCK_CLIENT, server: BRIDGE_STOCK_SERVER },
];

/// Every client × server pair with `servers` (in table order): each RPC client against each
/// of `servers`, and the floor client against the TCP echo server.
pub fn pairs(servers: &[ServerSpec]) -> Vec<Pair> {
    let mut pairs = Vec::new();
    for client in CLIENTS {
        match client.protocol {
            Protocol::TcpEcho => pairs.push(Pair { client, server: TCP_ECHO_SERVER }),
            Protocol::Rpc => pairs.extend(servers.iter().map(|&server| Pair { client, server })),
        }
    }
    pairs
}

/// Params sizes measured, bytes.
pub const PAYLOADS: [usize; 3] = [16, 1024, 64 * 1024];

/// Calls kept in flight in the pipelined runs.
pub const WINDOWS: [u32; 4] = [1, 8, 64, 256];

/// Calls per measurement for `payload`: a quarter for 64 KiB (at least 50), whose calls each
/// move 4,096 times the bytes of a 16 B call.
pub fn calls_for(calls: u32, payload: usize) -> u32 {
    if payload >= 32 * 1024 {
        (calls / 4).max(50)
    } else {
        calls
    }
}

/// `items` rotated left by `by`: within a round, each round starts at a different one, so no
/// client or server always runs first or last.
pub fn rotated<T: Copy>(items: &[T], by: usize) -> Vec<T> {
    if items.is_empty() {
        return Vec::new();
    }
    (0..items.len()).map(|i| items[(i + by) % items.len()]).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pipelining_clients_get_the_windows_and_the_floor_does_not() {
        assert_eq!(
            KJ_CLIENT.command("a:1", 10, 16, &[1, 8], true),
            ["--connect", "a:1", "--calls", "10", "--payload", "16", "--windows", "1,8", "--marks"]
        );
        assert_eq!(FLOOR_CLIENT.command("a:1", 10, 16, &[1, 8], false), ["bench", "--connect", "a:1", "--calls", "10", "--payload", "16"]);
    }

    #[test]
    fn every_rpc_client_meets_every_server_and_the_floor_only_the_echo_server() {
        let all = pairs(&SERVERS);
        assert_eq!(all.len(), 1 + 5 * 4);
        assert!(all.iter().all(|p| p.client.protocol == p.server.protocol));
        assert_eq!(all.iter().filter(|p| p.client == FLOOR_CLIENT).count(), 1);
        for server in SERVERS {
            assert_eq!(all.iter().filter(|p| p.server == server).count(), 5, "{}", server.label());
        }
        assert_eq!(pairs(&[KJ_SERVER]).len(), 1 + 5);
    }

    #[test]
    fn every_label_is_unique() {
        let clients: std::collections::BTreeSet<String> = CLIENTS.iter().map(ClientSpec::label).collect();
        let servers: std::collections::BTreeSet<String> = SERVERS.iter().map(ServerSpec::label).collect();
        let choices: std::collections::BTreeSet<&str> = SERVERS.iter().map(|s| s.choice).collect();
        assert_eq!((clients.len(), servers.len(), choices.len()), (CLIENTS.len(), SERVERS.len(), SERVERS.len()));
    }

    #[test]
    fn symmetric_pairs_name_the_same_implementation_on_both_ends() {
        for pair in SYMMETRIC {
            assert_eq!((pair.client.client, pair.client.transport), (pair.server.server, pair.server.transport));
        }
    }

    #[test]
    fn rotation_starts_each_round_elsewhere() {
        assert_eq!(rotated(&[1, 2, 3], 1), [2, 3, 1]);
        assert_eq!(rotated(&[1, 2, 3], 4), [2, 3, 1]);
    }

    #[test]
    fn large_payloads_make_fewer_calls() {
        assert_eq!((calls_for(4000, 1024), calls_for(4000, 65536), calls_for(100, 65536)), (4000, 1000, 50));
    }
}
