"""The PyTorch (Hugging Face transformers) baseline of iol (docs/baseline.md).

Pure modules (no torch at import time): requests_file, batching, timing, metrics, telemetry,
environment, records, schema_check, parity, driver. hf_runner is the only module that imports torch
and transformers; run_baseline.py imports it after the request file and the flags are validated.
"""


class BaselineError(Exception):
    """A user-facing error: printed as one line on stderr, the runner exits non-zero."""
