// Connections and listeners: TCP (`host:port`) and unix sockets (`unix:/path`) through KJ's
// network, or an adopted fd; each connection is a TwoPartyVatNetwork with its own RpcSystem.

#include "core.h"
#include "stream.h"

#include <unistd.h>

namespace capnp_lean {
namespace {

constexpr auto CONNECT_TIMEOUT = 30 * kj::SECONDS;
// What the send-queue bound charges for each message in KJ's queue beyond its bytes: roughly
// what a small queued answer costs in memory (its builder, the answer's state). Without it
// 16 MiB of 64-byte answers held ~300 MiB.
constexpr size_t QUEUED_MESSAGE_CHARGE = 1024;

// Makes a completion callback fire exactly once: by `succeed`/`failWith`, or, if the promise
// carrying it is dropped first (runtime shutdown), with a shut-down error.
template <typename Handle, typename Fn>
struct OnceCompletion {
  Fn callback;
  void* userData;
  bool fired = false;

  OnceCompletion(Fn callback, void* userData) : callback(callback), userData(userData) {}
  KJ_DISALLOW_COPY(OnceCompletion);
  ~OnceCompletion() noexcept(false) {
    if (!fired) failWith(ErrorData{CAPNP_LEAN_ERROR_DISCONNECTED, "the capnp-lean runtime was shut down"});
  }
  void succeed(Handle* handle) {
    fired = true;
    callback(userData, handle, nullptr);
  }
  void failWith(ErrorData data) {
    fired = true;
    capnp_lean_error error{kj::mv(data)};
    callback(userData, nullptr, &error);
  }
};
using ConnectCompletion = OnceCompletion<capnp_lean_connection, capnp_lean_connect_fn>;
using ListenCompletion = OnceCompletion<capnp_lean_listener, capnp_lean_listen_fn>;

std::string toString(const uint8_t* data, size_t len) {
  return std::string(reinterpret_cast<const char*>(data), len);
}

// Loop: closes `conn` (telling the host why) and, for a connection a listener accepted, frees
// it. Closing destroys the promise that asked for it, so it happens in a later turn; whichever
// of the disconnect and the deadline watch comes first wins.
void endConnectionSoon(LoopState* state, capnp_lean_connection* conn, ErrorData reason) {
  state->tasks.add(kj::evalLater([state, conn, reason = kj::mv(reason)]() {
    if (state->connections.count(conn) == 0 || conn->endReason != nullptr) return;
    conn->close(state, reason, true);
    if (!conn->hostOwned) {
      state->connections.erase(conn);
      conn->core->unref();
      delete conn;
    }
    // Closing freed what the connection held (a host-held one too: its send queue may be large).
    state->returnMemorySoon();
  }));
}

// Starts RPC over `stream`; `conn` must already be registered with the loop.
void startConnection(LoopState& loop, capnp_lean_connection* conn,
                     kj::Own<kj::AsyncIoStream> stream,
                     kj::Maybe<kj::Own<capnp::ClientHook>> bootstrap,
                     const ConnectionLimits& limits) {
  limits.applyTo(*stream);
  bool accepted = conn->side == capnp::rpc::twoparty::Side::SERVER;
  conn->watch = kj::heap<ProgressWatch>(
      loop.io.provider->getTimer(),
      (accepted ? limits.handshakeTimeoutMs : 0) * kj::MILLISECONDS,
      limits.stallTimeoutMs * kj::MILLISECONDS);
  conn->stream = kj::heap<ProgressStream>(kj::mv(stream), *conn->watch);
  kj::Function<bool()> bufferedInput = []() { return false; };  // the stock stream reads exactly
  CoalescingMessageStream* coalescing = nullptr;
  if (limits.coalescing) {
    auto owned = kj::heap<CoalescingMessageStream>(*conn->stream, conn->core->received,
                                                   loop.io.provider->getTimer());
    coalescing = owned.get();
    bufferedInput = [coalescing]() { return coalescing->hasBufferedInput(); };
    conn->transport = kj::mv(owned);
  } else {
    conn->transport = kj::heap<capnp::AsyncIoMessageStream>(*conn->stream);
  }
  SendQueueBound bound{limits.sendQueueLimitBytes, limits.sendQueueTimeoutMs * kj::MILLISECONDS};
  auto watched = kj::heap<WatchedMessageStream>(*conn->transport, *conn->watch, kj::mv(bufferedInput), bound);
  WatchedMessageStream* watchedStream = watched.get();
  conn->messageStream = kj::mv(watched);
  conn->network = kj::heap<capnp::TwoPartyVatNetwork>(*conn->messageStream, conn->side, limits.reader);
  capnp::TwoPartyVatNetwork* network = conn->network.get();
  watchedStream->setQueueProbe([network, coalescing]() {
    return network->getCurrentQueueSize() + network->getCurrentQueueCount() * QUEUED_MESSAGE_CHARGE +
           (coalescing != nullptr ? coalescing->queuedBytes() : 0);
  });
  if (coalescing != nullptr) {
    coalescing->onWritten([watchedStream]() { watchedStream->wroteSome(); });
    watchedStream->writesReportedByTransport();
  }
  KJ_IF_MAYBE(hook, bootstrap) {
    conn->rpc = kj::heap(capnp::makeRpcServer(*conn->network, capnp::Capability::Client(kj::mv(*hook))));
  } else {
    conn->rpc = kj::heap(capnp::makeRpcClient(*conn->network));
  }
  conn->rpc->setFlowLimit(limits.flowLimitWords);
  LoopState* state = &loop;
  conn->disconnectWatch = conn->network->onDisconnect()
      .then([conn]() {
        return ErrorData{CAPNP_LEAN_ERROR_DISCONNECTED,
                         "the connection to " + conn->address + " was closed"};
      }, [conn](kj::Exception&& e) {
        auto error = errorFromException(e);
        if (!conn->watch->reason().empty()) error.message = conn->watch->reason();
        error.kind = CAPNP_LEAN_ERROR_DISCONNECTED;
        error.message = "the connection to " + conn->address + " failed: " + error.message;
        return error;
      })
      .then([state, conn](ErrorData reason) { endConnectionSoon(state, conn, kj::mv(reason)); })
      .eagerlyEvaluate(nullptr);
  // A missed deadline ends the connection itself: KJ's orderly shutdown would wait for queued
  // writes to a peer that may never read them.
  conn->deadlineWatch = conn->watch->failure()
      .catch_([state, conn](kj::Exception&& e) {
        (void)e;
        endConnectionSoon(state, conn, ErrorData{CAPNP_LEAN_ERROR_DISCONNECTED,
            "the connection to " + conn->address + " was ended: " + conn->watch->reason()});
      })
      .eagerlyEvaluate(nullptr);
}

capnp_lean_connection* newConnection(Core* core, bool hostOwned, std::string address,
                                     capnp::rpc::twoparty::Side side) {
  auto* conn = new capnp_lean_connection();
  conn->core = core;
  conn->hostOwned = hostOwned;
  conn->address = std::move(address);
  conn->side = side;
  core->ref();
  return conn;
}

void deleteConnection(LoopState* loop, capnp_lean_connection* conn) {
  if (loop != nullptr) loop->connections.erase(conn);
  Core* core = conn->core;
  delete conn;
  core->unref();
}

kj::Promise<void> acceptLoop(LoopState& loop, capnp_lean_listener* listener) {
  return listener->receiver->accept().then(
      [&loop, listener](kj::Own<kj::AsyncIoStream> stream) {
        listener->accepted.fetch_add(1);
        auto* conn = newConnection(listener->core, false, listener->boundAddress + " (accepted)",
                                   capnp::rpc::twoparty::Side::SERVER);
        loop.connections.insert(conn);
        startConnection(loop, conn, kj::mv(stream), listener->bootstrap->addRef(), listener->limits);
        return acceptLoop(loop, listener);
      },
      [&loop, listener](kj::Exception&& e) -> kj::Promise<void> {
        // accept() fails transiently (e.g. out of fds); keep serving after a short pause.
        (void)e;
        return loop.io.provider->getTimer().afterDelay(50 * kj::MILLISECONDS).then(
            [&loop, listener]() { return acceptLoop(loop, listener); });
      });
}

std::string boundAddressOf(const std::string& requested, kj::ConnectionReceiver& receiver) {
  if (requested.rfind("unix:", 0) == 0) return requested;
  auto colon = requested.rfind(':');
  std::string host = colon == std::string::npos ? requested : requested.substr(0, colon);
  return host + ":" + std::to_string(receiver.getPort());
}

}  // namespace
}  // namespace capnp_lean

