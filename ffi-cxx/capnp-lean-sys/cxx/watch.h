// Deadlines for peers that do not progress, for both transports: a connection whose first
// message never arrives (handshake timeout, accepted connections only: a server speaks only when
// spoken to, so a client waiting for it is not stuck) and a message whose first bytes arrived but
// whose rest does not (stall timeout, which also ends one-byte-a-second dribblers); and the
// send-queue bound (SendQueueBound), which stops reading from a peer that does not read.
//
// Bytes are seen by ProgressStream, wrapped around the socket; whole messages by
// WatchedMessageStream, wrapped around the transport. A stall counts only while the transport is
// waiting to read: a connection paused by our own flow control is not the peer's fault.
// The timer is armed when a connection goes from idle to partial, and re-armed lazily when it
// fires early, so a busy connection costs two clock reads per message, not a timer each.
#pragma once

#include <capnp/serialize-async.h>
#include <kj/async-io.h>
#include <kj/timer.h>

#include <string>

namespace capnp_lean {

// The longest work deferred "until the loop is idle" waits when the loop never is.
constexpr auto IDLE_WAIT_LIMIT = 1 * kj::MILLISECONDS;

// Resolves once the loop has nothing else to run (kj::evalLast), so that everything queued
// meanwhile can be handled together (batched writes, batched completions), or after
// IDLE_WAIT_LIMIT, whichever comes first. evalLast alone waits for an empty queue, and a loop
// kept busy by another peer may never have one (a small-call flood held another connection's
// answers for over 2 s); the timer is seen when the loop polls for I/O while busy (see
// BUSY_POLL_EVENTS in runtime.c++). kj::evalLater instead would not batch: about one write per
// message.
inline kj::Promise<void> whenIdle(kj::Timer& timer) {
  return kj::evalLast([]() {}).exclusiveJoin(timer.afterDelay(IDLE_WAIT_LIMIT));
}

class ProgressWatch final : private kj::TaskSet::ErrorHandler {
 public:
  // A zero duration turns that deadline off.
  ProgressWatch(kj::Timer& timer, kj::Duration handshake, kj::Duration stall);

  void bytesArrived();
  void readStarted();
  // `moreBuffered`: bytes of the next message are already in the transport's buffer.
  void messageCompleted(bool moreBuffered);
  // Rejects (DISCONNECTED, with the reason) once a deadline passes; never resolves otherwise.
  kj::Promise<void> failure() { return failed.addBranch(); }
  // Why the connection was ended, if a deadline ended it.
  const std::string& reason() const { return failReason; }
  // Ends the connection now (the first reason wins).
  void fail(std::string reason);
  kj::Timer& clock() { return timer; }

 private:
  kj::Timer& timer;
  kj::Duration stall;
  bool reading = false;
  bool partial = false;
  kj::TimePoint partialSince = kj::origin<kj::TimePoint>();
  kj::TimePoint readingSince = kj::origin<kj::TimePoint>();
  std::string failReason;
  kj::PromiseFulfillerPair<void> failurePair = kj::newPromiseAndFulfiller<void>();
  kj::Own<kj::PromiseFulfiller<void>> failer = kj::mv(failurePair.fulfiller);
  kj::ForkedPromise<void> failed = failurePair.promise.fork();
  kj::Maybe<kj::Promise<void>> handshakeDeadline;
  bool stallArmed = false;
  kj::TaskSet timers{*this};  // the armed stall deadline; last, so it is cancelled first

  void armStall(kj::TimePoint at);
  void stallCheck();
  void taskFailed(kj::Exception&& exception) override { (void)exception; }
};

// The socket, with every read reported to the watch.
class ProgressStream final : public kj::AsyncIoStream {
 public:
  ProgressStream(kj::Own<kj::AsyncIoStream> inner, ProgressWatch& watch)
      : inner(kj::mv(inner)), watch(watch) {}

  kj::Promise<size_t> tryRead(void* buffer, size_t minBytes, size_t maxBytes) override;
  kj::Promise<void> write(const void* buffer, size_t size) override {
    return writes.wrap(inner->write(buffer, size));
  }
  kj::Promise<void> write(kj::ArrayPtr<const kj::ArrayPtr<const kj::byte>> pieces) override {
    return writes.wrap(inner->write(pieces));
  }
  // Fails the write in flight (DISCONNECTED, `why`): the transport then fails its own queue,
  // and KJ's chain of queued messages unwinds one node per event instead of recursing through
  // the whole chain when it is destroyed (see capnp_lean_connection::close).
  void cutWrites(const char* why) {
    writes.cancel(kj::Exception(kj::Exception::Type::DISCONNECTED, __FILE__, __LINE__, kj::heapString(why)));
  }
  kj::Promise<void> whenWriteDisconnected() override { return inner->whenWriteDisconnected(); }
  void shutdownWrite() override { inner->shutdownWrite(); }
  void abortRead() override { inner->abortRead(); }
  void getsockopt(int level, int option, void* value, kj::uint* length) override {
    inner->getsockopt(level, option, value, length);
  }
  void setsockopt(int level, int option, const void* value, kj::uint length) override {
    inner->setsockopt(level, option, value, length);
  }
  void getsockname(struct sockaddr* addr, kj::uint* length) override { inner->getsockname(addr, length); }
  void getpeername(struct sockaddr* addr, kj::uint* length) override { inner->getpeername(addr, length); }

