// Native C++ KJ client for the error tests (interop-tests/tests/error_rule.rs): calls
// `Interop.fail(kind, message)` once with the stock Cap'n Proto 0.9.2 RPC stack and prints the
// exception exactly as KJ hands it to C++ code, so a test can compare it with what the server
// meant to send.
//
// Usage: kj-fail-client --connect ADDR --kind failed|overloaded|disconnected|unimplemented --message TEXT
// Prints two lines, `type: <KJ's exception type>` and `description: <getDescription()>`, and exits
// 0 when the call failed (what the test expects); 1 when it succeeded or could not be made.

#include <capnp/ez-rpc.h>
#include <kj/async.h>
#include <kj/debug.h>

#include <cstdio>
#include <exception>
#include <string>

#include "interop.capnp.h"

namespace {

const char* const kUsage =
    "usage: kj-fail-client --connect ADDR --kind failed|overloaded|disconnected|unimplemented --message TEXT";

bool parseKind(const std::string& text, ErrorKind& kind) {
  if (text == "failed") kind = ErrorKind::FAILED;
  else if (text == "overloaded") kind = ErrorKind::OVERLOADED;
  else if (text == "disconnected") kind = ErrorKind::DISCONNECTED;
  else if (text == "unimplemented") kind = ErrorKind::UNIMPLEMENTED;
  else return false;
  return true;
}

const char* typeName(kj::Exception::Type type) {
  switch (type) {
    case kj::Exception::Type::FAILED: return "failed";
    case kj::Exception::Type::OVERLOADED: return "overloaded";
    case kj::Exception::Type::DISCONNECTED: return "disconnected";
    case kj::Exception::Type::UNIMPLEMENTED: return "unimplemented";
  }
  return "unknown";
}

int callFail(const std::string& address, ErrorKind kind, const std::string& message) {
  capnp::EzRpcClient client(address.c_str());
  auto& waitScope = client.getWaitScope();
  auto interop = client.getMain<Interop>();
  auto request = interop.failRequest();
  request.setKind(kind);
  request.setMessage(message);
  kj::Maybe<kj::Exception> failure;
  auto done = request.send().ignoreResult().catch_([&failure](kj::Exception&& e) { failure = kj::mv(e); });
  done.wait(waitScope);
  KJ_IF_MAYBE(e, failure) {
    std::printf("type: %s\ndescription: %s\n", typeName(e->getType()), e->getDescription().cStr());
    std::fflush(stdout);
    return 0;
  }
  std::fprintf(stderr, "kj-fail-client: fail() succeeded\n");
  return 1;
}

}  // namespace

// The only entry point: every C++ and KJ exception is caught here, none crosses into Rust.
extern "C" int capnp_lean_kj_fail_client_main(int argc, const char** argv) {
  try {
    std::string address, kindText, message;
    bool haveMessage = false;
    for (int i = 1; i + 1 < argc; i += 2) {
      std::string name = argv[i];
      if (name == "--connect") address = argv[i + 1];
      else if (name == "--kind") kindText = argv[i + 1];
      else if (name == "--message") { message = argv[i + 1]; haveMessage = true; }
      else {
        std::fprintf(stderr, "kj-fail-client: unknown option %s\n%s\n", name.c_str(), kUsage);
        return 2;
      }
    }
    ErrorKind kind;
    if (argc != 7 || address.empty() || !haveMessage || !parseKind(kindText, kind)) {
      std::fprintf(stderr, "kj-fail-client: expected --connect ADDR --kind KIND --message TEXT\n%s\n", kUsage);
      return 2;
    }
    return callFail(address, kind, message);
  } catch (const kj::Exception& e) {
    std::fprintf(stderr, "kj-fail-client: %s\n", e.getDescription().cStr());
  } catch (const std::exception& e) {
    std::fprintf(stderr, "kj-fail-client: %s\n", e.what());
  } catch (...) {
    std::fprintf(stderr, "kj-fail-client: unknown C++ exception\n");
  }
  return 1;
}
