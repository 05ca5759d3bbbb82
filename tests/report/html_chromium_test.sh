#!/usr/bin/env bash
# The HTML report in headless Chromium: the CPU ablation's page and the committed GPU record set
# (bench/results/h200, h100) load with no console message, their DOM holds the charts with the
# expected series and marks, and a screenshot differs from a blank page's.
#   html_chromium_test.sh IOL_BINARY SOURCE_DIR WORK_DIR
# Without Chromium: exit 77 (ctest shows it skipped, with the reason) — but under CI, where
# `make test` installs it (scripts/deps.sh --test), a missing browser fails.
set -uo pipefail
iol=${1:?usage: html_chromium_test.sh IOL SOURCE_DIR WORK_DIR}
src=${2:?}
work=${3:?}
browser=""
for b in chromium chromium-browser google-chrome; do
  command -v "$b" >/dev/null && { browser=$b; break; }
done
if [[ -z $browser ]]; then
  if [[ -n ${CI:-} ]]; then
    echo "FAIL: no chromium under CI (scripts/deps.sh --test installs it)" >&2
    exit 1
  fi
  echo "SKIP: chromium is not installed (scripts/deps.sh --test, run by make test, installs it)"
  exit 77
fi
rm -rf "$work" && mkdir -p "$work"
status=0
fail() { echo "FAIL: $*" >&2; status=1; }

"$iol" bench --preset tiny --backend cpu --quiet --ablation "$src/bench/scenarios/ablation-cpu.yaml" --out "$work/cpu/results.jsonl" \
  2>"$work/bench.log" || { cat "$work/bench.log" >&2; fail "iol bench --ablation"; }
cpu_page=$(find "$work/cpu" -name "ablation-*.html" 2>/dev/null | head -1)
[[ -n $cpu_page ]] || fail "the ablation wrote no HTML report"
gpu_files=()
for f in "$src"/bench/results/h200/*.jsonl "$src"/bench/results/h100/*.jsonl; do
  [[ $f == *.requests.jsonl ]] || gpu_files+=("$f")
done
"$iol" report --html --out "$work/gpu.html" "${gpu_files[@]}" 2>>"$work/bench.log" || fail "iol report --html on the GPU fixtures"
printf '<!DOCTYPE html><html><body></body></html>\n' > "$work/blank.html"

chrome() {  # chrome OUT_PREFIX PAGE: DOM to OUT.dom, console/log to OUT.log, screenshot OUT.png
  local out=$1 page=$2
  timeout 120 "$browser" --headless --no-sandbox --disable-gpu --no-first-run --disable-dev-shm-usage \
    --user-data-dir="$work/profile" --enable-logging=stderr --v=0 --dump-dom "file://$page" >"$out.dom" 2>"$out.log" \
    || fail "$browser --dump-dom $page exited non-zero"
  timeout 120 "$browser" --headless --no-sandbox --disable-gpu --no-first-run --disable-dev-shm-usage \
    --user-data-dir="$work/profile" --hide-scrollbars --window-size=1280,2400 --screenshot="$out.png" "file://$page" \
    >>"$out.log" 2>&1 || fail "$browser --screenshot $page exited non-zero"
}
count() { grep -o "$1" "$2" | wc -l; }

chrome "$work/blank" "$work/blank.html"
blank_size=$(stat -c %s "$work/blank.png" 2>/dev/null || echo 0)
for name in cpu gpu; do
  page=$cpu_page
  [[ $name == gpu ]] && page=$work/gpu.html
  [[ -f $page ]] || continue
  chrome "$work/$name" "$page"
  dom=$work/$name.dom
  # Console messages (errors, warnings, logs) from the page, as Chromium logs them.
  if grep -E 'CONSOLE|Uncaught|console' "$work/$name.log" >&2; then fail "$name: console messages while loading $page"; fi
  charts=$(count '<svg class="chart"' "$dom")
  [[ $charts -ge 4 ]] || fail "$name: $charts charts in the DOM, want >= 4"
  # Every chart has marks; the series in the DOM are those the page was written with.
  empty=$(awk 'BEGIN { RS = "</svg>" } /<svg class="chart"/ && !/class="mark"/ { n++ } END { print n + 0 }' "$dom")
  [[ $empty -eq 0 ]] || fail "$name: $empty chart(s) without a mark"
  [[ $(count 'class="series"' "$dom") -eq $(count 'class="series"' "$page") ]] || fail "$name: series lost in the DOM"
  [[ $(count 'data-series="p99"' "$dom") -eq 3 ]] || fail "$name: want 3 latency charts with a p99 series"
  size=$(stat -c %s "$work/$name.png" 2>/dev/null || echo 0)
  [[ $size -gt $((blank_size * 3)) ]] || fail "$name: screenshot of $size bytes is not much more than a blank page's ($blank_size)"
  echo "$name: $charts charts, $(count 'class="series"' "$dom") series, $(count 'class="mark"' "$dom") marks, screenshot $size bytes (blank $blank_size)"
done
if [[ -n $cpu_page ]]; then
  [[ $(count 'Output tokens/s by lever' "$work/cpu.dom") -ge 1 ]] || fail "cpu: no ablation waterfall"
fi
[[ $status -eq 0 ]] && echo "html-chromium: both pages render ($work/*.png)"
exit $status
