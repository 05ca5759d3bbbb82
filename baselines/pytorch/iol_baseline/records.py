"""Result records of the baseline: the same schema as iol's (bench/schema/results.schema.json,
docs/results-schema.md), so `iol report` reads both without special cases.

Owns the run id (iol's format), the traces side file's name, the record's engine/workload/target
sections for a static-batching transformers run, and append-only writing: a results file is
never truncated or rewritten; each line is written whole with one write on an O_APPEND descriptor.
Where iol's schema has no place for a baseline fact, it goes in an object the schema leaves open
(engine.config, workload.sweep, target, environment.versions), never at the top level, which the
schema closes.
"""
import json
import math
import os
import random
import time

SCHEMA_VERSION = 1
ENGINE_NAME = "pytorch-transformers"
KV_USAGE_DEFINITION = ("fraction of the batch's contiguous KV slots holding real tokens: "
                       "real (prompt + generated) tokens / (rows x (longest prompt + generated or "
                       "max new tokens)); padding and preallocation are the rest")


def make_run_id():
    """YYYYMMDDTHHMMSSZ-xxxxxx (UTC, 24 random bits), as iol's bench_command.cpp."""
    return time.strftime("%Y%m%dT%H%M%SZ", time.gmtime()) + f"-{random.SystemRandom().getrandbits(24):06x}"


def record_run_id(base_id, k, num_records):
    """iol: the base id alone for a single record, base-k for the k-th of several."""
    return base_id if num_records == 1 else f"{base_id}-{k}"


def traces_path(out):
    """<results minus .jsonl>.requests.jsonl, as iol (std::string::rfind, so the last ".jsonl")."""
    i = out.rfind(".jsonl")
    return (out if i < 0 else out[:i]) + ".requests.jsonl"


def sanitize(value):
    """NaN and infinities become null (what nlohmann::json writes), so every line is valid JSON."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: sanitize(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [sanitize(v) for v in value]
    return value


def dumps(value):
    return json.dumps(sanitize(value), separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def append_lines(path, objects):
    """Appends one JSON line per object; creates the file (and its folder) if needed."""
    parent = os.path.dirname(path)
    if parent:
        os.makedirs(parent, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        # A file whose last line lacks its newline gets one first, so no record is glued to it.
        size = os.fstat(fd).st_size
        prefix = b""
        if size > 0:
            with open(path, "rb") as f:
                f.seek(size - 1)
                if f.read(1) != b"\n":
                    prefix = b"\n"
        for i, obj in enumerate(objects):
            data = (prefix if i == 0 else b"") + (dumps(obj) + "\n").encode("utf-8")
            view = memoryview(data)
            while view:
                written = os.write(fd, view)
                view = view[written:]
    finally:
        os.close(fd)


def levers():
    """What a transformers `generate` has: static batches, a contiguous (per-sequence) KV cache."""
    return {"batching": "static", "kv_layout": "contiguous", "prefix_caching": False, "chunked_prefill": False,
            "quantization": "none", "speculative_decoding": "none"}


def engine_section(mode, model, architecture, num_parameters, load_seconds, backend_description, config):
    return {"name": ENGINE_NAME, "runner": f"pytorch-{mode}", "backend": "cuda", "model": model,
            "architecture": architecture, "num_parameters": int(num_parameters), "weights_dtype": "BF16",
            "backend_description": backend_description, "load_seconds": float(load_seconds),
            "levers": levers(), "config": dict(config)}


def engine_config(mode, batch_size, max_batch_tokens, max_model_len, compile_mode, buckets, static_cache_len=None):
    """engine.config: the keys the schema requires (block_size is null: the KV cache has no blocks)
    and the baseline's own knobs."""
    compiled = mode == "compiled"
    return {"block_size": None, "max_num_seqs": batch_size, "max_num_batched_tokens": max_batch_tokens,
            "max_model_len": max_model_len, "batch_size": batch_size,
            "cache_implementation": "static" if compiled else "dynamic", "attn_implementation": "sdpa",
            "dtype": "bfloat16", "padding_side": "left", "pad_token_id": 0,
            "torch_compile": {"mode": compile_mode, "fullgraph": True, "dynamic": False,
                              "scope": "decoding forward (transformers' generate)"} if compiled else None,
            "cuda_graphs": compiled and compile_mode == "reduce-overhead",
            "batch_buckets": list(buckets) if buckets else None,
            # compiled: every batch is left-padded so prompt + new tokens is this (driver.py)
            "static_cache_len": static_cache_len if compiled else None}


def workload_section(workload, point, label, batch_size, repetition, num_repetitions):
    """iol's workload object from the request file, plus this record's sweep point."""
    section = {k: v for k, v in workload.items() if k != "sweep"}
    section["sweep"] = {"mode": point.mode,
                        "concurrency": point.concurrency if point.mode == "closed" else None,
                        "request_rate": point.request_rate if point.mode == "poisson" else None,
                        "label": label, "batch_size": batch_size,
                        "repetition": repetition, "num_repetitions": num_repetitions}
    return section


def target_section(stats, torch_memory):
    """Engine-side figures: iol's keys (no preemptions, no prefix cache in static batching) plus
    the KV usage of the contiguous cache and torch's own peak memory."""
    usage = stats.get("kv_usage", [])
    section = {"num_steps": stats.get("num_steps", 0), "num_preemptions": 0,
               "peak_num_running": stats.get("peak_num_running", 0),
               "kv_peak_usage": max(usage) if usage else 0.0,
               "kv_mean_usage": sum(usage) / len(usage) if usage else 0.0,
               "kv_usage_definition": KV_USAGE_DEFINITION,
               "prefix_cache_queried_tokens": 0, "prefix_cache_hit_rate": 0.0,
               "num_batches": stats.get("num_batches", 0), "num_padding_rows": stats.get("num_padding_rows", 0)}
    section.update(torch_memory or {})
    return section


def build_record(*, run_id, tag, engine, workload, slo, metrics, energy, telemetry, target, process,
                 environment, requests_file):
    return {"schema_version": SCHEMA_VERSION, "run_id": run_id, "tag": tag, "engine": engine, "workload": workload,
            "slo": slo, "metrics": metrics, "energy": energy, "telemetry": telemetry, "target": target,
            "process": process, "environment": environment, "requests_file": requests_file}
