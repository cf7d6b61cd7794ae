//! Owned wrappers around the C ABI's raw handles: the only module of the RPC API that calls
//! into `capnp-lean-sys`. Each wrapper releases its handle on `Drop`, turns status codes into
//! [`Error`]s and hands callbacks over as boxed closures whose ownership follows the ABI's
//! "exactly once" rules (see `docs/c-abi.md`).

#![allow(unsafe_code)]

use crate::error::{Error, ErrorKind};
use capnp_lean_sys as sys;
use std::ffi::c_void;
use std::os::fd::{IntoRawFd, OwnedFd};
use std::ptr::{self, NonNull};

/// Reads and frees an error object. `status` says what kind of failure it was.
fn take_error(status: sys::capnp_lean_status, err: *mut sys::capnp_lean_error) -> Error {
    if err.is_null() {
        return Error::new(ErrorKind::Failed, format!("capnp-lean call failed with status {status}"));
    }
    // SAFETY: `err` was just produced by the ABI for this call and is owned by us; the message
    // view stays valid until capnp_lean_error_free below, and we copy it before that.
    let (kind, message) = unsafe {
        let kind = sys::capnp_lean_error_get_kind(err);
        let mut data = ptr::null();
        let mut len = 0usize;
        sys::capnp_lean_error_get_message(err, &mut data, &mut len);
        let message = if data.is_null() {
            String::new()
        } else {
            String::from_utf8_lossy(std::slice::from_raw_parts(data, len)).into_owned()
        };
        sys::capnp_lean_error_free(err);
        (kind, message)
    };
    Error::from_status(status, kind, message)
}

/// Copies a borrowed error (as passed to callbacks) without freeing it.
fn copy_error(err: *const sys::capnp_lean_error) -> Error {
    // SAFETY: the ABI passes a valid error object that lives for the duration of the callback.
    unsafe {
        let kind = sys::capnp_lean_error_get_kind(err);
        let mut data = ptr::null();
        let mut len = 0usize;
        sys::capnp_lean_error_get_message(err, &mut data, &mut len);
        let message = if data.is_null() {
            String::new()
        } else {
            String::from_utf8_lossy(std::slice::from_raw_parts(data, len)).into_owned()
        };
        Error::new(ErrorKind::from_raw(kind), message)
    }
}

/// Runs an ABI function that reports failure through a status and an error out-parameter.
fn check(f: impl FnOnce(*mut *mut sys::capnp_lean_error) -> sys::capnp_lean_status) -> Result<(), Error> {
    let mut err = ptr::null_mut();
    let status = f(&mut err);
    if status == sys::CAPNP_LEAN_OK {
        Ok(())
    } else {
        Err(take_error(status, err))
    }
}

/// Calls a boxed callback stored behind `user_data` and frees it.
///
/// # Safety
/// `user_data` must come from `Box::into_raw(Box::new(callback))` of the same type, and this
/// must be the only call consuming it (the ABI invokes each callback exactly once).
unsafe fn take_callback<T>(user_data: *mut c_void) -> Box<T> {
    // SAFETY: guaranteed by the caller (see above).
    unsafe { Box::from_raw(user_data.cast::<T>()) }
}

/// Runs host code called back from C++: a panic must never unwind across the ABI, so it is
/// caught here and reported through `log` (silent unless the host installs a logger) (each callback's own contract says what then happens).
fn contain_panic(what: &str, f: impl FnOnce()) {
    if std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).is_err() {
        log::error!("capnp-lean: a panic in a {what} callback was contained");
    }
}

/// Boxes `callback` and passes it to an ABI function as `user_data`. Once that function succeeds
/// the ABI owns it (the matching trampoline frees it, exactly once); if it fails the ABI never
/// saw it, so it is freed here.
fn hand_over<T, R>(callback: T, call: impl FnOnce(*mut c_void) -> Result<R, Error>) -> Result<R, Error> {
    let user_data = Box::into_raw(Box::new(callback));
    let result = call(user_data.cast());
    if result.is_err() {
        // SAFETY: the ABI refused the call, so ownership of user_data never left us.
        drop(unsafe { Box::from_raw(user_data) });
    }
    result
}

/// A message going out: segments and borrowed capability handles (None = null capability).
pub struct OutMessage<'a> {
    /// The segments, in order.
    pub segments: &'a [&'a [u8]],
    /// The capability table (`None` = null capability).
    pub caps: &'a [Option<&'a CapHandle>],
}

impl OutMessage<'_> {
    /// Calls `f` with the raw `capnp_lean_message` describing this message.
    fn with_raw<R>(&self, f: impl FnOnce(*const sys::capnp_lean_message) -> R) -> R {
        out_with_raw(&raw_segments(self.segments), self.caps, f)
    }
}

/// The ABI's descriptors of `segments` (pointers into them, no copy).
fn raw_segments(segments: &[&[u8]]) -> Vec<sys::capnp_lean_segment> {
    segments.iter().map(|s| sys::capnp_lean_segment { data: s.as_ptr(), size: s.len() }).collect()
}

