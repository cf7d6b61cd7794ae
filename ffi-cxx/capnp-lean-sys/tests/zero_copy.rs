//! The ABI's copy-avoiding paths, over a real connection (a socketpair, both ends on one
//! runtime): params lent with `_borrowing` (released exactly once on every path), and received
//! params and results viewed in place on the coalescing transport — valid until their handle is
//! released, even after the connection and the runtime are gone — but copied when they carry
//! capabilities or arrive over the stock transport.

#![allow(unsafe_code)]

use capnp::message::{self, HeapAllocator, ReaderOptions, ReaderSegments};
use capnp_lean_sys::*;
use capnp_schemas::interop_capnp::interop::{echo_params, echo_results};
use std::ffi::c_void;
use std::os::fd::IntoRawFd;
use std::os::unix::net::UnixStream;
use std::ptr;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Mutex;

const ECHO: u16 = 0;
const ECHO_WITH_CAP: u16 = 1;

/// The echo server's state: its own handle, and whether each call's params were in place.
struct EchoServer {
    me: *mut capnp_lean_cap,
    params_in_place: Mutex<Vec<bool>>,
}

/// A view is in place when its root is a double-far pointer (into the wire message): copies
/// made by KJ's builder never start with one.
fn in_place(view: &capnp_lean_message_view) -> bool {
    if view.segment_count < 2 {
        return false;
    }
    // SAFETY: callers pass a view the ABI filled; segment 0 holds at least the root word.
    let root = unsafe { (*view.segments).data.cast::<u64>().read() };
    u64::from_le(root) & 7 == 6
}

/// Results whose root struct holds one capability pointer (index 0): 0 data words, 1 pointer.
#[repr(align(8))]
struct Words([u8; 16]);
static CAP_RESULTS: Words = Words([0, 0, 0, 0, 0, 0, 1, 0, 3, 0, 0, 0, 0, 0, 0, 0]);

/// Answers with the params themselves (read through the view); ECHO_WITH_CAP answers instead
/// with CAP_RESULTS, whose capability is the server itself.
unsafe extern "C" fn echo_dispatch(user: *mut c_void, _iface: u64, method: u16, call: *mut capnp_lean_server_call) {
    // SAFETY: user is the Pair's EchoServer, alive until the server is dropped.
    let server = unsafe { &*(user as *const EchoServer) };
    let mut view = capnp_lean_message_view { segments: ptr::null(), segment_count: 0, cap_count: 0 };
    // SAFETY: a live context; valid out-parameter.
    assert_eq!(unsafe { capnp_lean_server_call_params(call, &mut view, ptr::null_mut()) }, CAPNP_LEAN_OK);
    server.params_in_place.lock().unwrap().push(in_place(&view));
    let caps = [server.me];
    let with_cap = capnp_lean_segment { data: CAP_RESULTS.0.as_ptr().cast(), size: 16 };
    let results = if method == ECHO_WITH_CAP {
        capnp_lean_message { segments: &with_cap, segment_count: 1, caps: caps.as_ptr(), cap_count: 1 }
    } else {
        capnp_lean_message { segments: view.segments, segment_count: view.segment_count, caps: ptr::null(), cap_count: 0 }
    };
    // SAFETY: answers the context once; the view is valid until then and is copied.
    assert_eq!(unsafe { capnp_lean_server_call_return(call, &results, ptr::null_mut()) }, CAPNP_LEAN_OK);
}

/// One runtime serving an echo server to itself over a socketpair.
struct Pair {
    rt: *mut capnp_lean_runtime,
    server: *mut capnp_lean_cap,
    server_conn: *mut capnp_lean_connection,
    client_conn: *mut capnp_lean_connection,
    target: *mut capnp_lean_cap,
    state: *const EchoServer,
}

