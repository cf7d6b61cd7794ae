// Capabilities and outgoing calls: start, complete (callback and blocking wait), results,
// pipelining, cancellation by release.

#include "core.h"

#include <algorithm>

namespace capnp_lean {

capnp_lean_status newCap(Core* core, capnp_lean_cap** out, capnp_lean_error** err,
                         kj::Function<kj::Own<capnp::ClientHook>(LoopState& loop)> make) {
  if (out == nullptr) return nullArgument(err, "out");
  auto* cap = new capnp_lean_cap{core, {}};
  core->ref();
  Task fill = [cap, make = kj::mv(make)](LoopState* loop) mutable {
    loop->caps.insert(cap);
    KJ_IF_MAYBE(e, kj::runCatchingExceptions([&]() { cap->hook = make(*loop); })) {
      cap->hook = capnp::newBrokenCap(kj::mv(*e));
    }
  };
  if (!core->post(fill)) {
    delete cap;
    core->unref();
    return shutDownError(err);
  }
  *out = cap;
  return CAPNP_LEAN_OK;
}

void completeCall(capnp_lean_call* call, const ErrorData* error) {
  if (error != nullptr) {
    call->failed = true;
    call->error = *error;
  }
  call->done.store(true, std::memory_order_release);
  if (call->onDone != nullptr) call->onDone(call->userData, call);
  {
    std::lock_guard<std::mutex> lock(call->mutex);
    call->waitersReleased = true;
  }
  call->doneCv.notify_all();
}

void LoopState::finishLater(capnp_lean_call* call, const ErrorData* error) {
  if (!call->foreign || tearingDown) {
    completeCall(call, error);
    return;
  }
  // The outcome is recorded now (the results are already taken); `done` and the callback wait
  // for the end of the turn. A release before then removes the call from the batch.
  if (error != nullptr) {
    call->failed = true;
    call->error = *error;
  }
  call->finishQueued = true;
  finishing.push_back(call);
  if (finishScheduled) return;
  finishScheduled = true;
  // Once the messages read in this pass have all been handled.
  tasks.add(whenIdle(io.provider->getTimer()).then([this]() { finishQueued(); }));
}

void LoopState::finishQueued() {
  finishScheduled = false;
  auto batch = kj::mv(finishing);
  finishing.clear();
  for (auto* call : batch) {
    call->finishQueued = false;
    completeCall(call, nullptr);  // the error, if any, is already recorded
  }
}

namespace {

// A streaming call (`-> stream`) goes through KJ's RequestHook::sendStreaming: over a connection,
// the RpcClient's flow controller sends it at once and resolves the promise when its window
// admits the next call; once a streaming call on the capability has failed, every later one
// fails with that error. A streaming call has no results and no pipeline.
void sendStreamingCall(capnp_lean_call* call, capnp::Request<capnp::AnyPointer, capnp::AnyPointer>&& request) {
  auto admitted = capnp::RequestHook::from(kj::mv(request))->sendStreaming();
  call->completion = admitted
      .then([call]() { call->core->loop->finishLater(call, nullptr); },
            [call](kj::Exception&& e) {
              auto error = errorFromException(e);
              call->core->loop->finishLater(call, &error);
            })
      .eagerlyEvaluate(nullptr);
}

void sendCall(LoopState& loop, capnp_lean_call* call, capnp_lean_cap* target,
              uint64_t interfaceId, uint16_t methodId, OutgoingMessage& params, bool streaming) {
  auto targetHook = target->hook.get() != nullptr
      ? target->hook->addRef()
      : brokenCap(CAPNP_LEAN_ERROR_DISCONNECTED, "the target capability was shut down");
  capnp::Capability::Client client(kj::mv(targetHook));
  auto request = client.typelessRequest(
      interfaceId, methodId,
      capnp::MessageSize{params.totalWords + 4, static_cast<uint>(params.caps.size())});
  params.writeTo(request);
  if (streaming) {
    sendStreamingCall(call, kj::mv(request));
    return;
  }
  auto remote = request.send();
  kj::Promise<capnp::Response<capnp::AnyPointer>> response = kj::mv(remote);
  call->pipeline = capnp::AnyPointer::Pipeline(kj::mv(remote));
  call->completion = response
      .then([call](capnp::Response<capnp::AnyPointer>&& results) {
        KJ_IF_MAYBE(e, kj::runCatchingExceptions([&]() { call->results.takeFrom(results, call->core->received.get()); })) {
          auto error = errorFromException(*e);
          call->core->loop->finishLater(call, &error);
        } else {
          call->core->loop->finishLater(call, nullptr);
        }
      }, [call](kj::Exception&& e) {
        auto error = errorFromException(e);
        call->core->loop->finishLater(call, &error);
      })
      .eagerlyEvaluate(nullptr);
  (void)loop;
}

// Validates and queues a call; `loan` (active or not) ends once the params are written.
capnp_lean_status startCall(capnp_lean_cap* target, uint64_t interfaceId, uint16_t methodId,
                            const capnp_lean_message* params, Loan loan, bool streaming,
                            capnp_lean_call_done_fn onDone, void* userData, capnp_lean_call** out,
                            capnp_lean_error** err) {
  if (target == nullptr) return nullArgument(err, "target");
  if (out == nullptr) return nullArgument(err, "out");
  OutgoingMessage message;
  if (!OutgoingMessage::take(params, kj::mv(loan), message, err)) {
    return CAPNP_LEAN_ERR_INVALID_ARGUMENT;
  }
  Core* core = target->core;
  auto* call = new capnp_lean_call();
  call->core = core;
  call->onDone = onDone;
  call->userData = userData;
  call->streaming = streaming;
  call->foreign = !core->onLoopThread();
  core->ref();
  Task send = [call, target, interfaceId, methodId, streaming,
               message = kj::mv(message)](LoopState* loop) mutable {
    loop->calls.insert(call);
    KJ_IF_MAYBE(e, kj::runCatchingExceptions([&]() {
      sendCall(*loop, call, target, interfaceId, methodId, message, streaming);
    })) {
      auto error = errorFromException(*e);
      completeCall(call, &error);
    }
  };
  if (!core->post(send)) {
    delete call;
    core->unref();
    return shutDownError(err);
  }
  *out = call;
  return CAPNP_LEAN_OK;
}

}  // namespace
}  // namespace capnp_lean

