// Internal to the shim: the runtime core (work queue + loop thread) and the structs behind the
// opaque handles of capnp_lean.h. Nothing here is visible through the C ABI.
//
// Threading model: every KJ object lives on the runtime's loop thread. Host threads never touch
// one; they allocate a handle, then post a task (FIFO) that fills or uses its KJ part on the loop.
// Fields marked "loop" are only touched on the loop thread (or after the loop has stopped, by the
// single thread that finishes shutdown); fields marked "immutable" are written before the handle
// is published and only read afterwards.
#pragma once

#include "watch.h"
#include "capnp_lean.h"
#include "received.h"

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_set>
#include <vector>

#include <capnp/any.h>
#include <capnp/capability.h>
#include <capnp/message.h>
#include <capnp/rpc-twoparty.h>
#include <kj/async-io.h>
#include <kj/function.h>

namespace capnp_lean {

struct LoopState;

// A plain error: what crosses the ABI inside capnp_lean_error.
struct ErrorData {
  capnp_lean_error_kind kind = CAPNP_LEAN_ERROR_FAILED;
  std::string message;
};

ErrorData errorFromException(const kj::Exception& e);
kj::Exception exceptionFrom(capnp_lean_error_kind kind, std::string message);
kj::Exception::Type exceptionTypeOf(capnp_lean_error_kind kind);

// Fills *err (when err is non-NULL) and returns `status`.
capnp_lean_status fail(capnp_lean_error** err, capnp_lean_status status,
                       capnp_lean_error_kind kind, std::string message);
capnp_lean_status failWith(capnp_lean_error** err, const ErrorData& data);

// Runs `body` and converts any escaping exception into an error status: nothing C++ crosses the ABI.
template <typename Body>
capnp_lean_status guarded(capnp_lean_error** err, Body&& body) noexcept {
  try {
    return body();
  } catch (const kj::Exception& e) {
    return failWith(err, errorFromException(e));
  } catch (const std::exception& e) {
    return fail(err, CAPNP_LEAN_ERR_RPC, CAPNP_LEAN_ERROR_FAILED, e.what());
  } catch (...) {
    return fail(err, CAPNP_LEAN_ERR_RPC, CAPNP_LEAN_ERROR_FAILED, "unknown C++ exception");
  }
}

// A unit of work for the loop thread. `loop` is null when the runtime has already stopped; such
// tasks only free memory.
using Task = kj::Function<void(LoopState* loop)>;

// Shared by the runtime handle and every live handle (refcounted), so memory stays valid for a
// handle released after the runtime was destroyed.
struct Core {
  std::atomic<size_t> refs{1};
  // Messages the coalescing transport received, so params and results can be viewed in place.
  std::shared_ptr<ReceivedMessages> received = std::make_shared<ReceivedMessages>();

  std::mutex mutex;
  std::condition_variable stoppedCv;
  std::vector<Task> queue;   // guarded by mutex
  bool wakePending = false;  // guarded by mutex: a drain is already scheduled
  bool stopping = false;     // guarded by mutex: no more tasks are accepted
  bool stopped = false;      // guarded by mutex: the loop has torn down and exited

  int eventFd = -1;
  std::thread thread;
  std::mutex joinMutex;  // serialises concurrent shutdowns around thread.join()
  std::atomic<std::thread::id> loopThread{};
  LoopState* loop = nullptr;  // loop

  void ref() { refs.fetch_add(1, std::memory_order_relaxed); }
  void unref();
  bool onLoopThread() const { return loopThread.load() == std::this_thread::get_id(); }

