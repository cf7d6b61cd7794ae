// CoalescingMessageStream: see stream.h.

#include "stream.h"

#include <capnp/serialize.h>
#include <sys/socket.h>

#include <cstring>

namespace capnp_lean {
namespace {

constexpr size_t READ_BUFFER_BYTES = 64 * 1024;
// From this much segment data a message skips the read buffer: copying it would cost more
// than the separate read that fills its own array (and it need not fit in the buffer).
constexpr size_t LARGE_MESSAGE_BYTES = 16 * 1024;
// A batch this large is written at once instead of waiting for the end of the turn.
constexpr size_t MAX_BATCH_BYTES = 256 * 1024;
// Past this many queued bytes behind a write in flight, writers wait (backpressure).
constexpr size_t HIGH_WATER_BYTES = 4 * 1024 * 1024;
// KJ's own limit on segments per message.
constexpr uint32_t MAX_SEGMENTS = 512;
static_assert(LARGE_MESSAGE_BYTES + (MAX_SEGMENTS + 2) * 4 <= READ_BUFFER_BYTES,
              "every small message fits in the read buffer");

uint32_t readLe32(const kj::byte* p) {
  return uint32_t(p[0]) | (uint32_t(p[1]) << 8) | (uint32_t(p[2]) << 16) | (uint32_t(p[3]) << 24);
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

kj::Own<capnp::MessageReader> newReader(kj::Array<kj::ArrayPtr<const capnp::word>> segments,
                                        kj::Array<capnp::word> words,
                                        const capnp::ReaderOptions& options) {
  kj::ArrayPtr<const kj::ArrayPtr<const capnp::word>> table = segments;
  return kj::heap<capnp::SegmentArrayMessageReader>(table, options)
      .attach(kj::mv(segments), kj::mv(words));
}

void appendLe32(kj::Vector<kj::byte>& out, uint32_t value) {
  for (int i = 0; i < 4; i++) out.add(static_cast<kj::byte>(value >> (8 * i)));
}

}  // namespace

CoalescingMessageStream::CoalescingMessageStream(kj::AsyncIoStream& stream)
    : stream(stream), readBuffer(kj::heapArray<kj::byte>(READ_BUFFER_BYTES)), tasks(*this) {}

CoalescingMessageStream::~CoalescingMessageStream() noexcept(false) {}

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
  size_t tableBytes = ((segmentCount + 1) * 4 + 7) & ~size_t(7);
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
  return capnp::MessageReaderAndFds{newReader(kj::mv(segments), kj::mv(words), options), nullptr};
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
      .then([wanted = rest.size(), segments = kj::mv(segments), words = kj::mv(words),
             options](size_t n) mutable -> kj::Maybe<capnp::MessageReaderAndFds> {
        if (n < wanted) {
          kj::throwFatalException(KJ_EXCEPTION(DISCONNECTED, "premature EOF inside a message"));
        }
        return capnp::MessageReaderAndFds{newReader(kj::mv(segments), kj::mv(words), options),
                                          nullptr};
      });
}

kj::Promise<kj::Maybe<capnp::MessageReaderAndFds>> CoalescingMessageStream::tryReadMessage(
    kj::ArrayPtr<kj::AutoCloseFd> fdSpace, capnp::ReaderOptions options,
    kj::ArrayPtr<capnp::word> scratchSpace) {
  KJ_IF_MAYBE(frame, bufferedFrame(options)) {
    if (readEnd - readStart >= frame->bytes()) {
      return kj::Maybe<capnp::MessageReaderAndFds>(copyOut(*frame, options));
    }
    if (frame->totalWords * sizeof(capnp::word) >= LARGE_MESSAGE_BYTES) {
      return readLarge(*frame, options);
    }
  }
  if (readStart > 0 && readEnd == readBuffer.size()) {
    // Make room at the end by moving the unconsumed tail to the front.
    memmove(readBuffer.begin(), readBuffer.begin() + readStart, readEnd - readStart);
    readEnd -= readStart;
    readStart = 0;
  }
  return stream.tryRead(readBuffer.begin() + readEnd, 1, readBuffer.size() - readEnd)
      .then([this, options](size_t n) -> kj::Promise<kj::Maybe<capnp::MessageReaderAndFds>> {
        if (n == 0) {
          if (readStart == readEnd) return kj::Maybe<capnp::MessageReaderAndFds>(nullptr);
          kj::throwFatalException(KJ_EXCEPTION(DISCONNECTED, "premature EOF inside a message"));
        }
        readEnd += n;
        return tryReadMessage(nullptr, options, nullptr);
      });
}

void CoalescingMessageStream::appendMessage(
    kj::ArrayPtr<const kj::ArrayPtr<const capnp::word>> segments) {
  KJ_REQUIRE(segments.size() > 0 && segments.size() <= MAX_SEGMENTS, "bad segment count");
  appendLe32(pending, segments.size() - 1);
  for (auto& segment : segments) appendLe32(pending, segment.size());
  if (segments.size() % 2 == 0) appendLe32(pending, 0);  // pad the table to a word
  for (auto& segment : segments) {
    auto bytes = segment.asBytes();
    pending.addAll(bytes.begin(), bytes.end());
  }
}

kj::Promise<void> CoalescingMessageStream::afterAppend() {
  if (!writeInFlight && pending.size() >= MAX_BATCH_BYTES) {
    flush();
  } else if (!flushScheduled) {
    // After every other event of this turn, so everything queued meanwhile leaves together.
    flushScheduled = true;
    tasks.add(kj::evalLast([this]() {
      flushScheduled = false;
      if (!writeInFlight) flush();
    }));
  }
  if (writeInFlight && pending.size() > HIGH_WATER_BYTES) return drained();
  return kj::READY_NOW;
}

kj::Promise<void> CoalescingMessageStream::writeMessage(
    kj::ArrayPtr<const int> fds, kj::ArrayPtr<const kj::ArrayPtr<const capnp::word>> segments) {
  KJ_REQUIRE(fds.size() == 0, "this transport does not pass file descriptors");
  KJ_IF_MAYBE(e, writeError) { return kj::cp(*e); }
  // The bytes are copied now, so the caller's message may go away as soon as we return.
  appendMessage(segments);
  return afterAppend();
}

kj::Promise<void> CoalescingMessageStream::writeMessages(
    kj::ArrayPtr<kj::ArrayPtr<const kj::ArrayPtr<const capnp::word>>> messages) {
  KJ_IF_MAYBE(e, writeError) { return kj::cp(*e); }
  for (auto& message : messages) appendMessage(message);
  return afterAppend();
}

void CoalescingMessageStream::flush() {
  if (pending.empty() || writeInFlight) return;
  sending = pending.releaseAsArray();
  writeInFlight = true;
  tasks.add(stream.write(sending.begin(), sending.size())
                .then([this]() { wrote(); },
                      [this](kj::Exception&& e) {
                        writeError = kj::mv(e);
                        writeInFlight = false;
                        // Nobody waits on a write that already "succeeded": fail the reads too,
                        // so the connection notices and pending calls fail.
                        stream.shutdownWrite();
                        stream.abortRead();
                        for (auto& waiter : drainWaiters) waiter->reject(kj::cp(KJ_ASSERT_NONNULL(writeError)));
                        drainWaiters.clear();
                      }));
}

void CoalescingMessageStream::wrote() {
  writeInFlight = false;
  sending = nullptr;
  if (!pending.empty()) {
    flush();
  } else {
    for (auto& waiter : drainWaiters) waiter->fulfill();
    drainWaiters.clear();
  }
}

kj::Promise<void> CoalescingMessageStream::drained() {
  KJ_IF_MAYBE(e, writeError) { return kj::cp(*e); }
  if (!writeInFlight && pending.empty()) return kj::READY_NOW;
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
