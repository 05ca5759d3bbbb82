#!/usr/bin/env bash
# The default job of `make bench`: create the embedded default model (tiny, seeded) and
# generate from it on the CPU backend. Replaced by the benchmark once `iol bench` lands.
set -euo pipefail
iol=${1:?usage: default_bench.sh path/to/iol}
model_dir=reports/models/tiny
mkdir -p reports
if [[ ! -f $model_dir/model.safetensors ]]; then
  "$iol" model create --preset tiny --seed 0 --out "$model_dir"
fi
"$iol" generate --model "$model_dir" --prompt-ids 256,72,101,108,108,111 --max-tokens 64 --temperature 0 --ignore-eos \
  --output-ids 2> >(tee reports/generate.log >&2)