/// Calls `f` with a raw message over `segments` and `caps`, valid during the call.
fn out_with_raw<R>(segments: &[sys::capnp_lean_segment], caps: &[Option<&CapHandle>], f: impl FnOnce(*const sys::capnp_lean_message) -> R) -> R {
    let caps: Vec<*mut sys::capnp_lean_cap> = caps.iter().map(|c| c.map_or(ptr::null_mut(), |c| c.raw.as_ptr())).collect();
    let raw = sys::capnp_lean_message {
        segments: segments.as_ptr(),
        segment_count: segments.len(),
        caps: caps.as_ptr(),
        cap_count: caps.len(),
    };
    f(&raw)
}

/// Memory that can be lent to the ABI without a copy: its segments stay at the same address
/// and unchanged for as long as the value is not touched (the ABI never touches it; it only
/// drops it, on whatever thread ends the loan).
pub trait Lendable: Send + 'static {
    /// The message's segments, 8-byte aligned.
    fn segments(&self) -> Vec<&[u8]>;
}

/// A message lent to the ABI: `owner` holds the segments; `caps` are borrowed for the call.
pub struct LentMessage<'a, T: Lendable> {
    pub owner: Box<T>,
    pub caps: &'a [Option<&'a CapHandle>],
}

impl<T: Lendable> LentMessage<'_, T> {
    /// Calls `f` with the raw message and the owner's address, which the ABI now owns: it frees
    /// it through `release_trampoline::<T>` exactly once, on every path.
    fn lend<R>(self, f: impl FnOnce(*const sys::capnp_lean_message, *mut c_void) -> R) -> R {
        // The segments live in the boxed owner's heap memory, which Box::into_raw does not move.
        let raw_segments = raw_segments(&self.owner.segments());
        let owner = Box::into_raw(self.owner);
        out_with_raw(&raw_segments, self.caps, |raw| f(raw, owner.cast()))
    }
}

unsafe extern "C" fn release_trampoline<T: Lendable>(owner: *mut c_void) {
    // SAFETY: owner is the Box<T> leaked by `LentMessage::lend`; the ABI releases it exactly once.
    let owner = unsafe { Box::from_raw(owner.cast::<T>()) };
    contain_panic("lent message release", move || drop(owner));
}

/// Turns a message view into byte slices borrowed for `'a`.
///
/// # Safety
/// The view must describe memory that stays valid and unchanged for `'a`.
unsafe fn view_segments<'a>(view: &sys::capnp_lean_message_view) -> Vec<&'a [u8]> {
    (0..view.segment_count)
        .map(|i| {
            // SAFETY: the ABI returns `segment_count` valid segments (guaranteed by the caller).
            unsafe {
                let s = &*view.segments.add(i);
                if s.size == 0 { &[][..] } else { std::slice::from_raw_parts(s.data, s.size) }
            }
        })
        .collect()
}

/// The runtime handle: owns the loop thread.
pub struct RuntimeHandle {
    raw: NonNull<sys::capnp_lean_runtime>,
}

// SAFETY: every ABI function may be called from any thread; the runtime is internally synchronised.
unsafe impl Send for RuntimeHandle {}
// SAFETY: as above; `&RuntimeHandle` only allows calling thread-safe ABI functions.
unsafe impl Sync for RuntimeHandle {}

type ConnectDone = Box<dyn FnOnce(Result<ConnectionHandle, Error>) + Send>;
type ListenDone = Box<dyn FnOnce(Result<ListenerHandle, Error>) + Send>;
type LoopTask = Box<dyn FnOnce() + Send>;
/// A host-implemented capability, as the loop thread sees it.
pub trait HostServer: Send + Sync {
    /// A call arrived (loop thread).
    fn dispatch(&self, interface_id: u64, method_id: u16, call: ServerCallHandle);
    /// The caller cancelled the unanswered call whose [`ServerCallHandle::id`] is `call_id`.
    fn cancelled(&self, call_id: usize);
}
type Dispatch = Box<dyn HostServer>;

unsafe extern "C" fn connect_trampoline(
    user_data: *mut c_void,
    conn: *mut sys::capnp_lean_connection,
    err: *const sys::capnp_lean_error,
) {
    // SAFETY: user_data is the ConnectDone boxed by `connect`; the ABI calls this exactly once.
    let done = unsafe { take_callback::<ConnectDone>(user_data) };
    let result = match NonNull::new(conn) {
        Some(raw) => Ok(ConnectionHandle { raw }),
        None => Err(copy_error(err)),
    };
    contain_panic("connect", || done(result));
}

unsafe extern "C" fn listen_trampoline(
    user_data: *mut c_void,
    listener: *mut sys::capnp_lean_listener,
    err: *const sys::capnp_lean_error,
) {
    // SAFETY: user_data is the ListenDone boxed by `listen`; the ABI calls this exactly once.
    let done = unsafe { take_callback::<ListenDone>(user_data) };
    let result = NonNull::new(listener).map(|raw| ListenerHandle { raw }).ok_or_else(|| copy_error(err));
    contain_panic("listen", || done(result));
}

