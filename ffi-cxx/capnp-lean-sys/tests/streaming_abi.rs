//! Streaming calls at the C ABI, as a C host sees them: `capnp_lean_server_call_set_streaming`
//! works only inside dispatch; KJ then holds a stream method's later calls until the current one
//! is answered and, after a failure, fails every later call (streaming or not) without
//! dispatching it; `capnp_lean_call_start_streaming` completes exactly once with an empty view
//! or the error. (Flow control over a connection is tested in capnp-lean's tests/streaming.rs.)

#![allow(unsafe_code)]

use capnp_lean_sys::*;
use std::ffi::c_void;
use std::ptr;
use std::sync::Mutex;

/// One empty-struct message: a single segment holding a root pointer to a 0-word struct.
const EMPTY_STRUCT: [u8; 8] = [0xfc, 0xff, 0xff, 0xff, 0, 0, 0, 0];

/// What the host server saw: parked contexts and the status of set_streaming in dispatch.
#[derive(Default)]
struct Host {
    parked: Mutex<Vec<usize>>,
    set_streaming_status: Mutex<Vec<capnp_lean_status>>,
}

/// Method 0 is the stream method: declared streaming, then parked for the test to answer.
unsafe extern "C" fn dispatch(user: *mut c_void, _iface: u64, method: u16, call: *mut capnp_lean_server_call) {
    // SAFETY: user is the test's Host, which outlives the runtime.
    let host = unsafe { &*(user as *const Host) };
    if method == 0 {
        // SAFETY: live context inside its dispatch callback.
        let status = unsafe { capnp_lean_server_call_set_streaming(call, ptr::null_mut()) };
        host.set_streaming_status.lock().unwrap().push(status);
    }
    host.parked.lock().unwrap().push(call as usize);
}

fn stats(rt: *mut capnp_lean_runtime) -> capnp_lean_stats {
    let mut stats = capnp_lean_stats { connections: 0, caps: 0, calls: 0, server_calls: 0, host_servers: 0, resolvers: 0 };
    // SAFETY: valid out-parameter; not on the loop thread. The round trip also lets queued work run.
    assert_eq!(unsafe { capnp_lean_runtime_stats_wait(rt, &mut stats, ptr::null_mut()) }, CAPNP_LEAN_OK);
    stats
}

/// Waits (a few seconds at most) until the host has parked `n` calls, then lets the loop run a
/// while longer so that a call KJ would wrongly dispatch has the chance to arrive too. (Local
/// calls reach the server a few event-loop turns after they are started.)
fn parked_settles_at(rt: *mut capnp_lean_runtime, host: &Host, n: usize) -> usize {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while host.parked.lock().unwrap().len() < n && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
    parked_after_a_while(rt, host)
}

/// The number of parked calls after the loop has had many turns and 100 ms to dispatch more.
fn parked_after_a_while(rt: *mut capnp_lean_runtime, host: &Host) -> usize {
    for _ in 0..20 {
        stats(rt);
    }
    std::thread::sleep(std::time::Duration::from_millis(100));
    host.parked.lock().unwrap().len()
}

/// The error message of a completed call, or None when it succeeded (with an empty view).
fn outcome(call: *mut capnp_lean_call) -> Option<String> {
    let mut view = capnp_lean_message_view { segments: ptr::null(), segment_count: 0, cap_count: 0 };
    let mut err = ptr::null_mut();
    // SAFETY: live call; err is freed below.
    let status = unsafe { capnp_lean_call_results(call, &mut view, &mut err) };
    if status == CAPNP_LEAN_OK {
        return None;
    }
    assert_eq!(status, CAPNP_LEAN_ERR_RPC);
    let (mut data, mut len) = (ptr::null(), 0);
    // SAFETY: err was filled by the failing call; the message is copied before it is freed.
    unsafe {
        capnp_lean_error_get_message(err, &mut data, &mut len);
        let text = String::from_utf8_lossy(std::slice::from_raw_parts(data, len)).into_owned();
        capnp_lean_error_free(err);
        Some(text)
    }
}

