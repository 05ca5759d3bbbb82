"""The streamer timestamps and the measurement loop (driver.py) on a fake engine and a fake clock:
arrival times per mode, batch formation, waiting for Poisson arrivals, dummy rows for compiled
buckets, EOS, out-of-memory handling, and the per-shape warm-up."""
import unittest

from fakes import EOS, FakeClock, FakeEngine, closed_point, make_requests, offline_point, poisson_point
from iol_baseline.driver import PointPlan, run_point, warm_up_shapes
from iol_baseline.metrics import Slo, compute_run_metrics, request_metrics
from iol_baseline.timing import StepRecorder, traces_for_batch


class Streamer(unittest.TestCase):
    def test_first_put_is_the_prompt(self):
        clock = FakeClock(10.0)
        rec = StepRecorder(clock, origin=9.0)
        rec.put([[1, 2, 3], [4, 5, 6]])   # prompt: skipped
        clock.t = 10.5
        rec.put([7, 8])
        clock.t = 10.75
        rec.put([[9], [EOS]])             # [B, 1] is accepted too
        rec.end()
        self.assertEqual(rec.times, [1.5, 1.75])
        self.assertEqual(rec.tokens, [[7, 8], [9, EOS]])
        self.assertTrue(rec.ended)

    def test_traces_share_step_times_and_stop_per_row(self):
        reqs = make_requests([(3, 3), (2, 5), (4, 5)], ignore_eos=False)
        times = [0.1, 0.2, 0.3, 0.4, 0.5]
        tokens = [[11, 11, 11, 11], [12, EOS, 12, 12], [13, 0, 13, 13], [14, 0, 14, 14], [15, 0, 15, 15]]
        traces = traces_for_batch(reqs, [0.0, 0.0, 0.05], times, tokens, [EOS])
        self.assertEqual([t.output_tokens for t in traces], [3, 2, 5])   # own output_len; EOS; full
        self.assertEqual(traces[0].token_times, [0.1, 0.2, 0.3])
        self.assertEqual((traces[1].first_token, traces[1].finished), (0.1, 0.2))  # EOS counts as a token
        self.assertEqual(traces[2].arrival, 0.05)
        self.assertEqual([t.input_tokens for t in traces], [3, 2, 4])
        # The fourth row (padding) has no trace.
        self.assertEqual(len(traces), 3)

    def test_ignore_eos_keeps_going(self):
        reqs = make_requests([(2, 3)], ignore_eos=True)
        traces = traces_for_batch(reqs, [0.0], [1.0, 2.0, 3.0], [[EOS], [EOS], [EOS]], [EOS])
        self.assertEqual(traces[0].output_tokens, 3)

    def test_no_token_is_a_failure(self):
        traces = traces_for_batch(make_requests([(2, 3)]), [0.0], [], [], [EOS])
        self.assertEqual(traces[0].status, "failed")


