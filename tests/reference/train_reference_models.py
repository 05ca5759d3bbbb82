#!/usr/bin/env python3
"""Trains the reference target/draft pair (tests/fixtures/reference_models/README.md) on the GPU
machine: two Llama-architecture models over the byte-level tokenizer `iol model create` writes
(token id = byte value, BOS 256 first), from fixed seeds, on the corpus of scripts/make_corpus.sh.

Usage: train_reference_models.py --iol path/to/iol --corpus corpus/ --out tests/fixtures/reference_models

Writes under --out: target/ and draft/ (Hugging Face directories: config.json, model.safetensors
in bf16, tokenizer.json, tokenizer_config.json), heldout-sample.txt (the evaluation text),
training.json (config, seeds, training curve, time, held-out bits per byte of both, versions) and,
for iol's CI tests, per model MODEL.reference.json + MODEL.logits.f32 in the format of
tests/fixtures/hf_reference (prompt ids, greedy ids, fp32 logits of every position), computed by
transformers in float32 with eager attention on the CPU from the saved bf16 weights.

Held-out bits per byte (the definition iol's test recomputes): the sample's bytes cut into
consecutive windows of WINDOW bytes (the last one shorter), each fed as [BOS] + window; the sum
over every byte of -log2 p(byte | BOS and the window's earlier bytes), over the sample's bytes.
"""
import argparse
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
import time

import torch
import transformers
from transformers import LlamaConfig, LlamaForCausalLM

BOS, EOS, VOCAB = 256, 257, 512
WINDOW = 512          # bytes per evaluation window (and per training sequence)
SEED = 1234
MODELS = {
    # ≤ 5 MB in bf16 each (tied embeddings); the draft is the cheap proposer of speculative decoding.
    "target": dict(hidden_size=256, intermediate_size=448, num_hidden_layers=4, num_attention_heads=4,
                   num_key_value_heads=2, steps=1500, lr=2e-3),
    "draft": dict(hidden_size=128, intermediate_size=384, num_hidden_layers=1, num_attention_heads=2,
                  num_key_value_heads=1, steps=1500, lr=3e-3),
}
BATCH = 128
WARMUP_STEPS = 150
EVAL_EVERY = 250
NUM_GREEDY = 64
NUM_PROMPTS = 5
PROMPT_BYTES = 48
LOGITS_WINDOWS = 2     # held-out windows whose full logits go into the CI fixture
LOGITS_WINDOW_BYTES = 128


def model_config(spec):
    return LlamaConfig(vocab_size=VOCAB, hidden_size=spec["hidden_size"], intermediate_size=spec["intermediate_size"],
                       num_hidden_layers=spec["num_hidden_layers"], num_attention_heads=spec["num_attention_heads"],
                       num_key_value_heads=spec["num_key_value_heads"], head_dim=64, max_position_embeddings=2048,
                       rms_norm_eps=1e-5, rope_theta=10000.0, tie_word_embeddings=True, bos_token_id=BOS,
                       eos_token_id=EOS, hidden_act="silu", attention_bias=False, mlp_bias=False)


def windows_of(data):
    return [data[i:i + WINDOW] for i in range(0, len(data), WINDOW)]


@torch.no_grad()
def bits_per_byte(model, data, device, dtype):
    """Held-out bits per byte as defined in the module docstring."""
    model.eval()
    total_nats, total_bytes = 0.0, 0
    for window in windows_of(data):
        ids = torch.tensor([[BOS] + list(window)], device=device)
        with torch.autocast(device_type=device.type, dtype=dtype, enabled=dtype != torch.float32):
            logits = model(ids).logits[0, :-1].float()
        nll = torch.nn.functional.cross_entropy(logits, ids[0, 1:], reduction="sum")
        total_nats += float(nll)
        total_bytes += len(window)
    model.train()
    return total_nats / math.log(2) / total_bytes