impl Pair {
    fn new(transport: u32) -> Pair {
        let mut rt = ptr::null_mut();
        // SAFETY: valid out-parameters throughout; handles are released in Drop.
        unsafe {
            assert_eq!(capnp_lean_runtime_create(&mut rt, ptr::null_mut()), CAPNP_LEAN_OK);
            // ECHO_WITH_CAP returns the server's own handle, set once it exists.
            let state = Box::into_raw(Box::new(EchoServer { me: ptr::null_mut(), params_in_place: Mutex::default() }));
            let mut server = ptr::null_mut();
            assert_eq!(capnp_lean_server_new(rt, Some(echo_dispatch), None, Some(free_state), state.cast(), &mut server, ptr::null_mut()), CAPNP_LEAN_OK);
            (*state).me = server;
            let options = capnp_lean_connection_options {
                struct_size: std::mem::size_of::<capnp_lean_connection_options>() as u32,
                transport,
                ..std::mem::zeroed()
            };
            let (a, b) = UnixStream::pair().unwrap();
            let mut server_conn = ptr::null_mut();
            let mut client_conn = ptr::null_mut();
            assert_eq!(capnp_lean_connection_adopt_fd(rt, a.into_raw_fd(), 1, server, &options, &mut server_conn, ptr::null_mut()), CAPNP_LEAN_OK);
            assert_eq!(capnp_lean_connection_adopt_fd(rt, b.into_raw_fd(), 0, ptr::null_mut(), &options, &mut client_conn, ptr::null_mut()), CAPNP_LEAN_OK);
            let mut target = ptr::null_mut();
            assert_eq!(capnp_lean_connection_bootstrap(client_conn, &mut target, ptr::null_mut()), CAPNP_LEAN_OK);
            Pair { rt, server, server_conn, client_conn, target, state }
        }
    }

    fn call(&self, method: u16, params: message::Builder<HeapAllocator>) -> *mut capnp_lean_call {
        call_on(self.target, method, params)
    }
}

/// Sends echo params lent from `params` to `target` and waits for the call to complete.
fn call_on(target: *mut capnp_lean_cap, method: u16, params: message::Builder<HeapAllocator>) -> *mut capnp_lean_call {
    let mut call = ptr::null_mut();
    let status = lend(params, |raw, release, owner| {
        // SAFETY: live target; `owner` is released by the ABI through `release`.
        unsafe { capnp_lean_call_start_borrowing(target, 1, method, raw, release, owner, None, ptr::null_mut(), &mut call, ptr::null_mut()) }
    });
    assert_eq!(status, CAPNP_LEAN_OK);
    // SAFETY: a live call, waited on from a host thread.
    assert_eq!(unsafe { capnp_lean_call_wait(call, ptr::null_mut()) }, CAPNP_LEAN_OK);
    call
}

impl Drop for Pair {
    fn drop(&mut self) {
        // SAFETY: each handle is released once; the runtime last.
        unsafe {
            capnp_lean_cap_release(self.target);
            if !self.client_conn.is_null() {
                capnp_lean_connection_release(self.client_conn);
            }
            capnp_lean_connection_release(self.server_conn);
            capnp_lean_cap_release(self.server);
            capnp_lean_runtime_destroy(self.rt, ptr::null_mut());
        }
    }
}

unsafe extern "C" fn free_state(user: *mut c_void) {
    // SAFETY: the state boxed in Pair::new, dropped once with the server.
    drop(unsafe { Box::from_raw(user as *mut EchoServer) });
}

/// Loans ended by the test that counts them; the other tests' loans count in NOT_COUNTED.
static RELEASED: AtomicU32 = AtomicU32::new(0);
static NOT_COUNTED: AtomicU32 = AtomicU32::new(0);

