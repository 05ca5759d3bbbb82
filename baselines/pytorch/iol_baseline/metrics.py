"""Benchmark metrics with vLLM's definitions (docs/metrics.md), computed exactly as iol does.

A line-for-line port of src/iol/bench/metrics.cpp, so that a record of the baseline and one of
iol mean the same thing: per-request TTFT, TPOT, ITL and E2E from raw timestamps; per-run counts,
duration (first measured arrival -> last measured finish), throughputs, goodput under SLOs; and
distributions whose percentiles interpolate linearly between order statistics (numpy's default)
and whose std is the population standard deviation (ddof = 0). The mean and std sum the sorted
values in order, as the C++ does, so the two agree to the last bit on the same input.
"""
import math
from dataclasses import dataclass, field
from typing import Optional

from . import BaselineError


@dataclass
class RequestTrace:
    """Raw record of one request; times in seconds from the start of the run (iol's RequestTrace)."""
    index: int = 0
    warmup: bool = False
    status: str = "ok"
    error: str = ""
    input_tokens: int = 0
    output_tokens: int = 0
    arrival: float = 0.0         # when the request was due (open loop) or sent (batch start)
    first_token: float = -1.0
    finished: float = -1.0
    token_times: list = field(default_factory=list)  # one per output token
    cached_prompt_tokens: int = 0
    preemptions: int = 0

    def to_json(self, run_id):
        """One line of the traces side file, with the keys and order of iol's results.cpp."""
        return {"run_id": run_id, "index": self.index, "warmup": self.warmup, "status": self.status,
                "error": self.error, "input_tokens": self.input_tokens, "output_tokens": self.output_tokens,
                "arrival": self.arrival, "first_token": self.first_token, "finished": self.finished,
                "token_times": list(self.token_times), "cached_prompt_tokens": self.cached_prompt_tokens,
                "preemptions": self.preemptions}


def percentile(sorted_values, q):
    """Linear interpolation between order statistics (numpy's default 'linear' method)."""
    if not sorted_values:
        return 0.0
    rank = q / 100.0 * (len(sorted_values) - 1)
    lo, hi = math.floor(rank), math.ceil(rank)
    return sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * (rank - lo)


def summarize(values):
    """count, mean, median, p90, p95, p99, std (ddof = 0), min, max; nulls when there are none."""
    keys = ("mean", "median", "p90", "p95", "p99", "std", "min", "max")
    if not values:
        return {"count": 0, **{k: None for k in keys}}
    v = sorted(float(x) for x in values)
    total = 0.0
    for x in v:
        total += x
    mean = total / len(v)
    squares = 0.0
    for x in v:
        squares += (x - mean) * (x - mean)
    return {"count": len(v), "mean": mean, "median": percentile(v, 50), "p90": percentile(v, 90),
            "p95": percentile(v, 95), "p99": percentile(v, 99), "std": math.sqrt(squares / len(v)),
            "min": v[0], "max": v[-1]}


@dataclass
class Slo:
    ttft_ms: Optional[float] = None
    tpot_ms: Optional[float] = None
    e2e_ms: Optional[float] = None

    @staticmethod
    def parse(text):
        """'ttft_ms=200,tpot_ms=50' (iol's --slo); raises BaselineError."""
        slo = Slo()
        if not text:
            return slo
        # iol's loop: items up to each comma; a trailing comma ends the list, an empty item fails.
        items = text.split(",")
        if len(items) > 1 and items[-1] == "":
            items.pop()
        for item in items:
            key, eq, value_text = item.partition("=")
            try:
                value = float(value_text) if eq else 0.0
            except ValueError:
                value = 0.0
            if key not in ("ttft_ms", "tpot_ms", "e2e_ms") or not (value > 0 and math.isfinite(value)):
                raise BaselineError(f"--slo: '{item}' is not KEY=MS with KEY ttft_ms, tpot_ms or e2e_ms and MS > 0")
            setattr(slo, key, value)
        return slo

    def empty(self):
        return self.ttft_ms is None and self.tpot_ms is None and self.e2e_ms is None

    def to_json(self):
        return {"ttft_ms": self.ttft_ms, "tpot_ms": self.tpot_ms, "e2e_ms": self.e2e_ms}


@dataclass
class RequestMetrics:
    ttft_ms: float
    tpot_ms: Optional[float]  # undefined for one-token outputs
    e2e_ms: float
    itl_ms: list


def request_metrics(t):
    ttft = (t.first_token - t.arrival) * 1e3
    e2e = (t.finished - t.arrival) * 1e3
    # vLLM: TPOT excludes the first token; undefined for one-token outputs.
    tpot = (e2e - ttft) / (t.output_tokens - 1) if t.output_tokens > 1 else None
    itl = [(t.token_times[i] - t.token_times[i - 1]) * 1e3 for i in range(1, len(t.token_times))]
    return RequestMetrics(ttft, tpot, e2e, itl)


def meets_slo(m, slo):
    if slo.ttft_ms is not None and m.ttft_ms > slo.ttft_ms:
        return False
    if slo.tpot_ms is not None and m.tpot_ms is not None and m.tpot_ms > slo.tpot_ms:
        return False
    if slo.e2e_ms is not None and m.e2e_ms > slo.e2e_ms:
        return False
    return True


def compute_run_metrics(traces, slo):
    """The record's "metrics" object. Warm-up requests are excluded; aborted and failed ones are
    counted, not measured (their arrival still opens the run's duration, as in iol)."""
    num_completed = num_aborted = num_failed = num_warmup = 0
    total_input = total_output = good = 0
    ttft, tpot, itl, e2e, inputs, outputs = [], [], [], [], [], []
    first_arrival, last_finish = math.inf, -math.inf
    for t in traces:
        if t.warmup:
            num_warmup += 1
            continue
        if t.status == "aborted":
            num_aborted += 1
        if t.status == "failed":
            num_failed += 1
        first_arrival = min(first_arrival, t.arrival)
        if t.status != "ok":
            continue
        num_completed += 1
        last_finish = max(last_finish, t.finished)
        m = request_metrics(t)
        ttft.append(m.ttft_ms)
        if m.tpot_ms is not None:
            tpot.append(m.tpot_ms)
        itl.extend(m.itl_ms)
        e2e.append(m.e2e_ms)
        inputs.append(float(t.input_tokens))
        outputs.append(float(t.output_tokens))
        total_input += t.input_tokens
        total_output += t.output_tokens
        good += 1 if meets_slo(m, slo) else 0
    duration = last_finish - first_arrival if num_completed > 0 else 0.0
    request_tp = output_tp = total_tp = 0.0
    goodput = None
    if duration > 0:
        request_tp = num_completed / duration
        output_tp = total_output / duration
        total_tp = (total_input + total_output) / duration
        if not slo.empty():
            goodput = good / duration
    return {"num_completed": num_completed, "num_aborted": num_aborted, "num_failed": num_failed,
            "num_warmup": num_warmup, "duration_s": duration, "total_input_tokens": total_input,
            "total_output_tokens": total_output, "request_throughput": request_tp,
            "output_throughput": output_tp, "total_token_throughput": total_tp, "goodput": goodput,
            "ttft_ms": summarize(ttft), "tpot_ms": summarize(tpot), "itl_ms": summarize(itl),
            "e2e_ms": summarize(e2e), "input_len": summarize(inputs), "output_len": summarize(outputs)}
