"""Records built from a (fake-engine) run validate against bench/schema/results.schema.json with
schema_check.py; the validator accepts iol's own committed records and rejects broken ones."""
import copy
import glob
import json
import os
import tempfile
import unittest

from fakes import REPO_ROOT, SCHEMA_PATH, FakeClock, FakeEngine, make_requests, offline_point, poisson_point
from iol_baseline import environment, records, schema_check, telemetry
from iol_baseline.driver import PointPlan, run_point
from iol_baseline.metrics import Slo, compute_run_metrics

WORKLOAD = {"name": "default-gpu", "num_requests": 4, "warmup_requests": 1, "input_len": {"dist": "fixed", "value": 3},
            "output_len": {"dist": "fixed", "value": 4}, "ignore_eos": True, "prompts": "random", "dataset": None,
            "arrival": "offline", "concurrency": [], "request_rate": [], "burstiness": 1.0, "seed": 0}


def build(point=None, label="offline-bs2", mode="eager", telemetry_summary=None, slo=None, buckets=None):
    clock = FakeClock()
    engine = FakeEngine(clock, static_cache=mode == "compiled")
    reqs = make_requests([(3, 4)] * 5, warmup=1)
    plan = PointPlan(point or offline_point(), 2, label, None, buckets)
    traces, stats = run_point(engine, reqs[:1], reqs[1:], plan, clock=clock, sleep=clock.sleep)
    slo = slo or Slo()
    m = compute_run_metrics(traces, slo)
    summary = telemetry_summary or telemetry.unavailable("NVML not loaded: test")
    config = records.engine_config(mode, 2, None, 131072, "reduce-overhead" if mode == "compiled" else None, buckets)
    env = environment.collect_environment("0.1.0", "abc123", {"name": "NVIDIA H100 80GB HBM3", "driver_version": "580.1",
                                                              "memory_total_bytes": 85520809984}, None, "13.0",
                                          {"torch": "2.11.0", "transformers": "5.17.0"})
    record = records.build_record(
        run_id=records.make_run_id(), tag="t",
        engine=records.engine_section(mode, "preset llama-3.1-8b (dummy weights)", "LlamaForCausalLM", 8030261248, 12.5,
                                      "transformers 5.17.0 + torch 2.11.0", config),
        workload=records.workload_section(WORKLOAD, plan.point, label, 2, 1, 3), slo=slo.to_json(), metrics=m,
        energy=telemetry.energy_section(summary, m["total_output_tokens"], m["output_throughput"]),
        telemetry=summary, target=records.target_section(stats, {"torch_max_memory_allocated_bytes": 123}),
        process=environment.process_stats(), environment=env, requests_file="reports/results.requests.jsonl")
    return records.sanitize(record), traces


