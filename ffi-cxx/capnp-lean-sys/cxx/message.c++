// Errors and messages at the boundary: KJ exceptions become plain (kind, message) pairs, and
// messages cross as segments plus a capability table.

#include "core.h"

#include <capnp/rpc.capnp.h>
#include <capnp/serialize.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <algorithm>
#include <cstring>

namespace capnp_lean {

namespace {
// Deep enough for any message a peer would accept; bounded so the copy cannot exhaust the stack.
constexpr int OUTGOING_NESTING_LIMIT = 2048;

// KJ prefixes errors that arrived from a peer; the peer's own message is what users asked for.
constexpr kj::StringPtr REMOTE_PREFIX = "remote exception: "_kj;
}  // namespace

ErrorData errorFromException(const kj::Exception& e) {
  ErrorData data;
  switch (e.getType()) {
    case kj::Exception::Type::OVERLOADED: data.kind = CAPNP_LEAN_ERROR_OVERLOADED; break;
    case kj::Exception::Type::DISCONNECTED: data.kind = CAPNP_LEAN_ERROR_DISCONNECTED; break;
    case kj::Exception::Type::UNIMPLEMENTED: data.kind = CAPNP_LEAN_ERROR_UNIMPLEMENTED; break;
    default: data.kind = CAPNP_LEAN_ERROR_FAILED; break;
  }
  kj::StringPtr description = e.getDescription();
  if (description.startsWith(REMOTE_PREFIX)) description = description.slice(REMOTE_PREFIX.size());
  data.message.assign(description.begin(), description.size());
  return data;
}

kj::Exception::Type exceptionTypeOf(capnp_lean_error_kind kind) {
  switch (kind) {
    case CAPNP_LEAN_ERROR_OVERLOADED: return kj::Exception::Type::OVERLOADED;
    case CAPNP_LEAN_ERROR_DISCONNECTED: return kj::Exception::Type::DISCONNECTED;
    case CAPNP_LEAN_ERROR_UNIMPLEMENTED: return kj::Exception::Type::UNIMPLEMENTED;
    default: return kj::Exception::Type::FAILED;
  }
}

kj::Exception exceptionFrom(capnp_lean_error_kind kind, std::string message) {
  return kj::Exception(exceptionTypeOf(kind), "(capnp-lean host)", 0,
                       kj::heapString(message.data(), message.size()));
}

capnp_lean_status fail(capnp_lean_error** err, capnp_lean_status status,
                       capnp_lean_error_kind kind, std::string message) {
  if (err != nullptr) *err = new capnp_lean_error{ErrorData{kind, std::move(message)}};
  return status;
}

capnp_lean_status failWith(capnp_lean_error** err, const ErrorData& data) {
  return fail(err, CAPNP_LEAN_ERR_RPC, data.kind, data.message);
}

kj::Own<capnp::ClientHook> brokenCap(capnp_lean_error_kind kind, std::string message) {
  return capnp::newBrokenCap(exceptionFrom(kind, std::move(message)));
}

namespace {

void storeWord(capnp::word& word, uint32_t low, uint32_t high) {
  uint64_t value = uint64_t(low) | (uint64_t(high) << 32);
  auto* bytes = reinterpret_cast<kj::byte*>(&word);
  for (int i = 0; i < 8; i++) bytes[i] = static_cast<kj::byte>(value >> (8 * i));
}

// True when `wire` is a Call or Return whose payload is the struct at `structAt` and carries no
// capabilities: only then can the host read it in place, since capability pointers would index
// the wire message's table rather than one the host can reach.
bool isDataOnlyPayload(const WireMessage& wire, const void* structAt) {
  capnp::SegmentArrayMessageReader reader(wire.segments.asPtr());
  auto message = reader.getRoot<capnp::rpc::Message>();
  capnp::rpc::Payload::Reader payload;
  if (message.isCall()) {
    payload = message.getCall().getParams();
  } else if (message.isReturn() && message.getReturn().isResults()) {
    payload = message.getReturn().getResults();
  } else {
    return false;
  }
  auto content = payload.getContent();
  return payload.getCapTable().size() == 0 &&
         content.getPointerType() == capnp::PointerType::STRUCT &&
         content.getAs<capnp::AnyStruct>().getDataSection().begin() == structAt;
}

}  // namespace

void ReceivedMessage::takeFrom(capnp::AnyPointer::Reader content, ReceivedMessages* registry) {
  if (registry != nullptr && borrowFrom(content, *registry)) return;
  copyFrom(content);
}

bool ReceivedMessage::borrowFrom(capnp::AnyPointer::Reader content, ReceivedMessages& registry) {
  if (content.getPointerType() != capnp::PointerType::STRUCT) return false;
  auto structure = content.getAs<capnp::AnyStruct>();
  auto dataSection = structure.getDataSection();
  const void* at = dataSection.begin();
  KJ_IF_MAYBE(found, registry.find(at)) {
    auto wireSegments = found->message->segments.asPtr();
    // A far pointer's offset has 29 bits.
    if (found->offsetWords >= (size_t(1) << 29) || wireSegments[0].size() == 0 ||
        wireSegments[0].size() >= (size_t(1) << 29)) {
      return false;
    }
    if (!isDataOnlyPayload(*found->message, at)) return false;
    segments.clear();
    // The root is a double-far pointer to a two-word landing pad: a far pointer to the struct
    // and a tag with its size, so the struct is read where it lies. Far pointers inside the
    // wire message name wire segment ids, so those must keep their numbers in the view.
    uint32_t dataWords = dataSection.size() / sizeof(capnp::word);
    uint32_t pointerCount = structure.getPointerSection().size();
    capnp::word* rootWord;
    capnp::word* pad;
    uint32_t structSegment;
    if (wireSegments.size() == 1) {
      // One segment has no far pointers to renumber: a separate first segment holds the root.
      rootWord = &rootPad[0];
      pad = &rootPad[1];
      structSegment = 1;
      segments.push_back(capnp_lean_segment{reinterpret_cast<const uint8_t*>(rootPad), sizeof(rootPad)});
    } else {
      // Segment 0 is replaced by a copy with our root in word 0 (the RPC message's root, which
      // nothing points to) and the pad appended; segments 1.. are viewed in place. Senders keep
      // segment 0 small when a message spans several.
      size_t words = wireSegments[0].size();
      head = kj::heapArray<capnp::word>(words + 2);
      memcpy(head.begin(), wireSegments[0].begin(), words * sizeof(capnp::word));
      rootWord = &head[0];
      pad = &head[words];
      structSegment = found->segment;
      segments.push_back(capnp_lean_segment{reinterpret_cast<const uint8_t*>(head.begin()),
                                            head.size() * sizeof(capnp::word)});
      wireSegments = wireSegments.slice(1, wireSegments.size());
    }
    auto padOffset = static_cast<uint32_t>(pad - rootWord);
    storeWord(*rootWord, 2 | (1 << 2) | (padOffset << 3), 0);
    storeWord(pad[0], 2 | uint32_t(found->offsetWords << 3), structSegment);
    storeWord(pad[1], 0, dataWords | (pointerCount << 16));
    for (auto segment : wireSegments) {
      segments.push_back(capnp_lean_segment{reinterpret_cast<const uint8_t*>(segment.begin()),
                                            segment.size() * sizeof(capnp::word)});
    }
    capCount = 0;
    wire = kj::mv(found->message);
    return true;
  }
  return false;
}

void ReceivedMessage::copyFrom(capnp::AnyPointer::Reader reader) {
  builder = kj::heap<capnp::MallocMessageBuilder>(reader.targetSize().wordCount + 1);
  capTable = kj::heap<capnp::BuilderCapabilityTable>();
  capTable->imbue(builder->getRoot<capnp::AnyPointer>()).set(reader);
  capCount = capTable->getTable().size();
  segments.clear();
  for (auto segment : builder->getSegmentsForOutput()) {
    segments.push_back(capnp_lean_segment{reinterpret_cast<const uint8_t*>(segment.begin()),
                                          segment.size() * sizeof(capnp::word)});
  }
}

capnp_lean_message_view ReceivedMessage::view() const {
  return capnp_lean_message_view{segments.data(), segments.size(),
                                 capCount};
}

kj::Own<capnp::ClientHook> ReceivedMessage::cap(uint32_t index) {
  if (capTable.get() == nullptr) {
    return brokenCap(CAPNP_LEAN_ERROR_DISCONNECTED, "the capnp-lean runtime was shut down");
  }
  auto table = capTable->getTable();
  KJ_IF_MAYBE(hook, table[index]) { return (*hook)->addRef(); }
  return brokenCap(CAPNP_LEAN_ERROR_FAILED, "null capability in the message's capability table");
}

bool OutgoingMessage::take(const capnp_lean_message* msg, Loan loan, OutgoingMessage& out,
                           capnp_lean_error** err) {
  if (msg == nullptr) {
    fail(err, CAPNP_LEAN_ERR_INVALID_ARGUMENT, CAPNP_LEAN_ERROR_FAILED, "the message is NULL");
    return false;
  }
  if ((msg->segment_count > 0 && msg->segments == nullptr) ||
      (msg->cap_count > 0 && msg->caps == nullptr)) {
    fail(err, CAPNP_LEAN_ERR_INVALID_ARGUMENT, CAPNP_LEAN_ERROR_FAILED,
         "message segments or caps pointer is NULL");
    return false;
  }
  size_t totalWords = 0;
  for (size_t i = 0; i < msg->segment_count; i++) {
    const auto& s = msg->segments[i];
    if (s.size % sizeof(capnp::word) != 0 || (s.size > 0 && s.data == nullptr)) {
      fail(err, CAPNP_LEAN_ERR_INVALID_ARGUMENT, CAPNP_LEAN_ERROR_FAILED,
           "segment " + std::to_string(i) + " is not a whole number of 8-byte words (" +
               std::to_string(s.size) + " bytes)");
      return false;
    }
    if (loan.active() && reinterpret_cast<uintptr_t>(s.data) % alignof(capnp::word) != 0) {
      fail(err, CAPNP_LEAN_ERR_INVALID_ARGUMENT, CAPNP_LEAN_ERROR_FAILED,
           "segment " + std::to_string(i) +
               " is not 8-byte aligned, so it cannot be read in place (use the copying variant)");
      return false;
    }
    totalWords += s.size / sizeof(capnp::word);
  }
  out.totalWords = totalWords;
  if (loan.active()) {
    for (size_t i = 0; i < msg->segment_count; i++) {
      const auto& s = msg->segments[i];
      out.segments.push_back(kj::arrayPtr(reinterpret_cast<const capnp::word*>(s.data),
                                          s.size / sizeof(capnp::word)));
    }
    out.loan = kj::mv(loan);
  } else {
    // One copy into word-aligned memory we own: the host may free its buffers once we return.
    out.words = kj::heapArray<capnp::word>(totalWords);
    size_t offset = 0;
    for (size_t i = 0; i < msg->segment_count; i++) {
      const auto& s = msg->segments[i];
      size_t words = s.size / sizeof(capnp::word);
      if (words > 0) memcpy(out.words.begin() + offset, s.data, s.size);
      out.segments.push_back(out.words.slice(offset, offset + words).asConst());
      offset += words;
    }
  }
  out.caps.assign(msg->caps, msg->caps + msg->cap_count);
  return true;
}

void OutgoingMessage::writeTo(capnp::AnyPointer::Builder target) {
  KJ_DEFER(loan.end());  // the bytes have been copied into the RPC message (or could not be)
  if (segments.empty()) return;  // no segments: an empty message, i.e. a null (default) root
  // The host built this message itself: the receive-side limits (which protect against peers)
  // do not apply. The peer enforces its own limits; ours only bound the copy's recursion.
  capnp::ReaderOptions options;
  options.traversalLimitInWords = totalWords * 4 + 1024;
  options.nestingLimit = OUTGOING_NESTING_LIMIT;
  capnp::SegmentArrayMessageReader reader(
      kj::ArrayPtr<const kj::ArrayPtr<const capnp::word>>(segments.data(), segments.size()), options);
  auto table = kj::heapArrayBuilder<kj::Maybe<kj::Own<capnp::ClientHook>>>(caps.size());
  for (auto* cap : caps) {
    if (cap != nullptr && cap->hook.get() != nullptr) {
      table.add(cap->hook->addRef());
    } else if (cap != nullptr) {
      table.add(brokenCap(CAPNP_LEAN_ERROR_DISCONNECTED, "the capnp-lean runtime was shut down"));
    } else {
      table.add(nullptr);
    }
  }
  capnp::ReaderCapabilityTable capTable(table.finish());
  target.set(capTable.imbue(reader.getRoot<capnp::AnyPointer>()));
}

bool ConnectionLimits::from(const capnp_lean_connection_options* options, ConnectionLimits& out,
                            capnp_lean_error** err) {
  out = ConnectionLimits();
  if (options == nullptr) return true;
  // Only read the fields the caller's struct actually has.
  auto has = [options](size_t offset, size_t size) { return options->struct_size >= offset + size; };
  if (options->struct_size < sizeof(uint32_t)) {
    fail(err, CAPNP_LEAN_ERR_INVALID_ARGUMENT, CAPNP_LEAN_ERROR_FAILED,
         "capnp_lean_connection_options.struct_size is not set (use sizeof)");
    return false;
  }
  if (has(offsetof(capnp_lean_connection_options, nesting_limit), sizeof(uint32_t)) &&
      options->nesting_limit != 0) {
    if (options->nesting_limit > 100000) {
      fail(err, CAPNP_LEAN_ERR_INVALID_ARGUMENT, CAPNP_LEAN_ERROR_FAILED,
           "nesting_limit above 100000 would let a message exhaust the stack");
      return false;
    }
    out.reader.nestingLimit = static_cast<int>(options->nesting_limit);
  }
  if (has(offsetof(capnp_lean_connection_options, traversal_limit_words), sizeof(uint64_t)) &&
      options->traversal_limit_words != 0) {
    out.reader.traversalLimitInWords = options->traversal_limit_words;
  }
  if (has(offsetof(capnp_lean_connection_options, flow_limit_words), sizeof(uint64_t)) &&
      options->flow_limit_words != 0) {
    out.flowLimitWords = options->flow_limit_words;
  }
  if (has(offsetof(capnp_lean_connection_options, dead_peer_timeout_ms), sizeof(uint32_t))) {
    out.deadPeerTimeoutMs = options->dead_peer_timeout_ms;
  }
  auto timeout = [&](size_t offset, uint32_t value, uint32_t& field) {
    if (!has(offset, sizeof(uint32_t)) || value == 0) return;  // the default
    field = value == CAPNP_LEAN_TIMEOUT_OFF ? 0 : value;
  };
  timeout(offsetof(capnp_lean_connection_options, handshake_timeout_ms),
          options->handshake_timeout_ms, out.handshakeTimeoutMs);
  timeout(offsetof(capnp_lean_connection_options, stall_timeout_ms),
          options->stall_timeout_ms, out.stallTimeoutMs);
  if (has(offsetof(capnp_lean_connection_options, send_queue_limit_bytes), sizeof(uint64_t)) &&
      options->send_queue_limit_bytes != 0) {
    out.sendQueueLimitBytes =
        options->send_queue_limit_bytes == CAPNP_LEAN_UNLIMITED ? 0 : options->send_queue_limit_bytes;
  }
  timeout(offsetof(capnp_lean_connection_options, send_queue_timeout_ms),
          options->send_queue_timeout_ms, out.sendQueueTimeoutMs);
  if (has(offsetof(capnp_lean_connection_options, transport), sizeof(uint32_t))) {
    switch (options->transport) {
      case CAPNP_LEAN_TRANSPORT_DEFAULT: break;
      case CAPNP_LEAN_TRANSPORT_STOCK: out.coalescing = false; break;
      case CAPNP_LEAN_TRANSPORT_COALESCING: out.coalescing = true; break;
      default:
        fail(err, CAPNP_LEAN_ERR_INVALID_ARGUMENT, CAPNP_LEAN_ERROR_FAILED,
             "unknown transport " + std::to_string(options->transport));
        return false;
    }
  }
  return true;
}

void ConnectionLimits::applyTo(kj::AsyncIoStream& stream) const {
  if (deadPeerTimeoutMs == 0) return;
  // Unacknowledged data fails the socket after the timeout (TCP_USER_TIMEOUT); keepalive
  // probes make an idle link count as unacknowledged too: idle for half the timeout, then
  // probes a quarter apart, two missed probes and it is dead.
  unsigned int userTimeout = deadPeerTimeoutMs;
  int on = 1;
  int idle = static_cast<int>(std::max(1u, deadPeerTimeoutMs / 2000));
  int interval = static_cast<int>(std::max(1u, deadPeerTimeoutMs / 4000));
  int probes = 2;
  KJ_IF_MAYBE(e, kj::runCatchingExceptions([&]() {
    stream.setsockopt(IPPROTO_TCP, TCP_USER_TIMEOUT, &userTimeout, sizeof(userTimeout));
    stream.setsockopt(SOL_SOCKET, SO_KEEPALIVE, &on, sizeof(on));
    stream.setsockopt(IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof(idle));
    stream.setsockopt(IPPROTO_TCP, TCP_KEEPINTVL, &interval, sizeof(interval));
    stream.setsockopt(IPPROTO_TCP, TCP_KEEPCNT, &probes, sizeof(probes));
  })) {
    (void)e;  // not a TCP socket (unix sockets report a dead peer at once anyway)
  }
}

capnp_lean_status shutDownError(capnp_lean_error** err) {
  return fail(err, CAPNP_LEAN_ERR_SHUT_DOWN, CAPNP_LEAN_ERROR_DISCONNECTED,
              "the capnp-lean runtime was shut down");
}

capnp_lean_status nullArgument(capnp_lean_error** err, const char* what) {
  return fail(err, CAPNP_LEAN_ERR_INVALID_ARGUMENT, CAPNP_LEAN_ERROR_FAILED,
              std::string(what) + " must not be NULL");
}

}  // namespace capnp_lean

using namespace capnp_lean;

extern "C" {

capnp_lean_error_kind capnp_lean_error_get_kind(const capnp_lean_error* err) {
  return err == nullptr ? CAPNP_LEAN_ERROR_FAILED : err->data.kind;
}

void capnp_lean_error_get_message(const capnp_lean_error* err, const uint8_t** data,
                                  size_t* len) {
  if (err == nullptr) {
    if (data) *data = nullptr;
    if (len) *len = 0;
    return;
  }
  if (data) *data = reinterpret_cast<const uint8_t*>(err->data.message.data());
  if (len) *len = err->data.message.size();
}

void capnp_lean_error_free(capnp_lean_error* err) { delete err; }

}  // extern "C"
