#!/usr/bin/env bash
# Runs every test: installs missing system packages, provisions the pinned Lean 4.35.0 runtime
# (the glue and loader tests run against it), runs clippy with warnings denied, builds the library
# docs as docs.rs would (scripts/check-docs.sh: no Cap'n Proto, warnings denied), checks what each
# publishable crate would ship (scripts/check-packages.sh), type-checks every
# Lean file we ship and fresh capnpc-lean output with a real Lean frontend (scripts/lean-check.sh), then the whole
# workspace's tests, the bridge interop suites again on KJ's stock transport, and — where lake
# exists — the tests that compile Lean. Skips are listed at the end; CAPNP_LEAN_STRICT=1 turns every skip into a failure.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
need_node=1 source scripts/ensure-deps.sh
bash scripts/fetch-lean-runtime.sh
skips="$(mktemp)"
trap 'rm -f "$skips"' EXIT
export CAPNP_LEAN_SKIP_LOG="$skips"
cargo build --quiet --workspace --all-targets
# Lints, tests included: every unsafe block argued (clippy::undocumented_unsafe_blocks), no warning.
if cargo clippy --version >/dev/null 2>&1; then
  cargo clippy --quiet --workspace --all-targets -- -D warnings
else
  echo "SKIPPED: clippy (lints, every unsafe block argued): not installed; rustup component add clippy" >>"$skips"
fi
bash scripts/check-docs.sh
bash scripts/check-packages.sh
bash scripts/lean-check.sh
cargo test --workspace --no-fail-fast
bash scripts/test-sanitizers.sh
# The bridge's default transport is the coalescing stream; prove wire compatibility on KJ's
# stock stream too by running every bridge interop suite again on it.
CAPNP_LEAN_TRANSPORT=stock cargo test -p interop-tests --test bridge_interop --test bridge_faults \
  --test bridge_limits --test netns_faults --test reliability_hostile_frames --test reliability_slow_peers --test reliability_send_queue --test reliability_queue_unwind \
  --test reliability_send_queue_client --test reliability_memory_return --test reliability_many_connections \
  --test error_rule
# Tests that compile Lean need lake; they are #[ignore]d in plain `cargo test` and run here.
if command -v lake >/dev/null 2>&1; then
  cargo test -p capnpc-lean --test lake -- --ignored
  cargo test -p capnp-lean-toolchain --test lake_seam -- --ignored
  cargo test -p capnp-lean-loader --test loader_real_lake -- --ignored
  cargo test -p capnp-lean-worker --test worker_real_lake -- --ignored
  cargo test -p interop-tests --test glue_lake_example -- --ignored
else
  echo "SKIPPED: the Lean compilation tests (lean-rpc lake test, real Lake bundle, Lean example client, Lean worker capability): lake not found; install Lean 4.35.0 with elan (https://github.com/leanprover/elan) or set LEAN_SYSROOT" >>"$skips"
fi
if [[ -s "$skips" ]]; then
  echo "tests that skipped (and why):"
  sort "$skips" | uniq -c
  if [[ "${CAPNP_LEAN_STRICT:-}" == 1 ]]; then
    echo "CAPNP_LEAN_STRICT=1: skips are failures" >&2
    exit 1
  fi
fi
