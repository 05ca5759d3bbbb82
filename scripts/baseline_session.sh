#!/usr/bin/env bash
# The PyTorch baseline on the device machine, in one call (docs/baseline.md): its test suite, the
# Llama-3.1-8B dummy checkpoint written by iol (the same seeded weights as --load-format dummy),
# the request lists exported by iol, the parity gate (iol's and transformers' teacher-forced
# logits on the same prompts), then eager and compiled runs. Outputs under $OUT.
# Reads BASELINE_SWEEP (eager batch sizes), BASELINE_REQUESTS (offline requests), BASELINE_STEPS.
set -uo pipefail
OUT=${OUT:-gpu-out}
mkdir -p "$OUT"
IOL=${BUILD:-build-gpu}/src/iol/cli/iol
MODEL=${BASELINE_MODEL:-/tmp/llama-3.1-8b-dummy}
work=/tmp/baseline
mkdir -p "$work"
common=(--preset llama-3.1-8b --load-format dummy --quiet --max-model-len 4096)
offline=(--num-requests ${BASELINE_REQUESTS:-1024} --warmup-requests 16 --input-len 128 --output-len 128 --arrival offline)
batch1=(--num-requests 8 --warmup-requests 1 --input-len 128 --output-len 128 --arrival closed --concurrency 1)
export PYTHONUNBUFFERED=1
for step in ${BASELINE_STEPS:-tests checkpoint parity eager compiled}; do
  t0=$(date +%s)
  case $step in
    tests) python3 -m unittest discover -s baselines/pytorch/tests 2>&1 | tail -4 ;;
    checkpoint)
      [[ -e $MODEL/config.json ]] || "$IOL" model create --preset llama-3.1-8b --dtype bf16 --out "$MODEL" 2>&1 | tail -2
      "$IOL" bench --backend cpu "${common[@]}" "${offline[@]}" --export-requests "$work/offline.jsonl" 2>&1 | tail -1
      "$IOL" bench --backend cpu "${common[@]}" "${batch1[@]}" --export-requests "$work/batch1.jsonl" 2>&1 | tail -1 ;;
    parity)
      "$IOL" bench --backend cuda "${common[@]}" "${offline[@]}" --parity-logits "$work/iol.f32" --parity-requests 4 2>&1 | tail -1
      timeout 300 python3 baselines/pytorch/run_baseline.py --model "$MODEL" --requests "$work/offline.jsonl" \
        --parity-logits "$work/hf.f32" --parity-requests 4 --quiet 2>&1 | tail -3
      python3 baselines/pytorch/parity.py "$work/iol.f32" "$work/hf.f32" --vocab 128256 | tee "$OUT/parity.json" ;;
    eager)
      timeout 400 python3 baselines/pytorch/run_baseline.py --model "$MODEL" --requests "$work/offline.jsonl" --mode eager \
        --batch-sweep ${BASELINE_SWEEP:-256,1024} --repetitions 1 --tag pytorch-eager-offline --out "$OUT/pytorch-offline-128-128.jsonl" 2>&1 | tail -5 ;;
    compiled)
      timeout 400 python3 baselines/pytorch/run_baseline.py --model "$MODEL" --requests "$work/batch1.jsonl" --mode compiled \
        --batch-size 1 --repetitions 1 --tag pytorch-compiled-batch1 --out "$OUT/pytorch-batch1-decode.jsonl" 2>&1 | tail -5 ;;
    *) echo "unknown step $step" >&2; exit 2 ;;
  esac
  echo "== $step: $(( $(date +%s) - t0 )) s"
done
