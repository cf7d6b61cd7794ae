//! The capnp-lean bridge as a peer: the same servers and client scenarios as
//! [`rust_peer`](crate::rust_peer), hosted by a [`capnp_lean::Runtime`] (KJ underneath).

use std::io::Write;

use capnp_lean::{Connection, ConnectionOptions, Runtime, Transport};
use capnp_schemas::calculator_capnp::calculator;
use capnp_schemas::interop_capnp::interop;

use crate::host::BridgeHost;
use crate::process::LISTENING_PREFIX;
use crate::rust_peer::bench::BenchPlan;
use crate::scenarios::calculator::run_calculator_scenario;
use crate::scenarios::interop::{check_step_names, run_interop_steps};
use crate::servers::calculator::CalculatorServer;
use crate::servers::forwarding::ForwardingInterop;
use crate::servers::interop::InteropServer;

/// Connection options for the bridge peers and tests: the defaults, with the transport taken
/// from `CAPNP_LEAN_TRANSPORT` (`stock` or `coalescing`) so the whole interop suite can be run
/// on either, and the deadlines for peers that do not progress from
/// `CAPNP_LEAN_HANDSHAKE_TIMEOUT_MS` / `CAPNP_LEAN_STALL_TIMEOUT_MS`, and the send-queue bound
/// from `CAPNP_LEAN_SEND_QUEUE_LIMIT_BYTES` / `CAPNP_LEAN_SEND_QUEUE_TIMEOUT_MS` (`off` for none). An
/// unknown value is an error rather than a silent default.
pub fn connection_options() -> ConnectionOptions {
    let transport = match std::env::var("CAPNP_LEAN_TRANSPORT").as_deref() {
        Err(_) | Ok("") | Ok("coalescing") => Transport::Coalescing,
        Ok("stock") => Transport::Stock,
        Ok(other) => panic!("CAPNP_LEAN_TRANSPORT={other:?}: expected `stock` or `coalescing`"),
    };
    let defaults = ConnectionOptions::default();
    ConnectionOptions {
        transport,
        handshake_timeout: timeout_from_env("CAPNP_LEAN_HANDSHAKE_TIMEOUT_MS", defaults.handshake_timeout),
        stall_timeout: timeout_from_env("CAPNP_LEAN_STALL_TIMEOUT_MS", defaults.stall_timeout),
        send_queue_timeout: timeout_from_env("CAPNP_LEAN_SEND_QUEUE_TIMEOUT_MS", defaults.send_queue_timeout),
        send_queue_limit: match std::env::var("CAPNP_LEAN_SEND_QUEUE_LIMIT_BYTES").as_deref() {
            Err(_) | Ok("") => defaults.send_queue_limit,
            Ok("off") => None,
            Ok(bytes) => Some(bytes.parse().unwrap_or_else(|_| panic!("CAPNP_LEAN_SEND_QUEUE_LIMIT_BYTES={bytes:?}: expected bytes or `off`"))),
        },
        ..defaults
    }
}

fn timeout_from_env(name: &str, default: Option<std::time::Duration>) -> Option<std::time::Duration> {
    match std::env::var(name).as_deref() {
        Err(_) | Ok("") => default,
        Ok("off") => None,
        Ok(ms) => match ms.parse() {
            Ok(ms) => Some(std::time::Duration::from_millis(ms)),
            Err(_) => panic!("{name}={ms:?}: expected milliseconds or `off`"),
        },
    }
}

/// Which bootstrap interface a bridge server offers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Service {
    /// `interop.capnp`'s `Interop`.
    Interop,
    /// `calculator.capnp`'s `Calculator`.
    Calculator,
}

/// The bootstrap capability for `service`, hosted by `runtime`.
pub fn bootstrap_for(runtime: &Runtime, service: Service) -> Result<capnp::capability::Client, String> {
    let host = BridgeHost(runtime.handle());
    let hosted = match service {
        Service::Interop => InteropServer::new(host).into_client().map(|c| c.client),
        Service::Calculator => CalculatorServer::new_client(host).map(|c| c.client),
    };
    hosted.map_err(|e| format!("cannot host the {service:?} server: {e}"))
}

