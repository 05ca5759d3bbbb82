#!/usr/bin/env python3
"""Expected bf16 logits and greedy tokens from Hugging Face transformers on the GPU, for the CUDA
backend's parity test (tests/gpu/hf_bf16_parity_test.cpp).

Creates two small random checkpoints with transformers itself (seeded, so the same files every run
on the same torch version), saves them in bf16 with safetensors, loads them back in bf16 on CUDA with
eager attention and records, per model:
  OUT/NAME/                  config.json + model.safetensors (what the test loads with iol's loader)
  OUT/NAME.json              prompts, greedy tokens, per-step top-2 gaps, shapes, versions, GPU
  OUT/NAME.logits.f32        little-endian float32 [positions][vocab]: the bf16 model's logits at every
                             position of every prompt (one prefill per prompt), prompts concatenated
  OUT/NAME.fp32.logits.f32   the same for the same checkpoint run in fp32 (TF32 off): the exact result
                             of these weights, which the fp32 CPU backend must match closely and from
                             which transformers' own bf16 error is measured
An existing OUT/NAME/model.safetensors is reused (so the committed checkpoint does not churn with the
torch version); --recreate-checkpoints writes it afresh.

Usage (GPU machine, torch + transformers installed):
  python3 tests/reference/make_hf_bf16_reference.py --out tests/fixtures/hf_bf16
"""
import argparse
import json
import os
import sys
import time

import torch
import transformers
from transformers import LlamaConfig, LlamaForCausalLM, Qwen2Config, Qwen2ForCausalLM

SEED = 0
PROMPT_LENGTHS = [7, 33, 100, 257]  # 7 < one 16-token KV block; 257 = 16 blocks + 1 token
NUM_GREEDY = 48
INITIALIZER_RANGE = 0.08  # logit std ≈ 0.08·√hidden ≈ 1.3–1.8: clear argmaxes, not one token everywhere
BIAS_STD = 0.5            # comparable to the q/k/v activations (std ≈ 1.3–1.8), so a dropped bias shows
NORM_WEIGHT_STD = 0.2     # norm weights 1 + 0.2·randn: a norm applied without its weight shows

TRANSFORMERS_5 = int(transformers.__version__.split(".")[0]) >= 5


def rope_kwargs(theta, scaling=None):
    # transformers 5.x keeps rope_theta inside rope_parameters; 4.x takes rope_theta + rope_scaling.
    if TRANSFORMERS_5:
        params = {"rope_type": "default", "rope_theta": theta}
        if scaling:
            params.update(scaling)
        return {"rope_parameters": params}
    return {"rope_theta": theta, "rope_scaling": scaling}


def llama31_gqa():
    # Llama-3.1 shapes in miniature: GQA (2 query heads per KV head), head_dim 128, llama3 RoPE
    # scaling with a 64-token original context so all three frequency bands (unscaled, smoothed,
    # scaled by 1/factor: wavelengths < 16, 16..64, > 64 tokens) matter at the prompts' positions.
    return LlamaConfig(
        vocab_size=512, hidden_size=512, intermediate_size=512, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, head_dim=128, max_position_embeddings=1024,
        rms_norm_eps=1e-5, tie_word_embeddings=False, initializer_range=INITIALIZER_RANGE,
        bos_token_id=None, eos_token_id=None, pad_token_id=None,
        **rope_kwargs(500000.0, {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0,
                                 "high_freq_factor": 4.0, "original_max_position_embeddings": 64}))


def qwen2_bias_tied():
    # Qwen2: q/k/v biases always on; tied embeddings (no lm_head.weight in the checkpoint).
    return Qwen2Config(
        vocab_size=512, hidden_size=256, intermediate_size=512, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=1024,
        rms_norm_eps=1e-6, tie_word_embeddings=True, use_sliding_window=False,
        initializer_range=INITIALIZER_RANGE, bos_token_id=None, eos_token_id=None, pad_token_id=None,
        **rope_kwargs(1000000.0))


# No EOS/BOS ids: generate() must not stop early, and iol runs with ignore_eos (EOS not masked either).
MODELS = [("llama31-gqa", LlamaForCausalLM, llama31_gqa), ("qwen2-bias-tied", Qwen2ForCausalLM, qwen2_bias_tied)]


