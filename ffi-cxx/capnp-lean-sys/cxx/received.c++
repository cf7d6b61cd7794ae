// ReceivedMessages: see received.h.

#include "received.h"

namespace capnp_lean {
namespace {

class WireMessageReader final : public capnp::MessageReader {
 public:
  WireMessageReader(std::shared_ptr<const WireMessage> message, const capnp::ReaderOptions& options)
      : capnp::MessageReader(options), message(kj::mv(message)) {}

  kj::ArrayPtr<const capnp::word> getSegment(uint id) override {
    return id < message->segments.size() ? message->segments[id] : nullptr;
  }

 private:
  std::shared_ptr<const WireMessage> message;
};

}  // namespace

WireMessage::~WireMessage() {
  if (registry != nullptr) registry->forget(*this);
}

kj::Own<capnp::MessageReader> ReceivedMessages::newReader(
    kj::Array<capnp::word> words, kj::Array<kj::ArrayPtr<const capnp::word>> segments,
    const capnp::ReaderOptions& options) {
  auto message = std::make_shared<WireMessage>();
  message->words = kj::mv(words);
  message->segments = kj::mv(segments);
  {
    std::lock_guard<std::mutex> lock(mutex);
    for (uint32_t i = 0; i < message->segments.size(); i++) {
      auto segment = message->segments[i];
      if (segment.size() == 0) continue;  // nothing to find, and it would share an address
      auto start = reinterpret_cast<uintptr_t>(segment.begin());
      bySegmentStart[start] = Entry{reinterpret_cast<uintptr_t>(segment.end()), message, i};
    }
    // Set last: a message only forgets what it registered.
    message->registry = shared_from_this();
  }
  return kj::heap<WireMessageReader>(kj::mv(message), options);
}

kj::Maybe<WireLocation> ReceivedMessages::find(const void* address) {
  auto at = reinterpret_cast<uintptr_t>(address);
  std::lock_guard<std::mutex> lock(mutex);
  auto next = bySegmentStart.upper_bound(at);
  if (next == bySegmentStart.begin()) return nullptr;
  auto& [start, entry] = *std::prev(next);
  if (at >= entry.end) return nullptr;
  auto message = entry.message.lock();
  if (message == nullptr) return nullptr;  // being freed
  return WireLocation{kj::mv(message), entry.segment, (at - start) / sizeof(capnp::word)};
}

void ReceivedMessages::forget(const WireMessage& message) {
  std::lock_guard<std::mutex> lock(mutex);
  for (auto segment : message.segments) {
    if (segment.size() == 0) continue;
    bySegmentStart.erase(reinterpret_cast<uintptr_t>(segment.begin()));
  }
}

}  // namespace capnp_lean
