#!/usr/bin/env bash
# Builds the docs of every library crate a user depends on the way docs.rs would: with neither
# Cap'n Proto nor Lean available (DOCS_RS=1 makes the build scripts skip the C++ shim and the
# schema compiler; pkg-config is pointed at an empty folder so a probe that slipped through
# fails), and with every rustdoc warning an error. Run by scripts/test.sh.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
crates=(capnp-lean-sys capnp-lean capnp-lean-leanrt capnp-lean-loader capnp-lean-glue capnp-lean-toolchain capnpc-lean)
args=()
for crate in "${crates[@]}"; do args+=(-p "$crate"); done
empty="$(mktemp -d)"
trap 'rm -rf "$empty"' EXIT
DOCS_RS=1 PKG_CONFIG_LIBDIR="$empty" PKG_CONFIG_PATH="$empty" RUSTDOCFLAGS="-D warnings" \
  cargo doc --quiet --no-deps --target-dir target/docs-guard "${args[@]}"
echo "check-docs: ${#crates[@]} crates document without Cap'n Proto or Lean, warning-free"
