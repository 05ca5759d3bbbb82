"""The parity gate's comparison: next-token logits of iol and of transformers on the same prompts.

Both sides dump raw little-endian float32 [positions][vocab] -- the logits at every position of
each prompt (teacher-forced: one forward pass over the prompt), prompts concatenated in request
order -- with a JSON beside it (parity_meta_path) giving the shape and each prompt's rows; the
layout of tests/fixtures/hf_bf16/*.logits.f32. compare_logits reports:
  top1_agreement  fraction of positions whose argmax (first index on ties, as numpy) agrees
  max_abs_diff    max |a - b| over all logits
  max_abs_logit   max |logit| over both files (the scale max_abs_diff is read against)
Positions with a NaN or an infinity in either file count as disagreeing and are left out of the
two maxima (num_nonfinite_positions says how many; a gate should fail on any). It streams a row at
a time, with numpy when present and the standard library (array) otherwise, so it runs in CI.
"""
import argparse
import json
import math
import operator
import os
import sys
from array import array

from . import BaselineError

FLOAT_BYTES = 4


def parity_meta_path(logits_path):
    """x.logits.f32 -> x.logits.json (x.bin -> x.bin.json)."""
    return (logits_path[:-4] if logits_path.endswith(".f32") else logits_path) + ".json"


def _num_positions(path, vocab):
    try:
        size = os.path.getsize(path)
    except OSError as e:
        raise BaselineError(f"{path}: cannot read the logits file ({e.strerror})") from None
    if size % (FLOAT_BYTES * vocab) != 0:
        raise BaselineError(f"{path}: {size} bytes is not a whole number of float32 rows of {vocab} logits; "
                            f"wrong --vocab?")
    return size // (FLOAT_BYTES * vocab)


def _rows_stdlib(f, vocab):
    swap = sys.byteorder != "little"
    while True:
        data = f.read(FLOAT_BYTES * vocab)
        if not data:
            return
        row = array("f")
        row.frombytes(data)
        if swap:
            row.byteswap()
        yield row


def _compare_stdlib(fa, fb, vocab):
    agree = nonfinite = 0
    max_diff = max_logit = 0.0
    for ra, rb in zip(_rows_stdlib(fa, vocab), _rows_stdlib(fb, vocab)):
        hi_a, lo_a, hi_b, lo_b = max(ra), min(ra), max(rb), min(rb)
        # NaN poisons max/min unpredictably, so look for it directly; infinities show in the extremes.
        if (any(map(math.isnan, ra)) or any(map(math.isnan, rb))
                or not all(map(math.isfinite, (hi_a, lo_a, hi_b, lo_b)))):
            nonfinite += 1
            continue
        if ra.index(hi_a) == rb.index(hi_b):  # array.index: the first maximum, as numpy.argmax
            agree += 1
        max_logit = max(max_logit, hi_a, -lo_a, hi_b, -lo_b)
        max_diff = max(max_diff, max(map(abs, map(operator.sub, ra, rb))))
    return agree, nonfinite, max_diff, max_logit


def _compare_numpy(np, a_path, b_path, vocab, positions):
    a = np.memmap(a_path, dtype="<f4", mode="r", shape=(positions, vocab))
    b = np.memmap(b_path, dtype="<f4", mode="r", shape=(positions, vocab))
    agree = nonfinite = 0
    max_diff = max_logit = 0.0
    chunk = max(1, (64 << 20) // (FLOAT_BYTES * vocab))
    for start in range(0, positions, chunk):
        ra = np.asarray(a[start:start + chunk], dtype=np.float64)
        rb = np.asarray(b[start:start + chunk], dtype=np.float64)
        finite = np.isfinite(ra).all(axis=1) & np.isfinite(rb).all(axis=1)
        nonfinite += int((~finite).sum())
        ra, rb = ra[finite], rb[finite]
        if len(ra) == 0:
            continue
        agree += int((ra.argmax(axis=1) == rb.argmax(axis=1)).sum())
        max_diff = max(max_diff, float(np.abs(ra - rb).max()))
        max_logit = max(max_logit, float(np.abs(ra).max()), float(np.abs(rb).max()))
    return agree, nonfinite, max_diff, max_logit


def compare_logits(a_path, b_path, vocab, use_numpy=None):
    """Compares two float32 [positions][vocab] logits files; see the module comment."""
    if not isinstance(vocab, int) or vocab < 1:
        raise BaselineError(f"vocab must be a positive integer (got {vocab!r})")
    positions = _num_positions(a_path, vocab)
    other = _num_positions(b_path, vocab)
    if positions != other:
        raise BaselineError(f"{a_path} has {positions} positions of {vocab} logits but {b_path} has {other}: "
                            f"not the same prompts")
    np = None
    if use_numpy is not False:
        try:
            import numpy as np
        except ImportError:
            if use_numpy:
                raise
    if positions == 0:
        agree = nonfinite = 0
        max_diff = max_logit = 0.0
    elif np is not None:
        agree, nonfinite, max_diff, max_logit = _compare_numpy(np, a_path, b_path, vocab, positions)
    else:
        with open(a_path, "rb") as fa, open(b_path, "rb") as fb:
            agree, nonfinite, max_diff, max_logit = _compare_stdlib(fa, fb, vocab)
    return {"top1_agreement": agree / positions if positions else None, "max_abs_diff": float(max_diff),
            "max_abs_logit": float(max_logit), "num_positions": positions, "num_top1_agree": agree,
            "num_nonfinite_positions": nonfinite, "vocab_size": vocab}


def parity_meta(logits_file, vocab, prompts, extra):
    """The JSON beside a logits dump. prompts: [(request index, positions)] in file order."""
    rows, entries = 0, []
    for index, positions in prompts:
        entries.append({"index": index, "num_positions": positions, "logits_row_offset": rows})
        rows += positions
    meta = {"kind": "parity_logits", "logits_file": os.path.basename(logits_file),
            "logits_dtype": "float32 little-endian", "logits_shape": [rows, vocab], "vocab_size": vocab,
            "prompts": entries}
    meta.update(extra)
    return meta


def main(argv=None):
    parser = argparse.ArgumentParser(
        prog="parity.py", description="Compare two next-token logits dumps (float32 [positions][vocab]); print JSON.")
    parser.add_argument("a", help="logits file, e.g. iol's dump")
    parser.add_argument("b", help="logits file, e.g. run_baseline.py --parity-logits")
    parser.add_argument("--vocab", type=int, required=True, help="vocabulary size (logits per position)")
    args = parser.parse_args(argv)
    try:
        result = compare_logits(args.a, args.b, args.vocab)
    except BaselineError as e:
        print(f"parity.py: {e}", file=sys.stderr)
        return 2
    print(json.dumps(result))
    return 0
