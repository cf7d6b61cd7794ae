// Host-implemented capabilities (dispatch callback + server call contexts answerable from any
// thread) and promise capabilities (create, fulfil, reject).

#include "core.h"

namespace capnp_lean {
namespace {

// A capability whose calls go to the host's dispatch callback. Lives on the loop thread; KJ
// destroys it when the last reference goes, which tells the host through `onDrop`.
class HostServer final : public capnp::Capability::Server {
 public:
  HostServer(Core* core, capnp_lean_dispatch_fn dispatch, capnp_lean_cancel_fn onCancel,
             capnp_lean_server_drop_fn onDrop, void* userData)
      : core(core), dispatch(dispatch), onCancel(onCancel), onDrop(onDrop), userData(userData) {
    core->ref();
    core->loop->hostServers++;
  }

  ~HostServer() noexcept(false) {
    if (core->loop != nullptr) core->loop->hostServers--;
    if (onDrop != nullptr) onDrop(userData);
    core->unref();
  }

  DispatchCallResult dispatchCall(
      uint64_t interfaceId, uint16_t methodId,
      capnp::CallContext<capnp::AnyPointer, capnp::AnyPointer> context) override {
    // Params first: reading them can throw (limits), and then nothing must be registered yet.
    auto owned = std::make_unique<capnp_lean_server_call>();
    owned->params.takeFrom(context.getParams(), core->received.get());
    context.releaseParams();
    auto* call = owned.release();
    call->core = core;
    core->ref();
    call->status = std::make_shared<capnp_lean_server_call::Status>();
    // Without this, KJ would keep an unanswered call alive after the caller's Finish.
    context.allowCancellation();
    auto paf = kj::newPromiseAndFulfiller<void>();
    call->fulfiller = kj::mv(paf.fulfiller);
    call->context = kj::mv(context);
    core->loop->serverCalls.insert(call);
    // The host may answer inline; its answer is queued, so `call` stays valid here.
    call->dispatching = true;
    dispatch(userData, interfaceId, methodId, call);
    call->dispatching = false;
    // A `-> stream` method (the host said so during dispatch): KJ's LocalClient then holds later
    // calls to this capability until this one is answered, and after a failure answers every
    // later call with the same error.
    bool streaming = call->streaming;
    // Runs when KJ drops the call: after the answer, or early when the caller cancels. KJ keeps
    // this server alive until then (the call holds a reference to its client).
    auto status = call->status;
    auto cancelled = kj::defer([status, call, onCancel = onCancel, userData = userData]() {
      if (status->answered) return;
      status->cancelled.store(true);
      if (onCancel != nullptr) onCancel(userData, call);
    });
    // Answered inside the callback with nothing queued ahead (a server that did not need to
    // wait): apply the answer now, so KJ gets a promise that is already fulfilled and sends the
    // Return in this turn. Work posted during the rest of the callback (e.g. releasing the
    // handles the results borrowed) was posted after the answer, so it still runs after it.
    // This frees `call`; nothing below touches it.
    KJ_IF_MAYBE(answer, call->answerAfterDispatch) {
      Task now = kj::mv(*answer);
      call->answerAfterDispatch = nullptr;
      now(core->loop);
    }
    return {paf.promise.attach(kj::mv(cancelled)), streaming};
  }

