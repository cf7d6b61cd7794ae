//! The Lean glue driven with real Lean 4.35 objects inside one process: Lean-style server
//! closures, promise capabilities, errors as IO errors with kind and message, cancellation,
//! panic containment, the closure calling convention, and finalizers releasing every handle.
//! (Calls over the network, against independent peers, are in `glue_peers.rs`.)
#![allow(unsafe_code)]

mod glue_support;

use std::sync::mpsc;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use capnp::message::Builder;
use capnp::traits::HasTypeId;
use capnp_lean_glue::{self as glue, GlueError};
use capnp_lean_leanrt::{self as lean, Obj};
use capnp_lean::ErrorKind;
use capnp_schemas::calculator_capnp::calculator::{function, value};
use glue_support::{err, ok, Raw, Shared};

fn read_results(v: f64) -> Builder<capnp::message::HeapAllocator> {
    let mut m = Builder::new_default();
    m.init_root::<value::read_results::Builder>().set_value(v);
    m
}

fn value_of(outcome: glue_support::Outcome) -> f64 {
    let payload = outcome.unwrap_or_else(|e| panic!("the call failed: {e}"));
    payload.reader().get_root::<value::read_results::Reader>().unwrap().get_value()
}

fn read_value(cap: &Obj) -> glue_support::Outcome {
    let (_call, rx) = glue_support::start_call(cap, value::Client::TYPE_ID, 0, &glue_support::empty_message(), &[]);
    glue_support::wait(&rx)
}

/// A Lean `Value` server answering `read` with `v` at once (and anything else: unimplemented).
fn value_server(rt: &Obj, v: f64) -> Obj {
    glue_support::serve(
        rt,
        glue_support::server_closure(move |iface, method, call| {
            if iface == value::Client::TYPE_ID && method == 0 {
                let params = glue_support::params(&call);
                assert!(params.caps.is_empty());
                glue_support::respond(&call, &read_results(v), &[]).unwrap();
            } else {
                glue_support::fail(&call, 3, &format!("no method {method}")).unwrap();
            }
        }),
    )
}

#[test]
fn baseio_closures_take_a_world_token_exactly_as_the_runtime_applies_them() {
    let Some(_env) = glue_support::require() else { return };
    let rt = glue_support::runtime().unwrap();
    static RUNS: AtomicUsize = AtomicUsize::new(0);
    unsafe extern "C" fn action(world: Raw) -> Raw {
        assert_eq!(world as usize, 1, "the world token is box(0)");
        RUNS.fetch_add(1, Ordering::SeqCst);
        Obj::boxed(42).into_raw()
    }
    // `IO.asTask (act : BaseIO α) (prio : Nat) : BaseIO (Task α)`: the runtime applies `act` to
    // the world token and keeps what it returns as the value (no IO result wrapper).
    // SAFETY: prototypes of lean_io_as_task and lean_task_get (borrowed result) in Lean 4.35.
    let as_task: unsafe extern "C" fn(Raw, Raw) -> Raw = unsafe { rt.symbol("lean_io_as_task") }.unwrap();
    // SAFETY: as above, `lean_task_get`'s prototype.
    let task_get: unsafe extern "C" fn(Raw) -> Raw = unsafe { rt.symbol("lean_task_get") }.unwrap();
    // SAFETY: `action` takes one object (the world) and returns an owned object.
    let act = unsafe { lean::alloc_closure(action as *const _, 1, vec![]) };
    // SAFETY: consumes the closure and the priority and returns an owned task (BaseIO: no
    // IO result around it); its value is borrowed from the task, so we take a reference.
    let task = unsafe { Obj::from_raw(as_task(act.into_raw(), Obj::boxed(0).into_raw())) };
    assert_eq!(task.tag(), lean::abi::TASK as usize, "BaseIO returns the Task itself");
    // SAFETY: the task is finished (no task manager: it ran at once); its value lives as long as
    // the task, and `from_borrowed` takes our own reference.
    let value = unsafe { Obj::from_borrowed(task_get(task.as_ptr())) };
    assert_eq!(RUNS.load(Ordering::SeqCst), 1);
    assert_eq!(value.unbox(), Some(42), "a BaseIO closure returns its value unwrapped");
}