def create_checkpoint(model_class, config, out_dir, generator):
    # Built and initialised on the CPU in fp32 so the weights depend only on the seed, then rounded
    # to bf16 once, on save. transformers initialises biases to 0 and RMSNorm weights to 1: both are
    # replaced by random values so the parity test really exercises them.
    model = model_class(config).eval()
    with torch.no_grad():
        for name, param in model.named_parameters():  # tied lm_head appears once (as embed_tokens)
            if name.endswith(".bias"):
                param.copy_(BIAS_STD * torch.randn(param.shape, generator=generator))
            elif "norm" in name:
                param.copy_(1.0 + NORM_WEIGHT_STD * torch.randn(param.shape, generator=generator))
    model = model.to(torch.bfloat16)
    # config.json must say bfloat16 (iol reads `dtype` or `torch_dtype`); 4.x names the field torch_dtype.
    setattr(model.config, "dtype" if TRANSFORMERS_5 else "torch_dtype", torch.bfloat16)
    # transformers 5.x always writes safetensors and no longer takes safe_serialization (TypeError).
    model.save_pretrained(out_dir, **({} if TRANSFORMERS_5 else {"safe_serialization": True}))
    if not os.path.exists(os.path.join(out_dir, "model.safetensors")):
        sys.exit(f"{out_dir}: save_pretrained wrote no single model.safetensors: {sorted(os.listdir(out_dir))}")
    with open(os.path.join(out_dir, "config.json")) as f:
        saved = json.load(f)
    saved_dtype = saved.get("dtype", saved.get("torch_dtype"))
    if saved_dtype != "bfloat16":
        sys.exit(f"{out_dir}/config.json: dtype is {saved_dtype!r}, expected 'bfloat16'")
    for extra in ("generation_config.json",):  # the test needs config.json + model.safetensors only
        path = os.path.join(out_dir, extra)
        if os.path.exists(path):
            os.remove(path)