 private:
  kj::Own<kj::AsyncIoStream> inner;
  ProgressWatch& watch;
  kj::Canceler writes;

  kj::Promise<size_t> readSome(kj::byte* buffer, size_t minBytes, size_t maxBytes, size_t done);
};

// The bound on what a connection has queued for its peer and not yet written: above `limit`
// bytes the connection stops reading (so a peer that sends calls but never reads the answers
// stops being served) until the queue is back under half the limit; a queue that stays above
// the limit for `stuckTimeout` ends the connection. A zero limit or timeout turns that part off.
// The timeout is watched from both sides: a read held back by the bound (the server role), and
// writes that make no progress while more than `limit` bytes wait (the client role, whose read
// is already waiting on a peer that never speaks, so the read side never looks at the queue).
struct SendQueueBound {
  size_t limit = 0;
  kj::Duration stuckTimeout = 0 * kj::SECONDS;
};

// The transport, with message boundaries reported to the watch, its deadlines enforced on every
// read, and the send-queue bound applied before each read. `bufferedInput` says whether the
// transport holds bytes it has not yet returned; `queuedBytes` (set once the network exists)
// how many bytes wait to be written, in the network's queue and the transport's.
class WatchedMessageStream final : public capnp::MessageStream,
                                   private kj::TaskSet::ErrorHandler {
 public:
  WatchedMessageStream(capnp::MessageStream& inner, ProgressWatch& watch,
                       kj::Function<bool()> bufferedInput, SendQueueBound bound)
      : inner(inner), watch(watch), bufferedInput(kj::mv(bufferedInput)), bound(bound) {}

  void setQueueProbe(kj::Function<size_t()> probe) { queuedBytes = kj::mv(probe); }
  // The transport calls wroteSome() itself after each socket write (the coalescing stream, whose
  // writeMessage() promises resolve before the bytes leave), so writes need no hook here.
  void writesReportedByTransport() { hookWrites = false; }
  // Something was written to the socket: a reader waiting for the queue to drain re-checks.
  void wroteSome();

  kj::Promise<kj::Maybe<capnp::MessageReaderAndFds>> tryReadMessage(
      kj::ArrayPtr<kj::AutoCloseFd> fdSpace, capnp::ReaderOptions options,
      kj::ArrayPtr<capnp::word> scratchSpace) override;
  kj::Promise<void> writeMessage(kj::ArrayPtr<const int> fds,
                                 kj::ArrayPtr<const kj::ArrayPtr<const capnp::word>> segments) override;
  kj::Promise<void> writeMessages(
      kj::ArrayPtr<kj::ArrayPtr<const kj::ArrayPtr<const capnp::word>>> messages) override;
  kj::Maybe<int> getSendBufferSize() override { return inner.getSendBufferSize(); }
  kj::Promise<void> end() override { return inner.end(); }

 private:
  capnp::MessageStream& inner;
  ProgressWatch& watch;
  kj::Function<bool()> bufferedInput;
  SendQueueBound bound;
  bool hookWrites = true;  // the stock stream: a written message is a resolved writeMessage()
  kj::Function<size_t()> queuedBytes = []() -> size_t { return 0; };
  kj::Own<kj::PromiseFulfiller<void>> drainWaiter;  // a read held back by the bound
  bool checkScheduled = false;
  static constexpr uint32_t READS_BEFORE_YIELD = 32;
  uint32_t readsSinceYield = 0;
  kj::Maybe<kj::Promise<void>> stuckDeadline;
  kj::TimePoint lastWrite = kj::origin<kj::TimePoint>();  // when bytes last left
  bool writeWatchArmed = false;
  kj::TaskSet tasks{*this};  // last: cancelled first

  kj::Promise<void> drained();
  void checkDrained();
  // A message was handed to the transport: watch the writes, unless already watching. Costs
  // nothing more per message; the timer fires at most once per timeout while bytes wait.
  void noteSending();
  void armWriteWatch(kj::TimePoint at);
  void writeWatchCheck();
  void taskFailed(kj::Exception&& exception) override { (void)exception; }
};

}  // namespace capnp_lean