unsafe extern "C" fn task_trampoline(user_data: *mut c_void) {
    // SAFETY: user_data is the LoopTask boxed by `post`; the ABI runs each posted task once.
    let task = unsafe { take_callback::<LoopTask>(user_data) };
    contain_panic("loop task", task);
}

unsafe extern "C" fn dispatch_trampoline(
    user_data: *mut c_void,
    interface_id: u64,
    method_id: u16,
    call: *mut sys::capnp_lean_server_call,
) {
    let Some(raw) = NonNull::new(call) else { return };
    let handle = ServerCallHandle { raw };
    // SAFETY: user_data is the Dispatch boxed by `new_server`, freed only by drop_trampoline,
    // which the ABI calls after the last dispatch.
    let dispatch = unsafe { &*user_data.cast::<Dispatch>() };
    // Dropping the handle while unwinding fails the call.
    contain_panic("dispatch", || dispatch.dispatch(interface_id, method_id, handle));
}

unsafe extern "C" fn cancel_trampoline(user_data: *mut c_void, call: *mut sys::capnp_lean_server_call) {
    // SAFETY: as in dispatch_trampoline; the server outlives its cancel callbacks.
    let server = unsafe { &*user_data.cast::<Dispatch>() };
    contain_panic("cancel", || server.cancelled(call as usize));
}

unsafe extern "C" fn drop_trampoline(user_data: *mut c_void) {
    // SAFETY: user_data is the Dispatch boxed by `new_server`; the ABI calls this exactly once.
    let server = unsafe { take_callback::<Dispatch>(user_data) };
    contain_panic("server drop", || drop(server));
}

impl RuntimeHandle {
    /// Creates a runtime and starts its loop thread.
    pub fn create() -> Result<Self, Error> {
        let mut raw = ptr::null_mut();
        // SAFETY: out-parameters point to valid locals.
        check(|err| unsafe { sys::capnp_lean_runtime_create(&mut raw, err) })?;
        Ok(Self { raw: NonNull::new(raw).expect("runtime_create returned OK without a runtime") })
    }

    /// True on this runtime's loop thread.
    pub fn on_loop_thread(&self) -> bool {
        // SAFETY: `raw` is a live runtime (destroyed only in Drop).
        unsafe { sys::capnp_lean_runtime_on_loop_thread(self.raw.as_ptr()) != 0 }
    }

    /// The runtime's counters.
    pub fn stats(&self) -> Result<sys::capnp_lean_stats, Error> {
        let mut stats = sys::capnp_lean_stats {
            connections: 0, caps: 0, calls: 0, server_calls: 0, host_servers: 0, resolvers: 0,
        };
        // SAFETY: live runtime; `stats` is a valid out-parameter.
        check(|err| unsafe { sys::capnp_lean_runtime_stats_wait(self.raw.as_ptr(), &mut stats, err) })?;
        Ok(stats)
    }

    /// Runs `task` on the loop thread (FIFO with other posted tasks).
    pub fn post(&self, task: LoopTask) -> Result<(), Error> {
        hand_over(task, |user_data| {
            // SAFETY: live runtime; task_trampoline consumes user_data as a LoopTask.
            check(|err| unsafe { sys::capnp_lean_runtime_post(self.raw.as_ptr(), Some(task_trampoline), user_data, err) })
        })
    }

    /// Runs `task` on the loop thread after `delay` (or earlier, at shutdown).
    pub fn post_after(&self, delay: std::time::Duration, task: LoopTask) -> Result<(), Error> {
        let micros = u64::try_from(delay.as_micros()).unwrap_or(u64::MAX);
        hand_over(task, |user_data| {
            // SAFETY: live runtime; task_trampoline consumes user_data as a LoopTask.
            check(|err| unsafe {
                sys::capnp_lean_runtime_post_after(self.raw.as_ptr(), micros, Some(task_trampoline), user_data, err)
            })
        })
    }

    /// Connects to `address`; `done` gets the connection (on the loop thread).
    pub fn connect(&self, address: &str, bootstrap: Option<&CapHandle>, options: &sys::capnp_lean_connection_options, done: ConnectDone) -> Result<(), Error> {
        hand_over(done, |user_data| {
            // SAFETY: live runtime; the address is copied by the ABI; connect_trampoline
            // consumes user_data as a ConnectDone.
            check(|err| unsafe {
                sys::capnp_lean_connect(
                    self.raw.as_ptr(), address.as_ptr(), address.len(),
                    bootstrap.map_or(ptr::null_mut(), |b| b.raw.as_ptr()), options,
                    Some(connect_trampoline), user_data, err)
            })
        })
    }

    /// Listens on `address`, serving `bootstrap` to every peer; `done` gets the listener.
    pub fn listen(&self, address: &str, bootstrap: &CapHandle, options: &sys::capnp_lean_connection_options, done: ListenDone) -> Result<(), Error> {
        hand_over(done, |user_data| {
            // SAFETY: as in `connect`, with listen_trampoline consuming a ListenDone.
            check(|err| unsafe {
                sys::capnp_lean_listen(
                    self.raw.as_ptr(), address.as_ptr(), address.len(), bootstrap.raw.as_ptr(),
                    options, Some(listen_trampoline), user_data, err)
            })
        })
    }

