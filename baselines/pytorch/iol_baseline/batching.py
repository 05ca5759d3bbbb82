"""The baseline's batching policy, as pure functions of request lengths and arrival times.

PyTorch/transformers has no continuous batching: `generate` runs one static batch to the end, so
every policy here forms static batches (docs/baseline.md, "Batching policy"):
  offline       batches of --batch-size requests in index order, the last one partial
  closed (c)    batches of c requests: the next batch is sent when the previous one is done
  poisson       whenever the GPU is free, every request that has arrived (up to the batch cap)
                becomes one batch; when none has arrived, wait for the next arrival
A batch is also closed early when its contiguous KV footprint, rows x (longest prompt + longest
output), would pass --max-batch-tokens.
"""
from . import BaselineError


def padded_kv_tokens(lengths):
    """KV slots a left-padded static batch needs: rows x (longest prompt + longest output)."""
    if not lengths:
        return 0
    return len(lengths) * (max(p for p, _ in lengths) + max(o for _, o in lengths))


def static_batches(lengths, batch_size, max_batch_tokens=None):
    """Splits requests (given as (prompt_len, output_len), in index order) into static batches.

    Returns lists of positions into `lengths`. A request too large for max_batch_tokens on its own
    still runs, alone (it cannot be split)."""
    if batch_size < 1:
        raise BaselineError(f"batch size must be >= 1 (got {batch_size})")
    batches, current = [], []
    for i, length in enumerate(lengths):
        candidate = [lengths[j] for j in current] + [length]
        too_big = max_batch_tokens is not None and current and padded_kv_tokens(candidate) > max_batch_tokens
        if len(current) == batch_size or too_big:
            batches.append(current)
            current = []
        current.append(i)
    if current:
        batches.append(current)
    return batches


def next_poisson_batch(arrivals, next_index, now, cap, lengths=None, max_batch_tokens=None):
    """One decision of the arrival-driven policy.

    arrivals: due times of the requests (non-decreasing); next_index: the first not yet served.
    Returns (batch, wait_until): the positions of every request due by `now` (at most `cap`, and
    within max_batch_tokens), or ([], the next due time) when none is due yet."""
    if next_index >= len(arrivals):
        return [], None
    if arrivals[next_index] > now:
        return [], arrivals[next_index]
    batch = [next_index]
    i = next_index + 1
    while i < len(arrivals) and len(batch) < cap and arrivals[i] <= now:
        if max_batch_tokens is not None and lengths is not None:
            if padded_kv_tokens([lengths[j] for j in batch + [i]]) > max_batch_tokens:
                break
        batch.append(i)
        i += 1
    return batch, None


def simulate_poisson(arrivals, cap, duration_of, lengths=None, max_batch_tokens=None):
    """Runs the arrival-driven policy on a model of batch durations: [(start_time, batch)].

    duration_of(batch) -> seconds. The runner's loop (driver.py) takes the same decisions with
    the real clock; this is its specification, used by the tests."""
    now, next_index, schedule = 0.0, 0, []
    while next_index < len(arrivals):
        batch, wait_until = next_poisson_batch(arrivals, next_index, now, cap, lengths, max_batch_tokens)
        if not batch:
            now = wait_until
            continue
        schedule.append((now, batch))
        now += duration_of(batch)
        next_index = batch[-1] + 1
    return schedule


def default_buckets(cap):
    """Batch-row buckets for compiled mode: 1, 2, 4, ... below cap, and cap itself."""
    buckets, b = [], 1
    while b < cap:
        buckets.append(b)
        b *= 2
    buckets.append(cap)
    return buckets


def bucket_rows(rows, buckets):
    """The smallest bucket >= rows: compiled (CUDA-graph) mode pads a batch up to it with dummy rows,
    so that only len(buckets) shapes are ever compiled."""
    for b in sorted(buckets):
        if b >= rows:
            return b
    raise BaselineError(f"a batch of {rows} rows is larger than the largest bucket {max(buckets)}")


def parse_int_list(text, flag):
    """'1,8,64' -> [1, 8, 64]; every value >= 1."""
    values = []
    for item in text.split(","):
        item = item.strip()
        try:
            value = int(item)
        except ValueError:
            raise BaselineError(f"{flag}: '{item}' is not an integer (expected a list like 1,8,64)") from None
        if value < 1:
            raise BaselineError(f"{flag}: {value} must be >= 1")
        values.append(value)
    if not values:
        raise BaselineError(f"{flag}: empty list")
    return values


def kv_usage(lengths, generated, steps, static_cache, padded_rows=0, static_len=None):
    """Per-step fraction of the batch's contiguous KV slots that hold real tokens.

    lengths: (prompt_len, output_len) of the real rows; generated: tokens each real row kept;
    steps: decode steps the batch ran; padded_rows: dummy rows (compiled buckets). The dynamic
    cache holds rows x (longest prompt + step) slots; the static cache rows x static_len (default
    longest prompt + max new tokens) from the start. This is the waste a paged KV cache removes
    (Kwon et al. 2023)."""
    if not lengths or steps <= 0:
        return []
    rows = len(lengths) + padded_rows
    longest = max(p for p, _ in lengths)
    max_new = max(o for _, o in lengths)
    usage = []
    for s in range(1, steps + 1):
        used = sum(p + min(s, n) for (p, _), n in zip(lengths, generated))
        allocated = rows * ((static_len or longest + max_new) if static_cache else longest + s)
        usage.append(used / allocated if allocated else 0.0)
    return usage