class Offline(unittest.TestCase):
    def test_static_batches_from_batch_start(self):
        clock = FakeClock()
        engine = FakeEngine(clock, prefill_s=0.05, step_s=0.01)
        reqs = make_requests([(3, 4)] * 7, warmup=2)
        warmup, measured = reqs[:2], reqs[2:]
        traces, stats = run_point(engine, warmup, measured, PointPlan(offline_point(), 2, "offline-bs2"),
                                  clock=clock, sleep=clock.sleep)
        self.assertEqual([c[0] for c in engine.calls], [2, 2, 2, 1])   # warm-up batch, then 2, 2, 1
        self.assertEqual([c[2] for c in engine.calls], [4, 4, 4, 4])
        self.assertEqual([t.index for t in traces], list(range(7)))
        # Warm-up batch: t = 0 .. 0.08; measured batches start at 0.08, 0.16, 0.24.
        self.assertEqual([round(t.arrival, 9) for t in traces[2:]], [0.08, 0.08, 0.16, 0.16, 0.24])
        for t in traces[2:]:
            m = request_metrics(t)
            self.assertAlmostEqual(m.ttft_ms, 50.0, places=6)
            self.assertAlmostEqual(m.e2e_ms, 80.0, places=6)
            self.assertAlmostEqual(m.tpot_ms, 10.0, places=6)
        self.assertEqual(stats["num_batches"], 3)
        self.assertEqual(stats["num_steps"], 12)
        self.assertEqual(stats["peak_num_running"], 2)
        r = compute_run_metrics(traces, Slo())
        self.assertEqual((r["num_completed"], r["num_warmup"]), (5, 2))
        self.assertAlmostEqual(r["duration_s"], 0.32 - 0.08)          # last finish - first measured arrival
        self.assertAlmostEqual(r["output_throughput"], 20 / 0.24)

    def test_closed_loop_batches_of_concurrency(self):
        clock = FakeClock()
        engine = FakeEngine(clock)
        reqs = make_requests([(3, 2)] * 7)
        run_point(engine, [], reqs, PointPlan(closed_point(3), 3, "concurrency=3"), clock=clock, sleep=clock.sleep)
        self.assertEqual([c[0] for c in engine.calls], [3, 3, 1])

    def test_mixed_lengths_one_batch(self):
        clock = FakeClock()
        engine = FakeEngine(clock)
        reqs = make_requests([(3, 2), (5, 4)])
        traces, _ = run_point(engine, [], reqs, PointPlan(offline_point(), 8, "offline-bs8"), clock=clock, sleep=clock.sleep)
        self.assertEqual(engine.calls, [(2, [3, 5], 4, True)])        # the batch runs to the longest output
        self.assertEqual([t.output_tokens for t in traces], [2, 4])   # each request keeps its own

    def test_eos_stops_a_row(self):
        clock = FakeClock()
        engine = FakeEngine(clock, eos_rows={100: 1})                 # request 0 emits EOS at step 1
        reqs = make_requests([(3, 4), (3, 4)], ignore_eos=False)
        traces, _ = run_point(engine, [], reqs, PointPlan(offline_point(), 2, "offline-bs2"), clock=clock, sleep=clock.sleep)
        self.assertEqual(engine.calls[0][3], False)
        self.assertEqual([t.output_tokens for t in traces], [2, 4])


class Poisson(unittest.TestCase):
    def test_takes_what_has_arrived_and_waits(self):
        clock = FakeClock()
        engine = FakeEngine(clock, prefill_s=0.05, step_s=0.01)       # a 4-token batch takes 0.08 s
        reqs = make_requests([(3, 4)] * 4)
        point = poisson_point(2.0, [0.0, 0.01, 0.02, 0.5])
        traces, stats = run_point(engine, [], reqs, PointPlan(point, 8, "rate=2"), clock=clock, sleep=clock.sleep)
        self.assertEqual([c[0] for c in engine.calls], [1, 2, 1])     # [0] at 0; [1, 2] at 0.08; [3] at 0.5
        self.assertEqual([t.arrival for t in traces], [0.0, 0.01, 0.02, 0.5])  # due times, not pick-up times
        ttft = [round(request_metrics(t).ttft_ms, 6) for t in traces]
        self.assertEqual(ttft, [50.0, 120.0, 110.0, 50.0])           # queueing delay counts
        self.assertEqual(stats["num_batches"], 3)

    def test_compiled_buckets_pad_with_dummy_rows(self):
        clock = FakeClock()
        engine = FakeEngine(clock, static_cache=True)
        reqs = make_requests([(3, 2)] * 3)
        point = poisson_point(100.0, [0.0, 0.0, 0.0])
        traces, stats = run_point(engine, [], reqs, PointPlan(point, 4, "rate=100", buckets=[1, 2, 4]),
                                  clock=clock, sleep=clock.sleep)
        self.assertEqual(engine.calls[0][0], 4)          # 3 requests padded to the 4-row bucket
        self.assertEqual(len(traces), 3)
        self.assertEqual(stats["num_padding_rows"], 1)
        self.assertEqual(stats["peak_num_running"], 3)


class OutOfMemory(unittest.TestCase):
    def test_batch_and_rest_of_point_fail(self):
        clock = FakeClock()
        engine = FakeEngine(clock, oom_rows=2)
        reqs = make_requests([(3, 2)] * 5)
        traces, _ = run_point(engine, [], reqs, PointPlan(offline_point(), 2, "offline-bs2"), clock=clock, sleep=clock.sleep)
        self.assertEqual(len(engine.calls), 1)            # the rest is skipped, not run
        self.assertEqual(engine.recovered, 1)
        self.assertTrue(all(t.status == "failed" for t in traces))
        self.assertIn("out of GPU memory", traces[0].error)
        self.assertIn("skipped", traces[4].error)
        r = compute_run_metrics(traces, Slo())
        self.assertEqual((r["num_completed"], r["num_failed"], r["duration_s"]), (0, 5, 0.0))

    def test_poisson_does_not_wait_after_oom(self):
        clock = FakeClock()
        engine = FakeEngine(clock, oom_rows=1)
        reqs = make_requests([(3, 2)] * 2)
        start = clock.t
        traces, _ = run_point(engine, [], reqs, PointPlan(poisson_point(0.1, [0.0, 50.0]), 4, "rate=0.1"),
                              clock=clock, sleep=clock.sleep)
        self.assertLess(clock.t - start, 1.0)
        self.assertEqual([t.status for t in traces], ["failed", "failed"])