    /// Runs a connection over an already connected socket.
    pub fn adopt_fd(&self, fd: OwnedFd, is_server: bool, bootstrap: Option<&CapHandle>, options: &sys::capnp_lean_connection_options) -> Result<ConnectionHandle, Error> {
        let mut raw = ptr::null_mut();
        let fd = fd.into_raw_fd();
        // SAFETY: the fd's ownership passes to the ABI (which closes it even on failure).
        check(|err| unsafe {
            sys::capnp_lean_connection_adopt_fd(
                self.raw.as_ptr(), fd, i32::from(is_server),
                bootstrap.map_or(ptr::null_mut(), |b| b.raw.as_ptr()), options, &mut raw, err)
        })?;
        Ok(ConnectionHandle { raw: NonNull::new(raw).expect("adopt_fd returned no connection") })
    }

    /// Hosts a capability implemented by `dispatch`.
    pub fn new_server(&self, dispatch: Dispatch) -> Result<CapHandle, Error> {
        let mut raw = ptr::null_mut();
        hand_over(dispatch, |user_data| {
            // SAFETY: the trampolines borrow user_data as a Dispatch until drop_trampoline
            // frees it; `raw` is a valid out-parameter.
            check(|err| unsafe {
                sys::capnp_lean_server_new(self.raw.as_ptr(), Some(dispatch_trampoline),
                    Some(cancel_trampoline), Some(drop_trampoline), user_data, &mut raw, err)
            })
        })?;
        Ok(CapHandle::from_raw(raw))
    }

    /// A promise capability and the resolver that settles it.
    pub fn new_promise_cap(&self) -> Result<(CapHandle, ResolverHandle), Error> {
        let mut cap = ptr::null_mut();
        let mut resolver = ptr::null_mut();
        // SAFETY: valid out-parameters.
        check(|err| unsafe { sys::capnp_lean_promise_cap_new(self.raw.as_ptr(), &mut cap, &mut resolver, err) })?;
        Ok((CapHandle::from_raw(cap), ResolverHandle { raw: NonNull::new(resolver).expect("no resolver") }))
    }

    /// A capability whose every call fails with `kind` and `message`.
    pub fn new_broken(&self, kind: ErrorKind, message: &str) -> Result<CapHandle, Error> {
        let mut cap = ptr::null_mut();
        // SAFETY: the message is copied by the ABI.
        check(|err| unsafe {
            sys::capnp_lean_cap_new_broken(self.raw.as_ptr(), kind.to_raw(), message.as_ptr(),
                message.len(), &mut cap, err)
        })?;
        Ok(CapHandle::from_raw(cap))
    }

    /// Stops the loop thread (idempotent). Refused on the loop thread itself.
    pub fn shutdown(&self) -> Result<(), Error> {
        // SAFETY: live runtime handle; shutdown keeps the handle valid.
        check(|err| unsafe { sys::capnp_lean_runtime_shutdown(self.raw.as_ptr(), err) })
    }
}

struct SendRuntime(*mut sys::capnp_lean_runtime);
// SAFETY: the pointer is only used to destroy the runtime from the thread it is sent to.
unsafe impl Send for SendRuntime {}

impl Drop for RuntimeHandle {
    fn drop(&mut self) {
        let raw = SendRuntime(self.raw.as_ptr());
        let destroy = move || {
            let raw = raw;
            // SAFETY: the last owner destroys the handle exactly once, off the loop thread.
            let _ = check(|err| unsafe { sys::capnp_lean_runtime_destroy(raw.0, err) });
        };
        if self.on_loop_thread() {
            // The loop thread cannot join itself: finish from a helper thread.
            std::thread::spawn(destroy);
        } else {
            destroy();
        }
    }
}

/// A connection handle; releasing it closes the connection.
pub struct ConnectionHandle {
    raw: NonNull<sys::capnp_lean_connection>,
}

// SAFETY: ABI functions may be called from any thread.
unsafe impl Send for ConnectionHandle {}
// SAFETY: `&self` methods only call thread-safe ABI functions.
unsafe impl Sync for ConnectionHandle {}

type DisconnectFn = Box<dyn FnOnce(Option<Error>) + Send>;

unsafe extern "C" fn disconnect_trampoline(user_data: *mut c_void, err: *const sys::capnp_lean_error) {
    // SAFETY: user_data is the DisconnectFn boxed by `on_disconnect`; called exactly once per registration.
    let callback = unsafe { take_callback::<DisconnectFn>(user_data) };
    let reason = if err.is_null() { None } else { Some(copy_error(err)) };
    contain_panic("disconnect", || callback(reason));
}

