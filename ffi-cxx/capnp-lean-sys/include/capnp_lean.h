/* capnp_lean.h — the capnp-lean C ABI over KJ's RpcSystem + TwoPartyVatNetwork.
 *
 * This header is the single source of truth for the ABI. Only plain data crosses it: integers,
 * byte pointers with lengths, opaque handle pointers and function pointers with a user_data
 * pointer. No C++ exception escapes any function; every failure is a status code plus (when the
 * caller passed a non-NULL `err` out-parameter) an error object the caller frees.
 *
 * Threads: any thread may call any function. Each runtime owns one thread running a KJ event
 * loop; work is queued to it in FIFO order, so operations issued by one thread take effect in the
 * order they were issued. Callbacks run on the loop thread and must not block. Blocking functions
 * (those ending in `_wait`) refuse with CAPNP_LEAN_ERR_ON_LOOP_THREAD when called on a loop thread.
 *
 * Ownership: every handle returned through an out-parameter is owned by the caller and has exactly
 * one release function. Handles passed as arguments are borrowed unless the function says it
 * consumes them. See docs/c-abi.md.
 */
#ifndef CAPNP_LEAN_H
#define CAPNP_LEAN_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Bumped on every incompatible change of this header. */
#define CAPNP_LEAN_ABI_VERSION 2

/* ---- Status codes and errors ------------------------------------------------------------ */

typedef int32_t capnp_lean_status;
#define CAPNP_LEAN_OK 0
/* The operation failed; the error object carries the RPC error kind and message. */
#define CAPNP_LEAN_ERR_RPC 1
/* An argument was NULL, out of range or malformed (e.g. a segment not a multiple of 8 bytes). */
#define CAPNP_LEAN_ERR_INVALID_ARGUMENT 2
/* A blocking function was called on a runtime's loop thread, where it would deadlock. */
#define CAPNP_LEAN_ERR_ON_LOOP_THREAD 3
/* Results were requested from a call that has not completed yet. */
#define CAPNP_LEAN_ERR_NOT_READY 4
/* The runtime has been shut down; the handle no longer does anything. */
#define CAPNP_LEAN_ERR_SHUT_DOWN 5
/* A server call context was already answered, or its caller cancelled it. */
#define CAPNP_LEAN_ERR_ALREADY_ANSWERED 6

/* Error kinds: the same four as KJ's kj::Exception::Type and rpc.capnp's Exception.Type. */
typedef uint32_t capnp_lean_error_kind;
#define CAPNP_LEAN_ERROR_FAILED 0
#define CAPNP_LEAN_ERROR_OVERLOADED 1
#define CAPNP_LEAN_ERROR_DISCONNECTED 2
#define CAPNP_LEAN_ERROR_UNIMPLEMENTED 3

typedef struct capnp_lean_error capnp_lean_error;

/* The version of the ABI this library implements (CAPNP_LEAN_ABI_VERSION at its build). */
uint32_t capnp_lean_abi_version(void);

capnp_lean_error_kind capnp_lean_error_get_kind(const capnp_lean_error* err);
/* Borrowed UTF-8 message (not NUL-terminated); valid until the error is freed. */
void capnp_lean_error_get_message(const capnp_lean_error* err, const uint8_t** data, size_t* len);
void capnp_lean_error_free(capnp_lean_error* err);

/* ---- Handles ------------------------------------------------------------------------------ */

typedef struct capnp_lean_runtime capnp_lean_runtime;
typedef struct capnp_lean_connection capnp_lean_connection;
typedef struct capnp_lean_listener capnp_lean_listener;
typedef struct capnp_lean_cap capnp_lean_cap;
typedef struct capnp_lean_call capnp_lean_call;
typedef struct capnp_lean_server_call capnp_lean_server_call;
typedef struct capnp_lean_resolver capnp_lean_resolver;

/* ---- Messages ----------------------------------------------------------------------------- */

/* One segment of a serialized message: `size` bytes, a multiple of 8, 8-byte aligned. */
typedef struct capnp_lean_segment {
  const uint8_t* data;
  size_t size;
} capnp_lean_segment;

/* Params or results going out: segments whose root is the params/results struct (no segments at
 * all means an empty message: every field has its default), and the capability table that the
 * message's capability pointers index. The caps are borrowed: the
 * ABI takes its own references before the function returns. A NULL cap is a null capability. */