def top2_gap(row):
    top = torch.topk(row.float(), 2).values
    return float(top[0] - top[1])


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", required=True)
    parser.add_argument("--recreate-checkpoints", action="store_true")
    args = parser.parse_args()
    if not torch.cuda.is_available():
        sys.exit("make_hf_bf16_reference.py: needs a CUDA GPU (the reference is transformers in bf16 on CUDA)")
    os.makedirs(args.out, exist_ok=True)
    torch.manual_seed(SEED)
    generator = torch.Generator().manual_seed(SEED)
    gpu = torch.cuda.get_device_name(0)
    # The fp32 reference must be fp32 throughout: no TF32 in matmuls or convolutions.
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False

    for name, model_class, make_config in MODELS:
        start = time.time()
        model_dir = os.path.join(args.out, name)
        os.makedirs(model_dir, exist_ok=True)
        torch.manual_seed(SEED)  # transformers' own init draws from the global generator
        if args.recreate_checkpoints or not os.path.exists(os.path.join(model_dir, "model.safetensors")):
            create_checkpoint(model_class, make_config(), model_dir, generator)
        else:
            print(f"{name}: reusing {model_dir}/model.safetensors")
        dtype_kwarg = "dtype" if TRANSFORMERS_5 else "torch_dtype"  # 5.x renamed torch_dtype
        model_fp32 = model_class.from_pretrained(model_dir, attn_implementation="eager",
                                                 **{dtype_kwarg: torch.float32}).to("cuda").eval()

        # Eager attention: the plain math path (matmul, fp32 softmax, matmul), not SDPA/flash kernels
        # whose fused, backend-chosen reductions are a second implementation to match rather than the
        # model's definition.
        model = model_class.from_pretrained(model_dir, attn_implementation="eager", **{dtype_kwarg: torch.bfloat16})
        model = model.to("cuda").eval()
        model.generation_config.eos_token_id = None
        model.generation_config.pad_token_id = None
        vocab = model.config.vocab_size

        prompt_generator = torch.Generator().manual_seed(SEED + 1)
        blobs, blobs_fp32, prompts, row = [], [], [], 0
        for length in PROMPT_LENGTHS:
            prompt = torch.randint(0, vocab, (length,), generator=prompt_generator).tolist()
            ids = torch.tensor([prompt], device="cuda")
            with torch.no_grad():
                # The bf16 model's logits (bf16 values), copied to fp32 for the file.
                logits = model(ids).logits[0].float().cpu()
                logits_fp32 = model_fp32(ids).logits[0].float().cpu()
                out = model.generate(ids, attention_mask=torch.ones_like(ids), do_sample=False,
                                     max_new_tokens=NUM_GREEDY, min_new_tokens=0, num_beams=1,
                                     output_logits=True, return_dict_in_generate=True)
            greedy = out.sequences[0, length:].tolist()
            if len(greedy) != NUM_GREEDY:
                sys.exit(f"{name}: generate() returned {len(greedy)} tokens for the {length}-token prompt, "
                         f"expected {NUM_GREEDY} (did it stop at an EOS id?)")
            step_logits = [step[0].float().cpu() for step in out.logits]  # raw logits, one per step
            for k, step in enumerate(step_logits):
                if int(torch.argmax(step)) != greedy[k] and top2_gap(step) > 0:
                    sys.exit(f"{name}: greedy token {k} of the {length}-token prompt is not the argmax")
            blobs.append(logits.numpy().astype("<f4"))
            blobs_fp32.append(logits_fp32.numpy().astype("<f4"))
            # transformers' own bf16 error: worst over positions of max|bf16 − fp32| / max|fp32|.
            bf16_error = float(((logits - logits_fp32).abs().max(dim=1).values
                                / logits_fp32.abs().max(dim=1).values).max())
            prompts.append({
                "prompt_ids": prompt,
                "num_positions": length,
                "logits_row_offset": row,
                "greedy_ids": greedy,
                # top1 − top2 of the logits each greedy token was drawn from (generate's decode steps,
                # KV cache): below the test's tolerance a correct bf16 engine may pick the other token.
                "greedy_top2_gaps": [top2_gap(step) for step in step_logits],
                "greedy_max_abs_logits": [float(step.abs().max()) for step in step_logits],
                "prompt_last_top2_gap": top2_gap(logits[-1]),
                "bf16_vs_fp32_worst_ratio": bf16_error,
            })
            row += length

        logits_file, fp32_logits_file = name + ".logits.f32", name + ".fp32.logits.f32"
        for file, file_blobs in ((logits_file, blobs), (fp32_logits_file, blobs_fp32)):
            with open(os.path.join(args.out, file), "wb") as f:
                for blob in file_blobs:
                    f.write(blob.tobytes())
        cfg = model.config
        record = {
            "name": name,
            "model_class": type(model).__name__,
            "checkpoint_dir": name,
            "seed": SEED,
            "dtype": "bfloat16",
            "device": "cuda",
            "attn_implementation": "eager",
            "initializer_range": INITIALIZER_RANGE,
            "bias_std": BIAS_STD,
            "norm_weight_std": NORM_WEIGHT_STD,
            "vocab_size": vocab,
            "hidden_size": cfg.hidden_size,
            "num_hidden_layers": cfg.num_hidden_layers,
            "num_attention_heads": cfg.num_attention_heads,
            "num_key_value_heads": cfg.num_key_value_heads,
            "head_dim": getattr(cfg, "head_dim", None) or cfg.hidden_size // cfg.num_attention_heads,
            "torch": torch.__version__,
            "transformers": transformers.__version__,
            "cuda": torch.version.cuda,
            "gpu": gpu,
            "logits_file": logits_file,
            "fp32_logits_file": fp32_logits_file,
            "logits_dtype": "float32 little-endian",
            "logits_shape": [row, vocab],
            "num_greedy": NUM_GREEDY,
            "prompts": prompts,
        }
        with open(os.path.join(args.out, name + ".json"), "w") as f:
            json.dump(record, f, indent=1)

        size = sum(os.path.getsize(os.path.join(model_dir, f)) for f in os.listdir(model_dir))
        size += sum(os.path.getsize(os.path.join(args.out, f)) for f in (logits_file, fp32_logits_file))
        min_gap = min(min(p["greedy_top2_gaps"]) for p in prompts)
        distinct = len({t for p in prompts for t in p["greedy_ids"]})
        print(f"{name}: {type(model).__name__}, {row} positions x {vocab} logits, "
              f"{len(prompts)}x{NUM_GREEDY} greedy tokens ({distinct} distinct, min top-2 gap {min_gap:.3g}), "
              f"bf16 vs fp32 worst {max(p['bf16_vs_fp32_worst_ratio'] for p in prompts):.4f}, "
              f"{size / 1e6:.1f} MB, {time.time() - start:.1f} s on {gpu}")
        del model, model_fp32
        torch.cuda.empty_cache()


if __name__ == "__main__":
    main()