impl ConnectionHandle {
    /// The peer's bootstrap capability.
    pub fn bootstrap(&self) -> Result<CapHandle, Error> {
        let mut cap = ptr::null_mut();
        // SAFETY: live connection, valid out-parameter.
        check(|err| unsafe { sys::capnp_lean_connection_bootstrap(self.raw.as_ptr(), &mut cap, err) })?;
        Ok(CapHandle::from_raw(cap))
    }

    /// Registers `callback` (replacing an earlier one, which then receives `None`).
    pub fn on_disconnect(&self, callback: DisconnectFn) -> Result<(), Error> {
        hand_over(callback, |user_data| {
            // SAFETY: live connection; disconnect_trampoline consumes user_data as a DisconnectFn.
            check(|err| unsafe {
                sys::capnp_lean_connection_on_disconnect(self.raw.as_ptr(), Some(disconnect_trampoline), user_data, err)
            })
        })
    }
}

impl Drop for ConnectionHandle {
    fn drop(&mut self) {
        // SAFETY: the handle is released exactly once, here.
        unsafe { sys::capnp_lean_connection_release(self.raw.as_ptr()) }
    }
}

/// A listener handle; releasing it stops accepting.
pub struct ListenerHandle {
    raw: NonNull<sys::capnp_lean_listener>,
}

// SAFETY: ABI functions may be called from any thread.
unsafe impl Send for ListenerHandle {}
// SAFETY: `&self` methods only read immutable data or atomics.
unsafe impl Sync for ListenerHandle {}

impl ListenerHandle {
    /// The address actually bound (with the port chosen by the OS).
    pub fn address(&self) -> String {
        let mut data = ptr::null();
        let mut len = 0;
        // SAFETY: the bound address is immutable and lives as long as the handle; we copy it.
        unsafe {
            sys::capnp_lean_listener_address(self.raw.as_ptr(), &mut data, &mut len);
            String::from_utf8_lossy(std::slice::from_raw_parts(data, len)).into_owned()
        }
    }

    /// How many connections were accepted so far.
    pub fn accepted(&self) -> u64 {
        // SAFETY: live listener.
        unsafe { sys::capnp_lean_listener_accepted(self.raw.as_ptr()) }
    }
}

impl Drop for ListenerHandle {
    fn drop(&mut self) {
        // SAFETY: released exactly once, here.
        unsafe { sys::capnp_lean_listener_release(self.raw.as_ptr()) }
    }
}

/// A capability handle; dropping the last handle to a remote capability sends Release.
pub struct CapHandle {
    raw: NonNull<sys::capnp_lean_cap>,
}

// SAFETY: ABI functions may be called from any thread.
unsafe impl Send for CapHandle {}
// SAFETY: clone and call_start may run concurrently on one handle (the ABI queues them).
unsafe impl Sync for CapHandle {}

type CallDone = Box<dyn FnOnce(bool) + Send>;

unsafe extern "C" fn call_done_trampoline(user_data: *mut c_void, call: *mut sys::capnp_lean_call) {
    // SAFETY: user_data is the CallDone boxed by `start_call`; the ABI calls this exactly once.
    let done = unsafe { take_callback::<CallDone>(user_data) };
    contain_panic("call completion", || done(!call.is_null()));
}

/// A completion that reads the completed call itself (`None`: cancelled before completion).
pub type CallDoneViewing = Box<dyn for<'a> FnOnce(Option<CompletedCall<'a>>) + Send>;

/// A completed call as its completion callback sees it: its results are readable for the
/// duration of the callback, without the handle `start_call_viewing` returned to the starter
/// (which may not even have received it yet: a local call can complete before then).
pub struct CompletedCall<'a> {
    raw: NonNull<sys::capnp_lean_call>,
    _callback: std::marker::PhantomData<&'a ()>,
}

impl CompletedCall<'_> {
    /// The results' segments (borrowed for the callback) and capability count.
    pub fn results(&self) -> Result<ResultsView<'_>, Error> {
        // SAFETY: the ABI calls the completion with a live, completed call; a release of its
        // handle is carried out on the loop thread, so not before the callback (which runs
        // there) returns — and `'_` does not outlive the callback.
        unsafe { results_of(self.raw) }
    }

    /// The result capability at `index` of the capability table.
    pub fn result_cap(&self, index: u32) -> Result<CapHandle, Error> {
        // SAFETY: as in `results`: the call is live for the duration of the callback.
        unsafe { result_cap_of(self.raw, index) }
    }
}

unsafe extern "C" fn call_done_viewing_trampoline(user_data: *mut c_void, call: *mut sys::capnp_lean_call) {
    // SAFETY: user_data is the CallDoneViewing boxed by `start_call_viewing`; the ABI calls this
    // exactly once.
    let done = unsafe { take_callback::<CallDoneViewing>(user_data) };
    let completed = NonNull::new(call).map(|raw| CompletedCall { raw, _callback: std::marker::PhantomData });
    contain_panic("call completion", || done(completed));
}

impl CapHandle {
    fn from_raw(raw: *mut sys::capnp_lean_cap) -> Self {
        Self { raw: NonNull::new(raw).expect("the ABI returned OK without a capability") }
    }