typedef struct capnp_lean_message {
  const capnp_lean_segment* segments;
  size_t segment_count;
  capnp_lean_cap* const* caps;
  size_t cap_count;
} capnp_lean_message;

/* Hands memory the host lent to the runtime back to its owner: called exactly once per loan. */
typedef void (*capnp_lean_release_fn)(void* owner);

/* A borrowed view of a received message (results or params); valid until the owning call or
 * server call handle is released. Capabilities are fetched one by one (they become handles).
 * Data-only messages that arrived over the coalescing transport are viewed in place, without a
 * copy: the root is then a double-far pointer to the struct inside the received RPC message,
 * whose segments make up the rest of the view (only its first segment is copied, and only when
 * it has several). Readers that follow far pointers (every conforming one) see no difference. */
typedef struct capnp_lean_message_view {
  const capnp_lean_segment* segments;
  size_t segment_count;
  size_t cap_count;
} capnp_lean_message_view;

/* ---- Runtime ------------------------------------------------------------------------------ */

/* Counts of live objects, for leak checks. */
typedef struct capnp_lean_stats {
  uint64_t connections;
  uint64_t caps;
  uint64_t calls;
  uint64_t server_calls;
  uint64_t host_servers;
  uint64_t resolvers;
} capnp_lean_stats;

/* Starts a runtime: one thread running a KJ event loop. */
capnp_lean_status capnp_lean_runtime_create(capnp_lean_runtime** out, capnp_lean_error** err);
/* Stops the loop: queued work runs first, then pending calls fail with DISCONNECTED, connections
 * close and the thread is joined. Idempotent and safe to call from several threads. Handles still
 * held stay valid to release but do nothing else; `rt` itself stays valid until destroyed.
 * Refused (ERR_ON_LOOP_THREAD) on the runtime's own loop thread. */
capnp_lean_status capnp_lean_runtime_shutdown(capnp_lean_runtime* rt, capnp_lean_error** err);
/* Shuts down (if not yet done) and frees the runtime handle. Refused on the loop thread. */
capnp_lean_status capnp_lean_runtime_destroy(capnp_lean_runtime* rt, capnp_lean_error** err);
/* Nonzero when the calling thread is this runtime's loop thread. */
int capnp_lean_runtime_on_loop_thread(const capnp_lean_runtime* rt);
/* Live object counts; blocks until queued work has been applied (refused on the loop thread). */
capnp_lean_status capnp_lean_runtime_stats_wait(capnp_lean_runtime* rt, capnp_lean_stats* out,
                                                capnp_lean_error** err);

/* Runs `fn(user_data)` once on the loop thread, after everything queued before it. On failure
 * (ERR_SHUT_DOWN) it will never run and user_data stays the caller's. */
typedef void (*capnp_lean_task_fn)(void* user_data);
capnp_lean_status capnp_lean_runtime_post(capnp_lean_runtime* rt, capnp_lean_task_fn fn,
                                          void* user_data, capnp_lean_error** err);
/* Runs `fn(user_data)` once on the loop thread after `delay_us` microseconds (KJ's timer), or
 * earlier, during shutdown, if the runtime stops first. Same failure rule as _post. */
capnp_lean_status capnp_lean_runtime_post_after(capnp_lean_runtime* rt, uint64_t delay_us,
                                                capnp_lean_task_fn fn, void* user_data,
                                                capnp_lean_error** err);

/* ---- Connections --------------------------------------------------------------------------- */

/* Per-connection limits; pass NULL for the defaults. A field left 0 takes its default. Set
 * struct_size to sizeof(capnp_lean_connection_options): fields are only ever appended, and a
 * caller built against an older header gets defaults for fields it does not know. */