using namespace capnp_lean;

extern "C" {

capnp_lean_status capnp_lean_cap_clone(capnp_lean_cap* cap, capnp_lean_cap** out,
                                       capnp_lean_error** err) {
  return guarded(err, [&]() -> capnp_lean_status {
    if (cap == nullptr) return nullArgument(err, "cap");
    return newCap(cap->core, out, err, [cap](LoopState&) {
      if (cap->hook.get() == nullptr) {
        return brokenCap(CAPNP_LEAN_ERROR_DISCONNECTED, "the capnp-lean runtime was shut down");
      }
      return cap->hook->addRef();
    });
  });
}

void capnp_lean_cap_release(capnp_lean_cap* cap) {
  if (cap == nullptr) return;
  KJ_IF_MAYBE(e, kj::runCatchingExceptions([&]() {
    cap->core->postOrRunStopped([cap](LoopState* loop) {
      if (loop != nullptr) loop->caps.erase(cap);
      Core* core = cap->core;
      cap->hook = nullptr;  // the last reference going sends Release
      delete cap;
      core->unref();
    });
  })) {
    (void)e;  // only allocation failure can land here; the handle is then leaked, not freed twice
  }
}

capnp_lean_status capnp_lean_cap_new_broken(capnp_lean_runtime* rt, capnp_lean_error_kind kind,
                                            const uint8_t* message, size_t message_len,
                                            capnp_lean_cap** out, capnp_lean_error** err) {
  return guarded(err, [&]() -> capnp_lean_status {
    if (rt == nullptr) return nullArgument(err, "rt");
    if (message == nullptr && message_len > 0) return nullArgument(err, "message");
    std::string text(reinterpret_cast<const char*>(message), message_len);
    return newCap(rt->core, out, err, [kind, text](LoopState&) { return brokenCap(kind, text); });
  });
}

capnp_lean_status capnp_lean_call_start(capnp_lean_cap* target, uint64_t interface_id,
                                        uint16_t method_id, const capnp_lean_message* params,
                                        capnp_lean_call_done_fn on_done, void* user_data,
                                        capnp_lean_call** out, capnp_lean_error** err) {
  return guarded(err, [&]() {
    return startCall(target, interface_id, method_id, params, Loan(), false, on_done, user_data, out,
                     err);
  });
}

capnp_lean_status capnp_lean_call_start_borrowing(
    capnp_lean_cap* target, uint64_t interface_id, uint16_t method_id,
    const capnp_lean_message* params, capnp_lean_release_fn release_params, void* params_owner,
    capnp_lean_call_done_fn on_done, void* user_data, capnp_lean_call** out,
    capnp_lean_error** err) {
  // Constructed first, so every path below (errors and exceptions included) ends the loan.
  Loan loan(release_params, params_owner);
  return guarded(err, [&]() -> capnp_lean_status {
    if (release_params == nullptr) return nullArgument(err, "release_params");
    return startCall(target, interface_id, method_id, params, kj::mv(loan), false, on_done,
                     user_data, out, err);
  });
}

capnp_lean_status capnp_lean_call_start_streaming(capnp_lean_cap* target, uint64_t interface_id,
                                                  uint16_t method_id,
                                                  const capnp_lean_message* params,
                                                  capnp_lean_call_done_fn on_done, void* user_data,
                                                  capnp_lean_call** out, capnp_lean_error** err) {
  return guarded(err, [&]() {
    return startCall(target, interface_id, method_id, params, Loan(), true, on_done, user_data,
                     out, err);
  });
}

capnp_lean_status capnp_lean_call_start_streaming_borrowing(
    capnp_lean_cap* target, uint64_t interface_id, uint16_t method_id,
    const capnp_lean_message* params, capnp_lean_release_fn release_params, void* params_owner,
    capnp_lean_call_done_fn on_done, void* user_data, capnp_lean_call** out,
    capnp_lean_error** err) {
  Loan loan(release_params, params_owner);
  return guarded(err, [&]() -> capnp_lean_status {
    if (release_params == nullptr) return nullArgument(err, "release_params");
    return startCall(target, interface_id, method_id, params, kj::mv(loan), true, on_done,
                     user_data, out, err);
  });
}

int capnp_lean_call_is_done(const capnp_lean_call* call) {
  return call != nullptr && call->done.load(std::memory_order_acquire) ? 1 : 0;
}

capnp_lean_status capnp_lean_call_wait(capnp_lean_call* call, capnp_lean_error** err) {
  return guarded(err, [&]() -> capnp_lean_status {
    if (call == nullptr) return nullArgument(err, "call");
    // Refused on the loop thread even when already done, so the rule never depends on timing.
    if (call->core->onLoopThread()) {
      return fail(err, CAPNP_LEAN_ERR_ON_LOOP_THREAD, CAPNP_LEAN_ERROR_FAILED,
                  "capnp_lean_call_wait called on the runtime's loop thread, where the call can "
                  "never complete; use the completion callback there");
    }
    std::unique_lock<std::mutex> lock(call->mutex);
    call->doneCv.wait(lock, [call]() { return call->waitersReleased; });
    return CAPNP_LEAN_OK;
  });
}

capnp_lean_status capnp_lean_call_results(capnp_lean_call* call, capnp_lean_message_view* out,
                                          capnp_lean_error** err) {
  return guarded(err, [&]() -> capnp_lean_status {
    if (call == nullptr) return nullArgument(err, "call");
    if (out == nullptr) return nullArgument(err, "out");
    if (!call->done.load(std::memory_order_acquire)) {
      return fail(err, CAPNP_LEAN_ERR_NOT_READY, CAPNP_LEAN_ERROR_FAILED,
                  "the call has not completed yet");
    }
    if (call->failed) return failWith(err, call->error);
    *out = call->results.view();
    return CAPNP_LEAN_OK;
  });
}

capnp_lean_status capnp_lean_call_result_cap(capnp_lean_call* call, uint32_t index,
                                             capnp_lean_cap** out, capnp_lean_error** err) {
  return guarded(err, [&]() -> capnp_lean_status {
    if (call == nullptr) return nullArgument(err, "call");
    if (!call->done.load(std::memory_order_acquire)) {
      return fail(err, CAPNP_LEAN_ERR_NOT_READY, CAPNP_LEAN_ERROR_FAILED,
                  "the call has not completed yet");
    }
    if (call->failed) return failWith(err, call->error);
    if (index >= call->results.capCount) {
      return fail(err, CAPNP_LEAN_ERR_INVALID_ARGUMENT, CAPNP_LEAN_ERROR_FAILED,
                  "capability index " + std::to_string(index) + " is outside the results' table of " +
                      std::to_string(call->results.capCount));
    }
    return newCap(call->core, out, err,
                  [call, index](LoopState&) { return call->results.cap(index); });
  });
}

capnp_lean_status capnp_lean_call_pipeline(capnp_lean_call* call, const uint16_t* path,
                                           size_t path_len, capnp_lean_cap** out,
                                           capnp_lean_error** err) {
  return guarded(err, [&]() -> capnp_lean_status {
    if (call == nullptr) return nullArgument(err, "call");
    if (path == nullptr && path_len > 0) return nullArgument(err, "path");
    std::vector<uint16_t> fields(path, path + path_len);
    return newCap(call->core, out, err, [call, fields](LoopState&) -> kj::Own<capnp::ClientHook> {
      KJ_IF_MAYBE(pipeline, call->pipeline) {
        auto target = pipeline->noop();
        for (auto field : fields) target = target.getPointerField(field);
        return target.asCap();
      }
      if (call->failed) return brokenCap(call->error.kind, call->error.message);
      if (call->streaming) {
        return brokenCap(CAPNP_LEAN_ERROR_FAILED, "a streaming call has no results to pipeline on");
      }
      return brokenCap(CAPNP_LEAN_ERROR_FAILED, "the call has no pipeline (it was never sent)");
    });
  });
}

void capnp_lean_call_release(capnp_lean_call* call) {
  if (call == nullptr) return;
  KJ_IF_MAYBE(e, kj::runCatchingExceptions([&]() {
    call->core->postOrRunStopped([call](LoopState* loop) {
      if (loop != nullptr) loop->calls.erase(call);
      if (call->finishQueued && loop != nullptr) {
        auto& batch = loop->finishing;
        batch.erase(std::remove(batch.begin(), batch.end(), call), batch.end());
        call->finishQueued = false;
      }
      Core* core = call->core;
      // Dropping the promise and pipeline of an unfinished call cancels it (Finish).
      call->completion = nullptr;
      call->pipeline = nullptr;
      if (!call->done.load() && call->onDone != nullptr) call->onDone(call->userData, nullptr);
      call->results.dropCaps();
      delete call;
      core->unref();
    });
  })) {
    (void)e;
  }
}

}  // extern "C"
