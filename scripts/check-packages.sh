#!/usr/bin/env bash
# Checks what `cargo package` would ship for every publishable crate: everything a consumer's
# build needs (every tracked source, header, C++ file, schema and build script under the crate's
# folder) and nothing built (no target/, .lake/, Lean runtime, objects or libraries). Run by
# scripts/test.sh; fails naming the crate and the file.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

# Publishable crates: workspace members without `publish = false`.
mapfile -t crates < <(cargo metadata --no-deps --format-version 1 | python3 -c '
import json, os, sys
meta = json.load(sys.stdin)
root = meta["workspace_root"]
for p in meta["packages"]:
    if p.get("publish") == []:
        continue
    print(p["name"], os.path.relpath(os.path.dirname(p["manifest_path"]), root))
')
((${#crates[@]})) || { echo "check-packages: no publishable crate found" >&2; exit 1; }

status=0
listing="$(mktemp)"
trap 'rm -f "$listing"' EXIT
for entry in "${crates[@]}"; do
  read -r name dir <<<"$entry"
  cargo package --quiet --list --allow-dirty -p "$name" 2>/dev/null | sort >"$listing"
  # What a build needs: every tracked file of the crate but its tests' fixtures and docs.
  while IFS= read -r file; do
    relative="${file#"$dir"/}"
    grep -qxF "$relative" "$listing" || { echo "check-packages: $name does not ship $relative" >&2; status=1; }
  done < <(git ls-files "$dir" | grep -E '\.(rs|h|c\+\+|capnp)$|(^|/)build\.rs$')
  if grep -E '(^|/)(target|\.lake|\.lean-runtime|\.lean-frontend)/|\.(o|a|so|whl|olean)$' "$listing" >&2; then
    echo "check-packages: $name would ship the built files above" >&2
    status=1
  fi
done
((status == 0)) && echo "check-packages: ${#crates[@]} crates ship their sources, headers and schemas, nothing built"
exit $status