def train(name, spec, train_bytes, heldout, device, log, budget_seconds):
    torch.manual_seed(SEED + len(name))
    model = LlamaForCausalLM(model_config(spec)).to(device)
    params = sum(p.numel() for p in model.parameters())
    optimizer = torch.optim.AdamW(model.parameters(), lr=spec["lr"], betas=(0.9, 0.95), weight_decay=0.1)
    plan = {"steps": spec["steps"]}  # cut to the time budget after the first steps (below)

    def lr_at(step):  # linear warm-up, cosine decay to 10%
        if step < WARMUP_STEPS:
            return (step + 1) / WARMUP_STEPS
        progress = (step - WARMUP_STEPS) / max(1, plan["steps"] - WARMUP_STEPS)
        return 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * progress))

    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_at)
    data = torch.tensor(list(train_bytes), dtype=torch.long, device=device)
    generator = torch.Generator(device=device)
    generator.manual_seed(SEED)
    bos = torch.full((BATCH, 1), BOS, dtype=torch.long, device=device)
    curve = []
    start = time.time()
    step = 0
    while step < plan["steps"]:
        if step == 1:
            torch.cuda.synchronize()
            timed_from = time.time()  # after the first step and its evaluation (warm-up of the kernels)
        if step == 21:  # a safety cap only: the step count is fixed unless the budget cannot hold it
            torch.cuda.synchronize()
            per_step = (time.time() - timed_from) / 20
            if per_step * spec["steps"] > budget_seconds:
                plan["steps"] = max(WARMUP_STEPS * 2, int(budget_seconds / per_step))
            log(f"{name}: {per_step * 1e3:.1f} ms per step, {plan['steps']} steps")
        offsets = torch.randint(0, len(data) - WINDOW, (BATCH,), device=device, generator=generator)
        batch = data[offsets[:, None] + torch.arange(WINDOW, device=device)[None, :]]
        ids = torch.cat([bos, batch], dim=1)
        with torch.autocast(device_type="cuda", dtype=torch.bfloat16):
            loss = model(ids, labels=ids).loss
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        scheduler.step()
        if (step + 1) % EVAL_EVERY == 0 or step == 0:
            point = {"step": step + 1, "train_bits_per_byte": float(loss.detach()) / math.log(2),
                     "heldout_bits_per_byte": bits_per_byte(model, heldout, device, torch.bfloat16),
                     "seconds": round(time.time() - start, 1)}
            curve.append(point)
            log(f"{name} step {point['step']}: train {point['train_bits_per_byte']:.3f}, "
                f"held-out {point['heldout_bits_per_byte']:.3f} bits/byte, {point['seconds']} s")
        step += 1
    torch.cuda.synchronize()
    return model, params, curve, time.time() - start, plan["steps"]