type Owner = (message::Builder<HeapAllocator>, &'static AtomicU32);

unsafe extern "C" fn release_builder(owner: *mut c_void) {
    // SAFETY: the owner boxed by `lend`, released exactly once by the ABI.
    let (builder, released) = *unsafe { Box::from_raw(owner as *mut Owner) };
    drop(builder);
    released.fetch_add(1, Ordering::SeqCst);
}

/// Boxes `builder` and calls `f` with its message, release function and owner pointer.
fn lend(builder: message::Builder<HeapAllocator>, f: impl FnOnce(*const capnp_lean_message, capnp_lean_release_fn, *mut c_void) -> capnp_lean_status) -> capnp_lean_status {
    lend_counted(builder, &NOT_COUNTED, f)
}

fn lend_counted(builder: message::Builder<HeapAllocator>, released: &'static AtomicU32, f: impl FnOnce(*const capnp_lean_message, capnp_lean_release_fn, *mut c_void) -> capnp_lean_status) -> capnp_lean_status {
    let owner: Box<Owner> = Box::new((builder, released));
    let segments: Vec<capnp_lean_segment> = owner
        .0
        .get_segments_for_output()
        .iter()
        .map(|s| capnp_lean_segment { data: s.as_ptr(), size: s.len() })
        .collect();
    let raw = capnp_lean_message { segments: segments.as_ptr(), segment_count: segments.len(), caps: ptr::null(), cap_count: 0 };
    f(&raw, Some(release_builder), Box::into_raw(owner).cast())
}

/// Echo params carrying `payload`; a tiny first segment spreads them over several segments.
fn echo_message(payload: &[u8], first_segment_words: u32) -> message::Builder<HeapAllocator> {
    let mut builder = message::Builder::new(HeapAllocator::new().first_segment_words(first_segment_words));
    builder.init_root::<echo_params::Builder>().set_payload(payload);
    builder
}

struct View(Vec<&'static [u8]>);

impl ReaderSegments for View {
    fn get_segment(&self, idx: u32) -> Option<&[u8]> {
        self.0.get(idx as usize).copied()
    }
}

/// The results of a completed call: whether they are in place, and the echoed payload.
fn results_of(call: *mut capnp_lean_call) -> (bool, u32, Vec<u8>) {
    let mut view = capnp_lean_message_view { segments: ptr::null(), segment_count: 0, cap_count: 0 };
    // SAFETY: a completed call; the segments are read before the call is released.
    let segments = unsafe {
        assert_eq!(capnp_lean_call_results(call, &mut view, ptr::null_mut()), CAPNP_LEAN_OK);
        (0..view.segment_count)
            .map(|i| {
                let s = &*view.segments.add(i);
                assert_eq!(s.data as usize % 8, 0, "segment {i} is not word-aligned");
                std::slice::from_raw_parts(s.data, s.size)
            })
            .collect()
    };
    let reader = message::Reader::new(View(segments), ReaderOptions::new());
    let payload = reader.get_root::<echo_results::Reader>().unwrap().get_payload().unwrap().to_vec();
    (in_place(&view), view.cap_count as u32, payload)
}

fn payload(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 7 + 3) as u8).collect()
}

#[test]
fn coalescing_transport_views_params_and_results_in_place() {
    let pair = Pair::new(CAPNP_LEAN_TRANSPORT_COALESCING);
    for (len, first_words) in [(16, 64), (1024, 64), (64 * 1024, 64), (300 * 1024, 1), (0, 1)] {
        let sent = payload(len);
        let call = pair.call(ECHO, echo_message(&sent, first_words));
        let (in_place, caps, echoed) = results_of(call);
        assert!(in_place, "{len}-byte results were copied, not viewed in place");
        assert_eq!(caps, 0);
        assert!(echoed == sent, "{len}-byte payload came back changed");
        // SAFETY: released once, after its view was read.
        unsafe { capnp_lean_call_release(call) };
    }
    // SAFETY: the server is alive until `pair` drops.
    let seen = unsafe { &*pair.state }.params_in_place.lock().unwrap().clone();
    assert_eq!(seen, [true; 5], "the server copied some params");
}

#[test]
fn stock_transport_copies_and_reads_the_same() {
    let pair = Pair::new(CAPNP_LEAN_TRANSPORT_STOCK);
    let sent = payload(64 * 1024);
    let call = pair.call(ECHO, echo_message(&sent, 64));
    let (in_place, _, echoed) = results_of(call);
    assert!(!in_place, "the stock transport cannot register messages, so results are copies");
    assert!(echoed == sent);
    // SAFETY: released once.
    unsafe { capnp_lean_call_release(call) };
}

