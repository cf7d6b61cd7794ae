// Deadlines for peers that do not progress, for both transports: a connection whose first
// message never arrives (handshake timeout, accepted connections only: a server speaks only when
// spoken to, so a client waiting for it is not stuck) and a message whose first bytes arrived but
// whose rest does not (stall timeout, which also ends one-byte-a-second dribblers).
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

  void fail(std::string reason);
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
    return inner->write(buffer, size);
  }
  kj::Promise<void> write(kj::ArrayPtr<const kj::ArrayPtr<const kj::byte>> pieces) override {
    return inner->write(pieces);
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

  kj::Promise<size_t> readSome(kj::byte* buffer, size_t minBytes, size_t maxBytes, size_t done);
};

// The transport, with message boundaries reported to the watch and its deadlines enforced on
// every read. `bufferedInput` says whether the transport holds bytes it has not yet returned.
class WatchedMessageStream final : public capnp::MessageStream {
 public:
  WatchedMessageStream(capnp::MessageStream& inner, ProgressWatch& watch,
                       kj::Function<bool()> bufferedInput)
      : inner(inner), watch(watch), bufferedInput(kj::mv(bufferedInput)) {}

  kj::Promise<kj::Maybe<capnp::MessageReaderAndFds>> tryReadMessage(
      kj::ArrayPtr<kj::AutoCloseFd> fdSpace, capnp::ReaderOptions options,
      kj::ArrayPtr<capnp::word> scratchSpace) override;
  kj::Promise<void> writeMessage(kj::ArrayPtr<const int> fds,
                                 kj::ArrayPtr<const kj::ArrayPtr<const capnp::word>> segments) override {
    return inner.writeMessage(fds, segments);
  }
  kj::Promise<void> writeMessages(
      kj::ArrayPtr<kj::ArrayPtr<const kj::ArrayPtr<const capnp::word>>> messages) override {
    return inner.writeMessages(messages);
  }
  kj::Maybe<int> getSendBufferSize() override { return inner.getSendBufferSize(); }
  kj::Promise<void> end() override { return inner.end(); }

 private:
  capnp::MessageStream& inner;
  ProgressWatch& watch;
  kj::Function<bool()> bufferedInput;
};

}  // namespace capnp_lean
