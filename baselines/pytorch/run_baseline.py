#!/usr/bin/env python3
"""run_baseline.py: the PyTorch (Hugging Face transformers) baseline of iol (docs/baseline.md).

Reads the exact request list `iol bench ... --export-requests FILE` wrote, runs it with
transformers' generate() in static batches, and appends one result record per sweep point and
repetition to the same .jsonl file iol writes (same schema), with per-request traces beside it.
Optionally dumps teacher-forced logits for the parity gate. Everything that can be checked without
torch (flags, the request file, the model folder, the output path) is checked before torch loads.
"""
import argparse
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from iol_baseline import BaselineError  # noqa: E402
from iol_baseline import driver, environment, metrics, records, requests_file, schema_check, telemetry  # noqa: E402
from iol_baseline.batching import default_buckets, parse_int_list  # noqa: E402
from iol_baseline.parity import parity_meta, parity_meta_path  # noqa: E402

PROG = "run_baseline.py"
DEFAULT_BATCH_SIZE = 64
SCHEMA_PATH = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "bench", "schema",
                           "results.schema.json")


def parse_args(argv):
    p = argparse.ArgumentParser(
        prog=PROG, description="PyTorch/transformers baseline: run iol's exported request list, append "
                               "results in iol's schema (docs/baseline.md).")
    p.add_argument("--model", required=True, help="Hugging Face model folder (config.json + safetensors)")
    p.add_argument("--requests", required=True, help="request file from `iol bench ... --export-requests FILE`")
    p.add_argument("--mode", choices=("eager", "compiled"), default="eager",
                   help="eager: generate() with the dynamic cache; compiled: static cache + torch.compile (default eager)")
    p.add_argument("--out", help="results .jsonl, appended (traces go to <out>.requests.jsonl); "
                                 "required unless only --parity-logits is asked for")
    size = p.add_mutually_exclusive_group()
    size.add_argument("--batch-size", type=int, help=f"rows per static batch for offline points; the batch cap "
                                                     f"for poisson points (default {DEFAULT_BATCH_SIZE})")
    size.add_argument("--batch-sweep", help="offline points: run each batch size, one record each, e.g. 1,8,64,256,1024")
    p.add_argument("--max-batch-tokens", type=int,
                   help="close a batch early when rows x (longest prompt + longest output) would exceed this")
    p.add_argument("--repetitions", type=int, default=3, help="records per sweep point (default 3)")
    p.add_argument("--tag", default="", help="free-form label stored in the records")
    p.add_argument("--slo", default="", help="goodput SLOs as iol's --slo, e.g. ttft_ms=200,tpot_ms=50")
    p.add_argument("--compile-mode", default="reduce-overhead",
                   choices=("reduce-overhead", "max-autotune-no-cudagraphs", "max-autotune", "default"),
                   help="torch.compile mode in compiled mode (default reduce-overhead: CUDA graphs, as transformers documents)")
    p.add_argument("--batch-buckets", help="compiled mode, poisson points: row counts a batch is padded up to "
                                           "(default 1,2,4,... up to the batch cap)")
    p.add_argument("--parity-logits", metavar="OUT.f32",
                   help="dump teacher-forced float32 logits of the first K requests' prompts (and OUT.json)")
    p.add_argument("--parity-requests", type=int, default=4, metavar="K", help="prompts in the parity dump (default 4)")
    p.add_argument("--parity-positions", type=int, default=0, metavar="N",
                   help="use only each prompt's first N tokens in the parity dump (default 0: all)")
    p.add_argument("--quiet", action="store_true", help="no progress on stderr")
    return p.parse_args(argv)


def check_flags(args):
    for name in ("batch_size", "max_batch_tokens"):
        value = getattr(args, name)
        if value is not None and value < 1:
            raise BaselineError(f"--{name.replace('_', '-')} must be >= 1 (got {value})")
    if args.repetitions < 1:
        raise BaselineError(f"--repetitions must be >= 1 (got {args.repetitions})")
    if args.parity_requests < 1 or args.parity_positions < 0:
        raise BaselineError("--parity-requests must be >= 1 and --parity-positions >= 0")
    if not args.out and not args.parity_logits:
        raise BaselineError("nothing to do: give --out results.jsonl (and/or --parity-logits OUT.f32)")
    if args.batch_buckets and args.mode != "compiled":
        raise BaselineError("--batch-buckets is for --mode compiled (eager batches take any shape)")
    for flag, path in (("--out", args.out), ("--parity-logits", args.parity_logits)):
        if path:
            check_writable(flag, path)


