//! The C ABI's contract exercised directly, as a C host would: a host server answering from
//! another thread, blocking waits (refused on the loop thread), exactly-once callbacks, and
//! shutdown with work in flight.

#![allow(unsafe_code)]

use capnp_lean_sys::*;
use std::ffi::c_void;
use std::ptr;
use std::sync::atomic::{AtomicI32, AtomicU32, Ordering};
use std::sync::mpsc;

struct Harness {
    rt: *mut capnp_lean_runtime,
}

impl Harness {
    fn new() -> Self {
        let mut rt = ptr::null_mut();
        // SAFETY: valid out-parameters.
        assert_eq!(unsafe { capnp_lean_runtime_create(&mut rt, ptr::null_mut()) }, CAPNP_LEAN_OK);
        Harness { rt }
    }
}

impl Drop for Harness {
    fn drop(&mut self) {
        // SAFETY: created in `new`, destroyed once.
        unsafe { capnp_lean_runtime_destroy(self.rt, ptr::null_mut()) };
    }
}

/// One empty-struct message: a single segment holding a root pointer to a 0-word struct.
const EMPTY_STRUCT: [u8; 8] = [0xfc, 0xff, 0xff, 0xff, 0, 0, 0, 0];

/// Queues every dispatched call for a worker thread, which answers with an empty struct.
unsafe extern "C" fn queue_dispatch(user: *mut c_void, _iface: u64, _method: u16, call: *mut capnp_lean_server_call) {
    // SAFETY: user is the Sender leaked by the test for the server's lifetime.
    let sender = unsafe { &*(user as *const mpsc::Sender<usize>) };
    sender.send(call as usize).unwrap();
}

static WAIT_STATUS_ON_LOOP: AtomicI32 = AtomicI32::new(-1);
static DONE_CALLS: AtomicU32 = AtomicU32::new(0);
static DONE_NULL: AtomicU32 = AtomicU32::new(0);

unsafe extern "C" fn try_wait_on_loop(_user: *mut c_void, call: *mut capnp_lean_call) {
    if call.is_null() {
        DONE_NULL.fetch_add(1, Ordering::SeqCst);
        return;
    }
    DONE_CALLS.fetch_add(1, Ordering::SeqCst);
    let mut err = ptr::null_mut();
    // SAFETY: the call is live during its completion callback; err is a valid out-parameter.
    let status = unsafe { capnp_lean_call_wait(call, &mut err) };
    WAIT_STATUS_ON_LOOP.store(status, Ordering::SeqCst);
    // SAFETY: err was filled by the failing call above (or is null).
    unsafe { capnp_lean_error_free(err) };
}

fn empty_message() -> (capnp_lean_segment, capnp_lean_message) {
    let segment = capnp_lean_segment { data: EMPTY_STRUCT.as_ptr(), size: EMPTY_STRUCT.len() };
    let message = capnp_lean_message { segments: ptr::null(), segment_count: 1, caps: ptr::null(), cap_count: 0 };
    (segment, message)
}

#[test]
fn blocking_wait_is_refused_on_the_loop_thread_and_works_elsewhere() {
    let h = Harness::new();
    let (sender, receiver) = mpsc::channel::<usize>();
    let sender = Box::into_raw(Box::new(sender));
    let mut server = ptr::null_mut();
    // SAFETY: valid arguments; the sender outlives the server (leaked until the end).
    assert_eq!(unsafe { capnp_lean_server_new(h.rt, Some(queue_dispatch), None, None, sender.cast(), &mut server, ptr::null_mut()) }, CAPNP_LEAN_OK);

    // The host answers from its own thread, as the ABI allows.
    let answerer = std::thread::spawn(move || {
        for call in receiver.iter().take(1) {
            let (segment, mut message) = empty_message();
            message.segments = &segment;
            // SAFETY: the context came from dispatch and is answered exactly once.
            assert_eq!(unsafe { capnp_lean_server_call_return(call as *mut _, &message, ptr::null_mut()) }, CAPNP_LEAN_OK);
        }
    });

    let (segment, mut params) = empty_message();
    params.segments = &segment;
    let mut call = ptr::null_mut();
    // SAFETY: valid handles and out-parameters.
    assert_eq!(unsafe { capnp_lean_call_start(server, 1, 2, &params, Some(try_wait_on_loop), ptr::null_mut(), &mut call, ptr::null_mut()) }, CAPNP_LEAN_OK);
    // SAFETY: live call; waiting from the test thread is allowed.
    assert_eq!(unsafe { capnp_lean_call_wait(call, ptr::null_mut()) }, CAPNP_LEAN_OK);
    answerer.join().unwrap();
    assert_eq!(WAIT_STATUS_ON_LOOP.load(Ordering::SeqCst), CAPNP_LEAN_ERR_ON_LOOP_THREAD);

    let mut view = capnp_lean_message_view { segments: ptr::null(), segment_count: 0, cap_count: 0 };
    // SAFETY: the call is done; the view is read before the call is released.
    unsafe {
        assert_eq!(capnp_lean_call_results(call, &mut view, ptr::null_mut()), CAPNP_LEAN_OK);
        assert!(view.segment_count >= 1);
        assert_eq!(capnp_lean_call_is_done(call), 1);
        capnp_lean_call_release(call);
        capnp_lean_cap_release(server);
    }
    assert_eq!(DONE_CALLS.load(Ordering::SeqCst), 1);
    drop(h);
    // SAFETY: reclaim the sender leaked above; the server (its only user) is gone.
    drop(unsafe { Box::from_raw(sender) });
}

