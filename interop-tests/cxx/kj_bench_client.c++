// Native C++ KJ benchmark client: the stock Cap'n Proto 0.9.2 RPC stack measured the same way as
// `rust-peer bench` (see src/rust_peer/bench.rs), printing the same one-line JSON, so a run can
// compare KJ, capnp-rpc and our bridge against one server.
//
// Usage: kj-bench-client --connect ADDR --calls N --window W --payload BYTES
// ADDR is host:port or unix:/path (both understood by KJ's network address parser).

#include <capnp/ez-rpc.h>
#include <kj/async.h>
#include <kj/debug.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <string>
#include <vector>

#include "interop.capnp.h"

namespace {

// Matches rust_peer::bench::WARMUP_CALLS.
constexpr uint32_t kWarmupCalls = 100;

using Clock = std::chrono::steady_clock;

struct Options {
  std::string address;
  uint32_t calls = 0;
  uint32_t window = 0;
  size_t payload = 0;
};

const char* const kUsage =
    "usage: kj-bench-client --connect ADDR --calls N --window W --payload BYTES";

// Returns an empty string on success, otherwise what was wrong with the arguments.
std::string parseOptions(int argc, const char** argv, Options& options) {
  bool seen[4] = {false, false, false, false};
  for (int i = 1; i < argc; i += 2) {
    std::string name = argv[i];
    if (i + 1 >= argc) return name + " needs a value";
    const char* value = argv[i + 1];
    char* end = nullptr;
    if (name == "--connect") {
      options.address = value;
      seen[0] = true;
      continue;
    }
    unsigned long long number = std::strtoull(value, &end, 10);
    if (end == value || *end != '\0') return name + " " + value + " is not a number";
    if (name == "--calls") {
      options.calls = static_cast<uint32_t>(number);
      seen[1] = true;
    } else if (name == "--window") {
      options.window = static_cast<uint32_t>(number);
      seen[2] = true;
    } else if (name == "--payload") {
      options.payload = static_cast<size_t>(number);
      seen[3] = true;
    } else {
      return "unknown option " + name;
    }
  }
  for (bool present : seen) {
    if (!present) return "missing option";
  }
  return "";
}

void echoOnce(Interop::Client& interop, kj::ArrayPtr<const kj::byte> payload, kj::WaitScope& waitScope) {
  auto request = interop.echoRequest();
  request.setPayload(payload);
  auto response = request.send().wait(waitScope);
  KJ_REQUIRE(response.getPayload().size() == payload.size(), "echo returned a different payload size");
}

// One lane of the throughput run: sends its next echo as soon as the previous one returns, until
// the shared budget is spent. `window` lanes keep `window` calls in flight.
kj::Promise<void> runLane(Interop::Client& interop, uint32_t& remaining,
                          kj::ArrayPtr<const kj::byte> payload) {
  if (remaining == 0) return kj::READY_NOW;
  --remaining;
  auto request = interop.echoRequest();
  request.setPayload(payload);
  return request.send().then([&interop, &remaining, payload](auto&& response) {
    KJ_REQUIRE(response.getPayload().size() == payload.size(), "echo returned a different payload size");
    return runLane(interop, remaining, payload);
  });
}

// Nearest-rank percentile, the same definition as rust_peer::bench::percentile.
double percentileMicros(std::vector<double>& samples, double rank) {
  if (samples.empty()) return 0.0;
  std::sort(samples.begin(), samples.end());
  size_t index = static_cast<size_t>(std::ceil(rank / 100.0 * samples.size()));
  index = std::min(std::max<size_t>(index, 1), samples.size());
  return samples[index - 1];
}

int runBenchmark(const Options& options) {
  capnp::ReaderOptions readerOptions;
  readerOptions.traversalLimitInWords = 64 * 1024 * 1024;
  capnp::EzRpcClient client(options.address.c_str(), 0, readerOptions);
  auto& waitScope = client.getWaitScope();
  Interop::Client interop = client.getMain<Interop>();

  std::vector<kj::byte> payloadBytes(options.payload, 0x5a);
  kj::ArrayPtr<const kj::byte> payload(payloadBytes.data(), payloadBytes.size());

  for (uint32_t i = 0; i < kWarmupCalls; ++i) echoOnce(interop, payload, waitScope);

  std::vector<double> samples;
  samples.reserve(options.calls);
  for (uint32_t i = 0; i < options.calls; ++i) {
    auto start = Clock::now();
    echoOnce(interop, payload, waitScope);
    samples.push_back(std::chrono::duration<double, std::micro>(Clock::now() - start).count());
  }

  uint32_t remaining = options.calls;
  auto start = Clock::now();
  kj::Vector<kj::Promise<void>> lanes;
  for (uint32_t i = 0; i < std::max<uint32_t>(options.window, 1); ++i) {
    lanes.add(runLane(interop, remaining, payload));
  }
  kj::joinPromises(lanes.releaseAsArray()).wait(waitScope);
  double seconds = std::chrono::duration<double>(Clock::now() - start).count();

  double p50 = percentileMicros(samples, 50.0);
  double p99 = percentileMicros(samples, 99.0);
  std::printf(
      "{\"client\":\"kj-cxx\",\"calls\":%u,\"window\":%u,\"payload\":%zu,"
      "\"p50_us\":%.1f,\"p99_us\":%.1f,\"calls_per_s\":%.0f}\n",
      options.calls, options.window, options.payload, p50, p99, options.calls / seconds);
  std::fflush(stdout);
  return 0;
}

}  // namespace

// The only entry point: every C++ and KJ exception is caught here, none crosses into Rust.
extern "C" int capnp_lean_kj_bench_main(int argc, const char** argv) {
  try {
    Options options;
    std::string problem = parseOptions(argc, argv, options);
    if (!problem.empty()) {
      std::fprintf(stderr, "kj-bench-client: %s\n%s\n", problem.c_str(), kUsage);
      return 2;
    }
    return runBenchmark(options);
  } catch (const kj::Exception& e) {
    std::fprintf(stderr, "kj-bench-client: %s\n", e.getDescription().cStr());
  } catch (const std::exception& e) {
    std::fprintf(stderr, "kj-bench-client: %s\n", e.what());
  } catch (...) {
    std::fprintf(stderr, "kj-bench-client: unknown C++ exception\n");
  }
  return 1;
}
