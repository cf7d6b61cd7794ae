#!/usr/bin/env bash
# Runs the tests that exercise the C++ shim with AddressSanitizer + UndefinedBehaviorSanitizer
# compiled into the shim (CAPNP_LEAN_SANITIZE=1, see ffi-cxx/capnp-lean-sys/build.rs) and the sanitizer runtime
# linked into the Rust test binaries; LeakSanitizer checks for leaks at every process exit.
# Any report fails the run. Debian's libcapnp/libkj stay uninstrumented (their allocations are
# still tracked: ASan intercepts malloc/new process-wide).
#
# Run:   bash scripts/test-sanitizers.sh          (CI runs it from scripts/test.sh)
# Uses its own target directory (target/sanitize) so the normal build is never mixed with it.
#
# Not run here, on purpose: tests that load the Lean runtime (capnp-lean-glue, capnp-lean-leanrt, capnp-lean-loader,
# interop-tests glue_*): Lean's bundled allocator and unwinder are not built for ASan, and what
# they would test is Lean's code, not the shim.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

target="$(rustc -vV | sed -n 's/^host: //p')"
export CAPNP_LEAN_SANITIZE=1
export CARGO_TARGET_DIR="${CAPNP_LEAN_SANITIZE_TARGET_DIR:-$PWD/target/sanitize}"
# With an explicit --target, RUSTFLAGS reach only the test binaries (and the peer binaries they
# spawn), not build scripts or proc macros.
# default-linker-libraries: rustc passes -nodefaultlibs, which would keep gcc from adding the
# sanitizer runtimes (first in the library list, as ASan requires).
export RUSTFLAGS="-Clink-arg=-fsanitize=address,undefined -Cdefault-linker-libraries=yes -Cforce-frame-pointers=yes"
export ASAN_OPTIONS="detect_leaks=1:halt_on_error=1:abort_on_error=0:exitcode=86:strict_string_checks=1:detect_stack_use_after_return=1:check_initialization_order=1"
export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1:exitcode=87"
# LeakSanitizer suppressions, each with its reason, go in scripts/sanitizers/lsan.supp.
export LSAN_OPTIONS="suppressions=$PWD/scripts/sanitizers/lsan.supp:print_suppressions=0"
# ASan keeps up to 256 MiB of freed memory in quarantine (resident), so the hostile-frame test's
# memory bound is widened here; the unsanitized run keeps the strict one.
export CAPNP_LEAN_RSS_GROWTH_LIMIT_MIB=1024
# Sanitized code is slower; the tests' own deadlines are generous, this only keeps CI bounded.
run() {
  echo "sanitizers: cargo test $*"
  timeout 1200 cargo test --quiet --target "$target" "$@"
}

run -p capnp-lean-sys --tests
run -p capnp-lean --test api
# The peer binaries these spawn (bridge-peer, rust-peer, reliability-peer) are built with the
# same flags, so hostile frames and killed peers hit a sanitized shim in every process.
run -p interop-tests --test bridge_faults --test reliability_peer_death --test reliability_hostile_frames
# Large messages are written from their owners' memory (no copy): their lifetimes, checked.
run -p interop-tests --test bridge_interop --test bridge_limits -- 16_b_to_1_mib multi_segment large_message
echo "sanitizers: no reports"
