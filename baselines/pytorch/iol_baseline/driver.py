"""The measurement loop of one sweep point: warm-up requests, then the measured requests as static
batches (batching.py's policy), with per-token timestamps and the engine-side counters.

The engine is injected (hf_runner.HfEngine on the GPU; a fake with a fake clock in the tests), so
the whole loop -- batch formation, arrival times, waiting for Poisson arrivals, dummy rows for
compiled shapes, out-of-memory handling -- is tested without torch. An engine has:
  generate(prompts, max_new_tokens, ignore_eos, streamer, pad_prompts_to)
                                                           runs one batch; raises on failure
  new_streamer(clock, origin) -> StepRecorder              the per-step timestamp recorder
  eos_token_ids, static_cache (bool)
  is_out_of_memory(exception) -> bool, recover()           after a failed batch
Times in the traces are seconds from the start of the point (t0, before the warm-up requests),
as in iol's InProcessRunner; arrival is the batch's start for offline and closed-loop batches and
the request's due time (measured start + arrival_s) for Poisson ones, so queueing counts in TTFT.

Static shapes in compiled mode: the static cache is sized prompt + max new tokens, and a new size
means a new compiled graph. So every batch of a point is left-padded until prompt + new tokens
equals the point's longest prompt + longest output (static_total_len): one cache length, hence one
graph per row count, all compiled in warm_up_shapes before measuring. Fixed-length workloads pad
nothing; variable-length ones pay for the extra (masked) prefill tokens, as a static-shape
deployment does.
"""
import time
from dataclasses import dataclass
from typing import Optional

from .batching import bucket_rows, kv_usage, next_poisson_batch, static_batches
from .timing import failed_traces, traces_for_batch

ENGINE_WARMUP_TOKENS = 2  # eager shape warm-up: one prefill and one decode step per shape


@dataclass
class PointPlan:
    point: object                    # requests_file.SweepPoint
    batch_size: int                  # rows per static batch (closed: the concurrency; poisson: the cap)
    label: str                       # the record's workload.sweep.label
    max_batch_tokens: Optional[int] = None
    buckets: Optional[list] = None   # compiled mode, poisson: pad batches to these row counts


def _lengths(requests):
    return [(len(r.prompt_token_ids), r.output_len) for r in requests]


def planned_batches(requests, plan):
    """Static batches for offline and closed-loop points (and for warm-up requests)."""
    return [[requests[i] for i in b] for b in static_batches(_lengths(requests), plan.batch_size, plan.max_batch_tokens)]


def _padded_rows(rows, plan):
    return bucket_rows(rows, plan.buckets) if plan.buckets else rows


def static_total_len(requests):
    """Compiled mode's one cache length for a point: longest prompt + longest output."""
    return max(len(r.prompt_token_ids) for r in requests) + max(r.output_len for r in requests)


def warm_up_shapes(engine, warmup, measured, plan, warmed, log=None):
    """Runs each batch shape once before the measured run (outside its clock and telemetry).

    Compiled mode (static cache): a full-length generate per row count, at the point's one cache
    length (static_total_len), so torch.compile and CUDA-graph capture happen here. Eager mode: a
    2-token generate per row count (cuBLAS and allocator warm-up); none for eager Poisson points,
    whose batches take any shape (the warm-up requests warm those). warmed: {rows: cache length}
    already done, kept across points and repetitions."""
    everything = warmup + measured
    longest = max(everything, key=lambda r: len(r.prompt_token_ids)).prompt_token_ids
    max_new = max(r.output_len for r in everything)
    if plan.point.mode == "poisson":
        if not plan.buckets:
            return
        rows_needed = sorted(b for b in plan.buckets if b <= plan.batch_size)
    else:
        rows_needed = sorted({_padded_rows(len(b), plan)
                              for b in planned_batches(warmup, plan) + planned_batches(measured, plan)})
    for rows in rows_needed:
        if engine.static_cache:
            total, new_tokens, pad_to = static_total_len(everything), max_new, static_total_len(everything) - max_new
        else:
            new_tokens = min(max_new, ENGINE_WARMUP_TOKENS)
            total, pad_to = len(longest) + new_tokens, None
        if warmed.get(rows) == total:
            continue
        if log:
            log(f"warm-up shape: {rows} rows x ({total - new_tokens} prompt + {new_tokens} new tokens)")
        try:
            engine.generate([longest] * rows, new_tokens, True, engine.new_streamer(time.perf_counter, 0.0), pad_to)
        except Exception as e:
            if not engine.is_out_of_memory(e):
                raise
            engine.recover()
            if log:
                log(f"warm-up shape of {rows} rows ran out of GPU memory; the point's batches of that size will fail")
            continue
        warmed[rows] = total