#[test]
fn a_panic_inside_an_extern_becomes_a_failed_io_error() {
    let Some(_env) = glue_support::require() else { return };
    let raw = glue::io_entry("capnp_lean_kj_test", || panic!("deliberate panic"));
    let text = err(raw);
    let parsed = GlueError::from_lean_text(&text).expect("the glue's error format");
    assert_eq!(parsed.kind, ErrorKind::Failed);
    assert_eq!(parsed.message, "panic in capnp_lean_kj_test: deliberate panic");
}

#[test]
fn an_argument_of_the_wrong_lean_type_is_an_io_error_not_a_crash() {
    let Some(_env) = glue_support::require() else { return };
    let not_a_cap = lean::mk_string("not a capability");
    // SAFETY: a live borrowed object (of the wrong type, which the glue must detect).
    let text = err(unsafe { glue::capnp_lean_kj_cap_release(not_a_cap.as_ptr()) });
    assert_eq!(text, "[capnp:failed] expected a Capnp.Rpc.Kj.Cap");
}

#[test]
fn a_lean_server_closure_answers_calls_made_through_the_glue() {
    let Some(_env) = glue_support::require() else { return };
    let rt = glue_support::new_runtime();
    let server = value_server(&rt, 7.5);
    assert_eq!(value_of(read_value(&server)), 7.5);
    let (_call, rx) = glue_support::start_call(&server, value::Client::TYPE_ID, 9, &glue_support::empty_message(), &[]);
    let text = glue_support::wait(&rx).err().expect("method 9 fails");
    assert_eq!(GlueError::from_lean_text(&text), Some(GlueError { kind: ErrorKind::Unimplemented, message: "no method 9".into() }));
}

#[test]
fn a_lean_server_may_answer_later_from_another_thread() {
    let Some(_env) = glue_support::require() else { return };
    let rt = glue_support::new_runtime();
    let (held_tx, held_rx) = mpsc::channel::<Shared>();
    let held_tx = std::sync::Mutex::new(held_tx);
    let server = glue_support::serve(
        &rt,
        glue_support::server_closure(move |_, _, call| held_tx.lock().unwrap().send(Shared::new(call)).unwrap()),
    );
    let (_call, rx) = glue_support::start_call(&server, value::Client::TYPE_ID, 0, &glue_support::empty_message(), &[]);
    let held = held_rx.recv_timeout(glue_support::WAIT).expect("the handler ran");
    assert!(rx.recv_timeout(Duration::from_millis(100)).is_err(), "no answer before the server gives one");
    let answerer = std::thread::spawn(move || {
        let held = held;
        let _t = glue_support::runtime().unwrap().attach_current_thread();
        std::thread::sleep(Duration::from_millis(50));
        glue_support::respond(&held.0, &read_results(3.25), &[]).unwrap();
        let again = glue_support::respond(&held.0, &read_results(0.0), &[]).unwrap_err();
        assert_eq!(again, "[capnp:failed] this server call was already answered");
    });
    answerer.join().unwrap();
    assert_eq!(value_of(glue_support::wait(&rx)), 3.25);
}

#[test]
fn a_fulfilled_promise_capability_forwards_calls_queued_before_it_resolved() {
    let Some(_env) = glue_support::require() else { return };
    let rt = glue_support::new_runtime();
    // SAFETY: borrowed runtime.
    let pair = ok(unsafe { glue::capnp_lean_kj_promise_cap_new(rt.as_ptr()) });
    let (promise, resolver) = (pair.ctor_get_owned(0), pair.ctor_get_owned(1));
    let (_call, rx) = glue_support::start_call(&promise, value::Client::TYPE_ID, 0, &glue_support::empty_message(), &[]);
    assert!(rx.recv_timeout(Duration::from_millis(100)).is_err(), "queued on the unresolved promise");
    let target = value_server(&rt, 11.0);
    // SAFETY: borrowed arguments.
    ok(unsafe { glue::capnp_lean_kj_resolver_fulfill(resolver.as_ptr(), target.as_ptr()) });
    assert_eq!(value_of(glue_support::wait(&rx)), 11.0);
    assert_eq!(value_of(read_value(&promise)), 11.0, "later calls go to the resolution");
    // SAFETY: borrowed arguments.
    let used = err(unsafe { glue::capnp_lean_kj_resolver_fulfill(resolver.as_ptr(), target.as_ptr()) });
    assert_eq!(used, "[capnp:failed] this resolver was already used");
}

