// Native C++ KJ benchmark server: the stock Cap'n Proto 0.9.2 RPC stack serving `Interop.echo`,
// so rpc-bench can measure the server role of KJ against capnp-rpc's and the bridge's. Only
// `echo` is implemented; every other method answers `unimplemented` (KJ's default).
//
// Usage: kj-bench-server --listen ADDR
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

const char* const kUsage = "usage: kj-bench-server --listen ADDR";

// Echoes the params' payload back in the results, as every other Interop server does.
class EchoServer final : public Interop::Server {
 protected:
  kj::Promise<void> echo(EchoContext context) override {
    context.getResults().setPayload(context.getParams().getPayload());
    return kj::READY_NOW;
  }
};

// `ADDR` with the port KJ bound in place of the one asked for (a unix path is printed as given).
std::string boundAddress(const std::string& requested, unsigned port) {
  if (requested.rfind("unix:", 0) == 0) return requested;
  size_t colon = requested.rfind(':');
  std::string host = colon == std::string::npos ? requested : requested.substr(0, colon);
  return host + ":" + std::to_string(port);
}

int serve(const std::string& address) {
  capnp::ReaderOptions readerOptions;
  readerOptions.traversalLimitInWords = 64 * 1024 * 1024;
  capnp::EzRpcServer server(kj::heap<EchoServer>(), address.c_str(), 0, readerOptions);
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
    if (argc != 3 || std::string(argv[1]) != "--listen") {
      std::fprintf(stderr, "kj-bench-server: expected --listen ADDR\n%s\n", kUsage);
      return 2;
    }
    return serve(argv[2]);
  } catch (const kj::Exception& e) {
    std::fprintf(stderr, "kj-bench-server: %s\n", e.getDescription().cStr());
  } catch (const std::exception& e) {
    std::fprintf(stderr, "kj-bench-server: %s\n", e.what());
  } catch (...) {
    std::fprintf(stderr, "kj-bench-server: unknown C++ exception\n");
  }
  return 1;
}