 private:
  Core* core;
  capnp_lean_dispatch_fn dispatch;
  capnp_lean_cancel_fn onCancel;
  capnp_lean_server_drop_fn onDrop;
  void* userData;
};

void destroyServerCall(LoopState* loop, capnp_lean_server_call* call) {
  if (loop != nullptr) loop->serverCalls.erase(call);
  Core* core = call->core;
  call->context = nullptr;
  call->fulfiller = nullptr;
  call->params.dropCaps();
  delete call;
  core->unref();
}

// The fulfiller of a call the host may still answer, or null when the caller went away.
kj::PromiseFulfiller<void>* liveFulfiller(capnp_lean_server_call* call) {
  KJ_IF_MAYBE(f, call->fulfiller) {
    if ((*f)->isWaiting()) return f->get();
  }
  return nullptr;
}

// Applies the answer and consumes the context. `answer` runs on the loop while the caller still
// waits; it returns the exception to answer with, or null for success. On the loop thread the
// answer is applied at once (right after the dispatch callback when given inside it) unless
// earlier work is queued; from other threads, and behind queued work, it is posted (FIFO).
capnp_lean_status answer(capnp_lean_server_call* call, capnp_lean_error** err,
                         kj::Function<kj::Maybe<kj::Exception>(capnp_lean_server_call*)> answer) {
  bool cancelled = call->status->cancelled.load();
  Core* core = call->core;
  Task apply = [call, answer = kj::mv(answer)](LoopState* loop) mutable {
    call->status->answered = true;
    if (auto* fulfiller = liveFulfiller(call)) {
      KJ_IF_MAYBE(e, answer(call)) {
        fulfiller->reject(kj::mv(*e));
      } else {
        fulfiller->fulfill();
      }
    }
    destroyServerCall(loop, call);
  };
  // `dispatching` is loop-thread state: check the thread first.
  if (core->onLoopThread() && call->dispatching && core->canRunNow()) {
    call->answerAfterDispatch = kj::mv(apply);  // first in line: applied when dispatch returns
  } else if (!core->runNowIfIdle(apply)) {
    core->postOrRunStopped(kj::mv(apply));
  }
  if (cancelled) {
    return fail(err, CAPNP_LEAN_ERR_ALREADY_ANSWERED, CAPNP_LEAN_ERROR_FAILED,
                "the caller cancelled this call; the answer was discarded");
  }
  return CAPNP_LEAN_OK;
}

// Answers with `results`; `loan` (active or not) ends once they are written.
capnp_lean_status returnResults(capnp_lean_server_call* call, const capnp_lean_message* results,
                                Loan loan, capnp_lean_error** err) {
  if (call == nullptr) return nullArgument(err, "call");
  OutgoingMessage message;
  if (!OutgoingMessage::take(results, kj::mv(loan), message, err)) {
    // Bad results must not leave the caller waiting forever: it gets the same error.
    std::string reason = "the server produced invalid results";
    answer(call, nullptr, [reason](capnp_lean_server_call*) -> kj::Maybe<kj::Exception> {
      return exceptionFrom(CAPNP_LEAN_ERROR_FAILED, reason);
    });
    return CAPNP_LEAN_ERR_INVALID_ARGUMENT;
  }
  return answer(call, err, [message = kj::mv(message)](capnp_lean_server_call* c) mutable
                    -> kj::Maybe<kj::Exception> {
    kj::Maybe<kj::Exception> failure;
    KJ_IF_MAYBE(context, c->context) {
      failure = kj::runCatchingExceptions([&]() {
        message.writeTo(context->getResults(capnp::MessageSize{
            message.totalWords + 4, static_cast<uint>(message.caps.size())}));
      });
    }
    return failure;
  });
}

void destroyResolver(LoopState* loop, capnp_lean_resolver* resolver) {
  if (loop != nullptr) loop->resolvers.erase(resolver);
  Core* core = resolver->core;
  resolver->fulfiller = nullptr;  // unresolved: KJ rejects the promise as abandoned
  delete resolver;
  core->unref();
}

}  // namespace
}  // namespace capnp_lean

using namespace capnp_lean;

