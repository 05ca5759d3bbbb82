"""run_baseline.py's command line: clear one-line errors (missing model folder, malformed request
file, no torch/GPU) with a non-zero exit and an untouched results file; the sweep-point plan."""
import json
import os
import subprocess
import sys
import tempfile
import unittest
from types import SimpleNamespace

from fakes import load_runner_module_path
from iol_baseline import BaselineError
from iol_baseline.requests_file import parse_lines

HERE = os.path.dirname(os.path.abspath(__file__))
RUNNER = os.path.join(os.path.dirname(HERE), "run_baseline.py")


def torch_with_gpu():
    try:
        import torch
        return torch.cuda.is_available()
    except ImportError:
        return False


def request_file_lines(points, measured=4, warmup=1):
    header = {"kind": "workload", "workload": {"name": "t", "num_requests": measured, "warmup_requests": warmup,
                                               "input_len": {"dist": "fixed", "value": 3},
                                               "output_len": {"dist": "fixed", "value": 2}, "arrival": "offline",
                                               "seed": 0},
              "sweep_points": points, "model": "m", "vocab_size": 50, "iol_version": "0.1.0", "git_commit": "c"}
    lines = [json.dumps(header)]
    for i in range(measured + warmup):
        lines.append(json.dumps({"kind": "request", "index": i, "warmup": i < warmup, "prompt_token_ids": [1, 2, 3],
                                 "output_len": 2, "ignore_eos": True}))
    return lines


OFFLINE = {"mode": "offline", "concurrency": None, "request_rate": None, "label": "offline", "arrival_s": None}


