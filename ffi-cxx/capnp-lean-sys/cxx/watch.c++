// ProgressWatch, ProgressStream, WatchedMessageStream: see watch.h.

#include "watch.h"

namespace capnp_lean {
namespace {

std::string millis(kj::Duration d) { return std::to_string(d / kj::MILLISECONDS) + " ms"; }

}  // namespace

ProgressWatch::ProgressWatch(kj::Timer& timer, kj::Duration handshake, kj::Duration stall)
    : timer(timer), stall(stall) {
  if (handshake > 0 * kj::SECONDS) {
    handshakeDeadline = timer.afterDelay(handshake)
        .then([this, handshake]() { fail("no first message within " + millis(handshake)); })
        .eagerlyEvaluate(nullptr);
  }
}

void ProgressWatch::fail(std::string reason) {
  if (!failer->isWaiting()) return;
  failReason = reason;
  failer->reject(kj::Exception(kj::Exception::Type::DISCONNECTED, __FILE__, __LINE__,
                               kj::str("the peer did not progress: ", failReason.c_str())));
}

void ProgressWatch::bytesArrived() {
  if (partial) return;
  partial = true;
  partialSince = timer.now();
  if (reading) armStall(partialSince + stall);
}

void ProgressWatch::readStarted() {
  reading = true;
  readingSince = timer.now();
  if (partial) armStall(kj::max(partialSince, readingSince) + stall);
}

void ProgressWatch::messageCompleted(bool moreBuffered) {
  handshakeDeadline = nullptr;  // cancels it: the peer speaks the protocol
  reading = false;
  partial = moreBuffered;
  if (moreBuffered) partialSince = timer.now();
}

void ProgressWatch::armStall(kj::TimePoint at) {
  if (stall == 0 * kj::SECONDS || stallArmed) return;
  stallArmed = true;
  timers.add(timer.atTime(at).then([this]() {
    stallArmed = false;
    stallCheck();
  }));
}

void ProgressWatch::stallCheck() {
  if (!reading || !partial) return;  // re-armed when both hold again
  auto since = kj::max(partialSince, readingSince);
  if (timer.now() - since >= stall) {
    fail("a message stalled: no complete message within " + millis(stall) + " of its first bytes");
  } else {
    armStall(since + stall);
  }
}

kj::Promise<size_t> ProgressStream::tryRead(void* buffer, size_t minBytes, size_t maxBytes) {
  return readSome(static_cast<kj::byte*>(buffer), minBytes, maxBytes, 0);
}

kj::Promise<size_t> ProgressStream::readSome(kj::byte* buffer, size_t minBytes, size_t maxBytes,
                                             size_t done) {
  // One byte at a time is enough to wake us, so the watch sees the first byte of a message even
  // when the transport asks for more (KJ's stock stream asks for the 8-byte segment table).
  return inner->tryRead(buffer + done, 1, maxBytes - done)
      .then([this, buffer, minBytes, maxBytes, done](size_t n) -> kj::Promise<size_t> {
        if (n == 0) return done;  // end of stream
        watch.bytesArrived();
        if (done + n >= minBytes) return done + n;
        return readSome(buffer, minBytes, maxBytes, done + n);
      });
}

kj::Promise<void> WatchedMessageStream::writeMessage(
    kj::ArrayPtr<const int> fds, kj::ArrayPtr<const kj::ArrayPtr<const capnp::word>> segments) {
  noteSending();
  if (!hookWrites) return inner.writeMessage(fds, segments);
  return inner.writeMessage(fds, segments).then([this]() { wroteSome(); });
}

kj::Promise<void> WatchedMessageStream::writeMessages(
    kj::ArrayPtr<kj::ArrayPtr<const kj::ArrayPtr<const capnp::word>>> messages) {
  noteSending();
  if (!hookWrites) return inner.writeMessages(messages);
  return inner.writeMessages(messages).then([this]() { wroteSome(); });
}

void WatchedMessageStream::wroteSome() {
  lastWrite = watch.clock().now();
  // Only while a read is held back: otherwise writes cost nothing extra. Checked in a later
  // turn, once KJ's network has taken the written message off its own queue.
  if (drainWaiter.get() == nullptr || checkScheduled) return;
  checkScheduled = true;
  tasks.add(kj::evalLater([this]() {
    checkScheduled = false;
    checkDrained();
  }));
}

void WatchedMessageStream::checkDrained() {
  if (drainWaiter.get() == nullptr || queuedBytes() > bound.limit / 2) return;
  stuckDeadline = nullptr;
  auto waiter = kj::mv(drainWaiter);
  waiter->fulfill();
}

void WatchedMessageStream::noteSending() {
  if (writeWatchArmed || bound.limit == 0 || bound.stuckTimeout == 0 * kj::SECONDS) return;
  lastWrite = watch.clock().now();  // the queue was empty: nothing was stuck before now
  armWriteWatch(lastWrite + bound.stuckTimeout);
}

void WatchedMessageStream::armWriteWatch(kj::TimePoint at) {
  writeWatchArmed = true;
  tasks.add(watch.clock().atTime(at).then([this]() {
    writeWatchArmed = false;
    writeWatchCheck();
  }));
}

void WatchedMessageStream::writeWatchCheck() {
  auto queued = queuedBytes();
  if (queued == 0) return;  // all written: the next message re-arms
  auto now = watch.clock().now();
  if (now - lastWrite < bound.stuckTimeout) {
    armWriteWatch(lastWrite + bound.stuckTimeout);
  } else if (queued > bound.limit) {
    watch.fail("the peer did not read what it was sent: " + std::to_string(queued) +
               " bytes queued for over " + millis(bound.stuckTimeout));
  } else {
    armWriteWatch(now + bound.stuckTimeout);  // stuck, but within the bound: look again later
  }
}

kj::Promise<void> WatchedMessageStream::drained() {
  auto paf = kj::newPromiseAndFulfiller<void>();
  drainWaiter = kj::mv(paf.fulfiller);
  if (bound.stuckTimeout > 0 * kj::SECONDS) {
    auto queued = queuedBytes();
    stuckDeadline = watch.clock().afterDelay(bound.stuckTimeout)
        .then([this, queued]() {
          watch.fail("the peer did not read what it was sent: " + std::to_string(queued) +
                     " bytes queued for over " + millis(bound.stuckTimeout));
        })
        .eagerlyEvaluate(nullptr);
  }
  return kj::mv(paf.promise);
}

kj::Promise<kj::Maybe<capnp::MessageReaderAndFds>> WatchedMessageStream::tryReadMessage(
    kj::ArrayPtr<kj::AutoCloseFd> fdSpace, capnp::ReaderOptions options,
    kj::ArrayPtr<capnp::word> scratchSpace) {
  if (++readsSinceYield >= READS_BEFORE_YIELD) {
    // Fairness: KJ runs a ready continuation before anything queued earlier, so a peer whose
    // messages are already buffered would be served back to back while every other connection
    // waits (a small-call flood starved a well-behaved client for 5 s). Going to the back of
    // the queue now and then lets the others in; the loop polls for their I/O meanwhile (see
    // BUSY_POLL_EVENTS in runtime.c++).
    readsSinceYield = 0;
    return kj::evalLater([this, fdSpace, options, scratchSpace]() {
      return tryReadMessage(fdSpace, options, scratchSpace);
    });
  }
  if (bound.limit > 0 && queuedBytes() > bound.limit) {
    // Backpressure: read nothing more from this peer until it has read what it was sent.
    return drained()
        .exclusiveJoin(watch.failure())
        .then([this, fdSpace, options, scratchSpace]() {
          return tryReadMessage(fdSpace, options, scratchSpace);
        });
  }
  watch.readStarted();
  return inner.tryReadMessage(fdSpace, options, scratchSpace)
      .then([this](kj::Maybe<capnp::MessageReaderAndFds>&& message) {
        watch.messageCompleted(bufferedInput());
        return kj::mv(message);
      })
      .exclusiveJoin(watch.failure().then([]() -> kj::Maybe<capnp::MessageReaderAndFds> {
        KJ_UNREACHABLE;  // failure() only rejects
      }));
}

}  // namespace capnp_lean
