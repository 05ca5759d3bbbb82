#!/usr/bin/env python3
"""Expected logits and greedy tokens from Hugging Face transformers for checkpoints made by
`iol model create`. Runs where torch + transformers are installed (the GPU machine); computes on
the CPU in float32 with eager attention so the reference is exact fp32 arithmetic.

Usage: make_hf_reference.py --iol path/to/iol --out tests/fixtures/hf_reference

Writes, per preset: PRESET.json (prompts, greedy tokens, shapes, versions) and PRESET.logits.f32
(little-endian float32: for each prompt, logits of every position of prompt + greedy tokens).
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile

import numpy as np
import torch
import transformers
from transformers import AutoModelForCausalLM, AutoTokenizer

PRESETS = ["tiny", "tiny-qwen2"]
SEED = 0
NUM_GREEDY = 32
PROMPTS = [
    [256, 72, 101, 108, 108, 111, 32, 119, 111, 114, 108, 100],
    [256] + [(i * 37 + 11) % 500 for i in range(40)],  # longer than two 16-token KV blocks
    [256],
]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--iol", required=True)
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    os.makedirs(args.out, exist_ok=True)
    torch.manual_seed(0)
    for preset in PRESETS:
        with tempfile.TemporaryDirectory() as tmp:
            model_dir = os.path.join(tmp, preset)
            subprocess.run([args.iol, "model", "create", "--preset", preset, "--out", model_dir,
                            "--seed", str(SEED)], check=True)
            model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32,
                                                         attn_implementation="eager").eval()
            tokenizer = AutoTokenizer.from_pretrained(model_dir)
            sample_text = "Hello, world! héllo ✓"
            encoded = tokenizer(sample_text)["input_ids"]
            record = {
                "preset": preset, "seed": SEED, "vocab_size": model.config.vocab_size,
                "transformers": transformers.__version__, "torch": torch.__version__,
                "model_class": type(model).__name__,
                "tokenizer_sample": {"text": sample_text, "ids": encoded,
                                     "decoded": tokenizer.decode(encoded, skip_special_tokens=True)},
                "cases": [],
            }
            blobs = []
            for prompt in PROMPTS:
                ids = list(prompt)
                with torch.no_grad():
                    for _ in range(NUM_GREEDY):  # greedy without EOS stopping
                        logits = model(torch.tensor([ids])).logits[0, -1]
                        ids.append(int(torch.argmax(logits)))
                    full = model(torch.tensor([ids])).logits[0].numpy().astype("<f4")
                blobs.append(full)
                record["cases"].append({"prompt_ids": prompt, "greedy_ids": ids[len(prompt):],
                                        "num_positions": len(ids)})
            with open(os.path.join(args.out, preset + ".logits.f32"), "wb") as f:
                for blob in blobs:
                    f.write(blob.tobytes())
            with open(os.path.join(args.out, preset + ".json"), "w") as f:
                json.dump(record, f, indent=1)
            print(f"{preset}: {type(model).__name__}, greedy[0] = {record['cases'][0]['greedy_ids'][:8]}...",
                  file=sys.stderr)


if __name__ == "__main__":
    main()
