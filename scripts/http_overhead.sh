#!/usr/bin/env bash
# Issue 15, acceptance 4: `iol bench --target` against `iol serve` beside the in-process bench, on
# the CPU backend at concurrency 64, alternating ROUNDS times in one call (a machine with idle cores
# gives a tight figure). Then the server's CPU seconds per thread (HTTP vs engine) per token.
# Both sides get THREADS CPU-backend workers (default: half the cores), so the load generator and
# the server's HTTP threads are not starved by an oversubscribed pool.
# Usage: scripts/http_overhead.sh IOL OUT.jsonl [ROUNDS] [THREADS]
set -euo pipefail
iol=$1 out=$2 rounds=${3:-3} threads=${4:-$(( $(nproc) / 2 ))}
work=$(mktemp -d)
trap 'kill "${server:-}" 2>/dev/null || true; rm -rf "$work"' EXIT
"$iol" model create --preset tiny --out "$work/tiny" >/dev/null
W=(--input-len 64 --output-len 64 --num-requests 256 --warmup-requests 8 --arrival closed --concurrency 64)
"$iol" serve --model "$work/tiny" --backend cpu --threads "$threads" --port 0 2>"$work/serve.log" &
server=$!
for _ in $(seq 600); do grep -q 'listening on' "$work/serve.log" 2>/dev/null && break; sleep 0.1; done
port=$(grep -oE 'listening on http://[0-9.]+:[0-9]+' "$work/serve.log" | grep -oE '[0-9]+$')
# Each round draws new prompts (its own seed), the same for both sides: the long-lived server's
# prefix cache must not see a prompt twice, or HTTP would win by cache hits.
for round in $(seq "$rounds"); do
  "$iol" bench --model "$work/tiny" --backend cpu --threads "$threads" "${W[@]}" --seed "$round" --quiet --tag inprocess-c64 --out "$out" 2>&1 | tail -1
  "$iol" bench --target "http://127.0.0.1:$port" --model "$work/tiny" "${W[@]}" --seed "$round" --quiet --tag http-c64 \
    --out "$out" 2>&1 | tail -1
done
python3 - "$port" "$server" <<'PY'
import os, sys, urllib.request
port, pid = sys.argv[1], sys.argv[2]
metrics = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics").read().decode()
tokens = next(float(l.split()[1]) for l in metrics.splitlines() if l.startswith("vllm:generation_tokens_total"))
ticks = os.sysconf("SC_CLK_TCK")
print(f"server threads, CPU seconds, for {tokens:.0f} generated tokens:")
for tid in sorted(os.listdir(f"/proc/{pid}/task")):
    stat = open(f"/proc/{pid}/task/{tid}/stat").read()
    comm = stat[stat.index("(") + 1:stat.rindex(")")]
    fields = stat[stat.rindex(")") + 2:].split()
    cpu = (int(fields[11]) + int(fields[12])) / ticks
    if cpu > 0.005: print(f"  {comm:16s} {cpu:8.2f}  ({cpu / tokens * 1e6:.1f} us per token)")
PY
