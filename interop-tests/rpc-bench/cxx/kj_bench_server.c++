// Native C++ KJ server: the stock Cap'n Proto 0.9.2 RPC stack serving `Interop.echo`, so
// rpc-bench can measure the server role of KJ against capnp-rpc's and the bridge's, and
// `Interop.fail`, so the error tests (interop-tests/tests/error_rule.rs) see what a native KJ
// server puts on the wire. Every other method answers `unimplemented` (KJ's default). With
// `--upstream ADDR` it is a KJ proxy instead: `echo` and `fail` are forwarded to the Interop
// server at ADDR and its answer, or its exception, is returned as KJ received it.
//
// Usage: kj-bench-server --listen ADDR [--upstream ADDR]
// ADDR is host:port (port 0 picks one) or unix:/path. Prints `listening on ADDR` (the bound
// address, as the other peers do) once it accepts connections, then serves until killed.

#include <capnp/ez-rpc.h>
#include <kj/async.h>
#include <kj/debug.h>

#include <cstdio>
#include <exception>
#include <string>

#include "interop.capnp.h"

namespace {

const char* const kUsage = "usage: kj-bench-server --listen ADDR [--upstream ADDR]";

// Echoes the params' payload back in the results, as every other Interop server does.
class EchoServer final : public Interop::Server {
 protected:
  kj::Promise<void> echo(EchoContext context) override {
    context.getResults().setPayload(context.getParams().getPayload());
    return kj::READY_NOW;
  }

  // Fails the way native KJ code does: a kj::Exception of that type whose description is the
  // message (KJ sends the description as the reason and the type as the type).
  kj::Promise<void> fail(FailContext context) override {
    auto params = context.getParams();
    kj::Exception::Type type = kj::Exception::Type::FAILED;
    switch (params.getKind()) {
      case ErrorKind::FAILED: type = kj::Exception::Type::FAILED; break;
      case ErrorKind::OVERLOADED: type = kj::Exception::Type::OVERLOADED; break;
      case ErrorKind::DISCONNECTED: type = kj::Exception::Type::DISCONNECTED; break;
      case ErrorKind::UNIMPLEMENTED: type = kj::Exception::Type::UNIMPLEMENTED; break;
    }
    return kj::Exception(type, __FILE__, __LINE__, kj::heapString(params.getMessage()));
  }
};

// Forwards to `upstream`: what a C++ KJ proxy does with a received exception is return it.
class ForwardingServer final : public Interop::Server {
 public:
  explicit ForwardingServer(Interop::Client upstream) : upstream(kj::mv(upstream)) {}

 protected:
  kj::Promise<void> echo(EchoContext context) override {
    auto request = upstream.echoRequest();
    request.setPayload(context.getParams().getPayload());
    return request.send().then([context](capnp::Response<Interop::EchoResults>&& response) mutable {
      context.getResults().setPayload(response.getPayload());
    });
  }

  kj::Promise<void> fail(FailContext context) override {
    auto params = context.getParams();
    auto request = upstream.failRequest();
    request.setKind(params.getKind());
    request.setMessage(params.getMessage());
    return request.send().ignoreResult();
  }

 private:
  Interop::Client upstream;
};

// `ADDR` with the port KJ bound in place of the one asked for (a unix path is printed as given).
std::string boundAddress(const std::string& requested, unsigned port) {
  if (requested.rfind("unix:", 0) == 0) return requested;
  size_t colon = requested.rfind(':');
  std::string host = colon == std::string::npos ? requested : requested.substr(0, colon);
  return host + ":" + std::to_string(port);
}

int serve(const std::string& address, const std::string& upstreamAddress) {
  capnp::ReaderOptions readerOptions;
  readerOptions.traversalLimitInWords = 64 * 1024 * 1024;
  kj::Own<capnp::EzRpcClient> upstream;  // declared before the server: outlives it
  kj::Own<capnp::Capability::Server> main = kj::heap<EchoServer>();
  if (!upstreamAddress.empty()) {
    upstream = kj::heap<capnp::EzRpcClient>(upstreamAddress.c_str(), 0, readerOptions);
    main = kj::heap<ForwardingServer>(upstream->getMain<Interop>());
  }
  capnp::EzRpcServer server(kj::mv(main), address.c_str(), 0, readerOptions);
  auto& waitScope = server.getWaitScope();
  unsigned port = server.getPort().wait(waitScope);
  std::printf("listening on %s\n", boundAddress(address, port).c_str());
  std::fflush(stdout);
  kj::NEVER_DONE.wait(waitScope);
}

}  // namespace

// The only entry point: every C++ and KJ exception is caught here, none crosses into Rust.
extern "C" int capnp_lean_kj_bench_server_main(int argc, const char** argv) {
  try {
    bool proxy = argc == 5 && std::string(argv[3]) == "--upstream";
    if ((argc != 3 && !proxy) || std::string(argv[1]) != "--listen") {
      std::fprintf(stderr, "kj-bench-server: expected --listen ADDR [--upstream ADDR]\n%s\n", kUsage);
      return 2;
    }
    return serve(argv[2], proxy ? argv[4] : "");
  } catch (const kj::Exception& e) {
    std::fprintf(stderr, "kj-bench-server: %s\n", e.getDescription().cStr());
  } catch (const std::exception& e) {
    std::fprintf(stderr, "kj-bench-server: %s\n", e.what());
  } catch (...) {
    std::fprintf(stderr, "kj-bench-server: unknown C++ exception\n");
  }
  return 1;
}