  // Queues a task (moving from it); false when the runtime is stopping, leaving `task` intact.
  bool post(Task& task);
  bool post(Task&& task) { return post(task); }
  // For releases: queues the task, or, once the runtime is stopping, runs it as soon as that is
  // safe (inline on the loop thread during teardown, or after the loop has exited elsewhere).
  void postOrRunStopped(Task task);
  // Runs `task` on the loop and blocks until it has run. False when stopping.
  bool runAndWait(Task task);
  // True on the loop thread when nothing posted earlier is still waiting to run (neither in the
  // queue nor later in a batch being drained): work done now keeps its FIFO place.
  bool canRunNow();
  // When `canRunNow()`: runs `task` now (as if posted and drained at once) and returns true.
  // Otherwise returns false and leaves `task` intact for the caller to post.
  bool runNowIfIdle(Task& task);
};

// Live-object registry and KJ context of a running loop. Only touched on the loop thread.
struct LoopState {
  Core& core;
  kj::AsyncIoContext& io;
  kj::TaskSet tasks;
  bool tearingDown = false;
  size_t drainRemaining = 0;  // tasks of the batch being drained still to run after this one

  std::unordered_set<capnp_lean_connection*> connections;
  std::unordered_set<capnp_lean_listener*> listeners;
  std::unordered_set<capnp_lean_cap*> caps;
  std::unordered_set<capnp_lean_call*> calls;
  std::unordered_set<capnp_lean_server_call*> serverCalls;
  std::unordered_set<capnp_lean_resolver*> resolvers;
  uint64_t hostServers = 0;

  kj::Own<kj::PromiseFulfiller<void>> stop;
  bool trimScheduled = false;
  // Calls started from other threads whose outcome has arrived in this turn: completed together
  // when the turn ends (see `finishLater`), so their host wakes once per batch, not per call.
  std::vector<capnp_lean_call*> finishing;
  bool finishScheduled = false;

  LoopState(Core& core, kj::AsyncIoContext& io, kj::TaskSet::ErrorHandler& handler)
      : core(core), io(io), tasks(handler) {}
  void teardown();
  // Completes `call` (`error` null: success), or, for a call started off the loop thread, at
  // the end of this loop turn together with every other such call completed in it.
  void finishLater(capnp_lean_call* call, const ErrorData* error);
  // Completes every call `finishLater` has queued.
  void finishQueued();
  // After a connection closes: gives the memory its burst left free back to the system
  // (glibc's malloc_trim, once for all closes within 200 ms, when 16 MiB or more lie free), so
  // a long-lived server does not keep its worst moment's footprint forever.
  void returnMemorySoon();
};

// A received message (results or params) as the host reads it: its segments, whose root is the
// content struct. Data-only content that arrived over the coalescing transport is viewed in
// place: a root (double-far, through a two-word landing pad) leads to the struct inside the wire
// message. For a one-segment wire message segment 0 is `rootPad` and the wire segment follows;
// otherwise segment 0 is `head`, a copy of the wire's segment 0 with the root and pad patched in,
// so the wire's own far pointers keep their segment numbers. Anything else is copied, with its
// capabilities kept as KJ objects (loop). Not movable: `segments` points into `rootPad`.
struct ReceivedMessage {
  std::shared_ptr<const WireMessage> wire;   // in place: keeps the wire words alive
  capnp::word rootPad[3];
  kj::Array<capnp::word> head;                // in place, several wire segments
  kj::Own<capnp::MallocMessageBuilder> builder;        // copied
  kj::Own<capnp::BuilderCapabilityTable> capTable;     // copied
  std::vector<capnp_lean_segment> segments;  // immutable once published
  size_t capCount = 0;                       // immutable once published

  ReceivedMessage() = default;
  KJ_DISALLOW_COPY(ReceivedMessage);
  ReceivedMessage(ReceivedMessage&&) = delete;

