"""Metrics arithmetic (docs/metrics.md) on hand-made traces, and the percentile/std conventions of
iol's src/iol/bench/metrics.cpp (linear interpolation between order statistics, ddof = 0)."""
import math
import unittest

import fakes  # noqa: F401  (puts baselines/pytorch on sys.path)
from iol_baseline import BaselineError
from iol_baseline.metrics import RequestTrace, Slo, compute_run_metrics, percentile, request_metrics, summarize


def trace(index, arrival, times, input_tokens=10, status="ok", warmup=False):
    t = RequestTrace(index=index, warmup=warmup, status=status, input_tokens=input_tokens, arrival=arrival,
                     output_tokens=len(times), token_times=list(times))
    if times:
        t.first_token, t.finished = times[0], times[-1]
    return t


class PercentileConvention(unittest.TestCase):
    # Values derived from metrics.cpp: rank = q/100 * (n - 1), v[lo] + (v[hi] - v[lo]) * (rank - lo).
    def test_four_values(self):
        v = [1.0, 2.0, 3.0, 4.0]
        self.assertEqual(percentile(v, 50), 2.5)          # rank 1.5
        self.assertAlmostEqual(percentile(v, 90), 3.7)    # rank 2.7
        self.assertAlmostEqual(percentile(v, 95), 3.85)   # rank 2.85
        self.assertAlmostEqual(percentile(v, 99), 3.97)   # rank 2.97
        self.assertEqual(percentile(v, 0), 1.0)
        self.assertEqual(percentile(v, 100), 4.0)

    def test_one_to_hundred(self):
        v = [float(i) for i in range(1, 101)]
        self.assertAlmostEqual(percentile(v, 99), 99.01)  # rank 98.01
        self.assertAlmostEqual(percentile(v, 50), 50.5)

    def test_single_and_empty(self):
        self.assertEqual(percentile([7.0], 99), 7.0)
        self.assertEqual(percentile([], 50), 0.0)

    def test_population_std_and_sorting(self):
        d = summarize([9, 2, 4, 4, 5, 4, 5, 7])  # unsorted on purpose
        self.assertEqual(d["count"], 8)
        self.assertEqual(d["mean"], 5.0)
        self.assertEqual(d["std"], 2.0)           # ddof = 0 (the sample std would be 2.138)
        self.assertEqual(d["median"], 4.5)
        self.assertEqual((d["min"], d["max"]), (2.0, 9.0))
        self.assertEqual(list(d), ["count", "mean", "median", "p90", "p95", "p99", "std", "min", "max"])

    def test_empty_distribution_is_null(self):
        d = summarize([])
        self.assertEqual(d["count"], 0)
        self.assertTrue(all(d[k] is None for k in d if k != "count"))


class RequestArithmetic(unittest.TestCase):
    def test_four_token_request(self):
        # Arrival 20 ms; tokens at 100, 150, 250, 300 ms.
        m = request_metrics(trace(0, 0.02, [0.10, 0.15, 0.25, 0.30]))
        self.assertAlmostEqual(m.ttft_ms, 80.0, places=9)
        self.assertAlmostEqual(m.e2e_ms, 280.0, places=9)
        self.assertAlmostEqual(m.tpot_ms, 200.0 / 3, places=9)  # (E2E - TTFT) / (4 - 1)
        self.assertEqual(len(m.itl_ms), 3)
        for got, want in zip(m.itl_ms, [50.0, 100.0, 50.0]):
            self.assertAlmostEqual(got, want, places=9)

    def test_one_token_request_has_no_tpot(self):
        m = request_metrics(trace(0, 0.05, [0.2]))
        self.assertAlmostEqual(m.ttft_ms, 150.0, places=9)
        self.assertAlmostEqual(m.e2e_ms, 150.0, places=9)
        self.assertIsNone(m.tpot_ms)
        self.assertEqual(m.itl_ms, [])


