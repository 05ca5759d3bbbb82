"""The request file that `iol bench --export-requests FILE` writes and the baseline consumes.

Owns parsing and validating it (docs/baseline.md, "Request file"): JSONL, line 1 the workload
header, then one line per request, warm-up requests first, indices 0, 1, 2, ... Every error names
the file and the line, so a broken export is found at once and not after a model is loaded.
"""
import json
import math
from dataclasses import dataclass
from typing import Optional

from . import BaselineError

ARRIVAL_MODES = ("offline", "closed", "poisson")


class RequestFileError(BaselineError):
    pass


@dataclass(frozen=True)
class SweepPoint:
    mode: str                      # offline | closed | poisson
    concurrency: Optional[int]     # closed loop only
    request_rate: Optional[float]  # poisson only
    label: str                     # iol's label, e.g. "offline", "concurrency=8", "rate=2"
    arrival_s: Optional[tuple]     # poisson: due time of each measured request, seconds from start


@dataclass(frozen=True)
class Request:
    index: int
    warmup: bool
    prompt_token_ids: tuple
    output_len: int
    ignore_eos: bool


@dataclass
class RequestFile:
    path: str
    workload: dict         # iol's "workload" object, without "sweep"
    sweep_points: list     # [SweepPoint]
    model: str             # iol's description of the model
    vocab_size: int
    iol_version: str
    git_commit: str
    requests: list         # [Request], warm-up first

    @property
    def warmup_requests(self):
        return [r for r in self.requests if r.warmup]

    @property
    def measured_requests(self):
        return [r for r in self.requests if not r.warmup]


def _is_int(value):
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value):
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _parse_sweep_point(where, i, item):
    here = f"{where}: sweep_points[{i}]"
    if not isinstance(item, dict):
        raise RequestFileError(f"{here} is not an object")
    mode = item.get("mode")
    if mode not in ARRIVAL_MODES:
        raise RequestFileError(f"{here}: mode must be one of {', '.join(ARRIVAL_MODES)} (got {mode!r})")
    label = item.get("label")
    if not isinstance(label, str) or not label:
        raise RequestFileError(f"{here}: label must be a non-empty string")
    concurrency = item.get("concurrency")
    request_rate = item.get("request_rate")
    arrival_s = item.get("arrival_s")
    if mode == "closed" and not (_is_int(concurrency) and concurrency >= 1):
        raise RequestFileError(f"{here}: a closed-loop point needs an integer concurrency >= 1 (got {concurrency!r})")
    if mode != "closed" and concurrency is not None and not _is_int(concurrency):
        raise RequestFileError(f"{here}: concurrency must be an integer or null")
    if mode == "poisson":
        if not (_is_number(request_rate) and request_rate > 0):
            raise RequestFileError(f"{here}: a poisson point needs request_rate > 0 (got {request_rate!r})")
        if not isinstance(arrival_s, list):
            raise RequestFileError(f"{here}: a poisson point needs arrival_s, a list of arrival times in seconds")
        previous = 0.0
        for k, t in enumerate(arrival_s):
            if not _is_number(t) or t < 0:
                raise RequestFileError(f"{here}: arrival_s[{k}] must be a finite number >= 0 (got {t!r})")
            if t < previous:
                raise RequestFileError(f"{here}: arrival_s must not decrease (arrival_s[{k}] = {t} < {previous})")
            previous = t
        arrival_s = tuple(float(t) for t in arrival_s)
    else:
        if request_rate is not None and not _is_number(request_rate):
            raise RequestFileError(f"{here}: request_rate must be a number or null")
        if arrival_s is not None:
            raise RequestFileError(f"{here}: arrival_s is only for poisson points (this one is {mode})")
    return SweepPoint(mode, concurrency if mode == "closed" else None,
                      float(request_rate) if mode == "poisson" else None, label, arrival_s)