class _PointRun:
    def __init__(self, engine, plan, clock, sleep, progress, total, static_len):
        self.engine, self.plan, self.clock, self.sleep, self.progress = engine, plan, clock, sleep, progress
        self.static_len = static_len  # compiled mode: the cache length every batch is padded to
        self.t0 = clock()
        self.traces = []
        self.stats = {"num_steps": 0, "peak_num_running": 0, "kv_usage": [], "num_batches": 0, "num_padding_rows": 0}
        self.oom_error = None
        self.total, self.done, self.tokens = total, 0, 0

    def now(self):
        return self.clock() - self.t0

    def run_batch(self, batch, arrivals, measured):
        if self.oom_error is not None:
            traces = failed_traces(batch, arrivals, f"skipped: an earlier batch ran out of GPU memory ({self.oom_error})")
        else:
            rows = _padded_rows(len(batch), self.plan)
            # Dummy rows (compiled buckets) repeat the first prompt; their tokens are dropped.
            prompts = [r.prompt_token_ids for r in batch] + [batch[0].prompt_token_ids] * (rows - len(batch))
            recorder = self.engine.new_streamer(self.clock, self.t0)
            max_new = max(r.output_len for r in batch)
            pad_to = self.static_len - max_new if self.static_len else None
            try:
                self.engine.generate(prompts, max_new, any(r.ignore_eos for r in batch), recorder, pad_to)
            except Exception as e:
                if not self.engine.is_out_of_memory(e):
                    raise
                self.engine.recover()
                self.oom_error = f"{len(batch)} rows: {str(e).splitlines()[0] if str(e) else type(e).__name__}"
                traces = failed_traces(batch, arrivals, f"out of GPU memory: {self.oom_error}")
            else:
                traces = traces_for_batch(batch, arrivals, recorder.times, recorder.tokens, self.engine.eos_token_ids)
                if measured:
                    s = self.stats
                    s["num_steps"] += len(recorder.times)
                    s["peak_num_running"] = max(s["peak_num_running"], len(batch))
                    s["num_batches"] += 1
                    s["num_padding_rows"] += rows - len(batch)
                    s["kv_usage"] += kv_usage(_lengths(batch), [t.output_tokens for t in traces], len(recorder.times),
                                              self.engine.static_cache, rows - len(batch), self.static_len)
        self.traces.extend(traces)
        if measured:
            self.done += len(batch)
            self.tokens += sum(t.output_tokens for t in traces)
            if self.progress:
                self.progress(self.done, self.total, self.tokens, self.now())


def run_point(engine, warmup, measured, plan, clock=time.perf_counter, sleep=time.sleep, progress=None):
    """Runs one sweep point; returns (traces, stats) -- traces of warm-up and measured requests in
    the order they ran, stats for records.target_section()."""
    static_len = static_total_len(warmup + measured) if engine.static_cache else None
    run = _PointRun(engine, plan, clock, sleep, progress, len(measured), static_len)
    # Warm-up requests first, as static batches of the point's size, excluded from the metrics.
    for batch in planned_batches(warmup, plan):
        start = run.now()
        run.run_batch(batch, [start] * len(batch), measured=False)
    if plan.point.mode in ("offline", "closed"):
        # Closed loop with concurrency c under static batching: c requests are sent together, and the
        # next c when all of them are done.
        for batch in planned_batches(measured, plan):
            start = run.now()
            run.run_batch(batch, [start] * len(batch), measured=True)
    else:
        measured_start = run.now()
        arrivals = [measured_start + a for a in plan.point.arrival_s]
        lengths = _lengths(measured)
        next_index = 0
        # After sleeping until a due time, that request counts as arrived even if the clock reads a
        # hair earlier (rounding; a coarse sleep), so the loop always makes progress.
        woke_at = float("-inf")
        while next_index < len(measured):
            now = max(run.now(), woke_at)
            positions, wait_until = next_poisson_batch(arrivals, next_index, now, plan.batch_size, lengths,
                                                       plan.max_batch_tokens)
            if not positions:
                if run.oom_error is not None:  # nothing will run any more: do not wait for arrivals
                    positions = list(range(next_index, len(measured)))
                else:
                    run.sleep(max(0.0, wait_until - now))
                    woke_at = wait_until
                    continue
            run.run_batch([measured[i] for i in positions], [arrivals[i] for i in positions], measured=True)
            next_index = positions[-1] + 1
    return run.traces, run.stats