class RunArithmetic(unittest.TestCase):
    def setUp(self):
        self.traces = [
            trace(0, 0.0, [0.01, 0.02], warmup=True),        # excluded from everything
            trace(1, 0.02, [0.10, 0.15, 0.25, 0.30], 10),
            trace(2, 0.05, [0.20], 20),
            trace(3, 0.0, [], 30, status="failed"),          # counted; its arrival opens the duration
        ]

    def test_counts_duration_throughput(self):
        r = compute_run_metrics(self.traces, Slo())
        self.assertEqual((r["num_completed"], r["num_failed"], r["num_aborted"], r["num_warmup"]), (2, 1, 0, 1))
        self.assertAlmostEqual(r["duration_s"], 0.30)                 # last finish 0.30 - first arrival 0.0
        self.assertEqual((r["total_input_tokens"], r["total_output_tokens"]), (30, 5))
        self.assertAlmostEqual(r["request_throughput"], 2 / 0.30)
        self.assertAlmostEqual(r["output_throughput"], 5 / 0.30)
        self.assertAlmostEqual(r["total_token_throughput"], 35 / 0.30)
        self.assertIsNone(r["goodput"])

    def test_distributions(self):
        r = compute_run_metrics(self.traces, Slo())
        ttft = r["ttft_ms"]  # [80, 150]
        self.assertEqual(ttft["count"], 2)
        for key, want in (("mean", 115.0), ("median", 115.0), ("p90", 143.0), ("p95", 146.5), ("p99", 149.3),
                          ("std", 35.0), ("min", 80.0), ("max", 150.0)):
            self.assertAlmostEqual(ttft[key], want, places=9, msg=key)
        itl = r["itl_ms"]    # [50, 50, 100]
        for key, want in (("count", 3), ("mean", 200.0 / 3), ("median", 50.0), ("p90", 90.0), ("p95", 95.0),
                          ("p99", 99.0), ("std", math.sqrt(5000.0 / 9)), ("min", 50.0), ("max", 100.0)):
            self.assertAlmostEqual(itl[key], want, places=9, msg=key)
        self.assertEqual(r["tpot_ms"]["count"], 1)   # the one-token request has no TPOT
        self.assertAlmostEqual(r["tpot_ms"]["mean"], 200.0 / 3, places=9)
        self.assertAlmostEqual(r["e2e_ms"]["mean"], 215.0, places=9)
        self.assertEqual(r["output_len"]["max"], 4.0)
        self.assertEqual(r["input_len"]["mean"], 15.0)

    def test_goodput(self):
        # TTFT 80 meets 100 ms, 150 does not; the one-token request meets any TPOT SLO.
        self.assertAlmostEqual(compute_run_metrics(self.traces, Slo.parse("ttft_ms=100"))["goodput"], 1 / 0.30)
        self.assertAlmostEqual(compute_run_metrics(self.traces, Slo.parse("tpot_ms=50"))["goodput"], 1 / 0.30)
        self.assertAlmostEqual(compute_run_metrics(self.traces, Slo.parse("tpot_ms=70,e2e_ms=300"))["goodput"], 2 / 0.30)

    def test_nothing_completed(self):
        r = compute_run_metrics([trace(0, 0.0, [], status="failed")], Slo.parse("ttft_ms=1"))
        self.assertEqual((r["duration_s"], r["output_throughput"], r["goodput"]), (0.0, 0.0, None))
        self.assertIsNone(r["ttft_ms"]["mean"])


class SloParsing(unittest.TestCase):
    def test_valid(self):
        slo = Slo.parse("ttft_ms=200,tpot_ms=50,e2e_ms=5000")
        self.assertEqual(slo.to_json(), {"ttft_ms": 200.0, "tpot_ms": 50.0, "e2e_ms": 5000.0})
        self.assertTrue(Slo.parse("").empty())
        self.assertEqual(Slo.parse("ttft_ms=1,").ttft_ms, 1.0)  # iol's loop accepts a trailing comma

    def test_invalid(self):
        for text in ("ttft=200", "ttft_ms", "ttft_ms=0", "ttft_ms=-1", "ttft_ms=abc", "ttft_ms=1,,tpot_ms=2"):
            with self.assertRaises(BaselineError, msg=text):
                Slo.parse(text)


class SameCasesAsIolCpp(unittest.TestCase):
    """The cases of tests/unit/bench_metrics_test.cpp, with its expected values: both sides agree."""

    def test_distribution(self):
        d = summarize([4, 1, 3, 2])
        self.assertEqual((d["count"], d["mean"], d["median"]), (4, 2.5, 2.5))
        self.assertAlmostEqual(d["p90"], 3.7, places=12)
        self.assertAlmostEqual(d["p99"], 3.97, places=12)
        self.assertEqual(d["std"], math.sqrt(1.25))
        self.assertEqual(summarize([7])["p99"], 7)

    def test_run_aggregates(self):
        aborted = trace(3, 10.2, [10.4, 10.5], status="aborted")
        failed = trace(4, 10.3, [], status="failed")
        traces = [trace(0, 0.0, [5.0, 6.0], warmup=True), trace(1, 10.0, [10.1, 10.2, 10.3]),
                  trace(2, 10.5, [11.0], 20), aborted, failed]
        r = compute_run_metrics(traces, Slo.parse("ttft_ms=200"))
        self.assertEqual((r["num_warmup"], r["num_completed"], r["num_aborted"], r["num_failed"]), (1, 2, 1, 1))
        self.assertEqual(r["duration_s"], 1.0)
        self.assertEqual((r["total_output_tokens"], r["total_input_tokens"]), (4, 30))
        self.assertEqual((r["output_throughput"], r["request_throughput"], r["total_token_throughput"]), (4.0, 2.0, 34.0))
        self.assertEqual(r["goodput"], 1.0)
        self.assertAlmostEqual(r["ttft_ms"]["mean"], 300, places=9)
        self.assertEqual(r["tpot_ms"]["count"], 1)
        self.assertAlmostEqual(r["tpot_ms"]["mean"], 100, places=9)
        self.assertEqual(r["itl_ms"]["count"], 2)
        self.assertIsNone(compute_run_metrics(traces, Slo())["goodput"])


if __name__ == "__main__":
    unittest.main()
