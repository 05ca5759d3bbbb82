"""The static-batch and arrival-driven batching policy, as pure functions on hand-made lists."""
import unittest

import fakes  # noqa: F401
from iol_baseline import BaselineError
from iol_baseline.batching import (bucket_rows, default_buckets, kv_usage, next_poisson_batch, padded_kv_tokens,
                                   parse_int_list, simulate_poisson, static_batches)


class StaticBatches(unittest.TestCase):
    def test_index_order_last_partial(self):
        self.assertEqual(static_batches([(4, 4)] * 7, 3), [[0, 1, 2], [3, 4, 5], [6]])
        self.assertEqual(static_batches([(4, 4)] * 2, 8), [[0, 1]])
        self.assertEqual(static_batches([(4, 4)] * 3, 1), [[0], [1], [2]])

    def test_max_batch_tokens_closes_early(self):
        # rows x (longest prompt + longest output): 2 x (10 + 10) = 40 fits 40; a third row would need 60.
        self.assertEqual(static_batches([(10, 10)] * 5, 4, max_batch_tokens=40), [[0, 1], [2, 3], [4]])
        # A long prompt raises the whole batch's footprint: [0, 1] -> 2 x (30 + 10) = 80 > 50.
        self.assertEqual(static_batches([(10, 10), (30, 10), (10, 10)], 4, max_batch_tokens=50), [[0], [1], [2]])
        # Too large alone: it still runs, alone.
        self.assertEqual(static_batches([(100, 100), (1, 1)], 4, max_batch_tokens=10), [[0], [1]])

    def test_padded_kv_tokens(self):
        self.assertEqual(padded_kv_tokens([(3, 5), (7, 2)]), 2 * (7 + 5))
        self.assertEqual(padded_kv_tokens([]), 0)

    def test_bad_batch_size(self):
        with self.assertRaises(BaselineError):
            static_batches([(1, 1)], 0)


class PoissonPolicy(unittest.TestCase):
    ARRIVALS = [0.0, 0.1, 0.15, 0.2, 1.0, 1.05, 3.0]

    def test_one_decision(self):
        a = self.ARRIVALS
        self.assertEqual(next_poisson_batch(a, 0, 0.0, 8), ([0], None))
        self.assertEqual(next_poisson_batch(a, 1, 0.05, 8), ([], 0.1))           # nothing due: wait for 0.1
        self.assertEqual(next_poisson_batch(a, 1, 0.5, 8), ([1, 2, 3], None))     # all that arrived
        self.assertEqual(next_poisson_batch(a, 1, 0.5, 2), ([1, 2], None))        # up to the cap
        self.assertEqual(next_poisson_batch(a, 7, 9.0, 8), ([], None))            # done

    def test_token_cap(self):
        lengths = [(10, 10)] * 7
        self.assertEqual(next_poisson_batch(self.ARRIVALS, 1, 0.5, 8, lengths, max_batch_tokens=40), ([1, 2], None))

    def test_simulated_schedule(self):
        # Each batch takes 0.3 s + 0.1 s per row.
        schedule = simulate_poisson(self.ARRIVALS, 8, lambda b: 0.3 + 0.1 * len(b))
        want = [(0.0, [0]),            # request 0 at once, done at 0.4
                (0.4, [1, 2, 3]),      # 1, 2, 3 arrived meanwhile: one batch, done at 1.0
                (1.0, [4]),            # 4 is due at 1.0 exactly; 5 (1.05) is not yet: done at 1.4
                (1.4, [5]),
                (3.0, [6])]            # idle until the last arrival
        self.assertEqual(len(schedule), len(want))
        for (t, b), (wt, wb) in zip(schedule, want):
            self.assertAlmostEqual(t, wt)
            self.assertEqual(b, wb)

    def test_cap_one_is_fcfs(self):
        schedule = simulate_poisson([0.0, 0.0, 0.0], 1, lambda b: 1.0)
        self.assertEqual(schedule, [(0.0, [0]), (1.0, [1]), (2.0, [2])])


class Buckets(unittest.TestCase):
    def test_default_buckets(self):
        self.assertEqual(default_buckets(64), [1, 2, 4, 8, 16, 32, 64])
        self.assertEqual(default_buckets(48), [1, 2, 4, 8, 16, 32, 48])
        self.assertEqual(default_buckets(1), [1])

    def test_bucket_rows(self):
        self.assertEqual(bucket_rows(3, [1, 2, 4, 8]), 4)
        self.assertEqual(bucket_rows(8, [8, 1, 4]), 8)
        with self.assertRaises(BaselineError):
            bucket_rows(9, [1, 8])

    def test_parse_int_list(self):
        self.assertEqual(parse_int_list("1,8, 64", "--batch-sweep"), [1, 8, 64])
        for text in ("1,x", "0", "1,,2"):
            with self.assertRaises(BaselineError):
                parse_int_list(text, "--batch-sweep")


class KvUsage(unittest.TestCase):
    def test_dynamic_cache(self):
        # Prompts 2 and 4, two steps each: step 1 holds (2+1) + (4+1) = 8 of 2 x (4 + 1) = 10 slots.
        self.assertEqual(kv_usage([(2, 2), (4, 2)], [2, 2], 2, static_cache=False), [8 / 10, 10 / 12])

    def test_static_cache_and_padding_rows(self):
        # Static: 2 x (4 + 2) = 12 slots from the start; a dummy row adds 6 more.
        self.assertEqual(kv_usage([(2, 2), (4, 2)], [2, 2], 2, static_cache=True), [8 / 12, 10 / 12])
        self.assertEqual(kv_usage([(4, 2)], [2], 2, static_cache=True, padded_rows=1), [5 / 12, 6 / 12])

    def test_rows_that_stop_early(self):
        # Row 1 kept one token (EOS), so it stops growing after step 1.
        self.assertEqual(kv_usage([(2, 3), (2, 3)], [3, 1], 3, static_cache=False), [6 / 6, 7 / 8, 8 / 10])


if __name__ == "__main__":
    unittest.main()