using namespace capnp_lean;

void capnp_lean_connection::fireDisconnect(const capnp_lean_error* error) {
  auto callback = onDisconnect;
  onDisconnect = nullptr;
  if (callback != nullptr) callback(disconnectUserData, error);
}

namespace capnp_lean {
namespace {

// A closed connection's transport, kept until KJ's chain of queued writes has unwound. KJ 0.9.2's
// TwoPartyVatNetwork chains each outgoing message's write onto the previous one, and destroying
// that chain recurses once per message still queued: tens of thousands overflow the loop
// thread's stack (a peer that sent 300k small calls and read nothing crashed the process at
// the send-queue timeout). Once the write in flight is cut, the chain instead unwinds one node
// per event, destroying each message as it goes; what is left is then shallow to destroy.
// The RpcSystem is kept too: once KJ has begun its disconnect, the chain hangs off the shutdown
// task that its TaskSet holds.
struct RetiredTransport {
  kj::Own<capnp::RpcSystem<capnp::rpc::twoparty::VatId>> rpc;
  kj::Own<capnp::TwoPartyVatNetwork> network;
  kj::Own<capnp::MessageStream> messageStream;
  kj::Own<capnp::MessageStream> transport;
  kj::Own<ProgressStream> stream;
  kj::Own<ProgressWatch> watch;