#[test]
fn a_rejected_promise_fails_calls_with_its_kind_and_message() {
    let Some(_env) = glue_support::require() else { return };
    let rt = glue_support::new_runtime();
    // SAFETY: borrowed runtime.
    let pair = ok(unsafe { glue::capnp_lean_kj_promise_cap_new(rt.as_ptr()) });
    let (promise, resolver) = (pair.ctor_get_owned(0), pair.ctor_get_owned(1));
    let message = lean::mk_string("the value is gone");
    // SAFETY: borrowed arguments.
    ok(unsafe { glue::capnp_lean_kj_resolver_reject(resolver.as_ptr(), 2, message.as_ptr()) });
    let text = read_value(&promise).err().expect("the call fails");
    let error = GlueError::from_lean_text(&text).unwrap_or_else(|| panic!("not the glue's format: {text}"));
    assert_eq!(error.kind, ErrorKind::Disconnected);
    assert!(error.message.contains("the value is gone"), "{text}");
}

#[test]
fn broken_capabilities_fail_calls_with_kind_and_message() {
    let Some(_env) = glue_support::require() else { return };
    let rt = glue_support::new_runtime();
    let message = lean::mk_string("try later");
    // SAFETY: borrowed arguments.
    let broken = ok(unsafe { glue::capnp_lean_kj_cap_new_broken(rt.as_ptr(), 1, message.as_ptr()) });
    let text = read_value(&broken).err().expect("the call fails");
    let error = GlueError::from_lean_text(&text).unwrap();
    assert_eq!(error.kind, ErrorKind::Overloaded);
    assert!(error.message.contains("try later"), "{text}");
}

#[test]
fn a_released_capability_refuses_further_calls_and_its_clone_still_works() {
    let Some(_env) = glue_support::require() else { return };
    let rt = glue_support::new_runtime();
    let server = value_server(&rt, 1.0);
    // SAFETY: borrowed capability.
    let copy = ok(unsafe { glue::capnp_lean_kj_cap_clone(server.as_ptr()) });
    // SAFETY: borrowed capability.
    ok(unsafe { glue::capnp_lean_kj_cap_release(server.as_ptr()) });
    let (on_done, _rx) = glue_support::completion();
    let segments = glue_support::segments_of(&glue_support::empty_message());
    let table = glue_support::cap_table(&[]);
    // SAFETY: borrowed arguments, consumed closure.
    let text = err(unsafe {
        glue::capnp_lean_kj_cap_call(server.as_ptr(), value::Client::TYPE_ID, 0, segments.as_ptr(), table.as_ptr(), on_done.into_raw())
    });
    assert_eq!(text, "[capnp:failed] this capability was already released");
    assert_eq!(value_of(read_value(&copy)), 1.0);
}

#[test]
fn connecting_to_a_closed_port_is_an_io_error_with_a_kind() {
    let Some(_env) = glue_support::require() else { return };
    let rt = glue_support::new_runtime();
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let address = lean::mk_string(&closed.to_string());
    // SAFETY: borrowed arguments.
    let text = err(unsafe { glue::capnp_lean_kj_connect(rt.as_ptr(), address.as_ptr()) });
    assert!(GlueError::from_lean_text(&text).is_some(), "not the glue's format: {text}");
}

#[test]
fn cancelling_a_pending_call_completes_it_with_a_cancelled_error() {
    let Some(_env) = glue_support::require() else { return };
    let rt = glue_support::new_runtime();
    let (held_tx, held_rx) = mpsc::channel::<Shared>();
    let held_tx = std::sync::Mutex::new(held_tx);
    let server = glue_support::serve(
        &rt,
        glue_support::server_closure(move |_, _, call| held_tx.lock().unwrap().send(Shared::new(call)).unwrap()),
    );
    let (call, rx) = glue_support::start_call(&server, value::Client::TYPE_ID, 0, &glue_support::empty_message(), &[]);
    let held = held_rx.recv_timeout(glue_support::WAIT).expect("the handler ran");
    // SAFETY: borrowed call.
    ok(unsafe { glue::capnp_lean_kj_call_cancel(call.as_ptr()) });
    assert_eq!(glue_support::wait(&rx).err().as_deref(), Some("[capnp:failed] the call was cancelled"));
    // SAFETY: borrowed call.
    let text = err(unsafe { glue::capnp_lean_kj_call_pipeline(call.as_ptr(), glue_support::cap_table(&[]).as_ptr()) });
    assert_eq!(text, "[capnp:failed] this call was already released");
    drop(held);
}

