// The runtime: one thread running a KJ event loop, fed by a FIFO work queue.
//
// Host threads push tasks under a mutex and wake the loop through an eventfd only when no drain
// is already pending, so a burst of posts costs one wake-up. Tasks posted from the loop thread
// itself are drained by an evalLater instead of a syscall.

#include "core.h"

#include <kj/async-unix.h>
#include <malloc.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <future>

namespace capnp_lean {

void Core::unref() {
  if (refs.fetch_sub(1, std::memory_order_acq_rel) == 1) {
    if (eventFd >= 0) ::close(eventFd);
    delete this;
  }
}

namespace {

bool debugEnabled() { return getenv("CAPNP_LEAN_DEBUG") != nullptr; }

void drain(LoopState& loop) {
  std::vector<Task> batch;
  {
    std::lock_guard<std::mutex> lock(loop.core.mutex);
    batch.swap(loop.core.queue);
    loop.core.wakePending = false;
  }
  for (size_t i = 0; i < batch.size(); ++i) {
    loop.drainRemaining = batch.size() - i - 1;
    // Tasks convert their own errors; this only keeps a KJ bug from killing the loop.
    KJ_IF_MAYBE(e, kj::runCatchingExceptions([&]() { batch[i](&loop); })) {
      if (debugEnabled()) fprintf(stderr, "capnp-lean: task failed: %s\n", kj::str(*e).cStr());
    }
  }
  loop.drainRemaining = 0;
}

struct LoggingErrorHandler final : public kj::TaskSet::ErrorHandler {
  void taskFailed(kj::Exception&& exception) override {
    // Background tasks (accept loops, disconnect watches) fail when peers go away; that is
    // reported through the handles concerned, so only log on request.
    if (debugEnabled()) {
      fprintf(stderr, "capnp-lean: background task failed: %s\n", kj::str(exception).cStr());
    }
  }
};

kj::Promise<void> pumpWakeups(LoopState& loop, kj::UnixEventPort::FdObserver& observer) {
  return observer.whenBecomesReadable().then([&loop, &observer]() {
    uint64_t counter;
    // Resets the eventfd; EAGAIN only means the counter was already zero.
    ssize_t n = ::read(loop.core.eventFd, &counter, sizeof(counter));
    (void)n;
    drain(loop);
    return pumpWakeups(loop, observer);
  });
}

// Events run in a row before the loop checks its sockets again: rare enough to cost nothing
// per call (one non-blocking epoll_wait per few dozen calls), often enough for fairness.
constexpr uint BUSY_POLL_EVENTS = 256;

void runLoop(Core* core, std::promise<void>* started) {
  auto io = kj::setupAsyncIo();
  LoggingErrorHandler errorHandler;
  LoopState loop(*core, io, errorHandler);
  kj::UnixEventPort::FdObserver observer(io.unixEventPort, core->eventFd,
                                         kj::UnixEventPort::FdObserver::OBSERVE_READ);
  auto stopPaf = kj::newPromiseAndFulfiller<void>();
  loop.stop = kj::mv(stopPaf.fulfiller);
  core->loop = &loop;
  core->loopThread.store(std::this_thread::get_id());
  started->set_value();

  // KJ looks for new I/O only once nothing is ready to run, unless told otherwise: a
  // connection with a long backlog of buffered messages would keep every other socket unread.
  io.waitScope.setBusyPollInterval(BUSY_POLL_EVENTS);
  stopPaf.promise.exclusiveJoin(pumpWakeups(loop, observer)).wait(io.waitScope);
  // Everything posted before `stopping` was set has run; now release every KJ object, letting
  // the loop turn so that the resulting disconnect work completes.
  loop.tearingDown = true;
  loop.teardown();
  io.waitScope.poll();
  {
    std::lock_guard<std::mutex> lock(core->mutex);
    core->stopped = true;
  }
  core->stoppedCv.notify_all();
  core->loop = nullptr;
}

}  // namespace

bool Core::post(Task& task) {
  bool wakeByFd = false;
  bool wakeByLoop = false;
  {
    std::lock_guard<std::mutex> lock(mutex);
    if (stopping) return false;
    queue.push_back(kj::mv(task));
    if (!wakePending) {
      wakePending = true;
      if (onLoopThread()) wakeByLoop = true; else wakeByFd = true;
    }
  }
  if (wakeByLoop) {
    LoopState* state = loop;
    state->tasks.add(kj::evalLater([state]() { drain(*state); }));
  } else if (wakeByFd) {
    uint64_t one = 1;
    ssize_t n = ::write(eventFd, &one, sizeof(one));
    (void)n;  // an eventfd write only fails on counter overflow, which still leaves it readable
  }
  return true;
}

void Core::postOrRunStopped(Task task) {
  if (post(task)) return;
  if (onLoopThread() && loop != nullptr) {
    // Shutdown is in progress on this very thread (a callback during teardown).
    task(loop);
    return;
  }
  {
    std::unique_lock<std::mutex> lock(mutex);
    stoppedCv.wait(lock, [this]() { return stopped; });
  }
  // Teardown has dropped every KJ part; the task only frees host memory.
  task(nullptr);
}

bool Core::canRunNow() {
  if (!onLoopThread() || loop == nullptr || loop->tearingDown || loop->drainRemaining > 0) {
    return false;
  }
  std::lock_guard<std::mutex> lock(mutex);
  return !stopping && queue.empty();
}

bool Core::runNowIfIdle(Task& task) {
  if (!canRunNow()) return false;
  task(loop);
  return true;
}

bool Core::runAndWait(Task task) {
  std::mutex m;
  std::condition_variable cv;
  bool ran = false;
  Task wrapper = [&](LoopState* state) {
    task(state);
    std::lock_guard<std::mutex> lock(m);
    ran = true;
    cv.notify_one();
  };
  if (!post(wrapper)) return false;
  std::unique_lock<std::mutex> lock(m);
  cv.wait(lock, [&]() { return ran; });
  return true;
}

// Free memory the allocator must hold before a close gives it back to the system.
constexpr size_t TRIM_WHEN_FREE_BYTES = 16u << 20;

void LoopState::returnMemorySoon() {
  if (trimScheduled || tearingDown) return;
  trimScheduled = true;
  tasks.add(io.provider->getTimer().afterDelay(200 * kj::MILLISECONDS).then([this]() {
    trimScheduled = false;
    // Only after a burst: trimming after every close put the allocator in a state where each
    // 64 KiB message's memory went back to the system and faulted in again on the next call
    // (the benchmark, one connection per measurement, saw 98 instead of 63 µs of server CPU
    // per sequential 64 KiB call, and 1.3x the p50).
    if (mallinfo2().fordblks >= TRIM_WHEN_FREE_BYTES) malloc_trim(0);
  }));
}

void LoopState::teardown() {
  // Each step works on a snapshot: callbacks it triggers may release handles, which (during
  // teardown) runs inline and edits these sets.
  // Calls whose outcome arrived in the last turn complete with it, not with the shutdown.
  finishQueued();
  auto shutDown = ErrorData{CAPNP_LEAN_ERROR_DISCONNECTED, "the capnp-lean runtime was shut down"};
  for (auto* call : std::vector<capnp_lean_call*>(calls.begin(), calls.end())) {
    if (calls.count(call) == 0) continue;
    call->completion = nullptr;
    call->pipeline = nullptr;
    call->results.dropCaps();
    if (!call->done.load()) completeCall(call, &shutDown);
  }
  for (auto* sc : std::vector<capnp_lean_server_call*>(serverCalls.begin(), serverCalls.end())) {
    if (serverCalls.count(sc) == 0) continue;
    sc->status->cancelled.store(true);
    sc->context = nullptr;
    sc->fulfiller = nullptr;
    sc->params.dropCaps();
  }
  for (auto* r : std::vector<capnp_lean_resolver*>(resolvers.begin(), resolvers.end())) {
    if (resolvers.count(r) == 0) continue;
    r->fulfiller = nullptr;
  }
  for (auto* cap : std::vector<capnp_lean_cap*>(caps.begin(), caps.end())) {
    if (caps.count(cap) == 0) continue;
    cap->hook = nullptr;
  }
  for (auto* l : std::vector<capnp_lean_listener*>(listeners.begin(), listeners.end())) {
    if (listeners.count(l) == 0) continue;
    l->acceptLoop = nullptr;
    l->receiver = nullptr;
    l->bootstrap = nullptr;
  }
  for (auto* c : std::vector<capnp_lean_connection*>(connections.begin(), connections.end())) {
    if (connections.count(c) == 0) continue;
    c->close(this, shutDown, true);
    if (!c->hostOwned) {
      connections.erase(c);
      c->core->unref();
      delete c;
    }
  }
}

}  // namespace capnp_lean