  ~RetiredTransport() noexcept(false) {
    rpc = nullptr;  // the same order as the connection's own members
    network = nullptr;
    messageStream = nullptr;
    transport = nullptr;
    stream = nullptr;
    watch = nullptr;
  }
};

// Queues this short are destroyed at once: their recursion is a few kilobytes of stack.
constexpr size_t SHALLOW_QUEUE = 256;

kj::Promise<void> dropWhenUnwound(kj::Own<RetiredTransport> parts, size_t turnsLeft) {
  // turnsLeft only guards against a write that could not be cut; unwinding takes a few turns.
  if (parts->network->getCurrentQueueCount() == 0 || turnsLeft == 0) return kj::READY_NOW;
  return kj::evalLater([parts = kj::mv(parts), turnsLeft]() mutable {
    return dropWhenUnwound(kj::mv(parts), turnsLeft - 1);
  });
}

}  // namespace
}  // namespace capnp_lean

void capnp_lean_connection::close(LoopState* loop, ErrorData reason, bool notify) {
  if (endReason == nullptr) endReason = reason;
  disconnectWatch = nullptr;
  deadlineWatch = nullptr;
  // Nothing more reaches the peer once the connection is closed; failing the write in flight
  // (rather than destroying it with the chain behind it) lets a long queue unwind.
  if (stream.get() != nullptr) stream->cutWrites("the connection was closed");
  if (loop != nullptr && network.get() != nullptr && network->getCurrentQueueCount() > SHALLOW_QUEUE) {
    auto parts = kj::heap<RetiredTransport>();
    size_t turns = 4 * network->getCurrentQueueCount() + 1000;
    parts->rpc = kj::mv(rpc);
    parts->network = kj::mv(network);
    parts->messageStream = kj::mv(messageStream);
    parts->transport = kj::mv(transport);
    parts->stream = kj::mv(stream);
    parts->watch = kj::mv(watch);
    loop->tasks.add(dropWhenUnwound(kj::mv(parts), turns));
  }
  rpc = nullptr;
  network = nullptr;
  messageStream = nullptr;
  transport = nullptr;
  stream = nullptr;
  watch = nullptr;
  KJ_IF_MAYBE(why, endReason) {
    capnp_lean_error error{*why};
    fireDisconnect(notify ? &error : nullptr);
  }
}

