//! Lean stand-ins for the glue tests: the real Lean 4.35 runtime (`.lean-runtime/`), Lean-style
//! closures built from the runtime's closure objects exactly as compiled Lean code builds them
//! (the code pointer takes the fixed arguments, the explicit arguments, then the world token of
//! a `BaseIO` result, and returns the value unwrapped), IO results, and capnp messages carried as
//! `Array ByteArray` the way `Capnp.Wire` does.
#![allow(dead_code, unsafe_code)]

use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Mutex, MutexGuard, OnceLock};
use std::time::Duration;

use capnp::message::{Builder, HeapAllocator, Reader, ReaderOptions, ReaderSegments};
use capnp::Word;
use capnp_lean_glue as glue;
use capnp_lean_leanrt::{self as lean, abi::LeanObject, alloc_ctor, ExternalClass, InitMode, IoResult, LeanRuntime, Obj};

/// A raw Lean object pointer.
pub type Raw = *mut LeanObject;

/// How long a test waits for a completion.
pub const WAIT: Duration = Duration::from_secs(20);

/// The Lean runtime, opened and initialized once; `None` (after `SKIPPED: …`) when absent.
pub fn runtime() -> Option<&'static LeanRuntime> {
    static RT: OnceLock<Option<&'static LeanRuntime>> = OnceLock::new();
    *RT.get_or_init(|| {
        let install = capnp_lean_toolchain::test_support::runtime_or_skip(env!("CARGO_MANIFEST_DIR"))?;
        let rt = LeanRuntime::open(&install.runtime_library).expect("the Lean runtime opens");
        rt.initialize(InitMode::RuntimeModule).expect("the Lean runtime initializes");
        Some(rt)
    })
}

/// Tests of one binary share the glue's live-object counters: run them one at a time.
pub fn serial() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|p| p.into_inner())
}

/// Skips (returns `None`) without the runtime; otherwise serializes the test and attaches its
/// thread to the Lean runtime for the test's duration.
pub fn require() -> Option<(MutexGuard<'static, ()>, lean::ThreadAttachment)> {
    let rt = runtime()?;
    Some((serial(), rt.attach_current_thread()))
}

/// The value of an ok IO result; panics with Lean's text of an error.
pub fn ok(raw: Raw) -> Obj {
    // SAFETY: `raw` is an owned IO result returned by a glue extern.
    unsafe { IoResult::from_raw(raw) }.into_result().unwrap_or_else(|e| panic!("unexpected IO error: {e}"))
}

/// The text of an IO error; panics on success.
pub fn err(raw: Raw) -> String {
    // SAFETY: as in `ok`.
    match unsafe { IoResult::from_raw(raw) }.into_result() {
        Ok(_) => panic!("expected an IO error"),
        Err(e) => e.message,
    }
}

/// A Lean object moved between threads after `mark_mt` (as `IO.Promise.resolve` would do).
pub struct Shared(pub Obj);
// SAFETY: marked multi-threaded before wrapping; its count is atomic from then on.
unsafe impl Send for Shared {}

impl Shared {
    pub fn new(o: Obj) -> Self {
        o.mark_mt();
        Shared(o)
    }
}

/// A received message: word-aligned segment copies and its capability table (`Kj.Cap`s).
pub struct Payload {
    pub segments: Vec<Vec<Word>>,
    pub caps: Vec<Shared>,
}

impl Payload {
    /// Reads `Capnp.Rpc.Kj.Payload` (`{ segments : Array ByteArray, caps : Array Cap }`).
    pub fn from_lean(payload: &Obj) -> Payload {
        assert_eq!((payload.tag(), payload.ctor_num_objs()), (0, 2), "Payload is a two-field structure");
        let segs = payload.ctor_get_owned(0);
        let segments = (0..lean::array_len(&segs))
            .map(|i| {
                let bytes = lean::byte_array_bytes(&lean::array_get(&segs, i)).to_vec();
                let mut words = Word::allocate_zeroed_vec(bytes.len() / 8);
                Word::words_to_bytes_mut(&mut words).copy_from_slice(&bytes);
                words
            })
            .collect();
        let caps_array = payload.ctor_get_owned(1);
        let caps = (0..lean::array_len(&caps_array)).map(|i| Shared::new(lean::array_get(&caps_array, i))).collect();
        Payload { segments, caps }
    }