static SHUTDOWN_DONE: AtomicU32 = AtomicU32::new(0);
static SHUTDOWN_KIND: AtomicU32 = AtomicU32::new(99);

unsafe extern "C" fn record_failure(_user: *mut c_void, call: *mut capnp_lean_call) {
    assert!(!call.is_null());
    SHUTDOWN_DONE.fetch_add(1, Ordering::SeqCst);
    let mut view = capnp_lean_message_view { segments: ptr::null(), segment_count: 0, cap_count: 0 };
    let mut err = ptr::null_mut();
    // SAFETY: live call in its completion callback.
    let status = unsafe { capnp_lean_call_results(call, &mut view, &mut err) };
    assert_eq!(status, CAPNP_LEAN_ERR_RPC);
    // SAFETY: err was filled by the failing call.
    unsafe {
        SHUTDOWN_KIND.store(capnp_lean_error_get_kind(err), Ordering::SeqCst);
        capnp_lean_error_free(err);
    }
}

/// Server contexts a test left unanswered on purpose, released when the test is done.
#[derive(Default)]
struct Parked(std::sync::Mutex<Vec<usize>>);

impl Parked {
    fn release_all(&self) {
        for call in self.0.lock().unwrap().drain(..) {
            // SAFETY: each context came from dispatch and is released exactly once, here.
            unsafe { capnp_lean_server_call_release(call as *mut capnp_lean_server_call) };
        }
    }
}

impl Parked {
    /// A host server on `h` whose every call is parked here unanswered.
    fn server(&self, h: &Harness) -> *mut capnp_lean_cap {
        let mut server = ptr::null_mut();
        // SAFETY: valid arguments; `self` outlives the runtime's use of it (each test releases
        // the parked contexts only after its runtime has stopped dispatching).
        let status = unsafe {
            capnp_lean_server_new(h.rt, Some(never_answer), None, None, self as *const Parked as *mut c_void, &mut server, ptr::null_mut())
        };
        assert_eq!(status, CAPNP_LEAN_OK);
        server
    }
}

unsafe extern "C" fn never_answer(user: *mut c_void, _i: u64, _m: u16, call: *mut capnp_lean_server_call) {
    // Park the context unanswered: only shutdown or cancellation can end this call.
    // SAFETY: user is the test's Parked, which outlives the runtime.
    unsafe { &*(user as *const Parked) }.0.lock().unwrap().push(call as usize);
}

#[test]
fn shutdown_completes_pending_calls_exactly_once_with_disconnected() {
    let h = Harness::new();
    let parked = Parked::default();
    let server = parked.server(&h);
    let (segment, mut params) = empty_message();
    params.segments = &segment;
    let mut call = ptr::null_mut();
    // SAFETY: valid handles.
    assert_eq!(unsafe { capnp_lean_call_start(server, 1, 1, &params, Some(record_failure), ptr::null_mut(), &mut call, ptr::null_mut()) }, CAPNP_LEAN_OK);
    let mut stats = capnp_lean_stats { connections: 0, caps: 0, calls: 0, server_calls: 0, host_servers: 0, resolvers: 0 };
    // SAFETY: valid out-parameter; not on the loop thread.
    assert_eq!(unsafe { capnp_lean_runtime_stats_wait(h.rt, &mut stats, ptr::null_mut()) }, CAPNP_LEAN_OK);
    assert_eq!((stats.calls, stats.host_servers), (1, 1));
    // SAFETY: shutdown keeps `rt` valid; handles remain releasable afterwards.
    unsafe {
        assert_eq!(capnp_lean_runtime_shutdown(h.rt, ptr::null_mut()), CAPNP_LEAN_OK);
        assert_eq!(capnp_lean_runtime_shutdown(h.rt, ptr::null_mut()), CAPNP_LEAN_OK, "shutdown is idempotent");
        assert_eq!(capnp_lean_call_wait(call, ptr::null_mut()), CAPNP_LEAN_OK);
        let mut again = ptr::null_mut();
        let mut err = ptr::null_mut();
        assert_eq!(capnp_lean_call_start(server, 1, 1, &params, None, ptr::null_mut(), &mut again, &mut err), CAPNP_LEAN_ERR_SHUT_DOWN);
        capnp_lean_error_free(err);
        capnp_lean_call_release(call);
        capnp_lean_cap_release(server);
    }
    assert_eq!(SHUTDOWN_DONE.load(Ordering::SeqCst), 1);
    assert_eq!(SHUTDOWN_KIND.load(Ordering::SeqCst), CAPNP_LEAN_ERROR_DISCONNECTED);
    parked.release_all(); // after shutdown: releasing only frees memory
}

