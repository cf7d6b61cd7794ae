// A capnp::MessageStream that batches I/O: reads fill a large buffer so one read() yields every
// message that has arrived, and every message written during one event-loop turn leaves in a
// single write. Stock KJ 0.9.2 (AsyncIoMessageStream) makes two reads and one writev per
// message; the wire format is the same standard stream framing.
//
// A large message is not copied out of the read buffer: it is read straight into its own array.
#pragma once

#include <capnp/serialize-async.h>
#include <kj/async-io.h>
#include <kj/vector.h>

namespace capnp_lean {

class CoalescingMessageStream final : public capnp::MessageStream,
                                      private kj::TaskSet::ErrorHandler {
 public:
  explicit CoalescingMessageStream(kj::AsyncIoStream& stream);
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
  // The segment table at the front of the read buffer.
  struct Frame {
    uint32_t segmentCount;
    size_t tableBytes;
    uint64_t totalWords;
    size_t bytes() const { return tableBytes + totalWords * sizeof(capnp::word); }
  };

  kj::AsyncIoStream& stream;

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

  // The validated segment table of the next message, once that table has arrived.
  kj::Maybe<Frame> bufferedFrame(const capnp::ReaderOptions& options);
  capnp::MessageReaderAndFds copyOut(const Frame& frame, const capnp::ReaderOptions& options);
  kj::Promise<kj::Maybe<capnp::MessageReaderAndFds>> readLarge(
      const Frame& frame, const capnp::ReaderOptions& options);
  void appendMessage(kj::ArrayPtr<const kj::ArrayPtr<const capnp::word>> segments);
  kj::Promise<void> afterAppend();
  void flush();
  void wrote();
  kj::Promise<void> drained();
  void taskFailed(kj::Exception&& exception) override;
};

}  // namespace capnp_lean
