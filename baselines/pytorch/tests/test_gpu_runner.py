"""End to end on the GPU machine: a tiny Llama saved by transformers, an exported-style request
file, run_baseline.py in eager and compiled mode and the parity dump; the records must validate
against the schema and count every request. Skipped (with the reason shown) without torch,
transformers and a CUDA GPU -- CI has none; run it on the GPU machine:
  python3 -m unittest discover -s baselines/pytorch/tests -v
"""
import json
import os
import shutil
import tempfile
import unittest

from fakes import SCHEMA_PATH, load_runner_module_path
from iol_baseline import schema_check
from iol_baseline.parity import compare_logits, parity_meta_path


def gpu_stack():
    try:
        import torch
        import transformers  # noqa: F401
    except ImportError as e:
        return f"needs torch and transformers ({e})"
    if not torch.cuda.is_available():
        return "needs a CUDA GPU (torch.cuda.is_available() is False)"
    return None


REASON = gpu_stack()
VOCAB = 256
PROMPT_LENGTHS = [9, 5, 12, 7, 5, 10, 8]  # one warm-up request, then six measured ones
OUTPUT_LEN = 8


@unittest.skipIf(REASON is not None, f"GPU runner test: {REASON}")
class EndToEnd(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        import torch
        import transformers
        from transformers import LlamaConfig, LlamaForCausalLM
        cls.dir = tempfile.mkdtemp(prefix="iol-baseline-test-")
        cls.model_dir = os.path.join(cls.dir, "model")
        config = LlamaConfig(vocab_size=VOCAB, hidden_size=128, intermediate_size=256, num_hidden_layers=2,
                             num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=512,
                             bos_token_id=1, eos_token_id=2, pad_token_id=None, tie_word_embeddings=False)
        torch.manual_seed(0)
        model = LlamaForCausalLM(config).to(torch.bfloat16)
        v5 = int(transformers.__version__.split(".")[0]) >= 5
        setattr(model.config, "dtype" if v5 else "torch_dtype", torch.bfloat16)
        model.save_pretrained(cls.model_dir)
        generator = torch.Generator().manual_seed(1)
        cls.prompts = [torch.randint(3, VOCAB, (n,), generator=generator).tolist() for n in PROMPT_LENGTHS]
        measured = len(PROMPT_LENGTHS) - 1
        header = {"kind": "workload",
                  "workload": {"name": "gpu-test", "num_requests": measured, "warmup_requests": 1,
                               "input_len": {"dist": "uniform", "low": 5, "high": 12},
                               "output_len": {"dist": "fixed", "value": OUTPUT_LEN}, "ignore_eos": True,
                               "prompts": "random", "dataset": None, "arrival": "offline", "concurrency": [],
                               "request_rate": [], "burstiness": 1.0, "seed": 0},
                  "sweep_points": [{"mode": "offline", "concurrency": None, "request_rate": None, "label": "offline",
                                    "arrival_s": None},
                                   {"mode": "poisson", "concurrency": None, "request_rate": 20.0, "label": "rate=20",
                                    "arrival_s": [0.0, 0.02, 0.05, 0.05, 0.3, 0.31]}],
                  "model": "tiny llama (test)", "vocab_size": VOCAB, "iol_version": "0.1.0", "git_commit": "test"}
        cls.requests = os.path.join(cls.dir, "requests.jsonl")
        with open(cls.requests, "w") as f:
            f.write(json.dumps(header) + "\n")
            for i, p in enumerate(cls.prompts):
                f.write(json.dumps({"kind": "request", "index": i, "warmup": i == 0, "prompt_token_ids": p,
                                    "output_len": OUTPUT_LEN, "ignore_eos": True}) + "\n")
        cls.runner = load_runner_module_path()
        cls.schema = schema_check.load_schema(SCHEMA_PATH)

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.dir, ignore_errors=True)

    def run_mode(self, mode, *extra):
        out = os.path.join(self.dir, f"{mode}.jsonl")
        rc = self.runner.main(["--model", self.model_dir, "--requests", self.requests, "--mode", mode, "--out", out,
                               "--quiet", *extra])
        self.assertEqual(rc, 0)
        with open(out) as f:
            records = [json.loads(line) for line in f]
        with open(out.replace(".jsonl", ".requests.jsonl")) as f:
            traces = [json.loads(line) for line in f]
        return records, traces

    def check(self, records, traces, runner, labels):
        self.assertEqual([r["workload"]["sweep"]["label"] for r in records], labels)
        for r in records:
            self.assertEqual(schema_check.validate(self.schema, r), [], r["run_id"])
            self.assertEqual(r["engine"]["runner"], runner)
            m = r["metrics"]
            self.assertEqual((m["num_completed"], m["num_failed"], m["num_warmup"]), (6, 0, 1))
            self.assertEqual(m["total_output_tokens"], 6 * OUTPUT_LEN)      # ignore_eos: exactly output_len each
            self.assertEqual(m["itl_ms"]["count"], 6 * (OUTPUT_LEN - 1))
            self.assertGreater(m["ttft_ms"]["min"], 0)
            self.assertGreater(m["output_throughput"], 0)
            self.assertGreater(r["target"]["torch_max_memory_allocated_bytes"], 0)
            mine = [t for t in traces if t["run_id"] == r["run_id"]]
            self.assertEqual(len(mine), 7)
            self.assertTrue(all(len(t["token_times"]) == OUTPUT_LEN for t in mine))
        self.assertEqual(len({r["run_id"] for r in records}), len(records))

    def test_eager(self):
        records, traces = self.run_mode("eager", "--batch-sweep", "1,4", "--repetitions", "2")
        self.check(records, traces, "pytorch-eager",
                   ["offline-bs1", "offline-bs1", "offline-bs4", "offline-bs4", "rate=20", "rate=20"])
        self.assertEqual([r["workload"]["sweep"]["repetition"] for r in records], [0, 1, 0, 1, 0, 1])
        self.assertEqual(records[0]["target"]["num_batches"], 6)             # batch 1: six batches
        self.assertEqual(records[2]["target"]["num_batches"], 2)             # batch 4: 4 + 2
        self.assertEqual(records[0]["environment"]["versions"]["transformers"][:1], "5")

    def test_compiled(self):
        records, traces = self.run_mode("compiled", "--batch-size", "4", "--repetitions", "1")
        self.check(records, traces, "pytorch-compiled", ["offline-bs4", "rate=20"])
        self.assertEqual(records[0]["engine"]["config"]["cache_implementation"], "static")
        self.assertEqual(records[1]["engine"]["config"]["batch_buckets"], [1, 2, 4])

    def test_parity_dump(self):
        dump = os.path.join(self.dir, "parity.logits.f32")
        rc = self.runner.main(["--model", self.model_dir, "--requests", self.requests, "--parity-logits", dump,
                               "--parity-requests", "3", "--quiet"])
        self.assertEqual(rc, 0)
        positions = sum(PROMPT_LENGTHS[:3])
        self.assertEqual(os.path.getsize(dump), positions * VOCAB * 4)
        with open(parity_meta_path(dump)) as f:
            meta = json.load(f)
        self.assertEqual(meta["logits_shape"], [positions, VOCAB])
        self.assertEqual([p["index"] for p in meta["prompts"]], [0, 1, 2])
        r = compare_logits(dump, dump, VOCAB)
        self.assertEqual((r["top1_agreement"], r["max_abs_diff"]), (1.0, 0.0))
        self.assertGreater(r["max_abs_logit"], 0.0)


if __name__ == "__main__":
    unittest.main()