    /// A new handle to the same capability (`capnp_lean_cap_clone`).
    pub fn try_clone(&self) -> Result<CapHandle, Error> {
        let mut out = ptr::null_mut();
        // SAFETY: live capability, valid out-parameter.
        check(|err| unsafe { sys::capnp_lean_cap_clone(self.raw.as_ptr(), &mut out, err) })?;
        Ok(CapHandle::from_raw(out))
    }

    /// The raw pointer, as an identity for `ClientHook::get_ptr`.
    pub fn address(&self) -> usize {
        self.raw.as_ptr() as usize
    }

    /// Starts a call; `done(completed)` runs exactly once on the loop thread (`false` when the
    /// call handle was dropped before completion).
    pub fn start_call(&self, interface_id: u64, method_id: u16, params: &OutMessage<'_>, done: CallDone) -> Result<CallHandle, Error> {
        let mut out = ptr::null_mut();
        hand_over(done, |user_data| {
            params.with_raw(|raw_params| {
                // SAFETY: params (segments and caps) are valid for this call, which copies
                // them; call_done_trampoline consumes user_data as a CallDone.
                check(|err| unsafe {
                    sys::capnp_lean_call_start(self.raw.as_ptr(), interface_id, method_id, raw_params,
                        Some(call_done_trampoline), user_data, &mut out, err)
                })
            })
        })?;
        Ok(CallHandle { raw: NonNull::new(out).expect("call_start returned no call") })
    }
}

impl CapHandle {
    /// Like [`CapHandle::start_call`], with a completion that reads the results from the
    /// completed call it is given instead of from the returned handle.
    pub fn start_call_viewing(&self, interface_id: u64, method_id: u16, params: &OutMessage<'_>, done: CallDoneViewing) -> Result<CallHandle, Error> {
        let mut out = ptr::null_mut();
        hand_over(done, |user_data| {
            params.with_raw(|raw_params| {
                // SAFETY: params (segments and caps) are valid for this call, which copies
                // them; call_done_viewing_trampoline consumes user_data as a CallDoneViewing.
                check(|err| unsafe {
                    sys::capnp_lean_call_start(self.raw.as_ptr(), interface_id, method_id, raw_params,
                        Some(call_done_viewing_trampoline), user_data, &mut out, err)
                })
            })
        })?;
        Ok(CallHandle { raw: NonNull::new(out).expect("call_start returned no call") })
    }

    /// Like [`CapHandle::start_call`], with the params lent instead of copied.
    pub fn start_call_lent<T: Lendable>(&self, interface_id: u64, method_id: u16, params: LentMessage<'_, T>, done: CallDone) -> Result<CallHandle, Error> {
        self.start_lent(false, interface_id, method_id, params, done)
    }

    /// Like [`CapHandle::start_call_lent`] for a `-> stream` method
    /// (`capnp_lean_call_start_streaming_borrowing`): the call completes when KJ's flow control
    /// admits the next streaming call on this capability; its results are empty or the error.
    pub fn start_streaming_lent<T: Lendable>(&self, interface_id: u64, method_id: u16, params: LentMessage<'_, T>, done: CallDone) -> Result<CallHandle, Error> {
        self.start_lent(true, interface_id, method_id, params, done)
    }

    fn start_lent<T: Lendable>(&self, streaming: bool, interface_id: u64, method_id: u16, params: LentMessage<'_, T>, done: CallDone) -> Result<CallHandle, Error> {
        let start = if streaming { sys::capnp_lean_call_start_streaming_borrowing } else { sys::capnp_lean_call_start_borrowing };
        let mut out = ptr::null_mut();
        hand_over(done, |user_data| {
            params.lend(|raw_params, owner| {
                // SAFETY: the raw message is valid for this call, and its segments until the ABI
                // releases `owner` (a leaked Box<T>) through release_trampoline::<T>, which it
                // does exactly once on every path; call_done_trampoline consumes user_data.
                check(|err| unsafe {
                    start(self.raw.as_ptr(), interface_id, method_id, raw_params,
                        Some(release_trampoline::<T>), owner, Some(call_done_trampoline), user_data, &mut out, err)
                })
            })
        })?;
        Ok(CallHandle { raw: NonNull::new(out).expect("call_start returned no call") })
    }
}

impl Drop for CapHandle {
    fn drop(&mut self) {
        // SAFETY: released exactly once, here.
        unsafe { sys::capnp_lean_cap_release(self.raw.as_ptr()) }
    }
}

/// An outgoing call; dropping it before completion cancels the call (Finish).
pub struct CallHandle {
    raw: NonNull<sys::capnp_lean_call>,
}

// SAFETY: ABI functions may be called from any thread; results are immutable once done.
unsafe impl Send for CallHandle {}
// SAFETY: as above.
unsafe impl Sync for CallHandle {}

/// The results of a completed call, borrowed from its handle.
pub struct ResultsView<'a> {
    pub segments: Vec<&'a [u8]>,
    pub cap_count: usize,
}

/// The results' segments of a completed call, readable in place for as long as this value
/// (which keeps the call handle alive) exists.
pub struct CallResults {
    call: std::sync::Arc<CallHandle>,
    segments: Vec<(*const u8, usize)>,
    pub cap_count: usize,
}