extern "C" {

capnp_lean_status capnp_lean_server_new(capnp_lean_runtime* rt, capnp_lean_dispatch_fn dispatch,
                                        capnp_lean_cancel_fn on_cancel,
                                        capnp_lean_server_drop_fn on_drop, void* user_data,
                                        capnp_lean_cap** out, capnp_lean_error** err) {
  return guarded(err, [&]() -> capnp_lean_status {
    if (rt == nullptr) return nullArgument(err, "rt");
    if (dispatch == nullptr) return nullArgument(err, "dispatch");
    Core* core = rt->core;
    return newCap(core, out, err, [core, dispatch, on_cancel, on_drop, user_data](LoopState&) {
      return capnp::ClientHook::from(capnp::Capability::Client(
          kj::heap<HostServer>(core, dispatch, on_cancel, on_drop, user_data)));
    });
  });
}

capnp_lean_status capnp_lean_server_call_params(capnp_lean_server_call* call,
                                                capnp_lean_message_view* out,
                                                capnp_lean_error** err) {
  return guarded(err, [&]() -> capnp_lean_status {
    if (call == nullptr) return nullArgument(err, "call");
    if (out == nullptr) return nullArgument(err, "out");
    *out = call->params.view();
    return CAPNP_LEAN_OK;
  });
}

capnp_lean_status capnp_lean_server_call_param_cap(capnp_lean_server_call* call, uint32_t index,
                                                   capnp_lean_cap** out, capnp_lean_error** err) {
  return guarded(err, [&]() -> capnp_lean_status {
    if (call == nullptr) return nullArgument(err, "call");
    if (index >= call->params.capCount) {
      return fail(err, CAPNP_LEAN_ERR_INVALID_ARGUMENT, CAPNP_LEAN_ERROR_FAILED,
                  "capability index " + std::to_string(index) + " is outside the params' table of " +
                      std::to_string(call->params.capCount));
    }
    return newCap(call->core, out, err,
                  [call, index](LoopState&) { return call->params.cap(index); });
  });
}

capnp_lean_status capnp_lean_server_call_set_streaming(capnp_lean_server_call* call,
                                                       capnp_lean_error** err) {
  return guarded(err, [&]() -> capnp_lean_status {
    if (call == nullptr) return nullArgument(err, "call");
    // `dispatching` is loop-thread state: check the thread first.
    if (!call->core->onLoopThread() || !call->dispatching) {
      return fail(err, CAPNP_LEAN_ERR_INVALID_ARGUMENT, CAPNP_LEAN_ERROR_FAILED,
                  "capnp_lean_server_call_set_streaming must be called inside the dispatch "
                  "callback that received the call");
    }
    call->streaming = true;
    return CAPNP_LEAN_OK;
  });
}

int capnp_lean_server_call_is_cancelled(const capnp_lean_server_call* call) {
  return call != nullptr && call->status->cancelled.load() ? 1 : 0;
}

capnp_lean_status capnp_lean_server_call_return(capnp_lean_server_call* call,
                                                const capnp_lean_message* results,
                                                capnp_lean_error** err) {
  return guarded(err, [&]() { return returnResults(call, results, Loan(), err); });
}

capnp_lean_status capnp_lean_server_call_return_borrowing(capnp_lean_server_call* call,
                                                          const capnp_lean_message* results,
                                                          capnp_lean_release_fn release_results,
                                                          void* results_owner,
                                                          capnp_lean_error** err) {
  // Constructed first, so every path below (errors and exceptions included) ends the loan.
  Loan loan(release_results, results_owner);
  return guarded(err, [&]() -> capnp_lean_status {
    if (release_results == nullptr) return nullArgument(err, "release_results");
    return returnResults(call, results, kj::mv(loan), err);
  });
}

capnp_lean_status capnp_lean_server_call_fail(capnp_lean_server_call* call,
                                              capnp_lean_error_kind kind, const uint8_t* message,
                                              size_t message_len, capnp_lean_error** err) {
  return guarded(err, [&]() -> capnp_lean_status {
    if (call == nullptr) return nullArgument(err, "call");
    std::string text = message == nullptr
        ? std::string() : std::string(reinterpret_cast<const char*>(message), message_len);
    return answer(call, err, [kind, text](capnp_lean_server_call*) -> kj::Maybe<kj::Exception> {
      return exceptionFrom(kind, text);
    });
  });
}

void capnp_lean_server_call_release(capnp_lean_server_call* call) {
  if (call == nullptr) return;
  KJ_IF_MAYBE(e, kj::runCatchingExceptions([&]() {
    answer(call, nullptr, [](capnp_lean_server_call*) -> kj::Maybe<kj::Exception> {
      return exceptionFrom(CAPNP_LEAN_ERROR_FAILED,
                           "the server released the call without answering it");
    });
  })) {
    (void)e;
  }
}

capnp_lean_status capnp_lean_promise_cap_new(capnp_lean_runtime* rt, capnp_lean_cap** cap_out,
                                             capnp_lean_resolver** resolver_out,
                                             capnp_lean_error** err) {
  return guarded(err, [&]() -> capnp_lean_status {
    if (rt == nullptr) return nullArgument(err, "rt");
    if (resolver_out == nullptr) return nullArgument(err, "resolver_out");
    Core* core = rt->core;
    auto* resolver = new capnp_lean_resolver{core, {}};
    core->ref();
    auto status = newCap(core, cap_out, err, [resolver](LoopState& loop) {
      auto paf = kj::newPromiseAndFulfiller<kj::Own<capnp::ClientHook>>();
      resolver->fulfiller = kj::mv(paf.fulfiller);
      loop.resolvers.insert(resolver);
      return capnp::newLocalPromiseClient(kj::mv(paf.promise));
    });
    if (status != CAPNP_LEAN_OK) {
      delete resolver;
      core->unref();
      return status;
    }
    *resolver_out = resolver;
    return CAPNP_LEAN_OK;
  });
}

capnp_lean_status capnp_lean_resolver_fulfill(capnp_lean_resolver* resolver, capnp_lean_cap* cap,
                                              capnp_lean_error** err) {
  return guarded(err, [&]() -> capnp_lean_status {
    if (resolver == nullptr) return nullArgument(err, "resolver");
    if (cap == nullptr) return nullArgument(err, "cap");
    resolver->core->postOrRunStopped([resolver, cap](LoopState* loop) {
      if (loop != nullptr && resolver->fulfiller.get() != nullptr && cap->hook.get() != nullptr) {
        resolver->fulfiller->fulfill(cap->hook->addRef());
      }
      destroyResolver(loop, resolver);
    });
    return CAPNP_LEAN_OK;
  });
}

capnp_lean_status capnp_lean_resolver_reject(capnp_lean_resolver* resolver,
                                             capnp_lean_error_kind kind, const uint8_t* message,
                                             size_t message_len, capnp_lean_error** err) {
  return guarded(err, [&]() -> capnp_lean_status {
    if (resolver == nullptr) return nullArgument(err, "resolver");
    std::string text = message == nullptr
        ? std::string() : std::string(reinterpret_cast<const char*>(message), message_len);
    resolver->core->postOrRunStopped([resolver, kind, text](LoopState* loop) {
      if (loop != nullptr && resolver->fulfiller.get() != nullptr) {
        resolver->fulfiller->reject(exceptionFrom(kind, text));
      }
      destroyResolver(loop, resolver);
    });
    return CAPNP_LEAN_OK;
  });
}

void capnp_lean_resolver_release(capnp_lean_resolver* resolver) {
  if (resolver == nullptr) return;
  KJ_IF_MAYBE(e, kj::runCatchingExceptions([&]() {
    resolver->core->postOrRunStopped(
        [resolver](LoopState* loop) { destroyResolver(loop, resolver); });
  })) {
    (void)e;
  }
}

}  // extern "C"
