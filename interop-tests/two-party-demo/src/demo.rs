//! The two-party vat demo: a calculator client on the capnp-lean bridge, narrated step by step,
//! with every RPC message it caused decoded off the wire by an in-process [`WireTap`].

use std::collections::BTreeSet;
use std::io::Write;
use std::time::Duration;

use capnp::traits::HasTypeId;
use capnp_lean::Runtime;
use capnp_schemas::calculator_capnp::calculator::{self, function, value, Operator};

use capnp_lean_peers::host::{BridgeHost, CapHost};
use capnp_lean_peers::scenarios::calculator::{define, evaluate, operator, read, LocalPower, Term};
use capnp_lean_peers::scenarios::interop::step;
use capnp_lean_peers::servers::calculator::call_function;
use capnp_lean_wiretap::{CallTarget, Direction, MessageKind, ReturnOutcome, RpcMessage, SendResultsTo, WireEvent, WireTap, SEVEN_KINDS};

/// The message kinds the demo must put on the wire.
pub const REQUIRED_KINDS: [MessageKind; 7] = SEVEN_KINDS;

/// What a demo run established.
pub struct DemoReport {
    /// Every message kind seen on the wire.
    pub kinds: BTreeSet<MessageKind>,
}

impl DemoReport {
    /// Required kinds that never appeared.
    pub fn missing(&self) -> Vec<MessageKind> {
        REQUIRED_KINDS.iter().copied().filter(|k| !self.kinds.contains(k)).collect()
    }
}

fn method_name(interface_id: u64, method_id: u16) -> String {
    let name = if interface_id == calculator::Client::TYPE_ID {
        ["evaluate", "operator", "define"].get(usize::from(method_id)).copied()
    } else if interface_id == value::Client::TYPE_ID {
        ["read"].get(usize::from(method_id)).copied()
    } else if interface_id == function::Client::TYPE_ID {
        ["call"].get(usize::from(method_id)).copied()
    } else {
        None
    };
    match (interface_id, name) {
        (id, Some(name)) if id == calculator::Client::TYPE_ID => format!("Calculator.{name}"),
        (id, Some(name)) if id == value::Client::TYPE_ID => format!("Value.{name}"),
        (_, Some(name)) => format!("Function.{name}"),
        _ => format!("{interface_id:#x}.{method_id}"),
    }
}

/// One line of the wire trace, in words.
pub fn describe(event: &WireEvent) -> String {
    let who = match event.direction {
        Direction::ClientToServer => "client → server",
        Direction::ServerToClient => "server → client",
    };
    let what = match &event.message {
        RpcMessage::Bootstrap { question_id } => format!("Bootstrap        q{question_id}"),
        RpcMessage::Call { question_id, interface_id, method_id, target, send_results_to } => {
            let target = match target {
                CallTarget::ImportedCap(id) => format!("capability #{id}"),
                CallTarget::PromisedAnswer { question_id, path } => {
                    format!("pipelined on answer q{question_id} field {path:?}")
                }
            };
            let to = match send_results_to {
                SendResultsTo::Caller => "",
                SendResultsTo::Yourself => "  (results kept by callee: sendResultsTo.yourself)",
                SendResultsTo::ThirdParty => "  (results to a third party)",
            };
            format!("Call             q{question_id} {} on {target}{to}", method_name(*interface_id, *method_id))
        }
        RpcMessage::Return { answer_id, outcome, .. } => {
            let outcome = match outcome {
                ReturnOutcome::Results { cap_count } => format!("results with {cap_count} capabilities"),
                ReturnOutcome::Exception { kind, reason } => format!("exception {kind}: {reason}"),
                ReturnOutcome::TakeFromOtherQuestion(q) => format!("take results of q{q}"),
                other => format!("{other:?}"),
            };
            format!("Return           q{answer_id}: {outcome}")
        }
        RpcMessage::Finish { question_id } => format!("Finish           q{question_id}"),
        RpcMessage::Resolve { promise_id, resolution } => format!("Resolve          promise #{promise_id} → {resolution:?}"),
        RpcMessage::Release { id, reference_count } => format!("Release          capability #{id} ({reference_count} refs)"),
        RpcMessage::Disembargo { context } => format!("Disembargo       {context}"),
        other => format!("{other:?}"),
    };
    format!("  {who}  {what}")
}