impl CallResults {
    pub fn new(call: std::sync::Arc<CallHandle>) -> Result<Self, Error> {
        let view = call.results()?;
        let segments = view.segments.iter().map(|s| (s.as_ptr(), s.len())).collect();
        let cap_count = view.cap_count;
        Ok(Self { call, segments, cap_count })
    }

    pub fn call(&self) -> &CallHandle {
        &self.call
    }

}

impl capnp::message::ReaderSegments for CallResults {
    fn get_segment(&self, idx: u32) -> Option<&[u8]> {
        let &(data, len) = self.segments.get(idx as usize)?;
        // SAFETY: the view of a completed call stays valid and unchanged until its handle is
        // released, and `self.call` keeps the handle alive for at least as long as `&self`.
        Some(if len == 0 { &[] } else { unsafe { std::slice::from_raw_parts(data, len) } })
    }

    fn len(&self) -> usize {
        self.segments.len()
    }
}

impl CallHandle {
    /// The results' segments (borrowed from the completed call) and capability count.
    pub fn results(&self) -> Result<ResultsView<'_>, Error> {
        // SAFETY: the handle is live, and cannot be released while `&self` is borrowed.
        unsafe { results_of(self.raw) }
    }

    /// The result capability at `index` of the capability table.
    pub fn result_cap(&self, index: u32) -> Result<CapHandle, Error> {
        // SAFETY: the handle is live while `&self` is borrowed.
        unsafe { result_cap_of(self.raw, index) }
    }

    /// A pipelined capability: the pointer at `path` inside the results.
    pub fn pipeline(&self, path: &[u16]) -> Result<CapHandle, Error> {
        let mut out = ptr::null_mut();
        // SAFETY: the path is copied by the ABI.
        check(|err| unsafe {
            sys::capnp_lean_call_pipeline(self.raw.as_ptr(), path.as_ptr(), path.len(), &mut out, err)
        })?;
        Ok(CapHandle::from_raw(out))
    }
}

/// The results of `call`, borrowed for `'a`.
///
/// # Safety
/// `call` is live and not released during `'a`.
unsafe fn results_of<'a>(call: NonNull<sys::capnp_lean_call>) -> Result<ResultsView<'a>, Error> {
    let mut view = sys::capnp_lean_message_view { segments: ptr::null(), segment_count: 0, cap_count: 0 };
    // SAFETY: live call (guaranteed by the caller), valid out-parameter.
    check(|err| unsafe { sys::capnp_lean_call_results(call.as_ptr(), &mut view, err) })?;
    // SAFETY: the view stays valid and unchanged until the call is released, which the caller
    // guarantees does not happen during `'a`.
    let segments = unsafe { view_segments(&view) };
    Ok(ResultsView { segments, cap_count: view.cap_count })
}

/// Result capability `index` of `call`, as a new handle.
///
/// # Safety
/// `call` is live.
unsafe fn result_cap_of(call: NonNull<sys::capnp_lean_call>, index: u32) -> Result<CapHandle, Error> {
    let mut out = ptr::null_mut();
    // SAFETY: live call (guaranteed by the caller), valid out-parameter.
    check(|err| unsafe { sys::capnp_lean_call_result_cap(call.as_ptr(), index, &mut out, err) })?;
    Ok(CapHandle::from_raw(out))
}

impl Drop for CallHandle {
    fn drop(&mut self) {
        // SAFETY: released exactly once, here.
        unsafe { sys::capnp_lean_call_release(self.raw.as_ptr()) }
    }
}

/// An incoming call to a host-implemented capability. Dropping it unanswered fails the call.
pub struct ServerCallHandle {
    raw: NonNull<sys::capnp_lean_server_call>,
}

// SAFETY: a server call may be answered from any thread.
unsafe impl Send for ServerCallHandle {}
// SAFETY: `&self` methods read immutable params or an atomic flag.
unsafe impl Sync for ServerCallHandle {}

impl ServerCallHandle {
    /// An identity for this call, as passed to [`HostServer::cancelled`].
    pub fn id(&self) -> usize {
        self.raw.as_ptr() as usize
    }

    /// The params' segments (copied out, word-aligned) and capability count.
    pub fn params(&self) -> Result<(Vec<Vec<capnp::Word>>, usize), Error> {
        let mut view = sys::capnp_lean_message_view { segments: ptr::null(), segment_count: 0, cap_count: 0 };
        // SAFETY: live server call, valid out-parameter.
        check(|err| unsafe { sys::capnp_lean_server_call_params(self.raw.as_ptr(), &mut view, err) })?;
        // SAFETY: the view is valid while the handle is unanswered; we copy it at once.
        let segments = unsafe { view_segments(&view) }
            .into_iter()
            .map(|bytes| {
                let mut words = capnp::Word::allocate_zeroed_vec(bytes.len() / 8);
                capnp::Word::words_to_bytes_mut(&mut words).copy_from_slice(bytes);
                words
            })
            .collect();
        Ok((segments, view.cap_count))
    }