@torch.no_grad()
def reference_cases(model, heldout):
    """Greedy continuations of held-out prompts and full logits of held-out windows (fp32, CPU)."""
    cases, blobs = [], []
    paragraphs = [p for p in heldout.split(b"\n\n") if len(p) >= PROMPT_BYTES and b"\n" not in p[:PROMPT_BYTES]]
    prompts = [[BOS] + list(p[:PROMPT_BYTES]) for p in paragraphs[:NUM_PROMPTS]]
    windows = [[BOS] + list(heldout[i * 4096:i * 4096 + LOGITS_WINDOW_BYTES]) for i in range(LOGITS_WINDOWS)]
    for prompt in prompts + windows:
        ids = list(prompt)
        greedy = NUM_GREEDY if len(cases) < len(prompts) else 0
        for _ in range(greedy):
            ids.append(int(torch.argmax(model(torch.tensor([ids])).logits[0, -1])))
        blobs.append(model(torch.tensor([ids])).logits[0].numpy().astype("<f4"))
        cases.append({"prompt_ids": prompt, "greedy_ids": ids[len(prompt):], "num_positions": len(ids)})
    return cases, blobs


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--iol", required=True, help="iol binary (writes the byte-level tokenizer)")
    parser.add_argument("--corpus", required=True, help="output directory of scripts/make_corpus.sh")
    parser.add_argument("--out", required=True)
    parser.add_argument("--budget-seconds", type=float, default=240,
                        help="training time of both models together; the step counts shrink to fit it")
    args = parser.parse_args()
    os.makedirs(args.out, exist_ok=True)
    log_lines = []

    def log(line):
        print(line, file=sys.stderr, flush=True)
        log_lines.append(line)

    with open(os.path.join(args.corpus, "train.txt"), "rb") as f:
        train_bytes = f.read()
    with open(os.path.join(args.corpus, "heldout-sample.txt"), "rb") as f:
        heldout = f.read()
    with open(os.path.join(args.corpus, "SHA256SUMS")) as f:
        checksums = f.read()
    shutil.copy(os.path.join(args.corpus, "heldout-sample.txt"), os.path.join(args.out, "heldout-sample.txt"))
    device = torch.device("cuda")
    torch.backends.cuda.matmul.allow_tf32 = True

    summary = {"corpus_sha256": checksums, "seed": SEED, "window_bytes": WINDOW, "batch": BATCH,
               "torch": torch.__version__, "transformers": transformers.__version__,
               "gpu": torch.cuda.get_device_name(0), "models": {}}
    for name, spec in MODELS.items():
        model, params, curve, seconds, steps = train(name, spec, train_bytes, heldout, device, log,
                                                     args.budget_seconds * (2 if name == "target" else 1) / 3)
        directory = os.path.join(args.out, name)
        with tempfile.TemporaryDirectory() as tmp:  # the tokenizer files, as iol writes them
            subprocess.run([args.iol, "model", "create", "--preset", "tiny", "--out", tmp + "/m"], check=True,
                           stdout=subprocess.DEVNULL)
            if os.path.exists(directory):
                shutil.rmtree(directory)
            model.to(torch.bfloat16).save_pretrained(directory, safe_serialization=True)
            for file in ("tokenizer.json", "tokenizer_config.json"):
                shutil.copy(os.path.join(tmp, "m", file), os.path.join(directory, file))
        # Re-measured from the saved bf16 weights in fp32 on the CPU: what iol's CPU backend computes.
        saved = LlamaForCausalLM.from_pretrained(directory, dtype=torch.float32, attn_implementation="eager").eval()
        heldout_bpb = bits_per_byte(saved, heldout, torch.device("cpu"), torch.float32)
        cases, blobs = reference_cases(saved, heldout)
        with open(os.path.join(args.out, name + ".logits.f32"), "wb") as f:
            for blob in blobs:
                f.write(blob.tobytes())
        with open(os.path.join(args.out, name + ".reference.json"), "w") as f:
            json.dump({"model": name, "vocab_size": VOCAB, "heldout_bits_per_byte": heldout_bpb,
                       "window_bytes": WINDOW, "transformers": transformers.__version__, "torch": torch.__version__,
                       "cases": cases}, f, indent=1)
        text = bytes(t for t in cases[0]["prompt_ids"][1:] + cases[0]["greedy_ids"] if t < 256).decode("utf-8", "replace")
        summary["models"][name] = {**{k: v for k, v in spec.items()}, "steps": steps, "parameters": params,
                                   "checkpoint_bytes": os.path.getsize(os.path.join(directory, "model.safetensors")),
                                   "training_seconds": round(seconds, 1), "curve": curve,
                                   "heldout_bits_per_byte": heldout_bpb, "greedy_sample": text}
        log(f"{name}: {params} parameters, {seconds:.0f} s, held-out {heldout_bpb:.4f} bits/byte (fp32, saved bf16)")
        log(f"{name} greedy: {text!r}")
    summary["log"] = log_lines
    with open(os.path.join(args.out, "training.json"), "w") as f:
        json.dump(summary, f, indent=1)


if __name__ == "__main__":
    main()
