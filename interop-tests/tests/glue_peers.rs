//! The Lean glue against independent peers in separate processes and over real sockets, with the
//! evidence taken from the wire (frames decoded by the wiretap): bootstrap, a call carrying a
//! `ByteArray` message, reading its results, pipelining, Release when the last Lean reference is
//! dropped, a promise capability resolving on the wire, a remote server calling back into a Lean
//! function, and a Lean server closure answering a capnp-rpc (Rust) client.
#![allow(unsafe_code)]

mod glue_support;

use std::sync::mpsc;
use std::sync::Mutex;
use std::time::Duration;

use capnp::message::{Builder, HeapAllocator};
use capnp::traits::{HasTypeId, ImbueMut};
use capnp_lean::glue;
use capnp_lean::lean::{self, Obj};
use capnp_schemas::calculator_capnp::calculator::{self, function, value};
use glue_support::{ok, Payload, Shared};
use interop_tests::process::PeerProcess;
use interop_tests::rust_peer::{connect, run_local, Address};
use interop_tests::wiretap::{MessageKind, WireTap};

const BRIDGE_PEER: &str = env!("CARGO_BIN_EXE_bridge-peer");
const START_TIMEOUT: Duration = Duration::from_secs(20);
const WIRE_TIMEOUT: Duration = Duration::from_secs(10);

/// The bridge's calculator demo server, reached through a wiretap.
fn calculator_behind_tap() -> (PeerProcess, WireTap) {
    let peer = PeerProcess::spawn_listening(BRIDGE_PEER, &["serve-calculator", "--listen", "127.0.0.1:0"], START_TIMEOUT).unwrap();
    let tap = WireTap::start("127.0.0.1:0", peer.address()).unwrap();
    (peer, tap)
}

struct DummyValue;
impl value::Server for DummyValue {}
struct DummyFunction;
impl function::Server for DummyFunction {}

/// `evaluate` params; `fill` writes the expression. Capability fields are written with
/// placeholder clients so that capability pointer `i` indexes entry `i` of the glue's table.
fn evaluate_params(fill: impl FnOnce(calculator::expression::Builder)) -> Builder<HeapAllocator> {
    let mut m = Builder::new_default();
    let mut placeholders = Vec::new();
    let mut root = m.init_root::<calculator::evaluate_params::Builder>();
    root.imbue_mut(&mut placeholders);
    fill(root.init_expression());
    m
}

fn literal(v: f64) -> Builder<HeapAllocator> {
    evaluate_params(|mut e| e.set_literal(v))
}

fn read_value(cap: &Obj) -> f64 {
    let (_call, rx) = glue_support::start_call(cap, value::Client::TYPE_ID, 0, &glue_support::empty_message(), &[]);
    let payload = glue_support::wait(&rx).unwrap_or_else(|e| panic!("read failed: {e}"));
    payload.reader().get_root::<value::read_results::Reader>().unwrap().get_value()
}

fn pipeline(call: &Obj, path: &[u16]) -> Obj {
    let path = lean::mk_array(path.iter().map(|&p| Obj::boxed(usize::from(p))).collect());
    // SAFETY: borrowed arguments.
    ok(unsafe { glue::capnp_lean_kj_call_pipeline(call.as_ptr(), path.as_ptr()) })
}

fn assert_kinds(tap: &WireTap, kinds: &[MessageKind]) {
    for kind in kinds {
        assert!(tap.wait_for(*kind, WIRE_TIMEOUT), "{kind:?} never appeared on the wire:\n{}", tap.transcript());
    }
}

#[test]
fn bootstrap_call_results_and_pipelining_against_the_calculator_bridge_server() {
    let Some(_env) = glue_support::require() else { return };
    let (_peer, tap) = calculator_behind_tap();
    {
        let rt = glue_support::new_runtime();
        let (_conn, calc) = glue_support::connect(&rt, &tap.address());
        let (evaluate, rx) = glue_support::start_call(&calc, calculator::Client::TYPE_ID, 0, &literal(123.5), &[]);
        // Pipelined: read the Value before evaluate's results have arrived.
        let promised = pipeline(&evaluate, &[0]);
        assert_eq!(read_value(&promised), 123.5);
        let results: Payload = glue_support::wait(&rx).unwrap();
        assert_eq!(results.caps.len(), 1, "the results' capability table holds the Value");
        let root = results.reader();
        let root = root.get_root::<calculator::evaluate_results::Reader>().unwrap();
        assert!(root.has_value(), "the results point at a capability");
        assert_eq!(read_value(&results.caps[0].0), 123.5);
        // Pipelining on a completed call still works (KJ keeps the results).
        assert_eq!(read_value(&pipeline(&evaluate, &[0])), 123.5);
        assert_kinds(&tap, &[MessageKind::Bootstrap, MessageKind::Call, MessageKind::Return]);
        drop((results, promised, evaluate, calc));
        assert_kinds(&tap, &[MessageKind::Finish, MessageKind::Release]);
    }
    glue_support::assert_no_live_glue_objects();
}