    /// The params' segments, borrowed from the call (no copy), and capability count. The view
    /// is valid while the call is unanswered, which `&self` guarantees (answering consumes it).
    pub fn params_view(&self) -> Result<ResultsView<'_>, Error> {
        let mut view = sys::capnp_lean_message_view { segments: ptr::null(), segment_count: 0, cap_count: 0 };
        // SAFETY: live server call, valid out-parameter.
        check(|err| unsafe { sys::capnp_lean_server_call_params(self.raw.as_ptr(), &mut view, err) })?;
        // SAFETY: the view stays valid and unchanged while the call is unanswered: answering
        // takes `self` by value, which cannot happen while `&self` is borrowed.
        let segments = unsafe { view_segments(&view) };
        Ok(ResultsView { segments, cap_count: view.cap_count })
    }

    /// Declares the call's method `-> stream`, so KJ serializes later calls to the capability
    /// behind it and fails them all after a failed one. Only during the dispatch callback.
    pub fn set_streaming(&self) -> Result<(), Error> {
        // SAFETY: live server call.
        check(|err| unsafe { sys::capnp_lean_server_call_set_streaming(self.raw.as_ptr(), err) })
    }

    /// The params capability at `index` of the capability table.
    pub fn param_cap(&self, index: u32) -> Result<CapHandle, Error> {
        let mut out = ptr::null_mut();
        // SAFETY: live server call, valid out-parameter.
        check(|err| unsafe { sys::capnp_lean_server_call_param_cap(self.raw.as_ptr(), index, &mut out, err) })?;
        Ok(CapHandle::from_raw(out))
    }

    /// Answers the call with `results` (copied).
    pub fn respond(self, results: &OutMessage<'_>) -> Result<(), Error> {
        let raw = self.raw.as_ptr();
        std::mem::forget(self); // the ABI consumes the context whatever the outcome
        results.with_raw(|raw_results| {
            // SAFETY: consumes the context exactly once; results are copied by the ABI.
            check(|err| unsafe { sys::capnp_lean_server_call_return(raw, raw_results, err) })
        })
    }

    /// Like [`ServerCallHandle::respond`], with the results lent instead of copied.
    pub fn respond_lent<T: Lendable>(self, results: LentMessage<'_, T>) -> Result<(), Error> {
        let raw = self.raw.as_ptr();
        std::mem::forget(self); // the ABI consumes the context whatever the outcome
        results.lend(|raw_results, owner| {
            // SAFETY: consumes the context exactly once; the ABI releases `owner` (a leaked
            // Box<T>) through release_trampoline::<T> exactly once, after writing the results.
            check(|err| unsafe {
                sys::capnp_lean_server_call_return_borrowing(raw, raw_results, Some(release_trampoline::<T>), owner, err)
            })
        })
    }

    /// Fails the call with `error`.
    pub fn fail(self, error: &Error) -> Result<(), Error> {
        let raw = self.raw.as_ptr();
        std::mem::forget(self);
        let message = error.message();
        // SAFETY: consumes the context exactly once; the message is copied by the ABI.
        check(|err| unsafe {
            sys::capnp_lean_server_call_fail(raw, error.kind().to_raw(), message.as_ptr(), message.len(), err)
        })
    }
}

impl Drop for ServerCallHandle {
    fn drop(&mut self) {
        // SAFETY: an unanswered context is released exactly once, here.
        unsafe { sys::capnp_lean_server_call_release(self.raw.as_ptr()) }
    }
}

/// The resolving end of a promise capability. Dropping it unresolved rejects the promise.
pub struct ResolverHandle {
    raw: NonNull<sys::capnp_lean_resolver>,
}

// SAFETY: a resolver may be used from any thread.
unsafe impl Send for ResolverHandle {}
// SAFETY: it has no `&self` methods that touch the resolver.
unsafe impl Sync for ResolverHandle {}

impl ResolverHandle {
    /// Resolves the promise capability to `cap`.
    pub fn fulfill(self, cap: &CapHandle) -> Result<(), Error> {
        let raw = self.raw.as_ptr();
        std::mem::forget(self);
        // SAFETY: consumes the resolver exactly once; `cap` is borrowed for the call.
        check(|err| unsafe { sys::capnp_lean_resolver_fulfill(raw, cap.raw.as_ptr(), err) })
    }

    /// Rejects the promise capability with `error`.
    pub fn reject(self, error: &Error) -> Result<(), Error> {
        let raw = self.raw.as_ptr();
        std::mem::forget(self);
        let message = error.message();
        // SAFETY: consumes the resolver exactly once; the message is copied.
        check(|err| unsafe {
            sys::capnp_lean_resolver_reject(raw, error.kind().to_raw(), message.as_ptr(), message.len(), err)
        })
    }
}

impl Drop for ResolverHandle {
    fn drop(&mut self) {
        // SAFETY: released exactly once, here.
        unsafe { sys::capnp_lean_resolver_release(self.raw.as_ptr()) }
    }
}