class BaselineRecords(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.schema = schema_check.load_schema(SCHEMA_PATH)

    def assertValid(self, record):
        self.assertEqual(schema_check.validate(self.schema, record), [])

    def test_offline_record_is_valid(self):
        record, _ = build()
        self.assertValid(record)
        self.assertEqual(record["engine"]["name"], "pytorch-transformers")
        self.assertEqual(record["engine"]["runner"], "pytorch-eager")
        self.assertEqual(record["engine"]["levers"]["batching"], "static")
        self.assertEqual(record["engine"]["levers"]["kv_layout"], "contiguous")
        self.assertEqual(record["workload"]["sweep"], {"mode": "offline", "concurrency": None, "request_rate": None,
                                                      "label": "offline-bs2", "batch_size": 2, "repetition": 1,
                                                      "num_repetitions": 3})
        self.assertEqual(record["metrics"]["num_completed"], 4)
        self.assertEqual(record["energy"]["source"], "none")
        self.assertEqual(record["environment"]["versions"]["torch"], "2.11.0")
        self.assertEqual(record["target"]["kv_peak_usage"], 1.0)  # fixed lengths, dynamic cache: no waste

    def test_compiled_poisson_record_with_telemetry_is_valid(self):
        samples = [{"t": 0.0, "power_w": 100.0, "memory_used": 1e9, "gpu_util": 50.0, "mem_util": 10.0,
                    "sm_clock": 1980.0, "temperature": 40.0},
                   {"t": 1.0, "power_w": 300.0, "memory_used": 2e9, "gpu_util": 100.0, "mem_util": 30.0,
                    "sm_clock": 1980.0, "temperature": 50.0}]
        summary = telemetry.summarize_samples(samples, 1.0, 1000.0, 1210.0)
        point = poisson_point(2.0, [0.0, 0.1, 0.2, 0.3])
        record, _ = build(point, "rate=2", "compiled", summary, Slo.parse("ttft_ms=100"), buckets=[1, 2])
        self.assertValid(record)
        self.assertEqual(record["engine"]["runner"], "pytorch-compiled")
        self.assertEqual(record["workload"]["sweep"]["request_rate"], 2.0)
        self.assertEqual(record["energy"]["source"], "counter")
        self.assertAlmostEqual(record["energy"]["energy_j"], 210.0)
        self.assertAlmostEqual(record["energy"]["j_per_output_token"], 210.0 / 16)
        self.assertIsNotNone(record["metrics"]["goodput"])
        self.assertTrue(record["engine"]["config"]["cuda_graphs"])
        self.assertLess(record["target"]["kv_mean_usage"], 1.0)  # the static cache is allocated up front

    def test_record_is_one_json_line(self):
        record, _ = build()
        line = records.dumps(record)
        self.assertNotIn("\n", line)
        self.assertEqual(json.loads(line), record)
        self.assertEqual(records.dumps({"x": float("nan"), "y": [float("inf")]}), '{"x":null,"y":[null]}')

    def test_run_id_format(self):
        import re
        base = records.make_run_id()
        self.assertRegex(base, r"^\d{8}T\d{6}Z-[0-9a-f]{6}$")
        self.assertEqual(records.record_run_id(base, 0, 1), base)
        self.assertEqual(records.record_run_id(base, 3, 6), base + "-3")
        self.assertTrue(re.match(r".*-3$", records.record_run_id(base, 3, 6)))

    def test_traces_path(self):
        self.assertEqual(records.traces_path("reports/results.jsonl"), "reports/results.requests.jsonl")
        self.assertEqual(records.traces_path("out"), "out.requests.jsonl")
        self.assertEqual(records.traces_path("a.jsonl.jsonl"), "a.jsonl.requests.jsonl")


class BrokenRecordsAreRejected(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.schema = schema_check.load_schema(SCHEMA_PATH)
        cls.record, _ = build()

    def errors(self, mutate):
        r = copy.deepcopy(self.record)
        mutate(r)
        return schema_check.validate(self.schema, r)

    def test_missing_required(self):
        self.assertIn("/: missing required key 'metrics'", self.errors(lambda r: r.pop("metrics")))
        self.assertTrue(any("missing required key 'sweep'" in e for e in self.errors(lambda r: r["workload"].pop("sweep"))))

    def test_unexpected_top_level_key(self):
        # The top level is closed: a repetition index must live in workload.sweep.
        self.assertIn("/: unexpected key 'repetition'", self.errors(lambda r: r.update(repetition=0)))
        self.assertTrue(self.errors(lambda r: r["telemetry"].update(extra=1)))

    def test_wrong_types_and_values(self):
        def set_at(*path, value):
            def mutate(r):
                node = r
                for key in path[:-1]:
                    node = node[key]
                node[path[-1]] = value
            return mutate
        self.assertTrue(self.errors(set_at("metrics", "num_completed", value=1.5)))      # integer
        self.assertTrue(self.errors(set_at("metrics", "num_completed", value=True)))     # booleans are not numbers
        self.assertTrue(self.errors(set_at("metrics", "duration_s", value=-1.0)))        # minimum
        self.assertTrue(self.errors(set_at("engine", "levers", "batching", value="continuous")))  # enum
        self.assertTrue(self.errors(set_at("schema_version", value=2)))                  # const
        self.assertTrue(self.errors(set_at("metrics", "ttft_ms", "p50", value=1.0)))     # closed distribution
        self.assertTrue(self.errors(set_at("workload", "input_len", value={"dist": "zipf"})))  # $ref to $defs

    def test_unsupported_keyword_is_an_error(self):
        with self.assertRaises(schema_check.SchemaError):
            schema_check.validate({"type": "string", "pattern": "^a"}, "a")
        with self.assertRaises(schema_check.SchemaError):
            schema_check.validate({"$ref": "http://example.com/s.json"}, 1)

    def test_minimum_and_maximum(self):
        schema = {"type": "number", "minimum": 0, "maximum": 1}
        self.assertEqual(schema_check.validate(schema, 0.5), [])
        self.assertEqual(len(schema_check.validate(schema, 1.5)), 1)
        self.assertEqual(len(schema_check.validate(schema, -0.5)), 1)

    def test_items_and_type_lists(self):
        schema = {"type": "array", "items": {"type": ["integer", "null"]}}
        self.assertEqual(schema_check.validate(schema, [1, None]), [])
        self.assertEqual(len(schema_check.validate(schema, [1, "x", 2.5])), 2)


class IolRecords(unittest.TestCase):
    def test_committed_iol_records_are_valid(self):
        schema = schema_check.load_schema(SCHEMA_PATH)
        paths = [p for p in glob.glob(os.path.join(REPO_ROOT, "bench", "results", "*", "*.jsonl"))
                 if not p.endswith(".requests.jsonl")]
        if not paths:
            self.skipTest("no committed iol records under bench/results/")
        for path in paths:
            with open(path) as f:
                for line in f:
                    if line.strip():
                        self.assertEqual(schema_check.validate(schema, json.loads(line)), [], path)


class AppendOnly(unittest.TestCase):
    def test_appends_whole_lines_and_never_truncates(self):
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "sub", "results.jsonl")
            records.append_lines(path, [{"a": 1}])
            records.append_lines(path, [{"b": 2}, {"c": 3}])
            with open(path) as f:
                self.assertEqual([json.loads(x) for x in f], [{"a": 1}, {"b": 2}, {"c": 3}])
            with open(path, "a") as f:
                f.write('{"partial": true}')  # a line without its newline
            records.append_lines(path, [{"d": 4}])
            with open(path) as f:
                self.assertEqual(f.read().splitlines()[-2:], ['{"partial": true}', '{"d":4}'])

    def test_traces_lines_have_iols_keys(self):
        _, traces = build()
        line = traces[1].to_json("rid")
        self.assertEqual(list(line), ["run_id", "index", "warmup", "status", "error", "input_tokens", "output_tokens",
                                      "arrival", "first_token", "finished", "token_times", "cached_prompt_tokens",
                                      "preemptions"])
        self.assertEqual(len(line["token_times"]), line["output_tokens"])


if __name__ == "__main__":
    unittest.main()