#[test]
fn dropping_the_last_lean_reference_runs_every_finalizer_and_frees_every_handle() {
    let Some(_env) = glue_support::require() else { return };
    glue_support::assert_no_live_glue_objects();
    let answered = Arc::new(AtomicUsize::new(0));
    {
        let rt = glue_support::new_runtime();
        let counter = answered.clone();
        let server = glue_support::serve(
            &rt,
            glue_support::server_closure(move |_, _, call| {
                counter.fetch_add(1, Ordering::SeqCst);
                glue_support::respond(&call, &read_results(2.0), &[]).unwrap();
            }),
        );
        // SAFETY: borrowed runtime.
        let pair = ok(unsafe { glue::capnp_lean_kj_promise_cap_new(rt.as_ptr()) });
        let (promise, resolver) = (pair.ctor_get_owned(0), pair.ctor_get_owned(1));
        drop(pair);
        // SAFETY: borrowed arguments.
        ok(unsafe { glue::capnp_lean_kj_resolver_fulfill(resolver.as_ptr(), server.as_ptr()) });
        let (call, rx) = glue_support::start_call(&promise, value::Client::TYPE_ID, 0, &glue_support::empty_message(), &[Some(&server)]);
        assert_eq!(value_of(glue_support::wait(&rx)), 2.0);
        let live = glue::live_objects();
        assert_eq!((live.runtimes, live.servers, live.calls), (1, 1, 1), "{live:?}");
        assert!(live.caps >= 2, "{live:?}");
        assert_eq!(server.rc(), 1, "the glue keeps no Lean reference to a capability object");
        drop((call, promise, resolver, server));
        glue_support::eventually("the C ABI frees every capability, call and server", || {
            glue_support::stats(&rt) == [0, 0, 0, 0, 0, 0]
        });
        let live = glue::live_objects();
        assert_eq!(live, glue::LiveObjects { runtimes: 1, ..Default::default() }, "only the runtime is left");
    }
    glue_support::assert_no_live_glue_objects();
    assert_eq!(answered.load(Ordering::SeqCst), 1);
}

// ---- Rust-hosted capabilities called from Lean -------------------------------------------

/// A capnpc-rust `Value` server answering `read` with a constant.
struct RustValue(f64);

impl value::Server for RustValue {
    async fn read(self: capnp::capability::Rc<Self>, _: value::ReadParams, mut results: value::ReadResults) -> Result<(), capnp::Error> {
        results.get().set_value(self.0);
        Ok(())
    }
}

/// A capnpc-rust `Function` server: `call(arguments)` answers their sum; an argument of `-1`
/// makes it panic instead (the first `panics` calls only).
struct RustSum {
    panics: AtomicUsize,
}

impl function::Server for RustSum {
    async fn call(self: capnp::capability::Rc<Self>, params: function::CallParams, mut results: function::CallResults) -> Result<(), capnp::Error> {
        let arguments: Vec<f64> = params.get()?.get_arguments()?.iter().collect();
        if arguments.contains(&-1.0) && self.panics.load(Ordering::SeqCst) > 0 {
            self.panics.fetch_sub(1, Ordering::SeqCst);
            panic!("deliberate panic in Function.call");
        }
        results.get().set_value(arguments.iter().sum());
        Ok(())
    }
}

fn call_params(arguments: &[f64]) -> Builder<capnp::message::HeapAllocator> {
    let mut m = Builder::new_default();
    let mut list = m.init_root::<function::call_params::Builder>().init_arguments(arguments.len() as u32);
    for (i, v) in arguments.iter().enumerate() {
        list.set(i as u32, *v);
    }
    m
}

fn call_function(cap: &Obj, arguments: &[f64]) -> Result<f64, String> {
    let (_call, rx) = glue_support::start_call(cap, function::Client::TYPE_ID, 0, &call_params(arguments), &[]);
    let payload = glue_support::wait(&rx)?;
    Ok(payload.reader().get_root::<function::call_results::Reader>().unwrap().get_value())
}