typedef struct capnp_lean_connection_options {
  uint32_t struct_size;
  /* Received messages: maximum pointer nesting depth. Default 64. */
  uint32_t nesting_limit;
  /* Received messages: maximum words traversed per message. KJ 0.9.2 also refuses, before
   * allocating, any message larger than this, so it is the maximum message size too.
   * Default 8 Mi words (64 MiB). */
  uint64_t traversal_limit_words;
  /* Incoming calls: when the params of calls not yet answered exceed this many words, the
   * connection stops reading (including returns) until some are answered. Set it well above
   * the largest expected burst: calls waiting on calls in the other direction can deadlock
   * under a tight limit. Default 8 Mi words (64 MiB). */
  uint64_t flow_limit_words;
  /* TCP only: a peer that acknowledges nothing for this long (sent data unacknowledged, or an
   * idle link failing keepalive probes) is declared dead and the connection fails with
   * DISCONNECTED. Catches links that drop packets without resetting. Default 0: the operating
   * system's timeouts (many minutes). */
  uint32_t dead_peer_timeout_ms;
  /* CAPNP_LEAN_TRANSPORT_*: how messages are read and written. */
  uint32_t transport;
  /* Accepted connections only: a peer whose first message has not arrived within this many
   * milliseconds is disconnected. Default 30000; CAPNP_LEAN_TIMEOUT_OFF turns it off. (A client's
   * own connections have none: a server speaks only when spoken to.) */
  uint32_t handshake_timeout_ms;
  /* A peer that has sent part of a message, and not the rest within this many milliseconds
   * while the connection is reading, is disconnected (slow or stalled senders). Time the
   * connection spends paused by its own flow limit does not count. Default 60000;
   * CAPNP_LEAN_TIMEOUT_OFF turns it off. */
  uint32_t stall_timeout_ms;
  /* Bytes this side has queued for the peer and not yet written (answers, calls, releases),
   * each message in KJ's queue charged 1 KiB more for what it holds besides its bytes: above
   * this the connection stops reading from the peer until the queue is back under half of it,
   * so a peer that sends calls and never reads the answers stops being served.
   * Default 16 MiB; CAPNP_LEAN_UNLIMITED: no bound. */
  uint64_t send_queue_limit_bytes;
  /* A send queue above send_queue_limit_bytes for this many milliseconds (the peer reads
   * nothing) ends the connection (DISCONNECTED, "the peer did not read what it was sent ...").
   * Default 60000; CAPNP_LEAN_TIMEOUT_OFF turns it off. */
  uint32_t send_queue_timeout_ms;
} capnp_lean_connection_options;

/* A timeout field set to this never fires. */
#define CAPNP_LEAN_TIMEOUT_OFF 0xFFFFFFFFu
/* A size limit set to this is no limit. */
#define CAPNP_LEAN_UNLIMITED 0xFFFFFFFFFFFFFFFFu

/* The default (currently COALESCING). */
#define CAPNP_LEAN_TRANSPORT_DEFAULT 0
/* KJ's stock AsyncIoMessageStream: per message, two reads and one write. */
#define CAPNP_LEAN_TRANSPORT_STOCK 1
/* Buffered reads (one read yields every message that has arrived) and one write for all the
 * messages queued during an event-loop turn. Same wire format. */
#define CAPNP_LEAN_TRANSPORT_COALESCING 2

/* Called exactly once on the loop thread (also when the runtime shuts down first): conn is NULL
 * and err non-NULL on failure. `err` is borrowed for the duration of the callback; `conn` is
 * owned by the receiver. */
typedef void (*capnp_lean_connect_fn)(void* user_data, capnp_lean_connection* conn,
                                      const capnp_lean_error* err);

/* Connects to `host:port` or `unix:/path` (the address is copied). `bootstrap` (borrowed, may be
 * NULL) is offered to the peer as this side's bootstrap capability; `options` may be NULL. */
capnp_lean_status capnp_lean_connect(capnp_lean_runtime* rt, const uint8_t* addr, size_t addr_len,
                                     capnp_lean_cap* bootstrap,
                                     const capnp_lean_connection_options* options,
                                     capnp_lean_connect_fn on_done, void* user_data,
                                     capnp_lean_error** err);

/* Adopts an already-connected stream socket (e.g. one end of a socketpair); the fd is owned by
 * the connection from now on, even on failure. `is_server` picks the two-party side. */
capnp_lean_status capnp_lean_connection_adopt_fd(capnp_lean_runtime* rt, int fd, int is_server,
                                                 capnp_lean_cap* bootstrap,
                                                 const capnp_lean_connection_options* options,
                                                 capnp_lean_connection** out,
                                                 capnp_lean_error** err);