  // Loop: views `content` in place when it can (see above, `registry` may be null), else copies.
  void takeFrom(capnp::AnyPointer::Reader content, ReceivedMessages* registry);
  void copyFrom(capnp::AnyPointer::Reader content);
  bool borrowFrom(capnp::AnyPointer::Reader content, ReceivedMessages& registry);
  bool inPlace() const { return wire != nullptr; }
  capnp_lean_message_view view() const;
  // A new reference to capability `index` (a broken cap for null entries). Loop only.
  kj::Own<capnp::ClientHook> cap(uint32_t index);
  // Drops the capabilities (KJ objects) but keeps the segments readable. Loop only.
  void dropCaps() { capTable = nullptr; }
};

// Host memory lent to the runtime: released exactly once, when the loan ends or is dropped.
class Loan {
 public:
  Loan() = default;
  Loan(capnp_lean_release_fn release, void* owner) : release(release), owner(owner) {}
  Loan(Loan&& other) noexcept : release(other.release), owner(other.owner) { other.release = nullptr; }
  Loan& operator=(Loan&& other) noexcept {
    end();
    release = other.release;
    owner = other.owner;
    other.release = nullptr;
    return *this;
  }
  ~Loan() { end(); }
  bool active() const { return release != nullptr; }
  void end() {
    if (release == nullptr) return;
    auto fn = release;
    release = nullptr;
    fn(owner);
  }

 private:
  capnp_lean_release_fn release = nullptr;
  void* owner = nullptr;
};

// An outgoing message from host memory: the segments (copied into `words`, or lent and read in
// place until `loan` ends) plus borrowed cap handles whose references are taken on the loop, in
// FIFO order, before any later release could run.
struct OutgoingMessage {
  kj::Array<capnp::word> words;  // empty when lent
  std::vector<kj::ArrayPtr<const capnp::word>> segments;
  std::vector<capnp_lean_cap*> caps;
  size_t totalWords = 0;
  Loan loan;

  // Validates and copies the segments, or with an active `loan` keeps pointers to them (they must
  // be 8-byte aligned); returns false with *err filled on bad input (the loan then ends at once).
  static bool take(const capnp_lean_message* msg, Loan loan, OutgoingMessage& out,
                   capnp_lean_error** err);
  // Writes the message into `target` (deep copy, capabilities included), then ends the loan. Loop only.
  void writeTo(capnp::AnyPointer::Builder target);
};

kj::Own<capnp::ClientHook> brokenCap(capnp_lean_error_kind kind, std::string message);

// Effective per-connection limits (defaults filled in).
struct ConnectionLimits {
  capnp::ReaderOptions reader;
  uint64_t flowLimitWords = 8u * 1024 * 1024;
  uint32_t deadPeerTimeoutMs = 0;  // 0: leave the socket's timeouts alone
  uint32_t handshakeTimeoutMs = 30000;  // accepted connections only; 0: off
  uint32_t stallTimeoutMs = 60000;      // 0: off
  uint64_t sendQueueLimitBytes = 16u << 20;  // 0: no bound
  uint32_t sendQueueTimeoutMs = 60000;       // 0: off
  bool coalescing = true;          // CoalescingMessageStream rather than KJ's stock stream

  // Loop: applies the socket-level settings to a freshly connected stream.
  void applyTo(kj::AsyncIoStream& stream) const;

  // Reads the caller's options (NULL = defaults); false with *err filled on bad input.
  static bool from(const capnp_lean_connection_options* options, ConnectionLimits& out,
                   capnp_lean_error** err);
};

// Loop: records the outcome (error == nullptr: success), runs the completion callback, then
// releases blocked waiters — so a wait returns only after the callback has run.
void completeCall(capnp_lean_call* call, const ErrorData* error);

capnp_lean_status shutDownError(capnp_lean_error** err);
capnp_lean_status nullArgument(capnp_lean_error** err, const char* what);

// Allocates a capability handle whose KJ part `make` produces on the loop (a broken capability
// if `make` throws). Returns ERR_SHUT_DOWN once the runtime is stopping.
capnp_lean_status newCap(Core* core, capnp_lean_cap** out, capnp_lean_error** err,
                         kj::Function<kj::Own<capnp::ClientHook>(LoopState& loop)> make);

}  // namespace capnp_lean

// ---- The structs behind the opaque handles --------------------------------------------------

struct capnp_lean_runtime {
  capnp_lean::Core* core;
};

struct capnp_lean_error {
  capnp_lean::ErrorData data;
};

struct capnp_lean_cap {
  capnp_lean::Core* core;
  kj::Own<capnp::ClientHook> hook;  // loop
};