class ShapeWarmup(unittest.TestCase):
    def test_compiled_warms_each_row_count_at_full_length(self):
        clock = FakeClock()
        engine = FakeEngine(clock, static_cache=True)
        reqs = make_requests([(3, 4), (6, 4), (3, 5), (3, 4), (2, 4)])
        plan = PointPlan(offline_point(), 2, "offline-bs2")
        warmed = {}
        warm_up_shapes(engine, [], reqs, plan, warmed)
        # Batches [0, 1], [2, 3], [4]: row counts 2 and 1, both at the point's one cache length
        # (longest prompt 6 + longest output 5 = 11), so the measured batches reuse these graphs.
        self.assertEqual(sorted((c[0], c[1][0], c[2]) for c in engine.calls), [(1, 6, 5), (2, 6, 5)])
        self.assertEqual(engine.pads, [6, 6])
        self.assertEqual(warmed, {1: 11, 2: 11})
        warm_up_shapes(engine, [], reqs, plan, warmed)
        self.assertEqual(len(engine.calls), 2)           # already warm: nothing runs again

    def test_compiled_batches_pad_to_one_cache_length(self):
        clock = FakeClock()
        engine = FakeEngine(clock, static_cache=True)
        reqs = make_requests([(3, 4), (6, 4), (3, 5), (3, 4), (2, 4)])
        traces, stats = run_point(engine, [], reqs, PointPlan(offline_point(), 2, "offline-bs2"),
                                  clock=clock, sleep=clock.sleep)
        # max_new per batch 4, 5, 4 -> prompts padded to 11 - max_new: every cache is 11 long.
        self.assertEqual([c[2] for c in engine.calls], [4, 5, 4])
        self.assertEqual(engine.pads, [7, 6, 7])
        self.assertEqual([t.output_tokens for t in traces], [4, 4, 5, 4, 4])
        # Batch 1 (prompts 3 and 6): step 1 holds 4 + 7 = 11 of 2 x 11 slots.
        self.assertAlmostEqual(stats["kv_usage"][0], 11 / 22)

    def test_eager_does_not_pad(self):
        clock = FakeClock()
        engine = FakeEngine(clock)
        run_point(engine, [], make_requests([(3, 4), (6, 4)]), PointPlan(offline_point(), 2, "offline-bs2"),
                  clock=clock, sleep=clock.sleep)
        self.assertEqual(engine.pads, [None])

    def test_eager_warms_briefly(self):
        clock = FakeClock()
        engine = FakeEngine(clock)
        warm_up_shapes(engine, [], make_requests([(3, 64)] * 4), PointPlan(offline_point(), 4, "offline-bs4"), {})
        self.assertEqual([(c[0], c[2]) for c in engine.calls], [(4, 2)])

    def test_compiled_poisson_warms_every_bucket(self):
        clock = FakeClock()
        engine = FakeEngine(clock, static_cache=True)
        reqs = make_requests([(3, 4), (7, 2)])
        plan = PointPlan(poisson_point(1.0, [0.0, 1.0]), 4, "rate=1", buckets=[1, 2, 4])
        warm_up_shapes(engine, [], reqs, plan, {})
        self.assertEqual([(c[0], c[1][0], c[2]) for c in engine.calls], [(1, 7, 4), (2, 7, 4), (4, 7, 4)])

    def test_eager_poisson_has_no_shape_warmup(self):
        clock = FakeClock()
        engine = FakeEngine(clock)
        warm_up_shapes(engine, [], make_requests([(3, 4)]), PointPlan(poisson_point(1.0, [0.0]), 4, "rate=1"), {})
        self.assertEqual(engine.calls, [])


if __name__ == "__main__":
    unittest.main()
