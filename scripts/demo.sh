#!/usr/bin/env bash
# Runs the two-party vat demo: a calculator server and client over KJ's RPC system, on loopback,
# printing what happened and the RPC messages decoded off the wire.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
source scripts/ensure-deps.sh
cargo build --quiet --release -p two-party-demo --bin two-party-demo
exec target/release/two-party-demo "$@"