def check_writable(flag, path):
    """Fails early (before a model loads) on an output that cannot be written; creates nothing."""
    if os.path.isdir(path):
        raise BaselineError(f"{flag} {path}: is a folder; give a file")
    if os.path.exists(path):
        if not os.access(path, os.W_OK):
            raise BaselineError(f"{flag} {path}: not writable")
        return
    ancestor = os.path.dirname(os.path.abspath(path))
    while not os.path.exists(ancestor):
        ancestor = os.path.dirname(ancestor)
    if not os.path.isdir(ancestor) or not os.access(ancestor, os.W_OK):
        raise BaselineError(f"{flag} {path}: cannot create it ({ancestor} is not a writable folder)")


def check_model_dir(path):
    if not os.path.isdir(path):
        raise BaselineError(f"--model {path}: no such folder; create dummy weights with "
                            f"`iol model create --preset llama-3.1-8b --out {path}` or give a Hugging Face model folder")
    if not os.path.isfile(os.path.join(path, "config.json")):
        raise BaselineError(f"--model {path}: no config.json; is this a Hugging Face model folder?")


def plan_points(args, rf):
    """The (sweep point, batch size, label) list, in the request file's order."""
    measured = len(rf.measured_requests)
    sweep = parse_int_list(args.batch_sweep, "--batch-sweep") if args.batch_sweep else None
    if sweep and not any(p.mode == "offline" for p in rf.sweep_points):
        raise BaselineError("--batch-sweep applies to offline points, and the request file has none "
                            "(closed-loop points batch by their concurrency; poisson points take --batch-size as the cap)")
    cap = args.batch_size or DEFAULT_BATCH_SIZE
    buckets_flag = parse_int_list(args.batch_buckets, "--batch-buckets") if args.batch_buckets else None
    plans = []
    for point in rf.sweep_points:
        if point.mode == "offline":
            seen = set()
            for size in sweep or [cap]:
                effective = min(size, measured)  # a batch cannot hold more than every request
                if effective in seen:
                    continue
                seen.add(effective)
                plans.append(driver.PointPlan(point, effective, f"{point.label}-bs{effective}", args.max_batch_tokens))
        elif point.mode == "closed":
            plans.append(driver.PointPlan(point, point.concurrency, point.label, args.max_batch_tokens))
        else:
            buckets = None
            if args.mode == "compiled":
                buckets = sorted(set(buckets_flag)) if buckets_flag else default_buckets(cap)
                if max(buckets) < cap:
                    raise BaselineError(f"--batch-buckets: the largest bucket {max(buckets)} is below the batch cap {cap}")
            plans.append(driver.PointPlan(point, cap, point.label, args.max_batch_tokens, buckets))
    return plans


class Progress:
    """Progress on stderr: redrawn in place on a terminal, a line per quarter otherwise (as iol)."""

    def __init__(self, quiet, label):
        self.quiet, self.label, self.tty, self.last_quarter = quiet, label, sys.stderr.isatty(), -1

    def __call__(self, done, total, tokens, elapsed):
        if self.quiet or total == 0:
            return
        rate = tokens / elapsed if elapsed > 0 else 0.0
        if self.tty:
            eta = elapsed * (total - done) / done if done else 0.0
            filled = 30 * done // total
            sys.stderr.write(f"\r{self.label} [{'#' * filled}{'.' * (30 - filled)}] {done}/{total} requests, "
                             f"{rate:.0f} tok/s, ETA {eta:.0f} s " + ("\n" if done == total else ""))
        elif done * 4 // total != self.last_quarter or done == total:
            self.last_quarter = done * 4 // total
            sys.stderr.write(f"{self.label}: {done}/{total} requests, {rate:.0f} tok/s\n")
        sys.stderr.flush()


def log(args, message):
    if not args.quiet:
        print(f"{PROG}: {message}", file=sys.stderr, flush=True)


def run_parity(args, rf, engine):
    chosen = rf.requests[:args.parity_requests]  # the first K request lines, warm-up ones included
    prompts = [r.prompt_token_ids[:args.parity_positions] if args.parity_positions else r.prompt_token_ids
               for r in chosen]
    parent = os.path.dirname(args.parity_logits)
    if parent:
        os.makedirs(parent, exist_ok=True)
    vocab = engine.parity_logits(prompts, args.parity_logits)
    if vocab != rf.vocab_size:
        raise BaselineError(f"the model's logits have {vocab} entries but the request file's vocab_size is {rf.vocab_size}")
    versions = engine.versions()
    meta = parity_meta(args.parity_logits, vocab, [(r.index, len(p)) for r, p in zip(chosen, prompts)],
                       {"engine": records.ENGINE_NAME, "runner": f"pytorch-{args.mode}", "model": rf.model,
                        "model_dir": os.path.abspath(args.model), "requests_file": os.path.abspath(args.requests),
                        "dtype": "bfloat16 (logits cast to float32)", "attn_implementation": "sdpa",
                        "torch": versions["torch"], "transformers": versions["transformers"],
                        "cuda": versions["cuda_runtime"], "gpu": engine.gpu_from_torch()["name"]})
    with open(parity_meta_path(args.parity_logits), "w", encoding="utf-8") as f:
        json.dump(meta, f, indent=1)
        f.write("\n")
    log(args, f"parity logits: {sum(len(p) for p in prompts)} positions x {vocab} -> {args.parity_logits}")