def _parse_header(where, obj):
    if not isinstance(obj, dict) or obj.get("kind") != "workload":
        raise RequestFileError(f"{where}: the first line must be the workload header, {{\"kind\": \"workload\", ...}}")
    workload = obj.get("workload")
    if not isinstance(workload, dict):
        raise RequestFileError(f"{where}: 'workload' must be an object (iol's workload record)")
    for key in ("name", "arrival"):
        if key not in workload:
            raise RequestFileError(f"{where}: workload.{key} is missing")
    points = obj.get("sweep_points")
    if not isinstance(points, list) or not points:
        raise RequestFileError(f"{where}: 'sweep_points' must be a non-empty list")
    sweep_points = [_parse_sweep_point(where, i, p) for i, p in enumerate(points)]
    vocab_size = obj.get("vocab_size")
    if not (_is_int(vocab_size) and vocab_size >= 1):
        raise RequestFileError(f"{where}: 'vocab_size' must be an integer >= 1 (got {vocab_size!r})")
    strings = {}
    for key in ("model", "iol_version", "git_commit"):
        value = obj.get(key)
        if not isinstance(value, str):
            raise RequestFileError(f"{where}: '{key}' must be a string (got {value!r})")
        strings[key] = value
    workload = {k: v for k, v in workload.items() if k != "sweep"}
    return workload, sweep_points, vocab_size, strings


def _parse_request(where, obj, expected_index, vocab_size):
    if not isinstance(obj, dict) or obj.get("kind") != "request":
        raise RequestFileError(f"{where}: expected a request line, {{\"kind\": \"request\", ...}}")
    index = obj.get("index")
    if index != expected_index or not _is_int(index):
        raise RequestFileError(f"{where}: index must be {expected_index} (requests are numbered 0, 1, 2, ... in order; got {index!r})")
    warmup = obj.get("warmup")
    if not isinstance(warmup, bool):
        raise RequestFileError(f"{where}: 'warmup' must be true or false")
    ids = obj.get("prompt_token_ids")
    if not isinstance(ids, list) or not ids:
        raise RequestFileError(f"{where}: 'prompt_token_ids' must be a non-empty list of token ids")
    for k, t in enumerate(ids):
        if not _is_int(t) or t < 0 or t >= vocab_size:
            raise RequestFileError(f"{where}: prompt_token_ids[{k}] = {t!r} is not a token id in [0, {vocab_size})")
    output_len = obj.get("output_len")
    if not (_is_int(output_len) and output_len >= 1):
        raise RequestFileError(f"{where}: 'output_len' must be an integer >= 1 (got {output_len!r})")
    ignore_eos = obj.get("ignore_eos")
    if not isinstance(ignore_eos, bool):
        raise RequestFileError(f"{where}: 'ignore_eos' must be true or false")
    return Request(index, warmup, tuple(ids), output_len, ignore_eos)


def parse_lines(path, lines):
    """Parses an iterable of text lines (the file's); raises RequestFileError naming path:line."""
    header = None
    requests = []
    seen_measured = False
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        where = f"{path}:{number}"
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as e:
            raise RequestFileError(f"{where}: not valid JSON ({e.msg} at column {e.colno})") from None
        if header is None:
            header = _parse_header(where, obj)
            continue
        request = _parse_request(where, obj, len(requests), header[2])
        if request.warmup and seen_measured:
            raise RequestFileError(f"{where}: warm-up request {request.index} after a measured one (warm-up requests come first)")
        seen_measured |= not request.warmup
        requests.append(request)
    if header is None:
        raise RequestFileError(f"{path}: empty; expected the workload header on line 1")
    workload, sweep_points, vocab_size, strings = header
    measured = [r for r in requests if not r.warmup]
    if not measured:
        raise RequestFileError(f"{path}: no measured requests (only {len(requests)} warm-up)")
    for key, count in (("num_requests", len(measured)), ("warmup_requests", len(requests) - len(measured))):
        declared = workload.get(key)
        if _is_int(declared) and declared != count:
            raise RequestFileError(f"{path}: workload.{key} is {declared} but the file has {count} such requests")
    for i, point in enumerate(sweep_points):
        if point.arrival_s is not None and len(point.arrival_s) != len(measured):
            raise RequestFileError(f"{path}: sweep_points[{i}] ({point.label}) has {len(point.arrival_s)} arrival times "
                                   f"for {len(measured)} measured requests")
    return RequestFile(path, workload, sweep_points, strings["model"], vocab_size, strings["iol_version"],
                       strings["git_commit"], requests)


def load(path):
    try:
        with open(path, encoding="utf-8") as f:
            return parse_lines(path, f)
    except OSError as e:
        raise RequestFileError(f"{path}: cannot read the request file ({e.strerror}); write it with "
                               f"`iol bench ... --export-requests {path}`") from None
    except UnicodeDecodeError as e:
        raise RequestFileError(f"{path}: not UTF-8 text ({e.reason} at byte {e.start})") from None
