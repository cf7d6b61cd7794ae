// CoalescingMessageStream: see stream.h.

#include "stream.h"
#include "watch.h"

#include <capnp/serialize.h>
#include <sys/socket.h>

#include <cstring>
#include <utility>

namespace capnp_lean {
namespace {

constexpr size_t READ_BUFFER_BYTES = 64 * 1024;
// From this much segment data a message skips the read buffer: copying it would cost more
// than the separate read that fills its own array (and it need not fit in the buffer).
constexpr size_t LARGE_MESSAGE_BYTES = 16 * 1024;
// A batch this large is written at once instead of waiting for the end of the turn.
constexpr size_t MAX_BATCH_BYTES = 256 * 1024;
// Nor does a batch of half as many messages as the last read brought in (4 to 16): the peer
// starts on them while this side works on the rest. Waiting for the whole turn made a pipelined
// exchange stop-and-wait (each side idle while the other handled the full window): half
// capnp-rpc's calls/s at 64 in flight. A fixed cap fits one window only: 16 gave 163k calls/s at
// 64 in flight but 43k at 8; 4 gave 121k at 8 but 132k at 64 (bridge<->bridge, 16 B).
constexpr size_t MIN_BATCH_MESSAGES = 4;
constexpr size_t MAX_BATCH_MESSAGES = 16;
// Past this many queued bytes behind a write in flight, writers wait (backpressure).
constexpr size_t HIGH_WATER_BYTES = 4 * 1024 * 1024;
// KJ's own limit on segments per message.
constexpr uint32_t MAX_SEGMENTS = 512;
static_assert(LARGE_MESSAGE_BYTES + (MAX_SEGMENTS + 2) * 4 <= READ_BUFFER_BYTES,
              "every small message fits in the read buffer");

uint32_t readLe32(const kj::byte* p) {
  return uint32_t(p[0]) | (uint32_t(p[1]) << 8) | (uint32_t(p[2]) << 16) | (uint32_t(p[3]) << 24);
}

// The size of a segment table, padded to a whole word.
size_t tableBytesFor(uint32_t segmentCount) {
  return ((size_t(segmentCount) + 1) * 4 + 7) & ~size_t(7);
}

// The message's segments within `words`, as the segment table at `head` lays them out.
kj::Array<kj::ArrayPtr<const capnp::word>> segmentsOf(const kj::byte* head, uint32_t count,
                                                     kj::ArrayPtr<const capnp::word> words) {
  auto segments = kj::heapArray<kj::ArrayPtr<const capnp::word>>(count);
  size_t offset = 0;
  for (uint32_t i = 0; i < count; i++) {
    size_t size = readLe32(head + 4 + 4 * i);
    segments[i] = words.slice(offset, offset + size);
    offset += size;
  }
  return segments;
}

void putLe32(kj::byte* p, uint32_t value) {
  for (int i = 0; i < 4; i++) p[i] = static_cast<kj::byte>(value >> (8 * i));
}

}  // namespace

CoalescingMessageStream::CoalescingMessageStream(kj::AsyncIoStream& stream,
                                                 std::shared_ptr<ReceivedMessages> received,
                                                 kj::Timer& timer)
    : stream(stream), received(kj::mv(received)), readBuffer(kj::heapArray<kj::byte>(READ_BUFFER_BYTES)),
      timer(timer), tasks(*this) {}

// What writeMessage() returns for a large message, whose segments go on the wire straight from
// the caller's memory: it resolves once the write carrying them has completed. Its owner may
// drop it sooner (when tearing the connection down) and then free the segments, so the
// destructor tells the stream to stop using them.
class CoalescingMessageStream::BorrowedWrite {
 public:
  BorrowedWrite(kj::PromiseFulfiller<void>& fulfiller, CoalescingMessageStream& stream)
      : fulfiller(fulfiller), stream(stream) {
    stream.pending.borrowers.add(this);
  }
  ~BorrowedWrite() noexcept(false) {
    KJ_IF_MAYBE(s, stream) { s->abandon(*this); }
  }
  KJ_DISALLOW_COPY(BorrowedWrite);