def run_bench(args, rf, plans, engine, slo):
    schema = schema_check.load_schema(SCHEMA_PATH) if os.path.isfile(SCHEMA_PATH) else None
    sampler = telemetry.NvmlSampler(device_uuid=engine.device_uuid())
    gpu = sampler.gpu_info() or engine.gpu_from_torch()
    versions = dict(engine.versions(), driver=gpu.get("driver_version") or None,
                    cuda_driver=sampler.cuda_driver_version())
    env = environment.collect_environment(rf.iol_version, rf.git_commit, gpu,
                                          None if sampler.available else sampler.reason,
                                          versions["cuda_runtime"], versions)
    engine_desc = engine.description()
    warmup, measured = rf.warmup_requests, rf.measured_requests
    base_id = records.make_run_id()
    num_records = len(plans) * args.repetitions
    side_file = records.traces_path(args.out)
    warmed = {}
    k = 0
    try:
        for plan in plans:
            for rep in range(args.repetitions):
                label = f"{rf.workload.get('name', '?')} {plan.label} pytorch-{args.mode}"
                if args.repetitions > 1:
                    label += f" rep {rep + 1}/{args.repetitions}"
                driver.warm_up_shapes(engine, warmup, measured, plan, warmed, lambda m: log(args, m))
                engine.reset_peak_memory()
                sampler.start()
                traces, stats = driver.run_point(engine, warmup, measured, plan, progress=Progress(args.quiet, label))
                summary = sampler.stop()
                run_metrics = metrics.compute_run_metrics(traces, slo)
                run_id = records.record_run_id(base_id, k, num_records)
                k += 1
                config = records.engine_config(args.mode, plan.batch_size, args.max_batch_tokens, engine.max_model_len,
                                               args.compile_mode if args.mode == "compiled" else None, plan.buckets,
                                               driver.static_total_len(rf.requests))
                record = records.build_record(
                    run_id=run_id, tag=args.tag,
                    engine=records.engine_section(args.mode, rf.model, engine.architecture, engine.num_parameters,
                                                  engine.load_seconds, engine_desc, config),
                    workload=records.workload_section(rf.workload, plan.point, plan.label, plan.batch_size, rep,
                                                      args.repetitions),
                    slo=slo.to_json(), metrics=run_metrics,
                    energy=telemetry.energy_section(summary, run_metrics["total_output_tokens"],
                                                    run_metrics["output_throughput"]),
                    telemetry=summary, target=records.target_section(stats, engine.memory_stats()),
                    process=environment.process_stats(), environment=env, requests_file=side_file)
                if schema is not None:
                    problems = schema_check.validate(schema, records.sanitize(record))
                    if problems:
                        log(args, f"warning: record {run_id} does not match {SCHEMA_PATH}: {'; '.join(problems[:3])}")
                records.append_lines(args.out, [record])
                records.append_lines(side_file, [t.to_json(run_id) for t in traces])
                m = run_metrics
                print(f"{PROG}: {label}: {m['num_completed']} ok, {m['num_failed']} failed in {m['duration_s']:.2f} s; "
                      f"{m['request_throughput']:.2f} req/s, {m['output_throughput']:.1f} output tok/s; "
                      f"TTFT p50 {m['ttft_ms']['median'] or 0:.1f} ms; TPOT p50 {m['tpot_ms']['median'] or 0:.2f} ms "
                      f"-> {args.out}", file=sys.stderr, flush=True)
    finally:
        sampler.close()


def main(argv=None):
    args = parse_args(argv)
    try:
        check_flags(args)
        slo = metrics.Slo.parse(args.slo)
        rf = requests_file.load(args.requests)
        check_model_dir(args.model)
        plans = plan_points(args, rf) if args.out else []
        try:
            from iol_baseline import hf_runner
        except ImportError as e:
            raise BaselineError(f"cannot import torch/transformers ({e}); install baselines/pytorch/requirements.txt "
                                f"(make deps) on a machine with an NVIDIA GPU") from None
        engine = hf_runner.HfEngine(args.model, args.mode, args.compile_mode)
        if engine.vocab_size != rf.vocab_size:
            raise BaselineError(f"{args.requests} was exported for a vocabulary of {rf.vocab_size} tokens, but "
                                f"{args.model} has {engine.vocab_size}: not the same model")
        log(args, f"{engine.description()}; loaded in {engine.load_seconds:.1f} s")
        if args.parity_logits:
            run_parity(args, rf, engine)
        if args.out:
            run_bench(args, rf, plans, engine, slo)
    except BaselineError as e:
        print(f"{PROG}: {e}", file=sys.stderr)
        return 2
    except OSError as e:
        print(f"{PROG}: {e.filename or ''}: {e.strerror or e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