using namespace capnp_lean;

extern "C" {

uint32_t capnp_lean_abi_version(void) { return CAPNP_LEAN_ABI_VERSION; }

capnp_lean_status capnp_lean_runtime_create(capnp_lean_runtime** out, capnp_lean_error** err) {
  return guarded(err, [&]() -> capnp_lean_status {
    if (out == nullptr) {
      return fail(err, CAPNP_LEAN_ERR_INVALID_ARGUMENT, CAPNP_LEAN_ERROR_FAILED, "out is NULL");
    }
    auto* core = new Core();
    core->eventFd = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (core->eventFd < 0) {
      delete core;
      return fail(err, CAPNP_LEAN_ERR_RPC, CAPNP_LEAN_ERROR_FAILED,
                  "eventfd() failed: cannot create the runtime's wake-up channel");
    }
    std::promise<void> started;
    auto startedFuture = started.get_future();
    core->thread = std::thread([core, &started]() {
      KJ_IF_MAYBE(e, kj::runCatchingExceptions([&]() { runLoop(core, &started); })) {
        // The loop died (setupAsyncIo failed, or a KJ bug): refuse further work.
        fprintf(stderr, "capnp-lean: event loop failed: %s\n", kj::str(*e).cStr());
        std::lock_guard<std::mutex> lock(core->mutex);
        core->stopping = true;
        core->stopped = true;
        core->stoppedCv.notify_all();
      }
    });
    startedFuture.wait();
    *out = new capnp_lean_runtime{core};
    return CAPNP_LEAN_OK;
  });
}

capnp_lean_status capnp_lean_runtime_shutdown(capnp_lean_runtime* rt, capnp_lean_error** err) {
  return guarded(err, [&]() -> capnp_lean_status {
    if (rt == nullptr) return nullArgument(err, "rt");
    Core* core = rt->core;
    if (core->onLoopThread()) {
      return fail(err, CAPNP_LEAN_ERR_ON_LOOP_THREAD, CAPNP_LEAN_ERROR_FAILED,
                  "the capnp-lean runtime cannot be shut down from its own loop thread "
                  "(from a callback); do it from another thread");
    }
    Task stop = [](LoopState* loop) { loop->stop->fulfill(); };
    {
      // Queue the stop task and refuse new work in one step, so nothing slips in after it.
      std::lock_guard<std::mutex> lock(core->mutex);
      if (!core->stopping) {
        core->queue.push_back(kj::mv(stop));
        core->stopping = true;
        core->wakePending = true;
      }
    }
    uint64_t one = 1;
    ssize_t n = ::write(core->eventFd, &one, sizeof(one));
    (void)n;
    std::lock_guard<std::mutex> joinLock(core->joinMutex);
    if (core->thread.joinable()) core->thread.join();
    return CAPNP_LEAN_OK;
  });
}

capnp_lean_status capnp_lean_runtime_destroy(capnp_lean_runtime* rt, capnp_lean_error** err) {
  auto status = capnp_lean_runtime_shutdown(rt, err);
  if (status != CAPNP_LEAN_OK) return status;
  Core* core = rt->core;
  delete rt;
  core->unref();
  return CAPNP_LEAN_OK;
}

capnp_lean_status capnp_lean_runtime_post(capnp_lean_runtime* rt, capnp_lean_task_fn fn,
                                          void* user_data, capnp_lean_error** err) {
  return guarded(err, [&]() -> capnp_lean_status {
    if (rt == nullptr) return nullArgument(err, "rt");
    if (fn == nullptr) return nullArgument(err, "fn");
    if (!rt->core->post([fn, user_data](LoopState*) { fn(user_data); })) return shutDownError(err);
    return CAPNP_LEAN_OK;
  });
}

capnp_lean_status capnp_lean_runtime_post_after(capnp_lean_runtime* rt, uint64_t delay_us,
                                                capnp_lean_task_fn fn, void* user_data,
                                                capnp_lean_error** err) {
  return guarded(err, [&]() -> capnp_lean_status {
    if (rt == nullptr) return nullArgument(err, "rt");
    if (fn == nullptr) return nullArgument(err, "fn");
    Task arm = [fn, user_data, delay_us](LoopState* loop) {
      // Fires exactly once: when the timer expires, or when teardown drops the timer.
      auto fire = kj::defer([fn, user_data]() { fn(user_data); });
      loop->tasks.add(loop->io.provider->getTimer()
                          .afterDelay(delay_us * kj::MICROSECONDS)
                          .attach(kj::mv(fire)));
    };
    if (!rt->core->post(arm)) return shutDownError(err);
    return CAPNP_LEAN_OK;
  });
}

int capnp_lean_runtime_on_loop_thread(const capnp_lean_runtime* rt) {
  return rt != nullptr && rt->core->onLoopThread() ? 1 : 0;
}

capnp_lean_status capnp_lean_runtime_stats_wait(capnp_lean_runtime* rt, capnp_lean_stats* out,
                                                capnp_lean_error** err) {
  return guarded(err, [&]() -> capnp_lean_status {
    if (rt == nullptr || out == nullptr) {
      return fail(err, CAPNP_LEAN_ERR_INVALID_ARGUMENT, CAPNP_LEAN_ERROR_FAILED,
                  "rt and out must not be NULL");
    }
    if (rt->core->onLoopThread()) {
      return fail(err, CAPNP_LEAN_ERR_ON_LOOP_THREAD, CAPNP_LEAN_ERROR_FAILED,
                  "capnp_lean_runtime_stats_wait would block the loop thread it waits for");
    }
    capnp_lean_stats stats{};
    bool ran = rt->core->runAndWait([&stats](LoopState* loop) {
      stats.connections = loop->connections.size();
      stats.caps = loop->caps.size();
      stats.calls = loop->calls.size();
      stats.server_calls = loop->serverCalls.size();
      stats.host_servers = loop->hostServers;
      stats.resolvers = loop->resolvers.size();
    });
    if (!ran) {
      return fail(err, CAPNP_LEAN_ERR_SHUT_DOWN, CAPNP_LEAN_ERROR_DISCONNECTED,
                  "the capnp-lean runtime was shut down");
    }
    *out = stats;
    return CAPNP_LEAN_OK;
  });
}

}  // extern "C"