/* The peer's bootstrap capability (Bootstrap on the wire). */
capnp_lean_status capnp_lean_connection_bootstrap(capnp_lean_connection* conn,
                                                  capnp_lean_cap** out, capnp_lean_error** err);

/* Called exactly once per registration, on the loop thread: when the connection ends, with `err`
 * saying why (borrowed); or with err == NULL when the registration is replaced or the
 * connection released first, so that user_data can be freed. */
typedef void (*capnp_lean_disconnect_fn)(void* user_data, const capnp_lean_error* err);
/* Registers the disconnect notification (replacing an earlier one). If the connection has
 * already ended, the callback is invoked soon after. */
capnp_lean_status capnp_lean_connection_on_disconnect(capnp_lean_connection* conn,
                                                      capnp_lean_disconnect_fn on_disconnect,
                                                      void* user_data, capnp_lean_error** err);
/* Closes the connection (pending calls over it fail with DISCONNECTED) and frees the handle.
 * Capabilities obtained over it stay valid handles but become broken. */
void capnp_lean_connection_release(capnp_lean_connection* conn);

/* ---- Listeners ------------------------------------------------------------------------------ */

/* Like capnp_lean_connect_fn: called exactly once, with a listener or an error. */
typedef void (*capnp_lean_listen_fn)(void* user_data, capnp_lean_listener* listener,
                                     const capnp_lean_error* err);

/* Listens on `host:port` (port 0 picks a free port) or `unix:/path`; every accepted connection
 * serves `bootstrap` (borrowed) as its bootstrap capability, with `options` (may be NULL). */
capnp_lean_status capnp_lean_listen(capnp_lean_runtime* rt, const uint8_t* addr, size_t addr_len,
                                    capnp_lean_cap* bootstrap,
                                    const capnp_lean_connection_options* options,
                                    capnp_lean_listen_fn on_done, void* user_data,
                                    capnp_lean_error** err);
/* The bound address in the same `host:port` / `unix:/path` form (borrowed until release). */
void capnp_lean_listener_address(const capnp_lean_listener* listener, const uint8_t** data,
                                 size_t* len);
/* Number of connections accepted so far. */
uint64_t capnp_lean_listener_accepted(const capnp_lean_listener* listener);
/* Stops accepting and frees the handle; connections already accepted keep running. */
void capnp_lean_listener_release(capnp_lean_listener* listener);

/* ---- Capabilities --------------------------------------------------------------------------- */

/* A new handle to the same capability. */
capnp_lean_status capnp_lean_cap_clone(capnp_lean_cap* cap, capnp_lean_cap** out,
                                       capnp_lean_error** err);
/* Drops this handle; when it was the last reference to a remote capability, Release goes out. */
void capnp_lean_cap_release(capnp_lean_cap* cap);
/* A capability whose every call fails with this kind and message. */
capnp_lean_status capnp_lean_cap_new_broken(capnp_lean_runtime* rt, capnp_lean_error_kind kind,
                                            const uint8_t* message, size_t message_len,
                                            capnp_lean_cap** out, capnp_lean_error** err);

/* ---- Calls ------------------------------------------------------------------------------------ */

/* Called exactly once on the loop thread: with the call when it completes (successfully or not,
 * including failure at runtime shutdown), or with call == NULL when the handle was released
 * before completion (the call was cancelled), so that user_data can always be freed. */
typedef void (*capnp_lean_call_done_fn)(void* user_data, capnp_lean_call* call);

/* Starts a call. `params` is copied before this returns. `on_done` may be NULL. The returned
 * handle must be released with capnp_lean_call_release; releasing it before completion cancels
 * the call (Finish on the wire). */
capnp_lean_status capnp_lean_call_start(capnp_lean_cap* target, uint64_t interface_id,
                                        uint16_t method_id, const capnp_lean_message* params,
                                        capnp_lean_call_done_fn on_done, void* user_data,
                                        capnp_lean_call** out, capnp_lean_error** err);
/* capnp_lean_call_start without the copy: the params' segment bytes are lent to the runtime,
 * which reads them once, when it writes the request on the loop thread, and then calls
 * release_params(params_owner). The bytes must stay valid and unchanged until then (the message
 * struct and its arrays are read before this returns) and be 8-byte aligned. Ownership passes on
 * every path: release_params is called exactly once, even when this fails (then before it
 * returns), on the loop thread or on the calling or shutting-down thread. It must not block. */