extern "C" {

capnp_lean_status capnp_lean_connect(capnp_lean_runtime* rt, const uint8_t* addr, size_t addr_len,
                                     capnp_lean_cap* bootstrap,
                                     const capnp_lean_connection_options* options,
                                     capnp_lean_connect_fn on_done, void* user_data,
                                     capnp_lean_error** err) {
  return guarded(err, [&]() -> capnp_lean_status {
    if (rt == nullptr) return nullArgument(err, "rt");
    ConnectionLimits limits;
    if (!ConnectionLimits::from(options, limits, err)) return CAPNP_LEAN_ERR_INVALID_ARGUMENT;
    if (on_done == nullptr) return nullArgument(err, "on_done");
    if (addr == nullptr || addr_len == 0) {
      return fail(err, CAPNP_LEAN_ERR_INVALID_ARGUMENT, CAPNP_LEAN_ERROR_FAILED,
                  "the address is empty; expected host:port or unix:/path");
    }
    Core* core = rt->core;
    std::string address = toString(addr, addr_len);
    Task start = [core, address, bootstrap, limits, on_done, user_data](LoopState* loop) {
      auto completion = kj::heap<ConnectCompletion>(on_done, user_data);
      kj::Maybe<kj::Own<capnp::ClientHook>> offered;
      if (bootstrap != nullptr && bootstrap->hook.get() != nullptr) {
        offered = bootstrap->hook->addRef();
      }
      auto& timer = loop->io.provider->getTimer();
      auto connected = loop->io.provider->getNetwork()
          .parseAddress(kj::StringPtr(address.c_str()))
          .then([](kj::Own<kj::NetworkAddress> target) {
            return target->connect().attach(kj::mv(target));
          });
      auto& once = *completion;
      loop->tasks.add(
          timer.timeoutAfter(CONNECT_TIMEOUT, kj::mv(connected))
              .then([loop, core, address, limits, &once, offered = kj::mv(offered)](
                        kj::Own<kj::AsyncIoStream> stream) mutable {
                auto* conn = newConnection(core, true, address, capnp::rpc::twoparty::Side::CLIENT);
                loop->connections.insert(conn);
                startConnection(*loop, conn, kj::mv(stream), kj::mv(offered), limits);
                once.succeed(conn);
              }, [address, &once](kj::Exception&& e) {
                auto error = errorFromException(e);
                error.kind = CAPNP_LEAN_ERROR_DISCONNECTED;
                error.message = "cannot connect to " + address + ": " + error.message;
                once.failWith(kj::mv(error));
              })
              .attach(kj::mv(completion)));
    };
    if (!core->post(start)) return shutDownError(err);
    return CAPNP_LEAN_OK;
  });
}

capnp_lean_status capnp_lean_connection_adopt_fd(capnp_lean_runtime* rt, int fd, int is_server,
                                                 capnp_lean_cap* bootstrap,
                                                 const capnp_lean_connection_options* options,
                                                 capnp_lean_connection** out,
                                                 capnp_lean_error** err) {
  return guarded(err, [&]() -> capnp_lean_status {
    if (rt == nullptr || out == nullptr || fd < 0) {
      if (fd >= 0) ::close(fd);
      return fail(err, CAPNP_LEAN_ERR_INVALID_ARGUMENT, CAPNP_LEAN_ERROR_FAILED,
                  "rt and out must not be NULL and fd must be a valid descriptor");
    }
    ConnectionLimits limits;
    if (!ConnectionLimits::from(options, limits, err)) {  // fills *err itself
      ::close(fd);
      return CAPNP_LEAN_ERR_INVALID_ARGUMENT;
    }
    Core* core = rt->core;
    auto side = is_server ? capnp::rpc::twoparty::Side::SERVER : capnp::rpc::twoparty::Side::CLIENT;
    auto* conn = newConnection(core, true, "fd:" + std::to_string(fd), side);
    Task start = [conn, fd, bootstrap, limits](LoopState* loop) {
      loop->connections.insert(conn);
      kj::Maybe<kj::Own<capnp::ClientHook>> offered;
      if (bootstrap != nullptr && bootstrap->hook.get() != nullptr) {
        offered = bootstrap->hook->addRef();
      }
      KJ_IF_MAYBE(e, kj::runCatchingExceptions([&]() {
        auto stream = loop->io.lowLevelProvider->wrapSocketFd(
            fd, kj::LowLevelAsyncIoProvider::TAKE_OWNERSHIP);
        startConnection(*loop, conn, kj::mv(stream), kj::mv(offered), limits);
      })) {
        auto error = errorFromException(*e);
        error.kind = CAPNP_LEAN_ERROR_DISCONNECTED;
        conn->close(loop, error, true);
      }
    };
    if (!core->post(start)) {
      ::close(fd);
      deleteConnection(nullptr, conn);
      return shutDownError(err);
    }
    *out = conn;
    return CAPNP_LEAN_OK;
  });
}

capnp_lean_status capnp_lean_connection_bootstrap(capnp_lean_connection* conn,
                                                  capnp_lean_cap** out, capnp_lean_error** err) {
  return guarded(err, [&]() -> capnp_lean_status {
    if (conn == nullptr) return nullArgument(err, "conn");
    return newCap(conn->core, out, err, [conn](LoopState&) -> kj::Own<capnp::ClientHook> {
      if (conn->rpc.get() == nullptr) {
        KJ_IF_MAYBE(reason, conn->endReason) { return brokenCap(reason->kind, reason->message); }
        return brokenCap(CAPNP_LEAN_ERROR_DISCONNECTED, "the connection is closed");
      }
      capnp::word scratch[4];
      memset(scratch, 0, sizeof(scratch));
      capnp::MallocMessageBuilder message(scratch);
      auto vatId = message.getRoot<capnp::rpc::twoparty::VatId>();
      vatId.setSide(conn->side == capnp::rpc::twoparty::Side::CLIENT
                        ? capnp::rpc::twoparty::Side::SERVER
                        : capnp::rpc::twoparty::Side::CLIENT);
      return capnp::ClientHook::from(conn->rpc->bootstrap(vatId));
    });
  });
}

capnp_lean_status capnp_lean_connection_on_disconnect(capnp_lean_connection* conn,
                                                      capnp_lean_disconnect_fn on_disconnect,
                                                      void* user_data, capnp_lean_error** err) {
  return guarded(err, [&]() -> capnp_lean_status {
    if (conn == nullptr) return nullArgument(err, "conn");
    Task install = [conn, on_disconnect, user_data](LoopState*) {
      conn->fireDisconnect(nullptr);  // the replaced registration ends here
      conn->onDisconnect = on_disconnect;
      conn->disconnectUserData = user_data;
      KJ_IF_MAYBE(reason, conn->endReason) {
        capnp_lean_error error{*reason};
        conn->fireDisconnect(&error);
      }
    };
    if (!conn->core->post(install)) return shutDownError(err);
    return CAPNP_LEAN_OK;
  });
}

void capnp_lean_connection_release(capnp_lean_connection* conn) {
  if (conn == nullptr) return;
  KJ_IF_MAYBE(e, kj::runCatchingExceptions([&]() {
    conn->core->postOrRunStopped([conn](LoopState* loop) {
      conn->close(loop, ErrorData{CAPNP_LEAN_ERROR_DISCONNECTED, "the connection was released"}, false);
      deleteConnection(loop, conn);
      if (loop != nullptr) loop->returnMemorySoon();
    });
  })) {
    (void)e;
  }
}

capnp_lean_status capnp_lean_listen(capnp_lean_runtime* rt, const uint8_t* addr, size_t addr_len,
                                    capnp_lean_cap* bootstrap,
                                    const capnp_lean_connection_options* options,
                                    capnp_lean_listen_fn on_done, void* user_data,
                                    capnp_lean_error** err) {
  return guarded(err, [&]() -> capnp_lean_status {
    if (rt == nullptr) return nullArgument(err, "rt");
    ConnectionLimits limits;
    if (!ConnectionLimits::from(options, limits, err)) return CAPNP_LEAN_ERR_INVALID_ARGUMENT;
    if (bootstrap == nullptr) return nullArgument(err, "bootstrap");
    if (on_done == nullptr) return nullArgument(err, "on_done");
    if (addr == nullptr || addr_len == 0) {
      return fail(err, CAPNP_LEAN_ERR_INVALID_ARGUMENT, CAPNP_LEAN_ERROR_FAILED,
                  "the address is empty; expected host:port or unix:/path");
    }
    Core* core = rt->core;
    std::string address = toString(addr, addr_len);
    Task start = [core, address, bootstrap, limits, on_done, user_data](LoopState* loop) {
      auto completion = kj::heap<ListenCompletion>(on_done, user_data);
      auto& once = *completion;
      auto served = bootstrap->hook.get() != nullptr
          ? bootstrap->hook->addRef()
          : brokenCap(CAPNP_LEAN_ERROR_DISCONNECTED, "the bootstrap capability was shut down");
      loop->tasks.add(
          loop->io.provider->getNetwork().parseAddress(kj::StringPtr(address.c_str()))
              .then([loop, core, address, limits, &once, served = kj::mv(served)](
                        kj::Own<kj::NetworkAddress> target) mutable {
                auto receiver = target->listen();
                auto* listener = new capnp_lean_listener();
                listener->core = core;
                listener->limits = limits;
                core->ref();
                listener->receiver = kj::mv(receiver);
                listener->bootstrap = kj::mv(served);
                listener->boundAddress = boundAddressOf(address, *listener->receiver);
                loop->listeners.insert(listener);
                listener->acceptLoop = acceptLoop(*loop, listener).eagerlyEvaluate(nullptr);
                once.succeed(listener);
              })
              .catch_([address, &once](kj::Exception&& e) {
                auto error = errorFromException(e);
                error.message = "cannot listen on " + address + ": " + error.message;
                once.failWith(kj::mv(error));
              })
              .attach(kj::mv(completion)));
    };
    if (!core->post(start)) return shutDownError(err);
    return CAPNP_LEAN_OK;
  });
}

void capnp_lean_listener_address(const capnp_lean_listener* listener, const uint8_t** data,
                                 size_t* len) {
  if (listener == nullptr) {
    if (data) *data = nullptr;
    if (len) *len = 0;
    return;
  }
  if (data) *data = reinterpret_cast<const uint8_t*>(listener->boundAddress.data());
  if (len) *len = listener->boundAddress.size();
}

uint64_t capnp_lean_listener_accepted(const capnp_lean_listener* listener) {
  return listener == nullptr ? 0 : listener->accepted.load();
}

void capnp_lean_listener_release(capnp_lean_listener* listener) {
  if (listener == nullptr) return;
  KJ_IF_MAYBE(e, kj::runCatchingExceptions([&]() {
    listener->core->postOrRunStopped([listener](LoopState* loop) {
      if (loop != nullptr) loop->listeners.erase(listener);
      Core* core = listener->core;
      listener->acceptLoop = nullptr;
      listener->receiver = nullptr;
      listener->bootstrap = nullptr;
      delete listener;
      core->unref();
    });
  })) {
    (void)e;
  }
}

}  // extern "C"