#[test]
fn dropping_the_last_lean_reference_to_a_remote_capability_sends_release() {
    let Some(_env) = glue_support::require() else { return };
    let (_peer, tap) = calculator_behind_tap();
    let rt = glue_support::new_runtime();
    let (_conn, calc) = glue_support::connect(&rt, &tap.address());
    let (call, rx) = glue_support::start_call(&calc, calculator::Client::TYPE_ID, 0, &literal(5.0), &[]);
    let mut results = glue_support::wait(&rx).unwrap();
    drop(call);
    let value = results.caps.pop().unwrap().0;
    // SAFETY: borrowed capability.
    let second = ok(unsafe { glue::capnp_lean_kj_cap_clone(value.as_ptr()) });
    assert_eq!(read_value(&value), 5.0);
    assert!(tap.wait_for(MessageKind::Finish, WIRE_TIMEOUT));
    std::thread::sleep(Duration::from_millis(200));
    let before = tap.count(MessageKind::Release);
    drop(value);
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(tap.count(MessageKind::Release), before, "another handle still refers to the capability");
    assert_eq!(read_value(&second), 5.0);
    assert_eq!(second.rc(), 1, "this is the last Lean reference");
    drop(second); // the finalizer releases the handle
    assert!(
        tap.wait_until(WIRE_TIMEOUT, |events| events.iter().filter(|e| e.message.kind() == MessageKind::Release).count() > before),
        "no Release after the last reference was dropped:\n{}",
        tap.transcript()
    );
}

#[test]
fn a_promise_capability_sent_to_the_remote_calculator_resolves_on_the_wire() {
    let Some(_env) = glue_support::require() else { return };
    let (_peer, tap) = calculator_behind_tap();
    let rt = glue_support::new_runtime();
    let (_conn, calc) = glue_support::connect(&rt, &tap.address());
    // SAFETY: borrowed runtime.
    let pair = ok(unsafe { glue::capnp_lean_kj_promise_cap_new(rt.as_ptr()) });
    let (promise, resolver) = (pair.ctor_get_owned(0), pair.ctor_get_owned(1));
    let params = evaluate_params(|mut e| e.set_value(capnp_rpc::new_client(DummyValue)));
    let (_call, rx) = glue_support::start_call(&calc, calculator::Client::TYPE_ID, 0, &params, &[Some(&promise)]);
    // The server answers at once with a promised Value and evaluates it by calling read() on
    // our promise, which waits on our side until it resolves.
    let results = glue_support::wait(&rx).unwrap_or_else(|e| panic!("evaluate failed: {e}"));
    let value = &results.caps[0].0;
    let (_read, read_rx) = glue_support::start_call(value, value::Client::TYPE_ID, 0, &glue_support::empty_message(), &[]);
    if let Ok(early) = read_rx.recv_timeout(Duration::from_millis(300)) {
        panic!("read should wait for the promise, but completed ({:?}):\n{}", early.err(), tap.transcript());
    }
    let forty_two = glue_support::serve(
        &rt,
        glue_support::server_closure(|_, _, call| {
            let mut m = Builder::new_default();
            m.init_root::<value::read_results::Builder>().set_value(42.0);
            glue_support::respond(&call, &m, &[]).unwrap();
        }),
    );
    // SAFETY: borrowed arguments.
    ok(unsafe { glue::capnp_lean_kj_resolver_fulfill(resolver.as_ptr(), forty_two.as_ptr()) });
    let read = glue_support::wait(&read_rx).unwrap_or_else(|e| panic!("read failed: {e}"));
    assert_eq!(read.reader().get_root::<value::read_results::Reader>().unwrap().get_value(), 42.0);
    assert_kinds(&tap, &[MessageKind::Resolve]);
}