capnp_lean_status capnp_lean_call_start_borrowing(
    capnp_lean_cap* target, uint64_t interface_id, uint16_t method_id,
    const capnp_lean_message* params, capnp_lean_release_fn release_params, void* params_owner,
    capnp_lean_call_done_fn on_done, void* user_data, capnp_lean_call** out,
    capnp_lean_error** err);
/* Streaming calls, for methods declared `-> stream`: sent through KJ's flow control
 * (RequestHook::sendStreaming). The call goes out at once, in order with every other call on
 * `target`; the returned handle *completes* when KJ's flow controller admits the next streaming
 * call on this capability (its window of unacknowledged bytes, the connection's send buffer size,
 * has room), not when the result arrives. Send the next item from `on_done` (or after _wait) to
 * get backpressure. capnp_lean_call_results then gives an empty view or the error; there is no
 * pipeline. Once a streaming call on the capability has failed and its failure has come back,
 * the completion of every later streaming call on that capability fails with the same error, and
 * a server marked streaming (capnp_lean_server_call_set_streaming) fails every later call, so a
 * stream's final regular call reports the failure too. To a capability hosted in the same
 * runtime, a streaming call completes when it returns (a window of one call). Releasing the
 * handle before completion stops waiting but does not withdraw a call already sent to a peer.
 * Otherwise as capnp_lean_call_start. */
capnp_lean_status capnp_lean_call_start_streaming(capnp_lean_cap* target, uint64_t interface_id,
                                                  uint16_t method_id,
                                                  const capnp_lean_message* params,
                                                  capnp_lean_call_done_fn on_done, void* user_data,
                                                  capnp_lean_call** out, capnp_lean_error** err);
/* capnp_lean_call_start_streaming with the params lent, as for capnp_lean_call_start_borrowing. */
capnp_lean_status capnp_lean_call_start_streaming_borrowing(
    capnp_lean_cap* target, uint64_t interface_id, uint16_t method_id,
    const capnp_lean_message* params, capnp_lean_release_fn release_params, void* params_owner,
    capnp_lean_call_done_fn on_done, void* user_data, capnp_lean_call** out,
    capnp_lean_error** err);
/* Nonzero once the call has completed. */
int capnp_lean_call_is_done(const capnp_lean_call* call);
/* Blocks until the call completes and its completion callback has returned; always refused
 * (ERR_ON_LOOP_THREAD) on the loop thread, where waiting could deadlock. */
capnp_lean_status capnp_lean_call_wait(capnp_lean_call* call, capnp_lean_error** err);
/* The results of a completed call: OK with a view, ERR_RPC with the call's error, or
 * ERR_NOT_READY. The view stays valid until the call handle is released. */
capnp_lean_status capnp_lean_call_results(capnp_lean_call* call, capnp_lean_message_view* out,
                                          capnp_lean_error** err);
/* Capability `index` of the results' capability table, as a new handle. */
capnp_lean_status capnp_lean_call_result_cap(capnp_lean_call* call, uint32_t index,
                                             capnp_lean_cap** out, capnp_lean_error** err);
/* A pipelined capability: the capability found in the (future) results by following pointer
 * fields `path[0]`, `path[1]`, ... from the results struct. Usable immediately. */
capnp_lean_status capnp_lean_call_pipeline(capnp_lean_call* call, const uint16_t* path,
                                           size_t path_len, capnp_lean_cap** out,
                                           capnp_lean_error** err);
/* Frees the call: cancels it when still pending, drops its results otherwise. */
void capnp_lean_call_release(capnp_lean_call* call);

/* ---- Host-implemented capabilities (servers) ------------------------------------------------ */

/* Invoked on the loop thread for each call to the capability. The context is owned by the
 * callee: it must eventually be answered (return/fail) or released, from any thread. */
typedef void (*capnp_lean_dispatch_fn)(void* user_data, uint64_t interface_id, uint16_t method_id,
                                       capnp_lean_server_call* call);
/* Invoked on the loop thread when the caller cancels a call the host has not answered yet. The
 * context stays valid (answers are discarded) and must still be answered or released. */
