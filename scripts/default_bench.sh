#!/usr/bin/env bash
# The default job of `make bench`: run the default scenario for the backend this build has and
# write reports/results.jsonl (appended), reports/report.md and reports/report.html.
#   CUDA backend present: llama-3.1-8b preset, dummy weights, bench/scenarios/default-gpu.yaml
#   otherwise:            tiny preset on the CPU backend, bench/scenarios/default-cpu.yaml
set -euo pipefail
iol=${1:?usage: default_bench.sh path/to/iol}
mkdir -p reports
if "$iol" bench --list-backends | grep -qx cuda && command -v nvidia-smi >/dev/null && nvidia-smi -L >/dev/null 2>&1; then
  preset=llama-3.1-8b scenario=bench/scenarios/default-gpu.yaml extra=(--backend cuda --max-model-len 4096)
else
  preset=tiny scenario=bench/scenarios/default-cpu.yaml extra=(--backend cpu)
fi
echo "make bench: $scenario with preset $preset (dummy weights)" >&2
"$iol" bench --preset "$preset" --load-format dummy --scenario "$scenario" "${extra[@]}" --out reports/results.jsonl --tag make-bench
"$iol" report reports/results.jsonl --out reports/report.md
"$iol" report reports/results.jsonl --html --out reports/report.html
echo "make bench: results in reports/results.jsonl, reports in reports/report.md and reports/report.html" >&2