/// Listens on `address`, prints `listening on ADDR` (the bound address), and serves until the
/// process is killed.
pub fn serve_until_killed(address: &str, service: Service) -> Result<(), String> {
    let runtime = Runtime::new().map_err(|e| e.to_string())?;
    let bootstrap = bootstrap_for(&runtime, service)?;
    listen_until_killed(&runtime, address, &bootstrap)
}

/// Like [`serve_until_killed`] with an `Interop` server that forwards `echo` and `fail` to the
/// `Interop` server at `upstream` ([`ForwardingInterop`]): a bridge proxy.
pub fn serve_proxy_until_killed(address: &str, upstream: &str) -> Result<(), String> {
    let runtime = Runtime::new().map_err(|e| e.to_string())?;
    let upstream = capnp_lean::block_on(connect(&runtime, upstream)).map_err(|e| e.to_string())??;
    let upstream = std::sync::Arc::new(upstream);
    let proxy = ForwardingInterop::new(move || Ok(upstream.bootstrap::<interop::Client>()?));
    let bootstrap = runtime.serve::<interop::Client, _>(proxy).map_err(|e| format!("cannot host the proxy: {e}"))?;
    listen_until_killed(&runtime, address, &bootstrap.client)
}

fn listen_until_killed(runtime: &Runtime, address: &str, bootstrap: &capnp::capability::Client) -> Result<(), String> {
    let listener = capnp_lean::block_on(runtime.listen_with(address, bootstrap, &connection_options()))
        .map_err(|e| e.to_string())?
        .map_err(|e| e.to_string())?;
    let mut stdout = std::io::stdout();
    writeln!(stdout, "{LISTENING_PREFIX}{}", listener.address())
        .and_then(|()| stdout.flush())
        .map_err(|e| e.to_string())?;
    loop {
        std::thread::park();
    }
}

/// Connects a bridge client to `address`.
pub async fn connect(runtime: &Runtime, address: &str) -> Result<Connection, String> {
    runtime.connect_with::<capnp::capability::Client>(address, None, &connection_options()).await.map_err(|e| e.to_string())
}

/// Runs every `Interop` step not in `skip` from a bridge client (inside a tokio `LocalSet`).
pub async fn client_interop(address: &str, skip: &[String]) -> Result<(), String> {
    check_step_names(skip)?;
    let runtime = Runtime::new().map_err(|e| e.to_string())?;
    let connection = connect(&runtime, address).await?;
    let interop: interop::Client = connection.bootstrap().map_err(|e| e.to_string())?;
    run_interop_steps(&BridgeHost(runtime.handle()), &interop, skip).await
}

/// Runs the `Calculator` scenario from a bridge client (inside a tokio `LocalSet`).
pub async fn client_calculator(address: &str) -> Result<(), String> {
    let runtime = Runtime::new().map_err(|e| e.to_string())?;
    let connection = connect(&runtime, address).await?;
    let calculator: calculator::Client = connection.bootstrap().map_err(|e| e.to_string())?;
    run_calculator_scenario(&BridgeHost(runtime.handle()), &calculator).await
}

/// Where a bridge client's own code runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientThread {
    /// On the runtime's loop thread (`RuntimeRef::run`): calls never cross threads.
    Loop,
    /// On the caller's thread: every call and completion crosses to and from the loop thread.
    Caller,
}

/// The benchmark from a bridge client whose code runs on `thread`: the JSON lines to print.
pub fn bench_interop(address: &str, plan: &BenchPlan, thread: ClientThread) -> Result<Vec<String>, String> {
    let runtime = Runtime::new().map_err(|e| e.to_string())?;
    let connection = capnp_lean::block_on(connect(&runtime, address)).map_err(|e| e.to_string())??;
    match thread {
        ClientThread::Caller => crate::rust_peer::run_local(async {
            let interop: interop::Client = connection.bootstrap().map_err(|e| e.to_string())?;
            plan.run("capnp-lean-bridge-caller-thread", &interop).await
        }),
        ClientThread::Loop => {
            let connection = std::sync::Arc::new(connection);
            let on_loop = connection.clone();
            let plan = plan.clone();
            capnp_lean::block_on(runtime.run(move || async move {
                let interop: interop::Client = on_loop.bootstrap().map_err(|e| e.to_string())?;
                plan.run("capnp-lean-bridge", &interop).await
            }))
            .map_err(|e| e.to_string())?
            .map_err(|e| e.to_string())?
        }
    }
}
