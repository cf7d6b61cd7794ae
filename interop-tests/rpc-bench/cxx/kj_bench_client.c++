// Native C++ KJ benchmark client: the stock Cap'n Proto 0.9.2 RPC stack measured the same way as
// `rust-peer bench` (see src/rust_peer/bench.rs), printing the same one-line JSON, so a run can
// compare KJ, capnp-rpc and our bridge against one server.
//
// Usage: kj-bench-client --connect ADDR --calls N --window W --payload BYTES
//        kj-bench-client --connect ADDR --calls N --windows W,W,... --payload BYTES [--marks]
// ADDR is host:port or unix:/path (both understood by KJ's network address parser). The second
// form is rust_peer::bench's matrix form: one sequential run, then one pipelined run per window,
// one JSON line each with the process CPU time used (getrusage, which also marks the runs in an
// `strace -f` log for rpc-bench). With --marks it also prints `mark` before the first run and
// after each run and waits for a line on stdin each time (rust_peer::bench::MARK): rpc-bench
// reads the server's CPU time at each mark.

#include <capnp/ez-rpc.h>
#include <kj/async.h>
#include <kj/debug.h>
#include <sys/resource.h>

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
  std::vector<uint32_t> windows;  // non-empty selects the matrix form
  size_t payload = 0;
  bool marks = false;
};

const char* const kUsage =
    "usage: kj-bench-client --connect ADDR --calls N (--window W | --windows W,W,... [--marks]) --payload BYTES";

// Parses "1,8,64" into positive numbers; false if anything else is there.
bool parseWindows(const char* text, std::vector<uint32_t>& windows) {
  const char* cursor = text;
  while (true) {
    char* end = nullptr;
    unsigned long long number = std::strtoull(cursor, &end, 10);
    if (end == cursor || number == 0 || number > UINT32_MAX) return false;
    windows.push_back(static_cast<uint32_t>(number));
    if (*end == '\0') return true;
    if (*end != ',') return false;
    cursor = end + 1;
  }
}

// Returns an empty string on success, otherwise what was wrong with the arguments.
std::string parseOptions(int argc, const char** argv, Options& options) {
  bool seen[4] = {false, false, false, false};
  for (int i = 1; i < argc; i += 2) {
    std::string name = argv[i];
    if (name == "--marks") {
      options.marks = true;
      --i;  // a flag: no value follows
      continue;
    }
    if (i + 1 >= argc) return name + " needs a value";
    const char* value = argv[i + 1];
    char* end = nullptr;
    if (name == "--connect") {
      options.address = value;
      seen[0] = true;
      continue;
    }
    if (name == "--windows") {
      if (!parseWindows(value, options.windows)) return name + " " + value + " is not a list of positive numbers";
      seen[2] = true;
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
  if (options.marks && options.windows.empty()) return "--marks needs --windows";
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

// With --marks: tells rpc-bench that no call is in flight (`mark` on stdout) and waits until it
// has read the server's CPU time (a line on stdin; end of input also continues).
void mark(const Options& options) {
  if (!options.marks) return;
  std::printf("mark\n");
  std::fflush(stdout);
  char reply[16];
  (void)std::fgets(reply, sizeof(reply), stdin);
}

// User + system CPU time of every thread of this process, µs.
double processCpuMicros() {
  struct rusage usage {};
  KJ_SYSCALL(getrusage(RUSAGE_SELF, &usage));
  auto micros = [](const struct timeval& t) { return t.tv_sec * 1e6 + t.tv_usec; };
  return micros(usage.ru_utime) + micros(usage.ru_stime);
}

// Nearest-rank percentile, the same definition as rust_peer::bench::percentile.
double percentileMicros(std::vector<double>& samples, double rank) {
  if (samples.empty()) return 0.0;
  std::sort(samples.begin(), samples.end());
  size_t index = static_cast<size_t>(std::ceil(rank / 100.0 * samples.size()));
  index = std::min(std::max<size_t>(index, 1), samples.size());
  return samples[index - 1];
}

// Keeps `window` echoes in flight until `calls` have been made.
void runPipelined(Interop::Client& interop, uint32_t calls, uint32_t window,
                  kj::ArrayPtr<const kj::byte> payload, kj::WaitScope& waitScope) {
  uint32_t remaining = calls;
  kj::Vector<kj::Promise<void>> lanes;
  for (uint32_t i = 0; i < std::max<uint32_t>(window, 1); ++i) {
    lanes.add(runLane(interop, remaining, payload));
  }
  kj::joinPromises(lanes.releaseAsArray()).wait(waitScope);
}

// The matrix form: prints the same lines as rust_peer::bench::Measurement::to_json.
int runMatrix(const Options& options, Interop::Client& interop, kj::ArrayPtr<const kj::byte> payload,
              kj::WaitScope& waitScope) {
  std::vector<std::string> lines;
  char line[512];
  std::vector<double> samples;
  samples.reserve(options.calls);
  mark(options);
  double cpuStart = processCpuMicros();
  auto start = Clock::now();
  for (uint32_t i = 0; i < options.calls; ++i) {
    auto callStart = Clock::now();
    echoOnce(interop, payload, waitScope);
    samples.push_back(std::chrono::duration<double, std::micro>(Clock::now() - callStart).count());
  }
  double seconds = std::chrono::duration<double>(Clock::now() - start).count();
  double cpu = processCpuMicros() - cpuStart;
  mark(options);
  double p50 = percentileMicros(samples, 50.0);
  double p99 = percentileMicros(samples, 99.0);
  std::snprintf(line, sizeof(line),
                "{\"client\":\"kj-cxx\",\"mode\":\"seq\",\"window\":null,\"calls\":%u,\"payload\":%zu,"
                "\"seconds\":%.6f,\"p50_us\":%.1f,\"p99_us\":%.1f,\"cpu_us\":%.0f}",
                options.calls, options.payload, seconds, p50, p99, cpu);
  lines.push_back(line);

  for (uint32_t window : options.windows) {
    cpuStart = processCpuMicros();
    start = Clock::now();
    runPipelined(interop, options.calls, window, payload, waitScope);
    seconds = std::chrono::duration<double>(Clock::now() - start).count();
    cpu = processCpuMicros() - cpuStart;
    mark(options);
    std::snprintf(line, sizeof(line),
                  "{\"client\":\"kj-cxx\",\"mode\":\"pipe\",\"window\":%u,\"calls\":%u,\"payload\":%zu,"
                  "\"seconds\":%.6f,\"p50_us\":null,\"p99_us\":null,\"cpu_us\":%.0f}",
                  window, options.calls, options.payload, seconds, cpu);
    lines.push_back(line);
  }
  for (const auto& text : lines) std::printf("%s\n", text.c_str());
  std::fflush(stdout);
  return 0;
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
  if (!options.windows.empty()) return runMatrix(options, interop, payload, waitScope);

  std::vector<double> samples;
  samples.reserve(options.calls);
  for (uint32_t i = 0; i < options.calls; ++i) {
    auto start = Clock::now();
    echoOnce(interop, payload, waitScope);
    samples.push_back(std::chrono::duration<double, std::micro>(Clock::now() - start).count());
  }

  auto start = Clock::now();
  runPipelined(interop, options.calls, options.window, payload, waitScope);
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