class Errors(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.TemporaryDirectory()
        d = self.dir.name
        self.model = os.path.join(d, "model")
        os.makedirs(self.model)
        with open(os.path.join(self.model, "config.json"), "w") as f:
            json.dump({"architectures": ["LlamaForCausalLM"], "vocab_size": 50}, f)
        self.requests = os.path.join(d, "requests.jsonl")
        with open(self.requests, "w") as f:
            f.write("\n".join(request_file_lines([OFFLINE])) + "\n")
        self.out = os.path.join(d, "results.jsonl")
        with open(self.out, "w") as f:
            f.write('{"existing": "record"}\n')

    def tearDown(self):
        self.dir.cleanup()

    def run_cli(self, *args):
        return subprocess.run([sys.executable, "-B", RUNNER, *args], capture_output=True, text=True, timeout=120)

    def assertOneLineError(self, result, *fragments):
        self.assertNotEqual(result.returncode, 0)
        lines = result.stderr.strip().splitlines()
        self.assertEqual(len(lines), 1, result.stderr)
        self.assertTrue(lines[0].startswith("run_baseline.py: "), lines[0])
        for fragment in fragments:
            self.assertIn(fragment, lines[0])
        with open(self.out) as f:
            self.assertEqual(f.read(), '{"existing": "record"}\n')  # never truncated or rewritten

    def test_missing_model_dir(self):
        r = self.run_cli("--model", os.path.join(self.dir.name, "nope"), "--requests", self.requests, "--out", self.out)
        self.assertOneLineError(r, "no such folder", "iol model create")

    def test_model_dir_without_config(self):
        os.remove(os.path.join(self.model, "config.json"))
        r = self.run_cli("--model", self.model, "--requests", self.requests, "--out", self.out)
        self.assertOneLineError(r, "no config.json")

    def test_malformed_request_file_names_the_line(self):
        with open(self.requests, "a") as f:
            f.write('{"kind": "request", "index": 5, "warmup": false, "prompt_token_ids": [1], "output_len": 0}\n')
        r = self.run_cli("--model", self.model, "--requests", self.requests, "--out", self.out)
        self.assertOneLineError(r, "requests.jsonl:7:", "output_len")

    def test_missing_request_file(self):
        r = self.run_cli("--model", self.model, "--requests", self.requests + ".missing", "--out", self.out)
        self.assertOneLineError(r, "cannot read the request file")

    def test_nothing_to_do(self):
        r = self.run_cli("--model", self.model, "--requests", self.requests)
        self.assertOneLineError(r, "nothing to do")

    def test_bad_flags(self):
        self.assertOneLineError(self.run_cli("--model", self.model, "--requests", self.requests, "--out", self.out,
                                             "--repetitions", "0"), "--repetitions")
        self.assertOneLineError(self.run_cli("--model", self.model, "--requests", self.requests, "--out", self.out,
                                             "--batch-buckets", "1,2"), "--mode compiled")
        self.assertOneLineError(self.run_cli("--model", self.model, "--requests", self.requests, "--out", self.out,
                                             "--slo", "ttft=1"), "--slo")
        self.assertOneLineError(self.run_cli("--model", self.model, "--requests", self.requests, "--out", self.dir.name),
                                "is a folder")

    @unittest.skipIf(torch_with_gpu(), "torch sees a GPU here: the no-torch/no-GPU error cannot happen")
    def test_no_torch_or_no_gpu(self):
        r = self.run_cli("--model", self.model, "--requests", self.requests, "--out", self.out)
        self.assertOneLineError(r)
        self.assertRegex(r.stderr, "cannot import torch|no CUDA GPU|could not load")


class Plan(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.runner = load_runner_module_path()

    def args(self, **kw):
        base = dict(batch_size=None, batch_sweep=None, batch_buckets=None, max_batch_tokens=None, mode="eager")
        base.update(kw)
        return SimpleNamespace(**base)

    def test_batch_sweep_dedupes_at_the_request_count(self):
        rf = parse_lines("r", request_file_lines([OFFLINE], measured=100))
        plans = self.runner.plan_points(self.args(batch_sweep="1,8,64,256,1024"), rf)
        self.assertEqual([(p.batch_size, p.label) for p in plans],
                         [(1, "offline-bs1"), (8, "offline-bs8"), (64, "offline-bs64"), (100, "offline-bs100")])

    def test_default_batch_and_closed_and_poisson(self):
        points = [OFFLINE, {"mode": "closed", "concurrency": 3, "request_rate": None, "label": "concurrency=3",
                            "arrival_s": None},
                  {"mode": "poisson", "concurrency": None, "request_rate": 2.0, "label": "rate=2",
                   "arrival_s": [0.0, 0.1, 0.2, 0.3]}]
        rf = parse_lines("r", request_file_lines(points))
        plans = self.runner.plan_points(self.args(), rf)
        self.assertEqual([(p.batch_size, p.label, p.buckets) for p in plans],
                         [(4, "offline-bs4", None), (3, "concurrency=3", None), (64, "rate=2", None)])
        compiled = self.runner.plan_points(self.args(mode="compiled", batch_size=8), rf)
        self.assertEqual(compiled[2].buckets, [1, 2, 4, 8])
        with self.assertRaises(BaselineError):
            self.runner.plan_points(self.args(mode="compiled", batch_size=8, batch_buckets="1,4"), rf)

    def test_batch_sweep_needs_an_offline_point(self):
        rf = parse_lines("r", request_file_lines([{"mode": "closed", "concurrency": 2, "label": "concurrency=2"}]))
        with self.assertRaisesRegex(BaselineError, "offline"):
            self.runner.plan_points(self.args(batch_sweep="1,8"), rf)


if __name__ == "__main__":
    unittest.main()


class RealTimeFakeEngine:
    """hf_runner.HfEngine's interface without torch: 1 ms per decoding step on the real clock."""

    def __init__(self, model_dir, mode, compile_mode):
        self.static_cache = mode == "compiled"
        self.vocab_size, self.eos_token_ids = 50, [2]
        self.load_seconds, self.num_parameters, self.architecture, self.max_model_len = 0.5, 1234, "LlamaForCausalLM", 512

    def new_streamer(self, clock, origin):
        from iol_baseline.timing import StepRecorder
        return StepRecorder(clock, origin)

    def generate(self, prompts, max_new_tokens, ignore_eos, streamer, pad_prompts_to=None):
        import time
        streamer.put(prompts)
        for step in range(max_new_tokens):
            time.sleep(0.001)
            streamer.put([7] * len(prompts))
        streamer.end()

    def is_out_of_memory(self, e):
        return False

    def recover(self):
        pass

    def reset_peak_memory(self):
        pass

    def memory_stats(self):
        return {"torch_max_memory_allocated_bytes": 1, "torch_max_memory_reserved_bytes": 2}

    def device_uuid(self):
        return None

    def gpu_from_torch(self):
        return {"name": "Fake GPU", "driver_version": "", "memory_total_bytes": 1}

    def versions(self):
        return {"python": "3", "torch": "fake", "transformers": "fake", "cuda_runtime": "13.0", "cudnn": None,
                "numpy": None, "nvidia_ml_py": None}

    def description(self):
        return "fake engine"

    def parity_logits(self, prompts, path):
        import struct
        with open(path, "wb") as f:
            for p in prompts:
                for position in range(len(p)):
                    f.write(struct.pack("<50f", *[float((position + k) % 7) for k in range(50)]))
        return 50


class FullRunWithFakeEngine(unittest.TestCase):
    """run_baseline.main end to end with hf_runner replaced: record assembly, files, parity meta."""

    def setUp(self):
        import iol_baseline
        self.runner = load_runner_module_path()
        self.module = type(sys)("iol_baseline.hf_runner")
        self.module.HfEngine = RealTimeFakeEngine
        self.saved = sys.modules.get("iol_baseline.hf_runner")
        sys.modules["iol_baseline.hf_runner"] = self.module
        iol_baseline.hf_runner = self.module
        self.dir = tempfile.TemporaryDirectory()
        self.model = os.path.join(self.dir.name, "model")
        os.makedirs(self.model)
        with open(os.path.join(self.model, "config.json"), "w") as f:
            f.write("{}")
        points = [OFFLINE, {"mode": "poisson", "concurrency": None, "request_rate": 50.0, "label": "rate=50",
                            "arrival_s": [0.0, 0.01, 0.02, 0.05]}]
        self.requests = os.path.join(self.dir.name, "requests.jsonl")
        with open(self.requests, "w") as f:
            f.write("\n".join(request_file_lines(points)) + "\n")

    def tearDown(self):
        import iol_baseline
        if self.saved is None:
            sys.modules.pop("iol_baseline.hf_runner", None)
            del iol_baseline.hf_runner
        else:
            sys.modules["iol_baseline.hf_runner"] = self.saved
            iol_baseline.hf_runner = self.saved
        self.dir.cleanup()

    def test_records_traces_and_parity(self):
        from fakes import SCHEMA_PATH
        from iol_baseline import schema_check
        from iol_baseline.parity import compare_logits
        out = os.path.join(self.dir.name, "reports", "results.jsonl")
        dump = os.path.join(self.dir.name, "parity.logits.f32")
        for mode in ("eager", "compiled"):
            rc = self.runner.main(["--model", self.model, "--requests", self.requests, "--mode", mode, "--out", out,
                                   "--batch-sweep", "1,2", "--repetitions", "2", "--tag", "t", "--quiet",
                                   "--parity-logits", dump, "--parity-requests", "2"])
            self.assertEqual(rc, 0)
        with open(out) as f:
            records = [json.loads(line) for line in f]
        schema = schema_check.load_schema(SCHEMA_PATH)
        self.assertEqual(len(records), 2 * 3 * 2)        # modes x (bs1, bs2, rate=50) x repetitions
        for r in records:
            self.assertEqual(schema_check.validate(schema, r), [], r["run_id"])
            self.assertEqual((r["metrics"]["num_completed"], r["metrics"]["total_output_tokens"]), (4, 8))
            self.assertEqual(r["environment"]["git_commit"], "c")
        self.assertEqual([r["workload"]["sweep"]["label"] for r in records[:6]],
                         ["offline-bs1", "offline-bs1", "offline-bs2", "offline-bs2", "rate=50", "rate=50"])
        self.assertEqual(records[6]["engine"]["runner"], "pytorch-compiled")
        self.assertEqual(records[10]["engine"]["config"]["batch_buckets"], [1, 2, 4, 8, 16, 32, 64])
        self.assertEqual(len({r["run_id"] for r in records}), 12)
        with open(os.path.join(self.dir.name, "reports", "results.requests.jsonl")) as f:
            traces = [json.loads(line) for line in f]
        self.assertEqual(len(traces), 12 * 5)             # 4 measured + 1 warm-up per record
        self.assertEqual({t["run_id"] for t in traces}, {r["run_id"] for r in records})
        with open(os.path.join(self.dir.name, "parity.logits.json")) as f:
            meta = json.load(f)
        self.assertEqual(meta["logits_shape"], [6, 50])
        self.assertEqual(compare_logits(dump, dump, 50)["top1_agreement"], 1.0)
