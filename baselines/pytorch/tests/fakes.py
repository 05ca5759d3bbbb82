"""Test doubles: a manual clock and an engine with the driver's interface (driver.py), so the
measurement loop runs without torch: each batch takes prefill_s to its first token, then step_s
per further token; rows can be made to emit EOS at a given step."""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from iol_baseline.requests_file import Request, SweepPoint  # noqa: E402
from iol_baseline.timing import StepRecorder  # noqa: E402

REPO_ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))
SCHEMA_PATH = os.path.join(REPO_ROOT, "bench", "schema", "results.schema.json")
EOS = 2


class FakeClock:
    def __init__(self, start=100.0):
        self.t = start

    def __call__(self):
        return self.t

    def sleep(self, seconds):
        assert seconds >= 0
        self.t += seconds


class FakeOutOfMemory(RuntimeError):
    pass


class FakeEngine:
    def __init__(self, clock, prefill_s=0.05, step_s=0.01, static_cache=False, eos_rows=None, oom_rows=None):
        self.clock = clock
        self.prefill_s, self.step_s = prefill_s, step_s
        self.static_cache = static_cache
        self.eos_token_ids = [EOS]
        self.eos_rows = eos_rows or {}   # {prompt first token: step index at which that row emits EOS}
        self.oom_rows = oom_rows         # batches with at least this many rows raise FakeOutOfMemory
        self.calls = []                  # (rows, prompt lengths, max_new_tokens, ignore_eos)
        self.pads = []                   # pad_prompts_to of each call
        self.recovered = 0

    def new_streamer(self, clock, origin):
        return StepRecorder(clock, origin)

    def generate(self, prompts, max_new_tokens, ignore_eos, streamer, pad_prompts_to=None):
        self.calls.append((len(prompts), [len(p) for p in prompts], max_new_tokens, ignore_eos))
        self.pads.append(pad_prompts_to)
        if self.oom_rows is not None and len(prompts) >= self.oom_rows:
            self.clock.t += 0.001
            raise FakeOutOfMemory("CUDA out of memory. Tried to allocate 2.00 GiB")
        streamer.put([list(p) for p in prompts])
        finished = [False] * len(prompts)
        for step in range(max_new_tokens):
            self.clock.t += self.prefill_s if step == 0 else self.step_s
            tokens = []
            for row, p in enumerate(prompts):
                eos_step = self.eos_rows.get(p[0])
                if finished[row]:
                    tokens.append(0)  # transformers pads finished rows with pad_token_id
                elif not ignore_eos and eos_step == step:
                    tokens.append(EOS)
                    finished[row] = True
                else:
                    tokens.append(10 + step)
            streamer.put(tokens)
            if all(finished):
                break
        streamer.end()

    @staticmethod
    def is_out_of_memory(e):
        return isinstance(e, FakeOutOfMemory)

    def recover(self):
        self.recovered += 1


def make_requests(lengths, warmup=0, ignore_eos=True, first_token=None):
    """Requests with prompts whose first token is 100 + index (so eos_rows can name a row)."""
    out = []
    for i, (p, o) in enumerate(lengths):
        start = first_token(i) if first_token else 100 + i
        out.append(Request(i, i < warmup, tuple([start] + [5] * (p - 1)), o, ignore_eos))
    return out


def offline_point():
    return SweepPoint("offline", None, None, "offline", None)


def closed_point(c):
    return SweepPoint("closed", c, None, f"concurrency={c}", None)


def poisson_point(rate, arrivals):
    return SweepPoint("poisson", None, rate, f"rate={rate:g}", tuple(arrivals))


def load_runner_module_path():
    """run_baseline.py as a module (it is a script, not part of the package)."""
    import importlib.util
    path = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "run_baseline.py")
    spec = importlib.util.spec_from_file_location("run_baseline", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
