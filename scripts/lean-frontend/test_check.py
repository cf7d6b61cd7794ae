"""Unit tests of check.py's parts that need no frontend: headers, import order, module
collisions, line mapping and message parsing. Run by scripts/lean-check.sh before the frontend."""
import os
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import check  # noqa: E402


def write(root, relative, text):
    path = os.path.join(root, relative)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)
    return path


class CheckTest(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp()
        self.lib = os.path.join(self.dir, "lib")
        self.app = os.path.join(self.dir, "app")

    def test_files_come_in_import_order_with_external_imports_hoisted(self):
        write(self.lib, "A/Base.lean", "import Std.Data.HashMap\ndef base := 1\n")
        write(self.lib, "A/Top.lean", "-- top\nimport A.Base\n\ndef top := base\n")
        entry = write(self.app, "Main.lean", "import A.Top\nimport A.Base\ndef main : IO Unit := pure ()\n")
        order, external = check.load_closure([entry], [self.app, self.lib], None)
        self.assertEqual([s.module for s in order], ["A.Base", "A.Top", "Main"])
        self.assertEqual([m for m, _ in external], ["Std.Data.HashMap"])

    def test_a_module_provided_twice_is_refused(self):
        write(self.lib, "Capnp/Gen/Calculator.lean", "def x := 1\n")
        write(self.app, "Capnp/Gen/Calculator.lean", "def y := 2\n")
        with self.assertRaises(SystemExit) as refused:
            check.resolve("Capnp.Gen.Calculator", [self.app, self.lib])
        self.assertIn("provided twice", str(refused.exception))

    def test_fresh_output_replaces_only_its_committed_copy(self):
        fresh = os.path.join(self.dir, "fresh")
        committed = write(self.lib, "Capnp/Schemas/Calculator.lean", "def old := 1\n")
        generated = write(fresh, "Capnp/Schemas/Calculator.lean", "def new := 1\n")
        self.assertEqual(check.resolve("Capnp.Schemas.Calculator", [self.lib], (fresh, self.lib)), generated)
        self.assertNotEqual(generated, committed)
        write(self.app, "Capnp/Schemas/Calculator.lean", "def clash := 1\n")
        with self.assertRaises(SystemExit):
            check.resolve("Capnp.Schemas.Calculator", [self.app, self.lib], (fresh, self.lib))

    def test_messages_map_back_to_their_file_and_line_and_sorry_is_an_error(self):
        write(self.lib, "A.lean", "def a : Nat := 1\n")
        entry = write(self.app, "B.lean", "import A\n\ndef b : Nat := \"x\"\ntheorem t : True := sorry\n")
        order, external = check.load_closure([entry], [self.app, self.lib], None)
        text, origin = check.concatenate(order, external)
        lines = text.split("\n")
        wrong = lines.index('def b : Nat := "x"') + 1
        cheat = lines.index("theorem t : True := sorry") + 1
        output = (f"echo of the input\n{check.FRONTEND_STARTED}...\n"
                  f"/tmp/c.lean:{wrong}:15: error: Type mismatch\n  \"x\"\n"
                  "[DEBUG:K] done\n"
                  f"/tmp/c.lean:{cheat}:8: warning: declaration uses 'sorry'\n")
        formatted = [check.format_message(m, origin, self.dir, [])
                     for m in check.parse_messages(output, "/tmp/c.lean")]
        self.assertEqual(formatted, [
            ("error", 'app/B.lean:3:15: error: Type mismatch\n  "x"'),
            ("error", "app/B.lean:4:8: error: declaration uses 'sorry'"),
        ])


if __name__ == "__main__":
    unittest.main()