/// Runs the narrated calculator client against the server at `address`, printing to `out`.
/// Fails if any result is wrong; the report says which message kinds appeared.
pub fn run_client(address: &str, out: &mut impl Write) -> Result<DemoReport, String> {
    // The tap runs its own tokio runtime, so it lives outside the client's.
    let tap = WireTap::start("127.0.0.1:0", address).map_err(|e| format!("cannot start the wire tap: {e}"))?;
    capnp_lean_peers::rust_peer::run_local(narrated_client(&tap, address, out))?;
    let mut say = |line: String| {
        let _ = writeln!(out, "{line}");
    };
    say("wire trace (decoded by the tap):".to_string());
    for event in tap.events() {
        say(describe(&event));
    }
    let report = DemoReport { kinds: tap.kinds_seen() };
    let seen: Vec<String> = REQUIRED_KINDS
        .iter()
        .map(|k| format!("{k:?} {}", if report.kinds.contains(k) { "✓" } else { "✗" }))
        .collect();
    say(format!("message kinds: {}", seen.join("  ")));
    Ok(report)
}

async fn narrated_client(tap: &WireTap, address: &str, out: &mut impl Write) -> Result<(), String> {
    let runtime = Runtime::new().map_err(|e| e.to_string())?;
    let host = BridgeHost(runtime.handle());
    let mut say = |line: String| {
        let _ = writeln!(out, "{line}");
    };
    say(format!("client: connecting to {address} (through a wire tap at {})", tap.address()));
    let connection = capnp_lean_peers::bridge_peer::connect(&runtime, &tap.address()).await?;
    let calculator: calculator::Client = connection.bootstrap().map_err(|e| e.to_string())?;

    let check = |what: &str, got: f64, want: f64| {
        if got == want { Ok(()) } else { Err(format!("{what}: got {got}, expected {want}")) }
    };
    let literal = step("evaluate(123.5)", read(&evaluate(&calculator, &Term::Literal(123.5)))).await?;
    check("literal", literal, 123.5)?;
    say(format!("client: evaluate(123.5) → Value, read() = {literal}"));

    let add = operator(&calculator, Operator::Add);
    let multiply = operator(&calculator, Operator::Multiply);
    let sum = evaluate(&calculator, &Term::Apply(add.clone(), vec![Term::Literal(2.0), Term::Literal(3.0)]));
    let product = evaluate(&calculator, &Term::Apply(multiply.clone(), vec![Term::Value(sum), Term::Literal(4.0)]));
    let pipelined = step("(2 + 3) * 4", read(&product)).await?;
    check("(2 + 3) * 4", pipelined, 20.0)?;
    say(format!("client: (2 + 3) * 4 = {pipelined}  — 5 calls sent before any answer arrived (pipelining)"));

    let body = Term::Apply(add.clone(), vec![Term::Apply(multiply, vec![Term::Argument(0), Term::Argument(1)]), Term::Argument(0)]);
    let f = define(&calculator, 2, &body);
    let f_value = step("f(3, 4)", call_function(&f, &[3.0, 4.0])).await?;
    check("f(3, 4)", f_value, 15.0)?;
    say(format!("client: define f(x, y) = x * y + x on the server; f(3, 4) = {f_value}"));

    let power = LocalPower::default();
    let power_client: function::Client = host.serve(power.clone()).map_err(|e| e.to_string())?;
    let expression = Term::Apply(add, vec![Term::Apply(power_client.clone(), vec![Term::Literal(2.0), Term::Literal(10.0)]), Term::Literal(1.0)]);
    let called_back = step("2^10 + 1", read(&evaluate(&calculator, &expression))).await?;
    check("2^10 + 1", called_back, 1025.0)?;
    say(format!("client: 2^10 + 1 = {called_back}  — the server called back our own power function ({} call)", power.calls()));

    let forwarder = define(&calculator, 2, &Term::Apply(power_client, vec![Term::Argument(0), Term::Argument(1)]));
    let forwarded = step("forwarder(3, 2)", call_function(&forwarder, &[3.0, 2.0])).await?;
    check("forwarder(3, 2)", forwarded, 9.0)?;
    say(format!(
        "client: define g = power(x, y) resolves to our own function; g(3, 2) = {forwarded} ({} calls reached it)",
        power.calls()
    ));
    if power.calls() != 2 {
        return Err(format!("our power function saw {} calls, expected 2", power.calls()));
    }

    drop((f, forwarder, calculator));
    say("client: dropped every capability (Release goes out)".to_string());
    // Release travels asynchronously; give it a moment to reach the wire before closing.
    let _ = runtime.sleep(Duration::from_millis(1)).await;
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while tap.count(MessageKind::Release) == 0 && std::time::Instant::now() < deadline {
        let _ = runtime.sleep(Duration::from_millis(10)).await;
    }
    drop(connection);
    Ok(())
}
