// A capnp::MessageStream that batches I/O: reads fill a large buffer so one read() yields every
// message that has arrived, and every message written during one event-loop turn leaves in a
// single write. Stock KJ 0.9.2 (AsyncIoMessageStream) makes two reads and one writev per
// message; the wire format is the same standard stream framing.
#pragma once

#include <capnp/serialize-async.h>
#include <kj/async-io.h>
#include <kj/vector.h>

#include <memory>

#include "received.h"

namespace capnp_lean {

class CoalescingMessageStream final : public capnp::MessageStream,
                                      private kj::TaskSet::ErrorHandler {
 public:
  // Received messages are registered with `received` (so they can be viewed in place).
  CoalescingMessageStream(kj::AsyncIoStream& stream, std::shared_ptr<ReceivedMessages> received);
  ~CoalescingMessageStream() noexcept(false);

  kj::Promise<kj::Maybe<capnp::MessageReaderAndFds>> tryReadMessage(
      kj::ArrayPtr<kj::AutoCloseFd> fdSpace, capnp::ReaderOptions options,
      kj::ArrayPtr<capnp::word> scratchSpace) override;
  kj::Promise<void> writeMessage(kj::ArrayPtr<const int> fds,
                                 kj::ArrayPtr<const kj::ArrayPtr<const capnp::word>> segments) override;
  kj::Promise<void> writeMessages(
      kj::ArrayPtr<kj::ArrayPtr<const kj::ArrayPtr<const capnp::word>>> messages) override;
  kj::Maybe<int> getSendBufferSize() override;
  kj::Promise<void> end() override;

 private:
  kj::AsyncIoStream& stream;
  std::shared_ptr<ReceivedMessages> received;

  // Read side: bytes [readStart, readEnd) of readBuffer are received but not yet consumed.
  kj::Array<kj::byte> readBuffer;
  size_t readStart = 0;
  size_t readEnd = 0;

  // Write side: `pending` collects this turn's messages; one write is in flight at a time.
  kj::Vector<kj::byte> pending;
  kj::Array<kj::byte> sending;
  bool flushScheduled = false;
  bool writeInFlight = false;
  kj::Maybe<kj::Exception> writeError;
  kj::Vector<kj::Own<kj::PromiseFulfiller<void>>> drainWaiters;
  // Last, so it is destroyed first: in-flight writes and flushes are cancelled while the
  // buffers they point into still exist.
  kj::TaskSet tasks;

  // Parses one complete message from the buffer, if there is one (throws on a bad frame).
  kj::Maybe<capnp::MessageReaderAndFds> parseBuffered(const capnp::ReaderOptions& options);
  void appendMessage(kj::ArrayPtr<const kj::ArrayPtr<const capnp::word>> segments);
  kj::Promise<void> afterAppend();
  void flush();
  void wrote();
  kj::Promise<void> drained();
  void taskFailed(kj::Exception&& exception) override;
};

}  // namespace capnp_lean