#[test]
fn a_rust_server_handed_to_lean_answers_calls_made_through_cap_call() {
    let Some(_env) = glue_support::require() else { return };
    glue_support::assert_no_live_glue_objects();
    {
        let rt = glue_support::new_runtime();
        let constant = glue::serve::<value::Client, _>(&rt, RustValue(2.5)).unwrap();
        let sum = glue::serve::<function::Client, _>(&rt, RustSum { panics: AtomicUsize::new(0) }).unwrap();
        assert_eq!(value_of(read_value(&constant)), 2.5);
        assert_eq!(call_function(&sum, &[1.0, 2.0, 3.5]), Ok(6.5), "params from Lean reach the Rust server");
        // The generated dispatch answers methods the interface lacks with `unimplemented`.
        let (call, rx) = glue_support::start_call(&constant, value::Client::TYPE_ID, 7, &glue_support::empty_message(), &[]);
        let text = glue_support::wait(&rx).err().expect("method 7 fails");
        assert_eq!(GlueError::from_lean_text(&text).map(|e| e.kind), Some(ErrorKind::Unimplemented), "{text}");
        assert_eq!(glue_support::stats(&rt)[4], 2, "two host servers");
        drop((call, constant, sum));
        glue_support::eventually("dropping the Lean caps releases the Rust servers", || glue_support::stats(&rt) == [0, 0, 0, 0, 0, 0]);
    }
    glue_support::assert_no_live_glue_objects();
}

#[test]
fn a_panic_in_a_rust_server_reaches_the_lean_caller_as_a_failed_error_and_the_server_keeps_serving() {
    let Some(_env) = glue_support::require() else { return };
    let rt = glue_support::new_runtime();
    let sum = glue::serve::<function::Client, _>(&rt, RustSum { panics: AtomicUsize::new(1) }).unwrap();
    let text = call_function(&sum, &[1.0, -1.0]).expect_err("the panicking call fails");
    let error = GlueError::from_lean_text(&text).unwrap_or_else(|| panic!("not the glue's format: {text}"));
    assert_eq!(error.kind, ErrorKind::Failed, "{text}");
    assert_eq!(error.message, "panic in a server method: deliberate panic in Function.call");
    assert_eq!(call_function(&sum, &[1.0, -1.0]), Ok(0.0), "the same server answers the next call");
}

#[test]
fn glue_runtime_ref_gives_rust_code_the_lean_runtime() {
    let Some(_env) = glue_support::require() else { return };
    let rt = glue_support::new_runtime();
    let runtime = glue::runtime_ref(&rt).unwrap();
    // A Rust client of a Rust server on the Lean runtime, and the same server called from Lean.
    let client: value::Client = runtime.serve(RustValue(4.0)).unwrap();
    let read = capnp_lean::block_on(client.read_request().send().promise).unwrap().unwrap();
    assert_eq!(read.get().unwrap().get_value(), 4.0);
    assert!(!runtime.is_loop_thread());
    let not_a_runtime = lean::mk_string("runtime");
    assert_eq!(glue::runtime_ref(&not_a_runtime).err().map(|e| e.message), Some("expected a Capnp.Rpc.Kj.Runtime".into()));
}

// ---- Timeouts ------------------------------------------------------------------------------

/// A Lean server that keeps every call unanswered and hands it to the test.
fn silent_server(rt: &Obj) -> (Obj, mpsc::Receiver<Shared>) {
    let (held_tx, held_rx) = mpsc::channel::<Shared>();
    let held_tx = std::sync::Mutex::new(held_tx);
    let server = glue_support::serve(rt, glue_support::server_closure(move |_, _, call| held_tx.lock().unwrap().send(Shared::new(call)).unwrap()));
    (server, held_rx)
}