    /// A capnp reader over the segments.
    pub fn reader(&self) -> Reader<WordSegments<'_>> {
        Reader::new(WordSegments(&self.segments), ReaderOptions::new())
    }
}

/// Borrowed word segments for a capnp `Reader`.
pub struct WordSegments<'a>(&'a [Vec<Word>]);

impl ReaderSegments for WordSegments<'_> {
    fn get_segment(&self, idx: u32) -> Option<&[u8]> {
        self.0.get(idx as usize).map(|w| Word::words_to_bytes(w))
    }
}

/// What a completion closure received: the results, or the IO error's text.
pub type Outcome = Result<Payload, String>;

type CompletionSink = Mutex<Sender<Outcome>>;

fn sink_class() -> &'static ExternalClass<CompletionSink> {
    static CLASS: OnceLock<ExternalClass<CompletionSink>> = OnceLock::new();
    CLASS.get_or_init(ExternalClass::register)
}

/// Reads `Except IO.Error Payload`.
pub fn outcome_of(except: &Obj) -> Outcome {
    match except.tag() {
        0 => Err(lean::io_error_to_string(&except.ctor_get_owned(0))),
        1 => Ok(Payload::from_lean(&except.ctor_get_owned(0))),
        t => panic!("Except has tags 0 and 1, got {t}"),
    }
}

/// The code of `fun r => sink.send r : Except IO.Error Payload → BaseIO Unit` with `sink`
/// captured: fixed argument, explicit argument, world token; returns `Unit` itself.
unsafe extern "C" fn completion_code(sink: Raw, result: Raw, _world: Raw) -> Raw {
    // SAFETY: closure arguments are owned by the callee.
    let (sink, result) = unsafe { (Obj::from_raw(sink), Obj::from_raw(result)) };
    let outcome = outcome_of(&result);
    let sender = sink_class().get(&sink).expect("the captured sink");
    let _ = sender.lock().unwrap().send(outcome);
    Obj::boxed(0).into_raw()
}

/// A completion closure and the receiver of what it is applied to.
pub fn completion() -> (Obj, Receiver<Outcome>) {
    let (tx, rx) = mpsc::channel();
    let sink = sink_class().wrap(Mutex::new(tx));
    // SAFETY: `completion_code` takes three objects (1 fixed + 1 argument + world).
    let closure = unsafe { lean::alloc_closure(completion_code as *const _, 3, vec![sink]) };
    (closure, rx)
}

/// What a Lean server handler does with each call: interface id, method id, `Kj.ServerCall`.
pub type HandlerFn = Box<dyn Fn(u64, u16, Obj) + Send + Sync>;

fn handler_class() -> &'static ExternalClass<HandlerFn> {
    static CLASS: OnceLock<ExternalClass<HandlerFn>> = OnceLock::new();
    CLASS.get_or_init(ExternalClass::register)
}

/// The code of `fun iface method call => … : UInt64 → UInt16 → ServerCall → BaseIO Unit`:
/// the captured state, the boxed `UInt64` and `UInt16`, the call, the world token.
unsafe extern "C" fn handler_code(state: Raw, iface: Raw, method: Raw, call: Raw, _world: Raw) -> Raw {
    // SAFETY: closure arguments are owned by the callee.
    let (state, iface, method, call) = unsafe { (Obj::from_raw(state), Obj::from_raw(iface), Obj::from_raw(method), Obj::from_raw(call)) };
    let handler = handler_class().get(&state).expect("the captured handler");
    let method = u16::try_from(method.unbox().expect("a boxed UInt16")).expect("a UInt16");
    handler(lean::unbox_u64(&iface), method, call);
    Obj::boxed(0).into_raw()
}

/// A server handler closure, as compiled Lean code represents one (arity 5, one fixed).
pub fn server_closure(handler: impl Fn(u64, u16, Obj) + Send + Sync + 'static) -> Obj {
    let state = handler_class().wrap(Box::new(handler) as HandlerFn);
    // SAFETY: `handler_code` takes five objects.
    unsafe { lean::alloc_closure(handler_code as *const _, 5, vec![state]) }
}

/// A message's segments as `Array ByteArray`.
pub fn segments_of(message: &Builder<HeapAllocator>) -> Obj {
    let segments = message.get_segments_for_output();
    lean::mk_array(segments.iter().map(|s| lean::mk_byte_array(s)).collect())
}