#[test]
fn a_call_released_before_completion_reports_null_exactly_once() {
    let h = Harness::new();
    let parked = Parked::default();
    let server = parked.server(&h);
    let (segment, mut params) = empty_message();
    params.segments = &segment;
    let mut call = ptr::null_mut();
    let before = DONE_NULL.load(Ordering::SeqCst);
    // SAFETY: valid handles; the call is released (cancelled) before it can complete.
    unsafe {
        assert_eq!(capnp_lean_call_start(server, 1, 1, &params, Some(try_wait_on_loop), ptr::null_mut(), &mut call, ptr::null_mut()), CAPNP_LEAN_OK);
        capnp_lean_call_release(call);
        capnp_lean_cap_release(server);
    }
    let mut stats = capnp_lean_stats { connections: 0, caps: 0, calls: 0, server_calls: 0, host_servers: 0, resolvers: 0 };
    // SAFETY: a stats round trip guarantees the release task has run.
    assert_eq!(unsafe { capnp_lean_runtime_stats_wait(h.rt, &mut stats, ptr::null_mut()) }, CAPNP_LEAN_OK);
    assert_eq!(DONE_NULL.load(Ordering::SeqCst), before + 1);
    assert_eq!(stats.calls, 0);
    drop(h); // no dispatch can reach `parked` any more
    parked.release_all();
}

#[test]
fn malformed_segments_are_rejected_before_anything_is_sent() {
    let h = Harness::new();
    let mut cap = ptr::null_mut();
    // SAFETY: valid arguments.
    unsafe {
        assert_eq!(capnp_lean_cap_new_broken(h.rt, CAPNP_LEAN_ERROR_FAILED, ptr::null(), 0, &mut cap, ptr::null_mut()), CAPNP_LEAN_OK);
        let odd = [0u8; 5];
        let segment = capnp_lean_segment { data: odd.as_ptr(), size: odd.len() };
        let params = capnp_lean_message { segments: &segment, segment_count: 1, caps: ptr::null(), cap_count: 0 };
        let mut call = ptr::null_mut();
        let mut err = ptr::null_mut();
        assert_eq!(capnp_lean_call_start(cap, 1, 1, &params, None, ptr::null_mut(), &mut call, &mut err), CAPNP_LEAN_ERR_INVALID_ARGUMENT);
        let mut data = ptr::null();
        let mut len = 0;
        capnp_lean_error_get_message(err, &mut data, &mut len);
        let message = String::from_utf8_lossy(std::slice::from_raw_parts(data, len)).into_owned();
        assert!(message.contains("8-byte words"), "{message}");
        capnp_lean_error_free(err);
        capnp_lean_cap_release(cap);
    }
}

#[test]
fn connection_options_without_a_struct_size_are_rejected() {
    let h = Harness::new();
    let options = capnp_lean_connection_options {
        struct_size: 0, nesting_limit: 0, traversal_limit_words: 0, flow_limit_words: 0, dead_peer_timeout_ms: 0, transport: 0,
        handshake_timeout_ms: 0, stall_timeout_ms: 0, send_queue_limit_bytes: 0, send_queue_timeout_ms: 0,
    };
    let (a, _b) = std::os::unix::net::UnixStream::pair().unwrap();
    let mut conn = ptr::null_mut();
    let mut err = ptr::null_mut();
    // SAFETY: valid arguments; the fd is handed over (closed by the ABI on failure).
    let status = unsafe {
        capnp_lean_connection_adopt_fd(h.rt, std::os::fd::IntoRawFd::into_raw_fd(a), 0, ptr::null_mut(), &options, &mut conn, &mut err)
    };
    assert_eq!(status, CAPNP_LEAN_ERR_INVALID_ARGUMENT);
    assert!(conn.is_null());
    // SAFETY: err was filled by the failing call.
    unsafe { capnp_lean_error_free(err) };
}
