"""Parsing the request file of `iol bench --export-requests` and its errors (each names file:line)."""
import json
import os
import tempfile
import unittest

import fakes  # noqa: F401
from iol_baseline.requests_file import RequestFileError, load, parse_lines

WORKLOAD = {"name": "t", "num_requests": 2, "warmup_requests": 1, "input_len": {"dist": "fixed", "value": 3},
            "output_len": {"dist": "fixed", "value": 4}, "ignore_eos": True, "prompts": "random",
            "arrival": "poisson", "concurrency": [], "request_rate": [2.0], "burstiness": 1.0, "seed": 0}


def header(**changes):
    h = {"kind": "workload", "workload": dict(WORKLOAD),
         "sweep_points": [{"mode": "poisson", "concurrency": None, "request_rate": 2.0, "label": "rate=2",
                           "arrival_s": [0.0, 0.4]}],
         "model": "preset llama-3.1-8b (dummy weights)", "vocab_size": 100, "iol_version": "0.1.0",
         "git_commit": "abc123"}
    h.update(changes)
    return h


def request(i, warmup=False, ids=(1, 2, 3), output_len=4, **changes):
    r = {"kind": "request", "index": i, "warmup": warmup, "prompt_token_ids": list(ids), "output_len": output_len,
         "ignore_eos": True}
    r.update(changes)
    return r


def lines(*objects):
    return [json.dumps(o) if not isinstance(o, str) else o for o in objects]


def good():
    return [header(), request(0, True), request(1), request(2, ids=(7, 8))]


class Valid(unittest.TestCase):
    def test_parses(self):
        rf = parse_lines("f.jsonl", lines(*good()))
        self.assertEqual((rf.model, rf.vocab_size, rf.iol_version, rf.git_commit),
                         ("preset llama-3.1-8b (dummy weights)", 100, "0.1.0", "abc123"))
        self.assertEqual(len(rf.warmup_requests), 1)
        self.assertEqual([r.index for r in rf.measured_requests], [1, 2])
        self.assertEqual(rf.measured_requests[1].prompt_token_ids, (7, 8))
        point = rf.sweep_points[0]
        self.assertEqual((point.mode, point.request_rate, point.label, point.arrival_s), ("poisson", 2.0, "rate=2", (0.0, 0.4)))
        self.assertNotIn("sweep", rf.workload)

    def test_sweep_is_dropped_and_blank_lines_skipped(self):
        h = header()
        h["workload"]["sweep"] = {"mode": "offline"}
        rf = parse_lines("f", lines(h, "", request(0, True), "  ", request(1), request(2), ""))
        self.assertNotIn("sweep", rf.workload)
        self.assertEqual(len(rf.requests), 3)

    def test_offline_and_closed_points(self):
        h = header(sweep_points=[{"mode": "closed", "concurrency": 4, "request_rate": None, "label": "concurrency=4",
                                  "arrival_s": None}])
        rf = parse_lines("f", lines(h, request(0, True), request(1), request(2)))
        self.assertEqual((rf.sweep_points[0].concurrency, rf.sweep_points[0].arrival_s), (4, None))

    def test_load_from_disk(self):
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "r.jsonl")
            with open(path, "w") as f:
                f.write("\n".join(lines(*good())) + "\n")
            self.assertEqual(len(load(path).requests), 3)


class Errors(unittest.TestCase):
    def assertFails(self, objects, *fragments):
        with self.assertRaises(RequestFileError) as cm:
            parse_lines("r.jsonl", lines(*objects))
        for fragment in fragments:
            self.assertIn(fragment, str(cm.exception))

    def test_bad_json_names_the_line(self):
        self.assertFails([header(), request(0, True), "{not json"], "r.jsonl:3:", "not valid JSON")

    def test_header_first(self):
        self.assertFails([request(0)], "r.jsonl:1:", "workload header")
        self.assertFails([header(vocab_size=0)], "r.jsonl:1:", "vocab_size")
        self.assertFails([header(sweep_points=[])], "r.jsonl:1:", "sweep_points")
        self.assertFails([header(git_commit=None)], "r.jsonl:1:", "git_commit")
        self.assertFails([header(sweep_points=[{"mode": "burst", "label": "x"}])], "mode must be")

    def test_empty(self):
        self.assertFails([], "r.jsonl: empty")

    def test_index_order(self):
        self.assertFails([header(), request(0, True), request(2)], "r.jsonl:3:", "index must be 1")

    def test_warmup_after_measured(self):
        self.assertFails([header(), request(0), request(1, True)], "r.jsonl:3:", "warm-up request 1 after a measured")

    def test_token_out_of_vocabulary(self):
        self.assertFails([header(), request(0, True, ids=(1, 100))], "r.jsonl:2:", "prompt_token_ids[1] = 100")
        self.assertFails([header(), request(0, True, ids=())], "r.jsonl:2:", "non-empty")
        self.assertFails([header(), request(0, True, ids=(1, True))], "r.jsonl:2:", "prompt_token_ids[1]")

    def test_output_len_and_flags(self):
        self.assertFails([header(), request(0, True, output_len=0)], "r.jsonl:2:", "output_len")
        self.assertFails([header(), request(0, True, ignore_eos="yes")], "r.jsonl:2:", "ignore_eos")
        self.assertFails([header(), request(0, "no")], "r.jsonl:2:", "warmup")

    def test_counts_match_the_workload(self):
        self.assertFails([header(), request(0, True), request(1)], "num_requests is 2 but the file has 1")

    def test_poisson_arrivals(self):
        h = header()
        h["sweep_points"][0]["arrival_s"] = [0.0]
        self.assertFails([h, request(0, True), request(1), request(2)], "1 arrival times for 2 measured")
        h["sweep_points"][0]["arrival_s"] = [0.5, 0.1]
        self.assertFails([h], "must not decrease")
        h["sweep_points"][0]["arrival_s"] = None
        self.assertFails([h], "needs arrival_s")
        h = header(sweep_points=[{"mode": "offline", "label": "offline", "arrival_s": [0.0]}])
        self.assertFails([h], "only for poisson")

    def test_closed_needs_concurrency(self):
        h = header(sweep_points=[{"mode": "closed", "concurrency": 0, "label": "c"}])
        self.assertFails([h], "concurrency >= 1")

    def test_no_measured_requests(self):
        w = dict(WORKLOAD, num_requests=None)
        self.assertFails([header(workload=w), request(0, True)], "no measured requests")

    def test_missing_file(self):
        with self.assertRaises(RequestFileError) as cm:
            load("/nonexistent/requests.jsonl")
        self.assertIn("--export-requests", str(cm.exception))


if __name__ == "__main__":
    unittest.main()