#[test]
fn the_remote_calculator_calls_back_into_a_lean_function_with_params_from_the_wire() {
    let Some(_env) = glue_support::require() else { return };
    let (_peer, tap) = calculator_behind_tap();
    let rt = glue_support::new_runtime();
    let (_conn, calc) = glue_support::connect(&rt, &tap.address());
    let sum = glue_support::serve(&rt, glue_support::server_closure(answer_with_sum));
    let params = evaluate_params(|e| {
        let mut apply = e.init_apply();
        apply.set_function(capnp_rpc::new_client(DummyFunction));
        let mut args = apply.init_arguments(2);
        args.reborrow().get(0).set_literal(2.0);
        args.get(1).set_literal(3.25);
    });
    let (_call, rx) = glue_support::start_call(&calc, calculator::Client::TYPE_ID, 0, &params, &[Some(&sum)]);
    let results = glue_support::wait(&rx).unwrap_or_else(|e| panic!("evaluate failed: {e}"));
    assert_eq!(read_value(&results.caps[0].0), 5.25);
    let callbacks = tap.events().iter().filter(|e| e.message.kind() == MessageKind::Call).count();
    assert!(callbacks >= 3, "bootstrap's evaluate, the server's call back and our read:\n{}", tap.transcript());
}

/// A Lean `Function` server: `call(arguments)` answers their sum, later, from another thread;
/// anything else fails with `unimplemented`.
fn answer_with_sum(iface: u64, method: u16, call: Obj) {
    if iface != function::Client::TYPE_ID || method != 0 {
        glue_support::fail(&call, 3, &format!("method {method} of interface {iface:#x}")).unwrap();
        return;
    }
    let params = glue_support::params(&call);
    let reader = params.reader();
    let args = reader.get_root::<function::call_params::Reader>().unwrap().get_arguments().unwrap();
    let total: f64 = args.iter().sum();
    let call = Shared::new(call);
    std::thread::spawn(move || {
        let call = call;
        let _t = glue_support::runtime().unwrap().attach_current_thread();
        std::thread::sleep(Duration::from_millis(20));
        let mut m = Builder::new_default();
        m.init_root::<function::call_results::Builder>().set_value(total);
        glue_support::respond(&call.0, &m, &[]).unwrap();
    });
}

#[test]
fn a_lean_server_closure_answers_a_capnp_rpc_client() {
    let Some(_env) = glue_support::require() else { return };
    let rt = glue_support::new_runtime();
    let (calls_tx, calls_rx) = mpsc::channel();
    let calls_tx = Mutex::new(calls_tx);
    let sum = glue_support::serve(
        &rt,
        glue_support::server_closure(move |iface, method, call| {
            calls_tx.lock().unwrap().send((iface, method)).unwrap();
            answer_with_sum(iface, method, call)
        }),
    );
    let address = lean::mk_string("127.0.0.1:0");
    // SAFETY: borrowed arguments.
    let listener = ok(unsafe { glue::capnp_lean_kj_listen(rt.as_ptr(), address.as_ptr(), sum.as_ptr()) });
    // SAFETY: borrowed listener.
    let bound = ok(unsafe { glue::capnp_lean_kj_listener_address(listener.as_ptr()) });
    let tap = WireTap::start("127.0.0.1:0", lean::string_str(&bound)).unwrap();
    let (value, unimplemented) = run_local(async {
        let connection = connect(&Address::parse(&tap.address()).unwrap()).await.unwrap();
        let f: function::Client = connection.bootstrap();
        let mut request = f.call_request();
        let mut list = request.get().init_arguments(3);
        for (i, v) in [1.0, 2.0, 3.5].into_iter().enumerate() {
            list.set(i as u32, v);
        }
        let value = request.send().promise.await.unwrap().get().unwrap().get_value();
        let as_calculator: calculator::Client = connection.bootstrap();
        let mut evaluate = as_calculator.evaluate_request();
        evaluate.get().init_expression().set_literal(1.0);
        let unimplemented = evaluate.send().promise.await.err().expect("the Lean server refuses evaluate");
        (value, unimplemented)
    });
    assert_eq!(value, 6.5);
    assert_eq!(unimplemented.kind, capnp::ErrorKind::Unimplemented, "{unimplemented}");
    assert!(unimplemented.to_string().contains("method 0 of interface"), "{unimplemented}");
    let seen: Vec<_> = calls_rx.try_iter().collect();
    assert_eq!(seen, vec![(function::Client::TYPE_ID, 0), (calculator::Client::TYPE_ID, 0)]);
    assert_kinds(&tap, &[MessageKind::Bootstrap, MessageKind::Call, MessageKind::Return]);
}