#[test]
fn results_carrying_a_capability_are_copied_and_the_capability_works() {
    let pair = Pair::new(CAPNP_LEAN_TRANSPORT_COALESCING);
    let call = pair.call(ECHO_WITH_CAP, echo_message(b"with a cap", 64));
    let mut view = capnp_lean_message_view { segments: ptr::null(), segment_count: 0, cap_count: 0 };
    // SAFETY: a completed call.
    unsafe { assert_eq!(capnp_lean_call_results(call, &mut view, ptr::null_mut()), CAPNP_LEAN_OK) };
    assert!(!in_place(&view), "capability pointers index the wire table, so these must be copied");
    assert_eq!(view.cap_count, 1);
    let mut cap = ptr::null_mut();
    // SAFETY: a completed call with one capability; the new handle is released below.
    unsafe { assert_eq!(capnp_lean_call_result_cap(call, 0, &mut cap, ptr::null_mut()), CAPNP_LEAN_OK) };
    let inner = call_on(cap, ECHO, echo_message(b"through it", 64));
    assert_eq!(results_of(inner).2, b"through it");
    // SAFETY: each released once.
    unsafe {
        capnp_lean_call_release(inner);
        capnp_lean_cap_release(cap);
        capnp_lean_call_release(call);
    }
}

#[test]
fn an_in_place_view_outlives_the_connection_and_the_runtime() {
    let mut pair = Pair::new(CAPNP_LEAN_TRANSPORT_COALESCING);
    let sent = payload(100 * 1024);
    let call = pair.call(ECHO, echo_message(&sent, 64));
    // SAFETY: the client connection is released once (Drop skips it), then the runtime stops.
    unsafe {
        capnp_lean_connection_release(pair.client_conn);
        pair.client_conn = ptr::null_mut();
        assert_eq!(capnp_lean_runtime_shutdown(pair.rt, ptr::null_mut()), CAPNP_LEAN_OK);
    }
    let (in_place, _, echoed) = results_of(call);
    assert!(in_place && echoed == sent, "the view must stay readable until the call is released");
    // SAFETY: released once, after the runtime stopped.
    unsafe { capnp_lean_call_release(call) };
}

#[test]
fn lent_params_are_released_exactly_once_on_every_path() {
    let pair = Pair::new(CAPNP_LEAN_TRANSPORT_COALESCING);
    let mut call = ptr::null_mut();
    let status = lend_counted(echo_message(b"lent", 64), &RELEASED, |raw, release, owner| {
        // SAFETY: live target; `owner` is released by the ABI through `release`.
        unsafe { capnp_lean_call_start_borrowing(pair.target, 1, ECHO, raw, release, owner, None, ptr::null_mut(), &mut call, ptr::null_mut()) }
    });
    assert_eq!(status, CAPNP_LEAN_OK);
    // SAFETY: a live call, waited on from a host thread.
    assert_eq!(unsafe { capnp_lean_call_wait(call, ptr::null_mut()) }, CAPNP_LEAN_OK);
    assert_eq!(RELEASED.load(Ordering::SeqCst), 1, "written params must be released by completion");
    // SAFETY: released once.
    unsafe { capnp_lean_call_release(call) };

    let mut out = ptr::null_mut();
    let mut attempt = |target: *mut capnp_lean_cap, builder: message::Builder<HeapAllocator>, misalign: bool| {
        let before = RELEASED.load(Ordering::SeqCst);
        let status = lend_counted(builder, &RELEASED, |raw, release, owner| {
            // SAFETY: raw points at a live message with one segment.
            let (mut message, first) = unsafe { (*raw, *(*raw).segments) };
            let shifted = capnp_lean_segment { data: first.data.wrapping_add(1), size: first.size };
            if misalign {
                message.segments = &shifted;
            }
            // SAFETY: the ABI must refuse these without reading the segments' bytes.
            unsafe { capnp_lean_call_start_borrowing(target, 1, ECHO, &message, release, owner, None, ptr::null_mut(), &mut out, ptr::null_mut()) }
        });
        (status, RELEASED.load(Ordering::SeqCst) - before)
    };
    assert_eq!(attempt(ptr::null_mut(), echo_message(b"x", 64), false), (CAPNP_LEAN_ERR_INVALID_ARGUMENT, 1), "NULL target");
    assert_eq!(attempt(pair.target, echo_message(b"x", 64), true), (CAPNP_LEAN_ERR_INVALID_ARGUMENT, 1), "misaligned segment");
    // SAFETY: stops the loop; the handles stay valid until Drop.
    assert_eq!(unsafe { capnp_lean_runtime_shutdown(pair.rt, ptr::null_mut()) }, CAPNP_LEAN_OK);
    assert_eq!(attempt(pair.target, echo_message(b"x", 64), false), (CAPNP_LEAN_ERR_SHUT_DOWN, 1), "after shutdown");
}