#[test]
fn a_stream_method_is_served_one_call_at_a_time_and_broken_by_a_failure() {
    let mut rt = ptr::null_mut();
    // SAFETY: valid out-parameters.
    assert_eq!(unsafe { capnp_lean_runtime_create(&mut rt, ptr::null_mut()) }, CAPNP_LEAN_OK);
    let host = Host::default();
    let mut server = ptr::null_mut();
    assert_eq!(
        // SAFETY: `host` outlives the runtime's use of it (the runtime is destroyed first).
        unsafe { capnp_lean_server_new(rt, Some(dispatch), None, None, &host as *const Host as *mut c_void, &mut server, ptr::null_mut()) },
        CAPNP_LEAN_OK
    );
    let segment = capnp_lean_segment { data: EMPTY_STRUCT.as_ptr(), size: EMPTY_STRUCT.len() };
    let params = capnp_lean_message { segments: &segment, segment_count: 1, caps: ptr::null(), cap_count: 0 };
    let start = |streaming: bool, method: u16| {
        let mut call = ptr::null_mut();
        let begin = if streaming { capnp_lean_call_start_streaming } else { capnp_lean_call_start };
        // SAFETY: valid handles and out-parameters; params are copied.
        assert_eq!(unsafe { begin(server, 7, method, &params, None, ptr::null_mut(), &mut call, ptr::null_mut()) }, CAPNP_LEAN_OK);
        call
    };

    let first = start(true, 0);
    let second = start(true, 0);
    assert_eq!(parked_settles_at(rt, &host, 1), 1, "KJ holds the second item until the first is answered");
    assert_eq!(host.set_streaming_status.lock().unwrap().as_slice(), &[CAPNP_LEAN_OK]);
    // SAFETY: live calls.
    assert_eq!(unsafe { (capnp_lean_call_is_done(first), capnp_lean_call_is_done(second)) }, (0, 0), "to a local capability, a streaming call completes when it returns");

    // Outside its dispatch callback, set_streaming is refused.
    let parked = host.parked.lock().unwrap()[0] as *mut capnp_lean_server_call;
    let mut err = ptr::null_mut();
    // SAFETY: live context; err is freed.
    unsafe {
        assert_eq!(capnp_lean_server_call_set_streaming(parked, &mut err), CAPNP_LEAN_ERR_INVALID_ARGUMENT);
        capnp_lean_error_free(err);
    }

    // The first item succeeds: it completes with an empty view, and the second is dispatched.
    // SAFETY: the parked context is answered exactly once.
    assert_eq!(unsafe { capnp_lean_server_call_return(parked, &params, ptr::null_mut()) }, CAPNP_LEAN_OK);
    // SAFETY: live call, waited on from the test thread.
    assert_eq!(unsafe { capnp_lean_call_wait(first, ptr::null_mut()) }, CAPNP_LEAN_OK);
    assert_eq!(outcome(first), None);
    assert_eq!(parked_settles_at(rt, &host, 2), 2);
    let parked = {
        let parked = host.parked.lock().unwrap();
        assert_eq!(parked.len(), 2, "the second item was dispatched after the first was answered");
        parked[1] as *mut capnp_lean_server_call
    };
    // A third item and a regular call queue behind the second.
    let third = start(true, 0);
    let regular = start(false, 1);
    assert_eq!(parked_after_a_while(rt, &host), 2, "later calls wait behind the unanswered item");

    // The second item fails: it, the third item and the regular call all fail with its error,
    // and the host sees neither of the later calls.
    let reason = b"disk full";
    // SAFETY: the parked context is answered exactly once.
    assert_eq!(unsafe { capnp_lean_server_call_fail(parked, CAPNP_LEAN_ERROR_FAILED, reason.as_ptr(), reason.len(), ptr::null_mut()) }, CAPNP_LEAN_OK);
    for call in [second, third, regular] {
        // SAFETY: live call, waited on from the test thread.
        assert_eq!(unsafe { capnp_lean_call_wait(call, ptr::null_mut()) }, CAPNP_LEAN_OK);
        let error = outcome(call).expect("fails after the failed item");
        assert!(error.contains("disk full"), "{error}");
    }
    assert_eq!(parked_after_a_while(rt, &host), 2, "KJ dispatched nothing after the failure");

    // A streaming call has nothing to pipeline on.
    let mut pipelined = ptr::null_mut();
    // SAFETY: live call; the path is empty.
    assert_eq!(unsafe { capnp_lean_call_pipeline(first, ptr::null(), 0, &mut pipelined, ptr::null_mut()) }, CAPNP_LEAN_OK);
    let mut probe = ptr::null_mut();
    // SAFETY: valid handles.
    unsafe {
        assert_eq!(capnp_lean_call_start(pipelined, 7, 1, &params, None, ptr::null_mut(), &mut probe, ptr::null_mut()), CAPNP_LEAN_OK);
        assert_eq!(capnp_lean_call_wait(probe, ptr::null_mut()), CAPNP_LEAN_OK);
    }
    let error = outcome(probe).expect("a call on a streaming call's pipeline fails");
    assert!(error.contains("streaming call has no results"), "{error}");

    // SAFETY: every handle is released exactly once; then the runtime goes.
    unsafe {
        for call in [first, second, third, regular, probe] {
            capnp_lean_call_release(call);
        }
        capnp_lean_cap_release(pipelined);
        capnp_lean_cap_release(server);
        assert_eq!(capnp_lean_runtime_destroy(rt, ptr::null_mut()), CAPNP_LEAN_OK);
    }
}
