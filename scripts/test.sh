#!/usr/bin/env bash
# Runs every test: installs missing system packages, provisions the pinned Lean 4.35.0 runtime
# (the glue and loader tests run against it), then the whole workspace's tests. Skipped tests
# (those needing a Lean toolchain with lake) are listed at the end; CAPNP_LEAN_STRICT=1 turns
# every skip into a failure.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
source scripts/ensure-deps.sh
bash scripts/fetch-lean-runtime.sh
skips="$(mktemp)"
trap 'rm -f "$skips"' EXIT
export CAPNP_LEAN_SKIP_LOG="$skips"
cargo build --quiet --workspace --all-targets
cargo test --workspace --no-fail-fast
# The bridge's default transport is the coalescing stream; prove wire compatibility on KJ's
# stock stream too by running every bridge interop suite again on it.
CAPNP_LEAN_TRANSPORT=stock cargo test -p interop-tests --test bridge_interop --test bridge_faults \
  --test bridge_limits --test netns_faults
if [[ -s "$skips" ]]; then
  echo "tests that skipped (and why):"
  sort "$skips" | uniq -c
fi
