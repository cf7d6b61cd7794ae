//! Raw Rust declarations of the capnp-lean C ABI (`include/capnp_lean.h`), and the C++ shim
//! that implements it, built and linked by this crate's build script.
//!
//! This is the only module that names the ABI's raw functions. Every declaration is written
//! through the `abi!` macros, which also record it as text ([`DECLARED_FUNCTIONS`],
//! [`DECLARED_CALLBACKS`], [`DECLARED_STRUCTS`], [`DECLARED_CONSTANTS`]); the `header_agreement`
//! test parses the header and fails when the two disagree, so they cannot drift apart.
//!
//! The safe API is in the `capnp-lean` crate; use that instead.

#![allow(non_camel_case_types, unsafe_code)]

use std::ffi::{c_int, c_void};

/// Path of the C header, for tools and tests.
pub const HEADER_PATH: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/include/capnp_lean.h");

/// A signature as written in Rust: name, parameter types, return type (`()` for none).
pub type DeclaredSignature = (&'static str, &'static [&'static str], &'static str);

macro_rules! abi_constants {
    ($( $(#[$doc:meta])* $name:ident : $ty:ty = $value:expr; )*) => {
        $( $(#[$doc])* pub const $name: $ty = $value; )*
        /// Every constant of the header as (name, value), for the header check.
        pub const DECLARED_CONSTANTS: &[(&str, i64)] = &[ $( (stringify!($name), $value as i64) ),* ];
    };
}

macro_rules! abi_structs {
    ($( $(#[$doc:meta])* pub struct $name:ident { $( $(#[$fdoc:meta])* pub $field:ident : $fty:ty ),* $(,)? } )*) => {
        $(
            $(#[$doc])*
            #[repr(C)]
            #[derive(Debug, Clone, Copy)]
            pub struct $name { $( $(#[$fdoc])* pub $field: $fty ),* }
        )*
        /// Every plain struct of the header as (name, [(field, type)]), for the header check.
        pub const DECLARED_STRUCTS: &[(&str, &[(&str, &str)])] =
            &[ $( (stringify!($name), &[ $( (stringify!($field), stringify!($fty)) ),* ]) ),* ];
        /// Size and field offsets of each struct as Rust lays them out, for the layout check.
        pub fn rust_struct_layouts() -> Vec<(&'static str, usize, Vec<(&'static str, usize)>)> {
            vec![ $( (stringify!($name), std::mem::size_of::<$name>(),
                      vec![ $( (stringify!($field), std::mem::offset_of!($name, $field)) ),* ]) ),* ]
        }
    };
}

macro_rules! abi_callbacks {
    ($( $(#[$doc:meta])* pub type $name:ident = fn ( $($arg:ident : $ty:ty),* $(,)? ) $(-> $ret:ty)?; )*) => {
        $(
            $(#[$doc])*
            pub type $name = Option<unsafe extern "C" fn($($arg: $ty),*) $(-> $ret)?>;
        )*
        /// Every callback typedef of the header as a signature, for the header check.
        pub const DECLARED_CALLBACKS: &[DeclaredSignature] =
            &[ $( (stringify!($name), &[$(stringify!($ty)),*], abi_return!($($ret)?)) ),* ];
    };
}

macro_rules! abi_return {
    () => { "()" };
    ($ret:ty) => { stringify!($ret) };
}

macro_rules! abi_functions {
    ($( $(#[$doc:meta])* pub fn $name:ident ( $($arg:ident : $ty:ty),* $(,)? ) $(-> $ret:ty)?; )*) => {
        extern "C" {
            $( $(#[$doc])* pub fn $name($($arg: $ty),*) $(-> $ret)?; )*
        }
        /// Every function of the header as a signature, for the header check.
        pub const DECLARED_FUNCTIONS: &[DeclaredSignature] =
            &[ $( (stringify!($name), &[$(stringify!($ty)),*], abi_return!($($ret)?)) ),* ];
    };
}

/// A status code (`CAPNP_LEAN_OK` or one of the `CAPNP_LEAN_ERR_*` values).
pub type capnp_lean_status = i32;
/// An error kind (`CAPNP_LEAN_ERROR_*`).
pub type capnp_lean_error_kind = u32;

macro_rules! opaque {
    ($( $(#[$doc:meta])* $name:ident ),* $(,)?) => {
        $(
            $(#[$doc])*
            #[repr(C)]
            pub struct $name {
                _private: [u8; 0],
                _not_send_sync: core::marker::PhantomData<(*mut u8, core::marker::PhantomPinned)>,
            }
        )*
    };
}

opaque!(
    /// An error object: kind and message.
    capnp_lean_error,
    /// A runtime: one KJ event-loop thread.
    capnp_lean_runtime,
    /// A two-party connection.
    capnp_lean_connection,
    /// A listening socket serving a bootstrap capability.
    capnp_lean_listener,
    /// A capability (client reference).
    capnp_lean_cap,
    /// An outgoing call.
    capnp_lean_call,
    /// An incoming call to a host-implemented capability.
    capnp_lean_server_call,
    /// The resolving end of a promise capability.
    capnp_lean_resolver,
);

abi_constants! {
    /// The ABI version these declarations were written for.
    CAPNP_LEAN_ABI_VERSION: u32 = 2;
    /// Success.
    CAPNP_LEAN_OK: capnp_lean_status = 0;
    /// The operation failed; the error object carries kind and message.
    CAPNP_LEAN_ERR_RPC: capnp_lean_status = 1;
    /// A bad argument.
    CAPNP_LEAN_ERR_INVALID_ARGUMENT: capnp_lean_status = 2;
    /// A blocking function was called on the loop thread.
    CAPNP_LEAN_ERR_ON_LOOP_THREAD: capnp_lean_status = 3;
    /// Results requested before completion.
    CAPNP_LEAN_ERR_NOT_READY: capnp_lean_status = 4;
    /// The runtime was shut down.
    CAPNP_LEAN_ERR_SHUT_DOWN: capnp_lean_status = 5;
    /// The server call was already answered or cancelled.
    CAPNP_LEAN_ERR_ALREADY_ANSWERED: capnp_lean_status = 6;
    /// Transport: the default (coalescing).
    CAPNP_LEAN_TRANSPORT_DEFAULT: u32 = 0;
    /// Transport: KJ's stock message stream.
    CAPNP_LEAN_TRANSPORT_STOCK: u32 = 1;
    /// Transport: buffered reads, one write per event-loop turn.
    CAPNP_LEAN_TRANSPORT_COALESCING: u32 = 2;
    /// A timeout option set to this never fires.
    CAPNP_LEAN_TIMEOUT_OFF: u32 = 0xFFFF_FFFF;
    /// A size limit set to this is no limit.
    CAPNP_LEAN_UNLIMITED: u64 = u64::MAX;
    /// Error kind: failed.
    CAPNP_LEAN_ERROR_FAILED: capnp_lean_error_kind = 0;
    /// Error kind: overloaded.
    CAPNP_LEAN_ERROR_OVERLOADED: capnp_lean_error_kind = 1;
    /// Error kind: disconnected.
    CAPNP_LEAN_ERROR_DISCONNECTED: capnp_lean_error_kind = 2;
    /// Error kind: unimplemented.
    CAPNP_LEAN_ERROR_UNIMPLEMENTED: capnp_lean_error_kind = 3;
}

abi_structs! {
    /// One serialized segment (a multiple of 8 bytes).
    pub struct capnp_lean_segment {
        /// Segment bytes.
        pub data: *const u8,
        /// Length in bytes.
        pub size: usize,
    }
    /// An outgoing message: segments plus a borrowed capability table.
    pub struct capnp_lean_message {
        /// Segments.
        pub segments: *const capnp_lean_segment,
        /// Number of segments.
        pub segment_count: usize,
        /// Capability table (entries may be null).
        pub caps: *const *mut capnp_lean_cap,
        /// Number of capabilities.
        pub cap_count: usize,
    }
    /// A borrowed view of a received message.
    pub struct capnp_lean_message_view {
        /// Segments.
        pub segments: *const capnp_lean_segment,
        /// Number of segments.
        pub segment_count: usize,
        /// Number of capabilities in the message's table.
        pub cap_count: usize,
    }
    /// Per-connection limits (0 = default; see the header).
    pub struct capnp_lean_connection_options {
        /// `size_of::<capnp_lean_connection_options>()`.
        pub struct_size: u32,
        /// Maximum pointer nesting depth of received messages.
        pub nesting_limit: u32,
        /// Maximum words traversed per received message (also its maximum size).
        pub traversal_limit_words: u64,
        /// Words of unanswered incoming call params before reading pauses.
        pub flow_limit_words: u64,
        /// TCP: milliseconds without acknowledgement before the peer is declared dead.
        pub dead_peer_timeout_ms: u32,
        /// `CAPNP_LEAN_TRANSPORT_*`.
        pub transport: u32,
        /// Accepted connections: milliseconds until the first message must have arrived.
        pub handshake_timeout_ms: u32,
        /// Milliseconds a started message may take to complete while the connection reads.
        pub stall_timeout_ms: u32,
        /// Bytes queued for the peer above which the connection stops reading.
        pub send_queue_limit_bytes: u64,
        /// Milliseconds above that limit before the connection is ended.
        pub send_queue_timeout_ms: u32,
    }
    /// Live object counts.
    pub struct capnp_lean_stats {
        /// Connections.
        pub connections: u64,
        /// Capability handles.
        pub caps: u64,
        /// Outgoing calls not yet released.
        pub calls: u64,
        /// Incoming calls not yet answered or released.
        pub server_calls: u64,
        /// Host-implemented capabilities alive.
        pub host_servers: u64,
        /// Unresolved resolvers.
        pub resolvers: u64,
    }
}

abi_callbacks! {
    /// Connect completion (loop thread).
    pub type capnp_lean_connect_fn = fn(user_data: *mut c_void, conn: *mut capnp_lean_connection, err: *const capnp_lean_error);
    /// Disconnect notification (loop thread).
    pub type capnp_lean_disconnect_fn = fn(user_data: *mut c_void, err: *const capnp_lean_error);
    /// Listen completion (loop thread).
    pub type capnp_lean_listen_fn = fn(user_data: *mut c_void, listener: *mut capnp_lean_listener, err: *const capnp_lean_error);
    /// Call completion (loop thread).
    pub type capnp_lean_call_done_fn = fn(user_data: *mut c_void, call: *mut capnp_lean_call);
    /// Incoming call dispatch (loop thread).
    pub type capnp_lean_dispatch_fn = fn(user_data: *mut c_void, interface_id: u64, method_id: u16, call: *mut capnp_lean_server_call);
    /// Incoming call cancelled by its caller (loop thread).
    pub type capnp_lean_cancel_fn = fn(user_data: *mut c_void, call: *mut capnp_lean_server_call);
    /// Host server dropped (loop thread).
    pub type capnp_lean_server_drop_fn = fn(user_data: *mut c_void);
    /// A task run on the loop thread.
    pub type capnp_lean_task_fn = fn(user_data: *mut c_void);
    /// Ends a loan of host memory (exactly once per loan).
    pub type capnp_lean_release_fn = fn(owner: *mut c_void);
}

abi_functions! {
    /// See the header.
    pub fn capnp_lean_abi_version() -> u32;
    /// See the header.
    pub fn capnp_lean_error_get_kind(err: *const capnp_lean_error) -> capnp_lean_error_kind;
    /// See the header.
    pub fn capnp_lean_error_get_message(err: *const capnp_lean_error, data: *mut *const u8, len: *mut usize);
    /// See the header.
    pub fn capnp_lean_error_free(err: *mut capnp_lean_error);
    /// See the header.
    pub fn capnp_lean_runtime_create(out: *mut *mut capnp_lean_runtime, err: *mut *mut capnp_lean_error) -> capnp_lean_status;
    /// See the header.
    pub fn capnp_lean_runtime_shutdown(rt: *mut capnp_lean_runtime, err: *mut *mut capnp_lean_error) -> capnp_lean_status;
    /// See the header.
    pub fn capnp_lean_runtime_destroy(rt: *mut capnp_lean_runtime, err: *mut *mut capnp_lean_error) -> capnp_lean_status;
    /// See the header.
    pub fn capnp_lean_runtime_on_loop_thread(rt: *const capnp_lean_runtime) -> c_int;
    /// See the header.
    pub fn capnp_lean_runtime_stats_wait(rt: *mut capnp_lean_runtime, out: *mut capnp_lean_stats, err: *mut *mut capnp_lean_error) -> capnp_lean_status;
    /// See the header.
    pub fn capnp_lean_runtime_post(rt: *mut capnp_lean_runtime, r#fn: capnp_lean_task_fn, user_data: *mut c_void, err: *mut *mut capnp_lean_error) -> capnp_lean_status;
    /// See the header.
    pub fn capnp_lean_runtime_post_after(rt: *mut capnp_lean_runtime, delay_us: u64, r#fn: capnp_lean_task_fn, user_data: *mut c_void, err: *mut *mut capnp_lean_error) -> capnp_lean_status;
    /// See the header.
    pub fn capnp_lean_connect(rt: *mut capnp_lean_runtime, addr: *const u8, addr_len: usize, bootstrap: *mut capnp_lean_cap, options: *const capnp_lean_connection_options, on_done: capnp_lean_connect_fn, user_data: *mut c_void, err: *mut *mut capnp_lean_error) -> capnp_lean_status;
    /// See the header.
    pub fn capnp_lean_connection_adopt_fd(rt: *mut capnp_lean_runtime, fd: c_int, is_server: c_int, bootstrap: *mut capnp_lean_cap, options: *const capnp_lean_connection_options, out: *mut *mut capnp_lean_connection, err: *mut *mut capnp_lean_error) -> capnp_lean_status;
    /// See the header.
    pub fn capnp_lean_connection_bootstrap(conn: *mut capnp_lean_connection, out: *mut *mut capnp_lean_cap, err: *mut *mut capnp_lean_error) -> capnp_lean_status;
    /// See the header.
    pub fn capnp_lean_connection_on_disconnect(conn: *mut capnp_lean_connection, on_disconnect: capnp_lean_disconnect_fn, user_data: *mut c_void, err: *mut *mut capnp_lean_error) -> capnp_lean_status;
    /// See the header.
    pub fn capnp_lean_connection_release(conn: *mut capnp_lean_connection);
    /// See the header.
    pub fn capnp_lean_listen(rt: *mut capnp_lean_runtime, addr: *const u8, addr_len: usize, bootstrap: *mut capnp_lean_cap, options: *const capnp_lean_connection_options, on_done: capnp_lean_listen_fn, user_data: *mut c_void, err: *mut *mut capnp_lean_error) -> capnp_lean_status;
    /// See the header.
    pub fn capnp_lean_listener_address(listener: *const capnp_lean_listener, data: *mut *const u8, len: *mut usize);
    /// See the header.
    pub fn capnp_lean_listener_accepted(listener: *const capnp_lean_listener) -> u64;
    /// See the header.
    pub fn capnp_lean_listener_release(listener: *mut capnp_lean_listener);
    /// See the header.
    pub fn capnp_lean_cap_clone(cap: *mut capnp_lean_cap, out: *mut *mut capnp_lean_cap, err: *mut *mut capnp_lean_error) -> capnp_lean_status;
    /// See the header.
    pub fn capnp_lean_cap_release(cap: *mut capnp_lean_cap);
    /// See the header.
    pub fn capnp_lean_cap_new_broken(rt: *mut capnp_lean_runtime, kind: capnp_lean_error_kind, message: *const u8, message_len: usize, out: *mut *mut capnp_lean_cap, err: *mut *mut capnp_lean_error) -> capnp_lean_status;
    /// See the header.
    pub fn capnp_lean_call_start(target: *mut capnp_lean_cap, interface_id: u64, method_id: u16, params: *const capnp_lean_message, on_done: capnp_lean_call_done_fn, user_data: *mut c_void, out: *mut *mut capnp_lean_call, err: *mut *mut capnp_lean_error) -> capnp_lean_status;
    /// See the header.
    pub fn capnp_lean_call_start_borrowing(target: *mut capnp_lean_cap, interface_id: u64, method_id: u16, params: *const capnp_lean_message, release_params: capnp_lean_release_fn, params_owner: *mut c_void, on_done: capnp_lean_call_done_fn, user_data: *mut c_void, out: *mut *mut capnp_lean_call, err: *mut *mut capnp_lean_error) -> capnp_lean_status;
    /// `capnp_lean_call_start` for a `-> stream` method: completes when KJ's flow control admits the next call.
    pub fn capnp_lean_call_start_streaming(target: *mut capnp_lean_cap, interface_id: u64, method_id: u16, params: *const capnp_lean_message, on_done: capnp_lean_call_done_fn, user_data: *mut c_void, out: *mut *mut capnp_lean_call, err: *mut *mut capnp_lean_error) -> capnp_lean_status;
    /// `capnp_lean_call_start_streaming` with the params lent.
    pub fn capnp_lean_call_start_streaming_borrowing(target: *mut capnp_lean_cap, interface_id: u64, method_id: u16, params: *const capnp_lean_message, release_params: capnp_lean_release_fn, params_owner: *mut c_void, on_done: capnp_lean_call_done_fn, user_data: *mut c_void, out: *mut *mut capnp_lean_call, err: *mut *mut capnp_lean_error) -> capnp_lean_status;
    /// See the header.
    pub fn capnp_lean_call_is_done(call: *const capnp_lean_call) -> c_int;
    /// See the header.
    pub fn capnp_lean_call_wait(call: *mut capnp_lean_call, err: *mut *mut capnp_lean_error) -> capnp_lean_status;
    /// See the header.
    pub fn capnp_lean_call_results(call: *mut capnp_lean_call, out: *mut capnp_lean_message_view, err: *mut *mut capnp_lean_error) -> capnp_lean_status;
    /// See the header.
    pub fn capnp_lean_call_result_cap(call: *mut capnp_lean_call, index: u32, out: *mut *mut capnp_lean_cap, err: *mut *mut capnp_lean_error) -> capnp_lean_status;
    /// See the header.
    pub fn capnp_lean_call_pipeline(call: *mut capnp_lean_call, path: *const u16, path_len: usize, out: *mut *mut capnp_lean_cap, err: *mut *mut capnp_lean_error) -> capnp_lean_status;
    /// See the header.
    pub fn capnp_lean_call_release(call: *mut capnp_lean_call);
    /// See the header.
    pub fn capnp_lean_server_new(rt: *mut capnp_lean_runtime, dispatch: capnp_lean_dispatch_fn, on_cancel: capnp_lean_cancel_fn, on_drop: capnp_lean_server_drop_fn, user_data: *mut c_void, out: *mut *mut capnp_lean_cap, err: *mut *mut capnp_lean_error) -> capnp_lean_status;
    /// See the header.
    pub fn capnp_lean_server_call_params(call: *mut capnp_lean_server_call, out: *mut capnp_lean_message_view, err: *mut *mut capnp_lean_error) -> capnp_lean_status;
    /// See the header.
    pub fn capnp_lean_server_call_param_cap(call: *mut capnp_lean_server_call, index: u32, out: *mut *mut capnp_lean_cap, err: *mut *mut capnp_lean_error) -> capnp_lean_status;
    /// Declares the call's method `-> stream` (only inside its dispatch callback).
    pub fn capnp_lean_server_call_set_streaming(call: *mut capnp_lean_server_call, err: *mut *mut capnp_lean_error) -> capnp_lean_status;
    /// See the header.
    pub fn capnp_lean_server_call_is_cancelled(call: *const capnp_lean_server_call) -> c_int;
    /// See the header.
    pub fn capnp_lean_server_call_return(call: *mut capnp_lean_server_call, results: *const capnp_lean_message, err: *mut *mut capnp_lean_error) -> capnp_lean_status;
    /// See the header.
    pub fn capnp_lean_server_call_return_borrowing(call: *mut capnp_lean_server_call, results: *const capnp_lean_message, release_results: capnp_lean_release_fn, results_owner: *mut c_void, err: *mut *mut capnp_lean_error) -> capnp_lean_status;
    /// See the header.
    pub fn capnp_lean_server_call_fail(call: *mut capnp_lean_server_call, kind: capnp_lean_error_kind, message: *const u8, message_len: usize, err: *mut *mut capnp_lean_error) -> capnp_lean_status;
    /// See the header.
    pub fn capnp_lean_server_call_release(call: *mut capnp_lean_server_call);
    /// See the header.
    pub fn capnp_lean_promise_cap_new(rt: *mut capnp_lean_runtime, cap_out: *mut *mut capnp_lean_cap, resolver_out: *mut *mut capnp_lean_resolver, err: *mut *mut capnp_lean_error) -> capnp_lean_status;
    /// See the header.
    pub fn capnp_lean_resolver_fulfill(resolver: *mut capnp_lean_resolver, cap: *mut capnp_lean_cap, err: *mut *mut capnp_lean_error) -> capnp_lean_status;
    /// See the header.
    pub fn capnp_lean_resolver_reject(resolver: *mut capnp_lean_resolver, kind: capnp_lean_error_kind, message: *const u8, message_len: usize, err: *mut *mut capnp_lean_error) -> capnp_lean_status;
    /// See the header.
    pub fn capnp_lean_resolver_release(resolver: *mut capnp_lean_resolver);
}