/// An `Array (Option Cap)`.
pub fn cap_table(caps: &[Option<&Obj>]) -> Obj {
    lean::mk_array(
        caps.iter()
            .map(|c| match c {
                None => Obj::boxed(0),
                Some(cap) => {
                    let mut some = alloc_ctor(1, 1, 0);
                    some.ctor_set(0, (*cap).clone());
                    some
                }
            })
            .collect(),
    )
}

/// An empty message (all fields default), as `Capnp.Wire` sends params without fields.
pub fn empty_message() -> Builder<HeapAllocator> {
    let mut m = Builder::new_default();
    m.init_root::<capnp::any_pointer::Builder>();
    m
}

/// Starts a call through the glue; returns the `Kj.Call` and the completion receiver.
pub fn start_call(target: &Obj, iface: u64, method: u16, params: &Builder<HeapAllocator>, caps: &[Option<&Obj>]) -> (Obj, Receiver<Outcome>) {
    let (on_done, rx) = completion();
    let segments = segments_of(params);
    let table = cap_table(caps);
    // SAFETY: borrowed target/segments/caps stay alive for the call; the closure is consumed.
    let call = ok(unsafe { glue::capnp_lean_kj_cap_call(target.as_ptr(), iface, method, segments.as_ptr(), table.as_ptr(), on_done.into_raw()) });
    (call, rx)
}

/// Waits for a completion.
pub fn wait(rx: &Receiver<Outcome>) -> Outcome {
    rx.recv_timeout(WAIT).expect("the completion closure ran")
}

/// Answers a server call with `results` through the glue.
pub fn respond(call: &Obj, results: &Builder<HeapAllocator>, caps: &[Option<&Obj>]) -> Result<(), String> {
    let segments = segments_of(results);
    let table = cap_table(caps);
    // SAFETY: borrowed arguments.
    let raw = unsafe { glue::capnp_lean_kj_server_call_return(call.as_ptr(), segments.as_ptr(), table.as_ptr()) };
    // SAFETY: an owned IO result.
    unsafe { IoResult::from_raw(raw) }.into_result().map(drop).map_err(|e| e.message)
}

/// Answers a server call with an error (`kind` numbered as the C ABI does).
pub fn fail(call: &Obj, kind: u32, message: &str) -> Result<(), String> {
    let message = lean::mk_string(message);
    // SAFETY: borrowed arguments.
    let raw = unsafe { glue::capnp_lean_kj_server_call_fail(call.as_ptr(), kind, message.as_ptr()) };
    // SAFETY: an owned IO result.
    unsafe { IoResult::from_raw(raw) }.into_result().map(drop).map_err(|e| e.message)
}

/// A new KJ runtime object.
pub fn new_runtime() -> Obj {
    // SAFETY: no arguments.
    ok(unsafe { glue::capnp_lean_kj_runtime_new() })
}

/// `Runtime.stats` as `[connections, caps, calls, server_calls, host_servers, resolvers]`.
pub fn stats(rt: &Obj) -> [usize; 6] {
    // SAFETY: borrowed runtime.
    let s = ok(unsafe { glue::capnp_lean_kj_runtime_stats(rt.as_ptr()) });
    std::array::from_fn(|i| s.ctor_get_owned(i).unbox().expect("a small Nat"))
}

/// Connects and bootstraps: `(connection, bootstrap cap)`.
pub fn connect(rt: &Obj, address: &str) -> (Obj, Obj) {
    let address = lean::mk_string(address);
    // SAFETY: borrowed arguments.
    let conn = ok(unsafe { glue::capnp_lean_kj_connect(rt.as_ptr(), address.as_ptr()) });
    // SAFETY: borrowed connection.
    let cap = ok(unsafe { glue::capnp_lean_kj_connection_bootstrap(conn.as_ptr()) });
    (conn, cap)
}

/// Serves a Lean handler closure: the `Kj.Cap`.
pub fn serve(rt: &Obj, handler: Obj) -> Obj {
    // SAFETY: borrowed runtime, consumed closure.
    ok(unsafe { glue::capnp_lean_kj_serve(rt.as_ptr(), handler.into_raw()) })
}

/// The params of a server call.
pub fn params(call: &Obj) -> Payload {
    // SAFETY: borrowed call.
    Payload::from_lean(&ok(unsafe { glue::capnp_lean_kj_server_call_params(call.as_ptr()) }))
}

