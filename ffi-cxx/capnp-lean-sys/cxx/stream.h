// A capnp::MessageStream that batches I/O: reads fill a large buffer so one read() yields every
// message that has arrived, and every message written during one event-loop turn leaves in a
// single write. Stock KJ 0.9.2 (AsyncIoMessageStream) makes two reads and one writev per
// message; the wire format is the same standard stream framing.
//
// Large messages are not copied: one is read straight into its own array, and written from
// the caller's segments by a gather write (its writeMessage() promise then resolves only once
// that write has completed, as the segments are borrowed until then). A small message's
// promise resolves at once, which is what lets a turn's messages coalesce.
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
  // `timer` bounds how long a queued message may wait for its batch (see afterAppend).
  CoalescingMessageStream(kj::AsyncIoStream& stream, std::shared_ptr<ReceivedMessages> received,
                          kj::Timer& timer);
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

  // Whether bytes read from the socket are waiting in the buffer (part of a next message).
  bool hasBufferedInput() const { return readEnd > readStart; }
  // Bytes accepted for writing and not yet written (queued, or in the write in flight).
  size_t queuedBytes() const { return pending.size + sending.size; }
  // Called after each completed socket write.
  void onWritten(kj::Function<void()> callback) { written = kj::mv(callback); }

 private:
  // The segment table at the front of the read buffer.
  struct Frame {
    uint32_t segmentCount;
    size_t tableBytes;
    uint64_t totalWords;
    size_t bytes() const { return tableBytes + totalWords * sizeof(capnp::word); }
  };

  // The promise for a write whose segments are borrowed (see BorrowedWrite in stream.c++).
  class BorrowedWrite;

  // One write's worth of output, in wire order.
  struct Batch {
    struct Piece {
      const kj::byte* borrowed;  // null: bytes[offset, offset + size) of this batch
      size_t offset;
      size_t size;
    };
    kj::Vector<kj::byte> bytes;  // small messages, and the segment tables of large ones
    kj::Vector<Piece> pieces;
    kj::Vector<BorrowedWrite*> borrowers;  // settled when this batch has been written
    size_t size = 0;                       // bytes on the wire
    size_t messages = 0;
    void clear();                          // all but the borrowers, which settle() clears
  };

  kj::AsyncIoStream& stream;
  std::shared_ptr<ReceivedMessages> received;

  // Read side: bytes [readStart, readEnd) of readBuffer are received but not yet consumed.
  kj::Array<kj::byte> readBuffer;
  size_t readStart = 0;
  size_t readEnd = 0;
  bool lastWasLarge = false;  // then reads stop at the next segment table

  // Write side: `pending` collects this turn's messages; `sending` is the one write in flight.
  Batch pending;
  Batch sending;
  kj::Vector<kj::ArrayPtr<const kj::byte>> sendingPieces;
  bool flushScheduled = false;
  kj::Timer& timer;
  // Messages taken from the read buffer since the last socket read, and in the pass before:
  // about how many calls the peer keeps in flight, which sizes this side's write batches.
  size_t readThisPass = 0;
  size_t lastPassMessages = 0;
  size_t batchMessages() const;
  bool writeInFlight = false;
  kj::Maybe<kj::Exception> writeError;
  kj::Vector<kj::Own<kj::PromiseFulfiller<void>>> drainWaiters;
  kj::Function<void()> written = []() {};
  kj::Canceler writeCanceler;  // stops a write whose borrowed segments are about to be freed
  // Last, so it is destroyed first: in-flight writes and flushes are cancelled while the
  // buffers they point into still exist.
  kj::TaskSet tasks;

  // The validated segment table of the next message, once that table has arrived.
  kj::Maybe<Frame> bufferedFrame(const capnp::ReaderOptions& options);
  capnp::MessageReaderAndFds copyOut(const Frame& frame, const capnp::ReaderOptions& options);
  kj::Promise<kj::Maybe<capnp::MessageReaderAndFds>> readLarge(
      const Frame& frame, const capnp::ReaderOptions& options);

  void appendCopied(kj::ArrayPtr<const kj::byte> bytes);
  // Queues one message; true if its segments are borrowed rather than copied.
  bool appendMessage(kj::ArrayPtr<const kj::ArrayPtr<const capnp::word>> segments);
  kj::Promise<void> afterAppend(bool borrowed);
  void flush();
  void wrote();
  void failed(kj::Exception&& exception);
  void settle(Batch& batch, kj::Maybe<const kj::Exception&> error);
  void abandon(BorrowedWrite& write);
  kj::Promise<void> drained();
  void taskFailed(kj::Exception&& exception) override;
};

}  // namespace capnp_lean
