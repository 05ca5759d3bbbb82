"""Per-token timestamps of a static batch, from transformers' streamer protocol.

`generate(streamer=...)` calls streamer.put() once with the prompt ids, then once per decoding
step with that step's token of every row (already copied to the host, so the call happens after
the step's GPU work is done), then streamer.end(). StepRecorder keeps one clock reading and the
row tokens per step; traces_for_batch turns them into iol's per-request traces: every row of a
batch shares the step times, a row ends at its own output_len or at its first EOS (unless it
ignores EOS), and the rows that padded the batch up to a compiled shape are dropped.
hf_runner.py makes the transformers BaseStreamer subclass of StepRecorder; nothing here imports torch.
"""
import time

from .metrics import RequestTrace


def _as_list(value):
    return value.tolist() if hasattr(value, "tolist") else list(value)


class StepRecorder:
    def __init__(self, clock=time.perf_counter, origin=0.0):
        self.clock = clock
        self.origin = origin
        self.times = []      # seconds from origin, one per decoding step
        self.tokens = []     # [row token ids] per step
        self.prompt_seen = False
        self.ended = False

    def put(self, value):
        now = self.clock() - self.origin  # first: the reading is the point of the call
        if not self.prompt_seen:
            self.prompt_seen = True       # the first put() holds the prompt ids
            return
        row_tokens = _as_list(value)
        # [B] from greedy/sampling; tolerate [B, 1].
        row_tokens = [t[0] if isinstance(t, list) else t for t in row_tokens]
        self.times.append(now)
        self.tokens.append(row_tokens)

    def end(self):
        self.ended = True


def traces_for_batch(requests, arrivals, step_times, step_tokens, eos_token_ids):
    """Per-request traces of one finished batch.

    requests: the batch's real rows (objects with index, warmup, prompt_token_ids, output_len,
    ignore_eos), in row order; arrivals: each row's arrival time; step_times/step_tokens: the
    recorder's readings (rows past len(requests) are padding and ignored)."""
    eos = set(eos_token_ids or ())
    traces = []
    for row, (request, arrival) in enumerate(zip(requests, arrivals)):
        t = RequestTrace(index=request.index, warmup=request.warmup, input_tokens=len(request.prompt_token_ids),
                         arrival=arrival)
        for step_time, tokens in zip(step_times, step_tokens):
            if len(t.token_times) >= request.output_len:
                break
            t.token_times.append(step_time)
            if not request.ignore_eos and row < len(tokens) and tokens[row] in eos:
                break  # the EOS token is an output token (as in iol and vLLM); the row stops here
        t.output_tokens = len(t.token_times)
        if t.token_times:
            t.first_token, t.finished = t.token_times[0], t.token_times[-1]
        else:
            t.status, t.error = "failed", "generate() produced no token for this row"
        traces.append(t)
    return traces


def failed_traces(requests, arrivals, error):
    """Traces of a batch that did not run (out of GPU memory), with each row's arrival time."""
    return [RequestTrace(index=r.index, warmup=r.warmup, status="failed", error=error,
                         input_tokens=len(r.prompt_token_ids), arrival=a) for r, a in zip(requests, arrivals)]