  kj::PromiseFulfiller<void>& fulfiller;
  kj::Maybe<CoalescingMessageStream&> stream;  // null once settled
};

void CoalescingMessageStream::Batch::clear() {
  bytes.clear();
  // Keep the buffer for the next batch, unless a burst made it big.
  if (bytes.capacity() > MAX_BATCH_BYTES) bytes = kj::Vector<kj::byte>();
  pieces.clear();
  size = 0;
  messages = 0;
}

CoalescingMessageStream::~CoalescingMessageStream() noexcept(false) {
  // A borrowed write's promise may outlive us in its owner's chain: detach it.
  auto gone = KJ_EXCEPTION(DISCONNECTED, "the message stream was destroyed");
  settle(sending, gone);
  settle(pending, gone);
}

void CoalescingMessageStream::taskFailed(kj::Exception&& exception) {
  // Writes report their own errors (wrote / writeError); this only catches surprises.
  if (writeError == nullptr) writeError = kj::mv(exception);
}

kj::Maybe<CoalescingMessageStream::Frame> CoalescingMessageStream::bufferedFrame(
    const capnp::ReaderOptions& options) {
  size_t available = readEnd - readStart;
  if (available < 8) return nullptr;
  const kj::byte* head = readBuffer.begin() + readStart;
  uint32_t segmentCount = readLe32(head) + 1;
  // Checked before any allocation: a hostile header must not make us reserve memory.
  KJ_REQUIRE(segmentCount != 0 && segmentCount <= MAX_SEGMENTS,
             "message has too many segments", segmentCount);
  size_t tableBytes = tableBytesFor(segmentCount);
  if (available < tableBytes) return nullptr;
  uint64_t totalWords = 0;
  for (uint32_t i = 0; i < segmentCount; i++) totalWords += readLe32(head + 4 + 4 * i);
  KJ_REQUIRE(totalWords <= options.traversalLimitInWords,
             "message is larger than the traversal limit (see capnp_lean_connection_options)",
             totalWords, options.traversalLimitInWords);
  return Frame{segmentCount, tableBytes, totalWords};
}

capnp::MessageReaderAndFds CoalescingMessageStream::copyOut(const Frame& frame,
                                                            const capnp::ReaderOptions& options) {
  // Each message gets its own word-aligned copy: the RPC system may keep it long after the
  // buffer has been reused.
  const kj::byte* head = readBuffer.begin() + readStart;
  auto words = kj::heapArray<capnp::word>(frame.totalWords);
  memcpy(words.begin(), head + frame.tableBytes, frame.totalWords * sizeof(capnp::word));
  auto segments = segmentsOf(head, frame.segmentCount, words);
  readStart += frame.bytes();
  if (readStart == readEnd) readStart = readEnd = 0;
  return capnp::MessageReaderAndFds{received->newReader(kj::mv(words), kj::mv(segments), options),
                                    nullptr};
}

kj::Promise<kj::Maybe<capnp::MessageReaderAndFds>> CoalescingMessageStream::readLarge(
    const Frame& frame, const capnp::ReaderOptions& options) {
  // Takes what is buffered, then reads the rest straight into the message's own array.
  const kj::byte* head = readBuffer.begin() + readStart;
  auto words = kj::heapArray<capnp::word>(frame.totalWords);
  auto segments = segmentsOf(head, frame.segmentCount, words);
  kj::ArrayPtr<kj::byte> body = words.asBytes();
  size_t buffered = readEnd - readStart - frame.tableBytes;
  memcpy(body.begin(), head + frame.tableBytes, buffered);
  readStart = readEnd = 0;
  auto rest = body.slice(buffered, body.size());
  // tryRead returns fewer than its minimum only at EOF.
  return stream.tryRead(rest.begin(), rest.size(), rest.size())
      .then([this, wanted = rest.size(), segments = kj::mv(segments), words = kj::mv(words),
             options](size_t n) mutable -> kj::Maybe<capnp::MessageReaderAndFds> {
        if (n < wanted) {
          kj::throwFatalException(KJ_EXCEPTION(DISCONNECTED, "premature EOF inside a message"));
        }
        return capnp::MessageReaderAndFds{
            received->newReader(kj::mv(words), kj::mv(segments), options), nullptr};
      });
}

kj::Promise<kj::Maybe<capnp::MessageReaderAndFds>> CoalescingMessageStream::tryReadMessage(
    kj::ArrayPtr<kj::AutoCloseFd> fdSpace, capnp::ReaderOptions options,
    kj::ArrayPtr<capnp::word> scratchSpace) {
  KJ_IF_MAYBE(frame, bufferedFrame(options)) {
    bool large = frame->totalWords * sizeof(capnp::word) >= LARGE_MESSAGE_BYTES;
    lastWasLarge = large;
    if (readEnd - readStart >= frame->bytes()) {
      readThisPass++;
      return kj::Maybe<capnp::MessageReaderAndFds>(copyOut(*frame, options));
    }
    if (large) return readLarge(*frame, options);
  }
  if (readStart > 0 && readEnd == readBuffer.size()) {
    // Make room at the end by moving the unconsumed tail to the front.
    memmove(readBuffer.begin(), readBuffer.begin() + readStart, readEnd - readStart);
    readEnd -= readStart;
    readStart = 0;
  }
  size_t room = readBuffer.size() - readEnd;
  if (lastWasLarge) {
    // The next message is likely large too: read no further than its segment table, so that
    // its body is not read into the buffer only to be copied out again.
    size_t available = readEnd - readStart;
    size_t table = available < 8 ? 8 : tableBytesFor(readLe32(readBuffer.begin() + readStart) + 1);
    room = kj::min(room, table - available);
  }
  lastPassMessages = readThisPass;
  readThisPass = 0;
  return stream.tryRead(readBuffer.begin() + readEnd, 1, room)
      .then([this, options](size_t n) -> kj::Promise<kj::Maybe<capnp::MessageReaderAndFds>> {
        if (n == 0) {
          if (readStart == readEnd) return kj::Maybe<capnp::MessageReaderAndFds>(nullptr);
          kj::throwFatalException(KJ_EXCEPTION(DISCONNECTED, "premature EOF inside a message"));
        }
        readEnd += n;
        return tryReadMessage(nullptr, options, nullptr);
      });
}

void CoalescingMessageStream::appendCopied(kj::ArrayPtr<const kj::byte> bytes) {
  if (pending.pieces.empty() || pending.pieces.back().borrowed != nullptr) {
    pending.pieces.add(Batch::Piece{nullptr, pending.bytes.size(), 0});
  }
  pending.pieces.back().size += bytes.size();
  pending.bytes.addAll(bytes);
  pending.size += bytes.size();
}

bool CoalescingMessageStream::appendMessage(
    kj::ArrayPtr<const kj::ArrayPtr<const capnp::word>> segments) {
  KJ_REQUIRE(segments.size() > 0 && segments.size() <= MAX_SEGMENTS, "bad segment count");
  kj::byte table[(MAX_SEGMENTS + 2) * 4];
  size_t entries = 0;
  size_t words = 0;
  putLe32(table + 4 * entries++, segments.size() - 1);
  for (auto& segment : segments) {
    putLe32(table + 4 * entries++, segment.size());
    words += segment.size();
  }
  if (entries % 2 == 1) putLe32(table + 4 * entries++, 0);  // pad the table to a word
  appendCopied(kj::arrayPtr(table, 4 * entries));
  pending.messages++;
  bool borrow = words * sizeof(capnp::word) >= LARGE_MESSAGE_BYTES;
  for (auto& segment : segments) {
    auto bytes = segment.asBytes();
    if (!borrow) {
      appendCopied(bytes);
    } else if (bytes.size() > 0) {
      pending.pieces.add(Batch::Piece{bytes.begin(), 0, bytes.size()});
      pending.size += bytes.size();
    }
  }
  return borrow;
}

size_t CoalescingMessageStream::batchMessages() const {
  return kj::max(MIN_BATCH_MESSAGES, kj::min(MAX_BATCH_MESSAGES, kj::max(lastPassMessages, readThisPass) / 2));
}

kj::Promise<void> CoalescingMessageStream::afterAppend(bool borrowed) {
  // Created before flush() can hand the batch over, so it joins this batch's borrowers.
  kj::Maybe<kj::Promise<void>> written;
  if (borrowed) written = kj::newAdaptedPromise<void, BorrowedWrite>(*this);
  // A large message leaves at once: nothing more will join it this turn, since
  // TwoPartyVatNetwork sends its next message only when this one's promise resolves.
  if (!writeInFlight && (borrowed || pending.size >= MAX_BATCH_BYTES || pending.messages >= batchMessages())) {
    flush();
  } else if (!flushScheduled) {
    // So that everything queued meanwhile leaves together.
    flushScheduled = true;
    tasks.add(whenIdle(timer).then([this]() {
      flushScheduled = false;
      if (!writeInFlight) flush();
    }));
  }
  // Its batch holds everything queued before it, so this also bounds the queue.
  KJ_IF_MAYBE(w, written) { return kj::mv(*w); }
  if (writeInFlight && pending.bytes.size() > HIGH_WATER_BYTES) return drained();
  return kj::READY_NOW;
}

kj::Promise<void> CoalescingMessageStream::writeMessage(
    kj::ArrayPtr<const int> fds, kj::ArrayPtr<const kj::ArrayPtr<const capnp::word>> segments) {
  KJ_REQUIRE(fds.size() == 0, "this transport does not pass file descriptors");
  KJ_IF_MAYBE(e, writeError) { return kj::cp(*e); }
  // A small message is copied now, so the caller may free it as soon as we return. A large one
  // is borrowed until our promise settles. That is safe under TwoPartyVatNetwork: in KJ 0.9.2
  // (rpc-twoparty.c++, OutgoingMessageImpl::send) each writeMessage() runs in a chain after the
  // previous one's promise, and the chain holds the message (attach(kj::addRef(*this))) until
  // the promise we return settles or is dropped (see BorrowedWrite for the latter).
  return afterAppend(appendMessage(segments));
}

kj::Promise<void> CoalescingMessageStream::writeMessages(
    kj::ArrayPtr<kj::ArrayPtr<const kj::ArrayPtr<const capnp::word>>> messages) {
  KJ_IF_MAYBE(e, writeError) { return kj::cp(*e); }
  // All checked first: a refused message must not leave borrowed pieces queued untracked.
  for (auto& message : messages) {
    KJ_REQUIRE(message.size() > 0 && message.size() <= MAX_SEGMENTS, "bad segment count");
  }
  bool borrowed = false;
  for (auto& message : messages) borrowed = appendMessage(message) || borrowed;
  return afterAppend(borrowed);
}

void CoalescingMessageStream::flush() {
  if (pending.pieces.empty() || writeInFlight || writeError != nullptr) return;
  std::swap(pending, sending);  // `sending` was cleared, so `pending` reuses its buffers
  sendingPieces.clear();
  for (auto& piece : sending.pieces) {
    sendingPieces.add(piece.borrowed != nullptr
                          ? kj::arrayPtr(piece.borrowed, piece.size)
                          : sending.bytes.slice(piece.offset, piece.offset + piece.size).asConst());
  }
  writeInFlight = true;
  tasks.add(writeCanceler.wrap(stream.write(sendingPieces.asPtr()))
                .then([this]() { wrote(); }, [this](kj::Exception&& e) { failed(kj::mv(e)); }));
}

void CoalescingMessageStream::wrote() {
  writeInFlight = false;
  settle(sending, nullptr);
  sending.clear();
  if (!pending.pieces.empty()) {
    flush();
  } else {
    for (auto& waiter : drainWaiters) waiter->fulfill();
    drainWaiters.clear();
  }
  written();
}

void CoalescingMessageStream::failed(kj::Exception&& exception) {
  if (writeError == nullptr) writeError = kj::mv(exception);  // a cancelled write reports again
  writeInFlight = false;
  auto& error = KJ_ASSERT_NONNULL(writeError);
  for (auto& waiter : drainWaiters) waiter->reject(kj::cp(error));
  drainWaiters.clear();
  settle(sending, error);
  settle(pending, error);  // never to be written
  sending.clear();
  pending.clear();
  // Nobody waits on a write that already "succeeded": fail the reads too, so the connection
  // notices and pending calls fail. (Either call may throw on a socket the peer reset.)
  kj::runCatchingExceptions([this]() { stream.shutdownWrite(); });
  kj::runCatchingExceptions([this]() { stream.abortRead(); });
}

void CoalescingMessageStream::settle(Batch& batch, kj::Maybe<const kj::Exception&> error) {
  for (auto* write : batch.borrowers) {
    write->stream = nullptr;
    KJ_IF_MAYBE(e, error) {
      write->fulfiller.reject(kj::cp(*e));
    } else {
      write->fulfiller.fulfill();
    }
  }
  batch.borrowers.clear();
}

void CoalescingMessageStream::abandon(BorrowedWrite& write) {
  for (auto* batch : {&pending, &sending}) {
    for (auto& entry : batch->borrowers) {
      if (entry != &write) continue;
      entry = batch->borrowers.back();
      batch->borrowers.removeLast();
      // Its segments may be freed now, so no write may read them: end the stream here, as
      // dropping a stock KJ write would (this only happens while tearing the connection down).
      auto error = KJ_EXCEPTION(DISCONNECTED, "a message was dropped before it was written");
      writeCanceler.cancel(error);  // a write in flight is destroyed now
      failed(kj::mv(error));        // and nothing queued is ever written
      return;
    }
  }
}

kj::Promise<void> CoalescingMessageStream::drained() {
  KJ_IF_MAYBE(e, writeError) { return kj::cp(*e); }
  if (!writeInFlight && pending.pieces.empty()) return kj::READY_NOW;
  if (!writeInFlight) flush();
  auto paf = kj::newPromiseAndFulfiller<void>();
  drainWaiters.add(kj::mv(paf.fulfiller));
  return kj::mv(paf.promise);
}

kj::Maybe<int> CoalescingMessageStream::getSendBufferSize() {
  int size = 0;
  uint length = sizeof(size);
  KJ_IF_MAYBE(e, kj::runCatchingExceptions([&]() {
    stream.getsockopt(SOL_SOCKET, SO_SNDBUF, &size, &length);
  })) {
    (void)e;
    return nullptr;
  }
  return size;
}

kj::Promise<void> CoalescingMessageStream::end() {
  return drained().then([this]() { stream.shutdownWrite(); });
}

}  // namespace capnp_lean