#[test]
fn a_call_past_its_timeout_fails_overloaded_and_is_cancelled_at_the_server() {
    let Some(_env) = glue_support::require() else { return };
    let rt = glue_support::new_runtime();
    let (server, held_rx) = silent_server(&rt);
    let started = std::time::Instant::now();
    let (call, rx) = glue_support::start_call_with_timeout(&server, value::Client::TYPE_ID, 0, &glue_support::empty_message(), &[], 200);
    let held = held_rx.recv_timeout(glue_support::WAIT).expect("the handler ran");
    let text = glue_support::wait(&rx).err().expect("the call times out");
    let elapsed = started.elapsed();
    assert_eq!(text, "[capnp:overloaded] timed out after 200ms");
    assert!(elapsed >= Duration::from_millis(200), "timed out early, after {elapsed:?}");
    assert!(elapsed < Duration::from_secs(5), "timed out late, after {elapsed:?}");
    // The call was cancelled: its handle is gone and the server's late answer is discarded.
    // SAFETY: borrowed call.
    let released = err(unsafe { glue::capnp_lean_kj_call_pipeline(call.as_ptr(), glue_support::cap_table(&[]).as_ptr()) });
    assert_eq!(released, "[capnp:failed] this call was already released");
    glue_support::eventually("the server call is cancelled (no call left at the ABI)", || glue_support::stats(&rt)[2] == 0);
    let late = glue_support::respond(&held.0, &read_results(1.0), &[]);
    assert!(late.is_err(), "answering a timed-out call must be refused: {late:?}");
    assert!(rx.recv_timeout(Duration::from_millis(200)).is_err(), "exactly one completion");
}

#[test]
fn a_call_answered_before_its_timeout_completes_normally_and_once() {
    let Some(_env) = glue_support::require() else { return };
    let rt = glue_support::new_runtime();
    let server = value_server(&rt, 8.25);
    let (call, rx) = glue_support::start_call_with_timeout(&server, value::Client::TYPE_ID, 0, &glue_support::empty_message(), &[], 150);
    assert_eq!(value_of(glue_support::wait(&rx)), 8.25);
    std::thread::sleep(Duration::from_millis(400));
    assert!(rx.try_recv().is_err(), "the expired timer must not complete the call again");
    // The timer left the call alone: pipelining on its (kept) results still works.
    let path = lean::mk_array(vec![]);
    // SAFETY: borrowed call and path.
    let pipelined = unsafe { glue::capnp_lean_kj_call_pipeline(call.as_ptr(), path.as_ptr()) };
    drop(ok(pipelined));
    assert_eq!(glue::live_objects().pending_completions, 0);
}

// ---- Disconnect notices ------------------------------------------------------------------

#[test]
fn closing_a_connection_resolves_every_disconnect_watcher_once_with_closed_locally() {
    let Some(_env) = glue_support::require() else { return };
    glue_support::assert_no_live_glue_objects();
    {
        let rt = glue_support::new_runtime();
        let server = value_server(&rt, 1.5);
        let address = lean::mk_string("127.0.0.1:0");
        // SAFETY: borrowed arguments.
        let listener = ok(unsafe { glue::capnp_lean_kj_listen(rt.as_ptr(), address.as_ptr(), server.as_ptr()) });
        let (conn, remote) = glue_support::connect(&rt, &glue_support::listener_address(&listener));
        assert_eq!(value_of(read_value(&remote)), 1.5);
        let first = glue_support::on_disconnect(&conn);
        let second = glue_support::on_disconnect(&conn);
        assert!(first.recv_timeout(Duration::from_millis(200)).is_err(), "nothing before the end");
        assert_eq!(glue::live_objects().disconnect_watchers, 2);
        // SAFETY: borrowed connection.
        ok(unsafe { glue::capnp_lean_kj_connection_close(conn.as_ptr()) });
        let reason = "[capnp:disconnected] the connection was closed locally";
        assert_eq!(first.recv_timeout(glue_support::WAIT).as_deref(), Ok(reason));
        assert_eq!(second.recv_timeout(glue_support::WAIT).as_deref(), Ok(reason));
        let late = glue_support::on_disconnect(&conn);
        assert_eq!(late.try_recv().as_deref(), Ok(reason), "a watcher added after the end is applied at once");
        assert!(first.recv_timeout(Duration::from_millis(100)).is_err(), "applied once");
        glue_support::eventually("every watcher's closure released", || glue::live_objects().disconnect_watchers == 0);
        let text = read_value(&remote).err().expect("the connection's capability is broken");
        assert_eq!(GlueError::from_lean_text(&text).map(|e| e.kind), Some(ErrorKind::Disconnected), "{text}");
        drop((listener, server, remote, conn));
    }
    glue_support::assert_no_live_glue_objects();
}