typedef void (*capnp_lean_cancel_fn)(void* user_data, capnp_lean_server_call* call);
/* Invoked once on the loop thread when the last reference to the capability is gone, after
 * every dispatch and cancel callback of the capability. */
typedef void (*capnp_lean_server_drop_fn)(void* user_data);

/* A capability implemented by the host. `on_cancel` and `on_drop` may be NULL. */
capnp_lean_status capnp_lean_server_new(capnp_lean_runtime* rt, capnp_lean_dispatch_fn dispatch,
                                        capnp_lean_cancel_fn on_cancel,
                                        capnp_lean_server_drop_fn on_drop, void* user_data,
                                        capnp_lean_cap** out, capnp_lean_error** err);
/* The call's params (borrowed view, valid until the context is answered or released). */
capnp_lean_status capnp_lean_server_call_params(capnp_lean_server_call* call,
                                                capnp_lean_message_view* out,
                                                capnp_lean_error** err);
/* Capability `index` of the params' capability table, as a new handle. */
capnp_lean_status capnp_lean_server_call_param_cap(capnp_lean_server_call* call, uint32_t index,
                                                   capnp_lean_cap** out, capnp_lean_error** err);
/* Declares the call's method `-> stream`. Only inside the dispatch callback that received the
 * call, on the loop thread, before answering it (otherwise ERR_INVALID_ARGUMENT). KJ then holds
 * later calls to this capability until this one is answered (the host sees a stream's items one
 * at a time, in order), and once such a call is answered with an error, KJ answers every later
 * call to the capability with that error without dispatching it. */
capnp_lean_status capnp_lean_server_call_set_streaming(capnp_lean_server_call* call,
                                                       capnp_lean_error** err);
/* Nonzero once the caller has cancelled the call (answers are then discarded). */
int capnp_lean_server_call_is_cancelled(const capnp_lean_server_call* call);
/* Answers with results (copied) and frees the context. */
capnp_lean_status capnp_lean_server_call_return(capnp_lean_server_call* call,
                                                const capnp_lean_message* results,
                                                capnp_lean_error** err);
/* capnp_lean_server_call_return without the copy: the results' segment bytes are lent until
 * the runtime has written them into the Return, then release_results(results_owner) is called,
 * exactly once on every path, as for capnp_lean_call_start_borrowing. */
capnp_lean_status capnp_lean_server_call_return_borrowing(capnp_lean_server_call* call,
                                                          const capnp_lean_message* results,
                                                          capnp_lean_release_fn release_results,
                                                          void* results_owner,
                                                          capnp_lean_error** err);
/* Answers with an error of this kind and message and frees the context. */
capnp_lean_status capnp_lean_server_call_fail(capnp_lean_server_call* call,
                                              capnp_lean_error_kind kind, const uint8_t* message,
                                              size_t message_len, capnp_lean_error** err);
/* Frees an unanswered context: the caller receives a FAILED error saying so. */
void capnp_lean_server_call_release(capnp_lean_server_call* call);

/* ---- Promise capabilities ------------------------------------------------------------------ */

/* A capability that is a promise until resolved through `resolver_out`: calls made on it queue
 * (or travel to the peer as calls on a promise), and resolving it sends Resolve to peers holding
 * it (and, if calls were already in flight, makes them Disembargo). */
capnp_lean_status capnp_lean_promise_cap_new(capnp_lean_runtime* rt, capnp_lean_cap** cap_out,
                                             capnp_lean_resolver** resolver_out,
                                             capnp_lean_error** err);
/* Resolves the promise to `cap` (borrowed) and frees the resolver. */
capnp_lean_status capnp_lean_resolver_fulfill(capnp_lean_resolver* resolver, capnp_lean_cap* cap,
                                              capnp_lean_error** err);
/* Rejects the promise with this kind and message and frees the resolver. */
capnp_lean_status capnp_lean_resolver_reject(capnp_lean_resolver* resolver,
                                             capnp_lean_error_kind kind, const uint8_t* message,
                                             size_t message_len, capnp_lean_error** err);
/* Frees an unresolved resolver: the promise is rejected as abandoned. */
void capnp_lean_resolver_release(capnp_lean_resolver* resolver);

#ifdef __cplusplus
} /* extern "C" */
#endif

#endif /* CAPNP_LEAN_H */
