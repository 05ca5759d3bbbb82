#!/usr/bin/env python3
"""parity.py A B --vocab V: the parity gate's comparison of two next-token logits dumps
(float32 [positions][vocab], iol's and run_baseline.py --parity-logits'); prints one JSON object
with top1_agreement, max_abs_diff and max_abs_logit (iol_baseline/parity.py says how)."""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from iol_baseline.parity import compare_logits, main  # noqa: E402,F401

if __name__ == "__main__":
    sys.exit(main())
