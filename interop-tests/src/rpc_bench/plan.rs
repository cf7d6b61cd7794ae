//! What `rpc-bench` runs: the clients, the payload sizes, the windows, and the command line of
//! each client process.

/// Which server a client talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum ServerKind {
    /// The shared `Interop` RPC server.
    Rpc,
    /// The raw TCP echo server (`tcp-floor serve-echo`).
    TcpEcho,
}

/// One client of the matrix.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct ClientSpec {
    /// The `client` field of its results.
    pub client: &'static str,
    /// The `transport` field of its results.
    pub transport: &'static str,
    /// The binary (a sibling of `rpc-bench`).
    pub binary: &'static str,
    /// Arguments before the common `--connect`, `--calls`, `--payload` (and `--windows`).
    pub args: &'static [&'static str],
    /// The server it talks to.
    pub server: ServerKind,
    /// Whether it measures only the sequential run (the TCP floor has no pipelining).
    pub sequential_only: bool,
}

impl ClientSpec {
    /// `client/transport`, the row label in the table.
    pub fn label(&self) -> String {
        format!("{}/{}", self.client, self.transport)
    }

    /// The arguments for one process: `calls` per measurement, `payload` bytes, `windows`.
    pub fn command(&self, address: &str, calls: u32, payload: usize, windows: &[u32]) -> Vec<String> {
        let mut command: Vec<String> = self.args.iter().map(|a| a.to_string()).collect();
        command.extend(["--connect".into(), address.into(), "--calls".into(), calls.to_string()]);
        command.extend(["--payload".into(), payload.to_string()]);
        if !self.sequential_only {
            let windows: Vec<String> = windows.iter().map(u32::to_string).collect();
            command.extend(["--windows".into(), windows.join(",")]);
        }
        command
    }
}

/// The client every ratio is taken against.
pub const BASELINE: &str = "kj-cxx";

/// Every client, in the order they run within a round.
pub const CLIENTS: [ClientSpec; 6] = [
    ClientSpec { client: "tcp-floor", transport: "tcp", binary: "tcp-floor", args: &["bench"], server: ServerKind::TcpEcho, sequential_only: true },
    ClientSpec { client: BASELINE, transport: "stock", binary: "kj-bench-client", args: &[], server: ServerKind::Rpc, sequential_only: false },
    ClientSpec {
        client: "capnp-lean-bridge",
        transport: "stock",
        binary: "bridge-peer",
        args: &["bench", "--transport", "stock"],
        server: ServerKind::Rpc,
        sequential_only: false,
    },
    ClientSpec {
        client: "capnp-lean-bridge",
        transport: "coalescing",
        binary: "bridge-peer",
        args: &["bench", "--transport", "coalescing"],
        server: ServerKind::Rpc,
        sequential_only: false,
    },
    ClientSpec {
        client: "capnp-lean-bridge-caller-thread",
        transport: "coalescing",
        binary: "bridge-peer",
        args: &["bench", "--transport", "coalescing", "--caller-thread"],
        server: ServerKind::Rpc,
        sequential_only: false,
    },
    ClientSpec { client: "rust-capnp-rpc", transport: "capnp-rpc", binary: "rust-peer", args: &["bench"], server: ServerKind::Rpc, sequential_only: false },
];

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pipelining_clients_get_the_windows_and_the_floor_does_not() {
        let kj = CLIENTS.iter().find(|c| c.client == BASELINE).unwrap();
        assert_eq!(
            kj.command("a:1", 10, 16, &[1, 8]),
            ["--connect", "a:1", "--calls", "10", "--payload", "16", "--windows", "1,8"]
        );
        let floor = CLIENTS.iter().find(|c| c.sequential_only).unwrap();
        assert_eq!(floor.command("a:1", 10, 16, &[1, 8]), ["bench", "--connect", "a:1", "--calls", "10", "--payload", "16"]);
    }

    #[test]
    fn every_row_label_is_unique() {
        let labels: std::collections::BTreeSet<String> = CLIENTS.iter().map(ClientSpec::label).collect();
        assert_eq!(labels.len(), CLIENTS.len());
    }

    #[test]
    fn large_payloads_make_fewer_calls() {
        assert_eq!((calls_for(4000, 1024), calls_for(4000, 65536), calls_for(100, 65536)), (4000, 1000, 50));
    }
}
