"""compare_logits on small hand-made arrays (standard library path; numpy path when present), on
the committed transformers fixtures, and the parity.py CLI."""
import json
import os
import struct
import subprocess
import sys
import tempfile
import unittest

from fakes import REPO_ROOT
from iol_baseline import BaselineError
from iol_baseline.parity import compare_logits, parity_meta, parity_meta_path

HERE = os.path.dirname(os.path.abspath(__file__))
PARITY_CLI = os.path.join(os.path.dirname(HERE), "parity.py")
FIXTURES = os.path.join(REPO_ROOT, "tests", "fixtures", "hf_bf16")

try:
    import numpy  # noqa: F401
    HAVE_NUMPY = True
except ImportError:
    HAVE_NUMPY = False


def write(path, rows):
    with open(path, "wb") as f:
        for row in rows:
            f.write(struct.pack(f"<{len(row)}f", *row))


class Compare(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.TemporaryDirectory()
        self.a = os.path.join(self.dir.name, "a.f32")
        self.b = os.path.join(self.dir.name, "b.f32")

    def tearDown(self):
        self.dir.cleanup()

    def compare(self, a_rows, b_rows, vocab, **kw):
        write(self.a, a_rows)
        write(self.b, b_rows)
        return compare_logits(self.a, self.b, vocab, **kw)

    def test_hand_made(self):
        a = [[1.0, 3.0, 2.0], [0.5, 0.25, -4.0], [2.0, 2.0, 1.0]]
        b = [[1.0, 2.5, 2.0], [0.25, 0.5, -4.0], [2.0, 1.5, 1.0]]
        r = self.compare(a, b, 3, use_numpy=False)
        # Argmaxes: a 1, 0, 0 (first of the tie); b 1, 1, 0 -> 2 of 3 agree.
        self.assertEqual(r["num_positions"], 3)
        self.assertEqual(r["num_top1_agree"], 2)
        self.assertAlmostEqual(r["top1_agreement"], 2 / 3)
        self.assertEqual(r["max_abs_diff"], 0.5)
        self.assertEqual(r["max_abs_logit"], 4.0)
        self.assertEqual(r["num_nonfinite_positions"], 0)

    def test_identical(self):
        rows = [[float(i * 3 + j) for j in range(3)] for i in range(4)]
        r = self.compare(rows, rows, 3, use_numpy=False)
        self.assertEqual((r["top1_agreement"], r["max_abs_diff"], r["max_abs_logit"]), (1.0, 0.0, 11.0))

    def test_nonfinite_positions_disagree_and_are_left_out(self):
        nan, inf = float("nan"), float("inf")
        a = [[1.0, 2.0], [nan, 0.0], [0.0, 1.0]]
        b = [[1.0, 2.0], [0.0, 0.0], [0.0, inf]]
        r = self.compare(a, b, 2, use_numpy=False)
        self.assertEqual((r["num_nonfinite_positions"], r["num_top1_agree"]), (2, 1))
        self.assertEqual((r["max_abs_diff"], r["max_abs_logit"]), (0.0, 2.0))

    @unittest.skipUnless(HAVE_NUMPY, "numpy is not installed here: the numpy path is checked where it is")
    def test_numpy_path_agrees(self):
        a = [[1.0, 3.0, 2.0], [0.5, 0.25, -4.0], [2.0, 2.0, 1.0], [float("nan"), 0.0, 0.0]]
        b = [[1.0, 2.5, 2.0], [0.25, 0.5, -4.0], [2.0, 1.5, 1.0], [0.0, 0.0, 0.0]]
        self.assertEqual(self.compare(a, b, 3, use_numpy=True), self.compare(a, b, 3, use_numpy=False))

    def test_shape_errors(self):
        write(self.a, [[1.0, 2.0, 3.0]])
        write(self.b, [[1.0, 2.0, 3.0], [1.0, 2.0, 3.0]])
        with self.assertRaisesRegex(BaselineError, "not the same prompts"):
            compare_logits(self.a, self.b, 3)
        with self.assertRaisesRegex(BaselineError, "wrong --vocab"):
            compare_logits(self.a, self.b, 2)
        with self.assertRaisesRegex(BaselineError, "cannot read"):
            compare_logits(self.a, os.path.join(self.dir.name, "missing.f32"), 3)

    def test_meta(self):
        self.assertEqual(parity_meta_path("x/parity.logits.f32"), "x/parity.logits.json")
        self.assertEqual(parity_meta_path("x/p.bin"), "x/p.bin.json")
        meta = parity_meta("x/p.f32", 10, [(0, 3), (1, 5)], {"engine": "e"})
        self.assertEqual(meta["logits_shape"], [8, 10])
        self.assertEqual([p["logits_row_offset"] for p in meta["prompts"]], [0, 3])
        self.assertEqual((meta["logits_file"], meta["engine"]), ("p.f32", "e"))

    def test_cli_prints_json(self):
        write(self.a, [[1.0, 3.0], [2.0, 1.0]])
        write(self.b, [[1.0, 3.5], [1.0, 2.0]])
        out = subprocess.run([sys.executable, "-B", PARITY_CLI, self.a, self.b, "--vocab", "2"], capture_output=True,
                             text=True, check=True)
        r = json.loads(out.stdout)
        self.assertEqual((r["top1_agreement"], r["max_abs_diff"], r["max_abs_logit"]), (0.5, 1.0, 3.5))
        bad = subprocess.run([sys.executable, "-B", PARITY_CLI, self.a, self.b, "--vocab", "3"], capture_output=True, text=True)
        self.assertNotEqual(bad.returncode, 0)
        self.assertEqual(len(bad.stderr.strip().splitlines()), 1)


class Fixtures(unittest.TestCase):
    """transformers' own bf16 vs fp32 logits of the committed fixtures (tests/fixtures/hf_bf16)."""

    def test_bf16_against_fp32(self):
        meta_path = os.path.join(FIXTURES, "llama31-gqa.json")
        if not os.path.exists(meta_path):
            self.skipTest("tests/fixtures/hf_bf16 is not in this checkout")
        with open(meta_path) as f:
            meta = json.load(f)
        bf16 = os.path.join(FIXTURES, meta["logits_file"])
        fp32 = os.path.join(FIXTURES, meta["fp32_logits_file"])
        rows, vocab = meta["logits_shape"]
        same = compare_logits(bf16, bf16, vocab, use_numpy=False)
        self.assertEqual((same["num_positions"], same["top1_agreement"], same["max_abs_diff"]), (rows, 1.0, 0.0))
        r = compare_logits(bf16, fp32, vocab, use_numpy=False)
        self.assertEqual(r["num_positions"], rows)
        self.assertGreater(r["top1_agreement"], 0.9)          # bf16 rounding flips only near-ties
        self.assertGreater(r["max_abs_diff"], 0.0)
        self.assertLess(r["max_abs_diff"], 0.1 * r["max_abs_logit"])


if __name__ == "__main__":
    unittest.main()
