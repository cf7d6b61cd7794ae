// Messages received by the coalescing transport, findable by address. KJ hands a call's params
// or results over as an AnyPointer into the RPC message; finding that message's own segments
// lets the shim give the host a view of them in place (ReceivedMessage) instead of a copy.
#pragma once

#include <capnp/message.h>
#include <kj/array.h>

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>

namespace capnp_lean {

class ReceivedMessages;

// The words of one message read off the wire. Shared: the RPC system's reader holds it, and so
// does every host view of it, which may outlive the reader (and the connection).
struct WireMessage {
  kj::Array<capnp::word> words;
  kj::Array<kj::ArrayPtr<const capnp::word>> segments;  // slices of `words`
  std::shared_ptr<ReceivedMessages> registry;           // null: not findable

  ~WireMessage();
};

// Where an address lies: which live message, which of its segments, how many words in.
struct WireLocation {
  std::shared_ptr<const WireMessage> message;
  uint32_t segment;
  size_t offsetWords;
};

// Every live WireMessage of one runtime, by segment address. Thread-safe: messages are read on
// the loop thread but may be freed on the thread that releases the last view.
class ReceivedMessages : public std::enable_shared_from_this<ReceivedMessages> {
 public:
  // A reader over `words` (split into `segments`), registered until the last holder lets go.
  kj::Own<capnp::MessageReader> newReader(kj::Array<capnp::word> words,
                                          kj::Array<kj::ArrayPtr<const capnp::word>> segments,
                                          const capnp::ReaderOptions& options);
  // The live message holding `address`, if any.
  kj::Maybe<WireLocation> find(const void* address);

 private:
  friend struct WireMessage;
  struct Entry {
    uintptr_t end;
    std::weak_ptr<const WireMessage> message;
    uint32_t segment;
  };
  std::mutex mutex;
  std::map<uintptr_t, Entry> bySegmentStart;  // guarded by mutex

  void forget(const WireMessage& message);
};

}  // namespace capnp_lean