/// Polls `condition` until it holds or `WAIT` passes.
pub fn eventually(what: &str, condition: impl Fn() -> bool) {
    let deadline = std::time::Instant::now() + WAIT;
    while !condition() {
        assert!(std::time::Instant::now() < deadline, "timed out waiting for: {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Every glue object and closure has been finalized.
pub fn assert_no_live_glue_objects() {
    eventually("every glue object finalized", || glue::live_objects() == glue::LiveObjects::default());
}

/// Starts a call with a deadline (`Cap.callWithTimeout`); returns the `Kj.Call` and the receiver.
pub fn start_call_with_timeout(target: &Obj, iface: u64, method: u16, params: &Builder<HeapAllocator>, caps: &[Option<&Obj>], timeout_ms: u64) -> (Obj, Receiver<Outcome>) {
    let (on_done, rx) = completion();
    let segments = segments_of(params);
    let table = cap_table(caps);
    // SAFETY: borrowed target/segments/caps stay alive for the call; the closure is consumed.
    let call = ok(unsafe {
        glue::capnp_lean_kj_cap_call_timeout(target.as_ptr(), iface, method, segments.as_ptr(), table.as_ptr(), timeout_ms, on_done.into_raw())
    });
    (call, rx)
}

type ReasonSink = Mutex<Sender<String>>;

fn reason_class() -> &'static ExternalClass<ReasonSink> {
    static CLASS: OnceLock<ExternalClass<ReasonSink>> = OnceLock::new();
    CLASS.get_or_init(ExternalClass::register)
}

/// The code of `fun e => sink.send e : IO.Error → BaseIO Unit` with `sink` captured.
unsafe extern "C" fn reason_code(sink: Raw, error: Raw, _world: Raw) -> Raw {
    // SAFETY: closure arguments are owned by the callee.
    let (sink, error) = unsafe { (Obj::from_raw(sink), Obj::from_raw(error)) };
    let sender = reason_class().get(&sink).expect("the captured sink");
    let _ = sender.lock().unwrap().send(lean::io_error_to_string(&error));
    Obj::boxed(0).into_raw()
}

/// Registers a `Connection.onDisconnect` closure; the receiver gets the reason's text.
pub fn on_disconnect(connection: &Obj) -> Receiver<String> {
    let (tx, rx) = mpsc::channel();
    let sink = reason_class().wrap(Mutex::new(tx));
    // SAFETY: `reason_code` takes three objects (1 fixed + 1 argument + world).
    let closure = unsafe { lean::alloc_closure(reason_code as *const _, 3, vec![sink]) };
    // SAFETY: borrowed connection, consumed closure.
    ok(unsafe { glue::capnp_lean_kj_connection_on_disconnect(connection.as_ptr(), closure.into_raw()) });
    rx
}

/// `Kj.ConnectionOptions` as the glue receives it (0 = default): nesting limit, traversal limit
/// (words), flow limit (words), dead-peer timeout (ms), transport (1 stock, 2 coalescing).
#[derive(Clone, Copy, Default)]
pub struct Limits {
    pub nesting: u32,
    pub traversal_words: u64,
    pub flow_words: u64,
    pub dead_peer_ms: u32,
    pub transport: u32,
}

/// `Runtime.connectUnpacked`: the IO result (connection or error).
pub fn connect_with(rt: &Obj, address: &str, l: Limits) -> Raw {
    let address = lean::mk_string(address);
    // SAFETY: borrowed arguments.
    unsafe { glue::capnp_lean_kj_connect_with_options(rt.as_ptr(), address.as_ptr(), l.nesting, l.traversal_words, l.flow_words, l.dead_peer_ms, l.transport) }
}

/// `Runtime.listenUnpacked`: the `Kj.Listener`.
pub fn listen_with(rt: &Obj, address: &str, bootstrap: &Obj, l: Limits) -> Obj {
    let address = lean::mk_string(address);
    // SAFETY: borrowed arguments.
    ok(unsafe {
        glue::capnp_lean_kj_listen_with_options(rt.as_ptr(), address.as_ptr(), bootstrap.as_ptr(), l.nesting, l.traversal_words, l.flow_words, l.dead_peer_ms, l.transport)
    })
}

/// The bound address of a `Kj.Listener`.
pub fn listener_address(listener: &Obj) -> String {
    // SAFETY: borrowed listener.
    lean::string_str(&ok(unsafe { glue::capnp_lean_kj_listener_address(listener.as_ptr()) })).to_string()
}