struct capnp_lean_call {
  capnp_lean::Core* core;
  capnp_lean_call_done_fn onDone;
  void* userData;
  bool streaming = false;  // immutable: sent with sendStreaming (completes on admission)
  bool foreign = false;    // immutable: started off the loop thread (completion is batched)
  bool finishQueued = false;  // loop: in LoopState::finishing

  kj::Maybe<kj::Promise<void>> completion;           // loop
  kj::Maybe<capnp::AnyPointer::Pipeline> pipeline;   // loop

  std::mutex mutex;
  std::condition_variable doneCv;
  std::atomic<bool> done{false};  // results readable
  bool waitersReleased = false;   // guarded by mutex: set after onDone has run
  // Immutable once `done` is set:
  bool failed = false;
  capnp_lean::ErrorData error;
  capnp_lean::ReceivedMessage results;
};

struct capnp_lean_server_call {
  capnp_lean::Core* core;
  kj::Maybe<kj::Own<kj::PromiseFulfiller<void>>> fulfiller;             // loop
  kj::Maybe<capnp::CallContext<capnp::AnyPointer, capnp::AnyPointer>> context;  // loop
  // Shared with the dispatch promise, which outlives the context when the host answers late.
  struct Status {
    std::atomic<bool> cancelled{false};
    bool answered = false;  // loop
  };
  std::shared_ptr<Status> status;
  capnp_lean::ReceivedMessage params;  // immutable once dispatched
  bool dispatching = false;  // loop: true while the host's dispatch callback runs
  bool streaming = false;    // loop: set by capnp_lean_server_call_set_streaming during dispatch
  // loop: an answer given inside the dispatch callback, applied as soon as it returns.
  kj::Maybe<capnp_lean::Task> answerAfterDispatch;
};

struct capnp_lean_resolver {
  capnp_lean::Core* core;
  kj::Own<kj::PromiseFulfiller<kj::Own<capnp::ClientHook>>> fulfiller;  // loop
  std::atomic<bool> used{false};
};

struct capnp_lean_connection {
  capnp_lean::Core* core;
  bool hostOwned;        // immutable: false for connections a listener accepted
  std::string address;   // immutable
  capnp::rpc::twoparty::Side side;  // immutable

  // loop (declaration order = reverse destruction order: rpc before network before stream)
  kj::Own<capnp_lean::ProgressWatch> watch;     // deadlines for a peer that does not progress
  kj::Own<capnp_lean::ProgressStream> stream;    // the socket, reporting reads to `watch`
  kj::Own<capnp::MessageStream> transport;       // coalescing or KJ's stock stream
  kj::Own<capnp::MessageStream> messageStream;   // `transport`, reporting messages to `watch`
  kj::Own<capnp::TwoPartyVatNetwork> network;
  kj::Own<capnp::RpcSystem<capnp::rpc::twoparty::VatId>> rpc;
  kj::Maybe<kj::Promise<void>> disconnectWatch;
  kj::Maybe<kj::Promise<void>> deadlineWatch;  // ends the connection when a deadline passes
  capnp_lean_disconnect_fn onDisconnect = nullptr;
  void* disconnectUserData = nullptr;
  kj::Maybe<capnp_lean::ErrorData> endReason;

  // Loop: drops the KJ parts; the first close records the reason and (if `notify`) tells the host.
  // `loop` (null once the runtime has stopped) receives what must outlive this turn: see
  // retireTransport in net.c++.
  void close(capnp_lean::LoopState* loop, capnp_lean::ErrorData reason, bool notify);
  // Loop: invokes and clears the registered disconnect callback, if any.
  void fireDisconnect(const capnp_lean_error* error);
};

struct capnp_lean_listener {
  capnp_lean::Core* core;
  std::string boundAddress;  // immutable once published
  capnp_lean::ConnectionLimits limits;  // immutable
  std::atomic<uint64_t> accepted{0};
  kj::Own<kj::ConnectionReceiver> receiver;  // loop
  kj::Own<capnp::ClientHook> bootstrap;      // loop
  kj::Maybe<kj::Promise<void>> acceptLoop;   // loop
};
