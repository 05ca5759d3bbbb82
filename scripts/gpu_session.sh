#!/usr/bin/env bash
# One device-machine session: GPU tests, (optionally) the transformers reference fixtures, and the
# benchmark figures of docs/performance.md — in one call, as the device machine is short-lived.
# Build here first (scripts/build_gpu.sh), then run on the GPU machine from the repository root:
#   scripts/gpu_session.sh [tests] [hf-fixtures] [hf-parity] [bench] [decode-batches] [offline-long] [quant] [kv-fp8] [spec] [long-context] [serving] [reference-models] [sanitize] [ncu-decode]
# sanitize reads SANITIZE_TOOLS (memcheck racecheck), SANITIZE_FILTER (gtest filter), SANITIZE_SECONDS (200),
# IOL_TEST_SAMPLER_DRAWS (5000: the sampler's chi-square test with fewer draws under the sanitizer).
# Outputs go to $OUT (or ./gpu-out): test logs, bench/results/<gpu>/*.jsonl.
set -uo pipefail
OUT=${OUT:-gpu-out}
mkdir -p "$OUT"
BUILD=${BUILD:-build-gpu}
IOL=$BUILD/src/iol/cli/iol
TESTS=$BUILD/tests/iol_gpu_tests
# Test binaries carry the absolute fixture path of the build machine.
if [[ ! -e /work/main/tests/fixtures ]]; then mkdir -p /work && ln -sfn "$PWD" /work/main; fi
gpu=$(nvidia-smi --query-gpu=name --format=csv,noheader | head -1)
slug=$(echo "$gpu" | tr 'A-Z' 'a-z' | sed -E 's/nvidia //; s/ .*//')   # h100, h200
commit=$(strings "$IOL" 2>/dev/null | grep -m1 -oE "^[0-9a-f]{12}(-dirty)?$" || echo unknown)  # the binary's, not this copy's HEAD
echo "gpu: $gpu ($slug), commit $commit, $(date -u +%FT%TZ)"
nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm,power.limit --format=csv

for step in "$@"; do
  case $step in
    tests)
      "$TESTS" --gtest_color=no 2>&1 | tee "$OUT/gpu_tests.log" | grep -E "^\[  (FAILED|PASSED|  OK) |^\[==========\]|Failure|error|logits: worst" | head -150
      ;;
    hf-fixtures)
      PYTHONUNBUFFERED=1 python3 tests/reference/make_hf_bf16_reference.py --out tests/fixtures/hf_bf16 2>&1 | tail -20
      tar czf "$OUT/hf_bf16.tgz" tests/fixtures/hf_bf16
      ;;
    hf-parity)
      "$TESTS" --gtest_color=no --gtest_filter='*Hf*:*hf*' 2>&1 | tee "$OUT/hf_parity.log" | tail -30
      ;;
    bench)
      # One process per workload; the first measures the ceilings (read/copy bandwidth, BF16 GEMM
      # peak) that the figures are read against. BENCH_OUT: where the records go.
      results=${BENCH_OUT:-bench/results/$slug}
      mkdir -p "$results"
      common=(--backend cuda --preset llama-3.1-8b --load-format dummy --quiet --max-model-len 4096)
      "$IOL" bench "${common[@]}" --measure-ceilings --num-requests 8 --warmup-requests 1 --input-len 128 --output-len 256 \
        --arrival closed --concurrency 1 --out "$results/batch1-decode.jsonl" --tag batch1-decode 2>&1 | tail -3
      "$IOL" bench "${common[@]}" --no-decode-gemv --num-requests 8 --warmup-requests 1 --input-len 128 --output-len 256 \
        --arrival closed --concurrency 1 --out "$results/batch1-decode.jsonl" --tag batch1-decode-cublas 2>&1 | tail -2
      # Kernel experiments at batch 1: BATCH1_VARIANTS="IOL_GEMV_SPLITS=1 IOL_GEMV_STAGE=1 ..." (one
      # process each, tagged with the variable; the knobs are documented in gemv.cu).
      for variant in ${BATCH1_VARIANTS:-}; do
        env "$variant" "$IOL" bench "${common[@]}" --num-requests 8 --warmup-requests 1 --input-len 128 --output-len 256 \
          --arrival closed --concurrency 1 --out "$results/batch1-decode.jsonl" --tag "batch1-decode-$variant" 2>&1 | tail -2
      done
      "$IOL" bench "${common[@]}" --num-requests 2000 --warmup-requests 32 --input-len 128 --output-len 128 \
        --arrival offline --out "$results/offline-128-128.jsonl" --tag offline-128-128 2>&1 | tail -2
      for limits in ${OFFLINE_LIMITS:-}; do  # max_num_seqs:max_num_batched_tokens
        "$IOL" bench "${common[@]}" --num-requests 2000 --warmup-requests 32 --input-len 128 --output-len 128 \
          --max-num-seqs ${limits%%:*} --max-num-batched-tokens ${limits##*:} --arrival offline \
          --out "$results/offline-128-128.jsonl" --tag offline-128-128-s${limits%%:*}-t${limits##*:} 2>&1 | tail -2
      done
      "$IOL" bench "${common[@]}" --num-requests 8 --warmup-requests 1 --input-len 2048 --output-len 1 \
        --arrival closed --concurrency 1 --max-num-batched-tokens 4096 --out "$results/ttft-2048.jsonl" --tag ttft-2048 2>&1 | tail -2
      for f in "$results"/*.jsonl; do [[ $f == *.requests.jsonl ]] || cp "$f" "$OUT/"; done
      ;;
    decode-batches)
      # Small-batch decode with our GEMV and with cuBLASLt (--no-decode-gemv), one process each:
      # the row crossover behind CudaBackendOptions::gemv_max_rows. DECODE_BATCHES (2 4 8).
      results=${BENCH_OUT:-bench/results/$slug}
      mkdir -p "$results"
      common=(--backend cuda --preset llama-3.1-8b --load-format dummy --quiet --max-model-len 4096)
      for c in ${DECODE_BATCHES:-2 4 8}; do
        for path in gemv cublas; do
          extra=(); [[ $path == cublas ]] && extra=(--no-decode-gemv)
          "$IOL" bench "${common[@]}" "${extra[@]}" --num-requests $((6 * c)) --warmup-requests $c --input-len 128 \
            --output-len 128 --arrival closed --concurrency $c --out "$results/decode-batches.jsonl" \
            --tag "decode-c$c-$path" 2>&1 | tail -1
        done
      done
      cp "$results/decode-batches.jsonl" "$OUT/"
      ;;
    quant)
      # Quantization (issue 12): batch-1 decode and offline 128/128 for bf16 and each scheme, in one
      # run so the ratios share the machine state; the first measures the ceilings.
      # QUANT_SCHEMES (none fp8 int8-weight-only), QUANT_OFFLINE_SCHEMES (none fp8 int8-weight-only).
      results=${BENCH_OUT:-bench/results/$slug}
      mkdir -p "$results"
      common=(--backend cuda --preset llama-3.1-8b --load-format dummy --quiet --max-model-len 4096)
      ceilings=--measure-ceilings
      for q in ${QUANT_SCHEMES:-none fp8 int8-weight-only}; do
        "$IOL" bench "${common[@]}" $ceilings --quantization $q --num-requests 8 --warmup-requests 1 --input-len 128 \
          --output-len 256 --arrival closed --concurrency 1 --out "$results/quant-batch1-decode.jsonl" \
          --tag "batch1-decode-$q" 2>&1 | tail -2
        ceilings=
      done
      for q in ${QUANT_OFFLINE_SCHEMES:-none fp8 int8-weight-only}; do
        "$IOL" bench "${common[@]}" --quantization $q --num-requests ${QUANT_OFFLINE_REQUESTS:-2000} --warmup-requests 32 \
          --input-len 128 --output-len 128 --arrival offline --out "$results/quant-offline-128-128.jsonl" \
          --tag "offline-128-128-$q" 2>&1 | tail -2
      done
      for f in "$results"/quant-*.jsonl; do [[ $f == *.requests.jsonl ]] || cp "$f" "$OUT/"; done
      ;;
    kv-fp8)
      # The FP8 KV cache (issue 12): concurrency at a 2048-token context within one fixed KV pool
      # (8 GiB: peak_num_running shows the sequences it admits), then batch-1 decode at 8k context
      # and offline 128/128 at the default pool, bf16 KV vs fp8 KV in one run.
      results=${BENCH_OUT:-bench/results/$slug}
      mkdir -p "$results"
      common=(--backend cuda --preset llama-3.1-8b --load-format dummy --quiet)
      for kv in auto fp8; do
        "$IOL" bench "${common[@]}" --kv-cache-dtype $kv --kv-cache-memory 8589934592 --max-model-len 2048 \
          --max-num-seqs 256 --num-requests 128 --warmup-requests 0 --input-len 1984 --output-len 64 --arrival offline \
          --out "$results/kv-fp8-concurrency-2048.jsonl" --tag "ctx2048-8GiB-kv-$kv" 2>&1 | tail -1
      done
      for kv in auto fp8; do
        "$IOL" bench "${common[@]}" --kv-cache-dtype $kv --max-model-len 8448 --max-num-seqs 8 --num-requests 4 \
          --warmup-requests 1 --input-len 8192 --output-len 128 --arrival closed --concurrency 1 \
          --out "$results/kv-fp8-decode-ctx8192.jsonl" --tag "batch1-decode-ctx8192-kv-$kv" 2>&1 | tail -1
      done
      for kv in auto fp8; do
        "$IOL" bench "${common[@]}" --kv-cache-dtype $kv --max-model-len 4096 --num-requests 2000 --warmup-requests 32 \
          --input-len 128 --output-len 128 --arrival offline --out "$results/kv-fp8-offline-128-128.jsonl" \
          --tag "offline-128-128-kv-$kv" 2>&1 | tail -1
      done
      for f in "$results"/kv-fp8-*.jsonl; do [[ $f == *.requests.jsonl ]] || cp "$f" "$OUT/"; done
      ;;
    spec)
      # Speculative decoding on cuda (issue 13): batch-1 decode of the 8B preset without and with a
      # llama-3.2-1b draft (dummy weights), k = SPEC_K (4), at forced acceptance rates (benchmark-only
      # mode: dummy weights agree on nothing), then at concurrency 16; then the trained reference
      # pair with its real acceptance (draft and n-gram) at batch 1 and 16.
      results=${BENCH_OUT:-bench/results/$slug}
      mkdir -p "$results"
      k=${SPEC_K:-4}
      common=(--backend cuda --preset llama-3.1-8b --load-format dummy --quiet --max-model-len 4096 --input-len 128
              --output-len 128 --arrival closed)
      for c in ${SPEC_FORCED_BATCHES:-1 16}; do
        "$IOL" bench "${common[@]}" --num-requests $((8 * c)) --warmup-requests $c --concurrency $c \
          --out "$results/spec-draft-forced.jsonl" --tag "spec-c$c-plain" 2>&1 | tail -1
        for kk in ${SPEC_KS:-3 $k}; do
          for rate in ${SPEC_RATES:-0 0.5 0.75 0.9 1}; do
            [[ $c == 16 && ( $kk != $k || ( $rate != 0.75 && $rate != 1 ) ) ]] && continue
            "$IOL" bench "${common[@]}" --num-requests $((8 * c)) --warmup-requests $c --concurrency $c \
              --speculative-model llama-3.2-1b --num-speculative-tokens $kk --speculative-forced-acceptance $rate \
              --out "$results/spec-draft-forced.jsonl" --tag "spec-c$c-draft-k$kk-forced$rate" 2>&1 | tail -1
          done
        done
      done
      # n-gram (prompt lookup) on the 8B preset with copy prompts of seeded words: the lookup finds
      # a match nearly always, and the forced rate stands in for how often the output copies.
      for rate in ${SPEC_NGRAM_RATES:-none 0 0.5 0.75 0.9 1}; do
        forced=(); [[ $rate != none ]] && forced=(--speculative-forced-acceptance $rate)
        "$IOL" bench "${common[@]}" --prompts copy --num-requests 8 --warmup-requests 1 --concurrency 1 \
          --speculative-method ngram --num-speculative-tokens $k "${forced[@]}" \
          --out "$results/spec-ngram-forced.jsonl" --tag "spec-c1-ngram-k$k-forced$rate" 2>&1 | tail -1
      done
      "$IOL" bench "${common[@]}" --prompts copy --num-requests 8 --warmup-requests 1 --concurrency 1 \
        --out "$results/spec-ngram-forced.jsonl" --tag "spec-c1-copy-plain" 2>&1 | tail -1
      ref=tests/fixtures/reference_models
      # The trained pair's real acceptance vs k and batch (SPEC_REF_BATCHES, SPEC_REF_KS), on
      # text prompts and on copy prompts (held-out passages repeated: the n-gram proposer's case).
      for prompts in text copy; do
        data=(); [[ $prompts == copy ]] && data=(--dataset $ref/heldout-sample.txt)
        for c in ${SPEC_REF_BATCHES:-1 4 16 64}; do
          for method in none ngram draft; do
            ks=${SPEC_REF_KS:-1 2 4 8}; [[ $method == none ]] && ks=0
            for kk in $ks; do
              extra=()
              [[ $method == ngram ]] && extra=(--speculative-method ngram --num-speculative-tokens $kk)
              [[ $method == draft ]] && extra=(--speculative-model $ref/draft --num-speculative-tokens $kk)
              tag=spec-ref-$prompts-c$c-$method; [[ $method != none ]] && tag+=-k$kk
              "$IOL" bench --backend cuda --model $ref/target --quiet --max-model-len 512 --prompts $prompts "${data[@]}" \
                --input-len 256 --output-len 128 --arrival closed --concurrency $c --num-requests $((8 * c)) \
                --warmup-requests $c "${extra[@]}" --out "$results/spec-reference-pair.jsonl" --tag "$tag" 2>&1 | tail -1
            done
          done
        done
        [[ -n ${SPEC_SKIP_COPY:-} ]] && break
      done
      for f in "$results"/spec-*.jsonl; do [[ $f == *.requests.jsonl ]] || cp "$f" "$OUT/"; done
      ;;
    offline-long)
      # Offline throughput over >= 60 s (issue 18 target 3): 128/128 and 1000/1000.
      results=${BENCH_OUT:-bench/results/$slug}
      mkdir -p "$results"
      common=(--backend cuda --preset llama-3.1-8b --load-format dummy --quiet --max-model-len 4096 --arrival offline)
      "$IOL" bench "${common[@]}" --num-requests ${OFFLINE_LONG_REQUESTS:-8000} --warmup-requests 32 --input-len 128 \
        --output-len 128 --out "$results/offline-long.jsonl" --tag offline-128-128-long 2>&1 | tail -1
      # 1000/1000 under both admission policies (docs/engine.md): recompute vs reservation.
      for policy in ${OFFLINE_POLICIES:-max-utilization guaranteed-no-evict}; do
        "$IOL" bench "${common[@]}" --scheduler-policy $policy --num-requests ${OFFLINE_1K_REQUESTS:-1000} \
          --warmup-requests 16 --input-len 1000 --output-len 1000 --out "$results/offline-long.jsonl" \
          --tag offline-1000-1000-$policy 2>&1 | tail -1
      done
      cp "$results/offline-long.jsonl" "$OUT/"
      ;;
    long-context)
      # Batch-1 decode after 8k and 32k prompt tokens (issue 18 target 2: the floor counts the KV bytes).
      results=${BENCH_OUT:-bench/results/$slug}
      mkdir -p "$results"
      for len in ${LONG_CONTEXTS:-8192 32768}; do
        "$IOL" bench --backend cuda --preset llama-3.1-8b --load-format dummy --quiet --max-model-len $((len + 256)) \
          --max-num-seqs 8 --max-num-batched-tokens 8192 --num-requests 4 --warmup-requests 1 --input-len $len --output-len 128 \
          --arrival closed --concurrency 1 --out "$results/long-context-decode.jsonl" --tag "batch1-decode-ctx$len" 2>&1 | tail -1
      done
      cp "$results/long-context-decode.jsonl" "$OUT/"
      ;;
    serving)
      # Poisson request-rate sweep, normal length distributions (issue 18 target 6): the highest
      # rate whose p99 TPOT <= 50 ms and p99 TTFT <= 1 s, and goodput under those SLOs.
      results=${BENCH_OUT:-bench/results/$slug}
      mkdir -p "$results"
      "$IOL" bench --backend cuda --preset llama-3.1-8b --load-format dummy --quiet --max-model-len 4096 \
        --scenario bench/scenarios/sharegpt-like-poisson.yaml --num-requests ${SERVING_REQUESTS:-1000} \
        --request-rate ${SERVING_RATES:-10,20,40,80} --slo ttft_ms=1000,tpot_ms=50 \
        --out "$results/serving-poisson.jsonl" --tag serving-poisson 2>&1 | tail -6
      cp "$results/serving-poisson.jsonl" "$OUT/"
      ;;
    reference-models)
      # Trains the reference target/draft pair (issue 11) on the corpus built here by
      # scripts/make_corpus.sh (carried as corpus/: the device machine reaches no package mirror).
      PYTHONUNBUFFERED=1 timeout ${TRAIN_TIMEOUT:-420} python3 tests/reference/train_reference_models.py --iol "$IOL" \
        --corpus corpus --out "$OUT/reference_models" --budget-seconds ${TRAIN_SECONDS:-240} 2>&1 | tail -40
      ;;
    sanitize)
      for tool in ${SANITIZE_TOOLS:-memcheck racecheck}; do
        IOL_TEST_SAMPLER_DRAWS=${IOL_TEST_SAMPLER_DRAWS:-5000} timeout ${SANITIZE_SECONDS:-200} compute-sanitizer --tool $tool --error-exitcode 1 "$TESTS" --gtest_color=no \
          --gtest_filter="${SANITIZE_FILTER:-ElementwiseKernels.*:FillDummyBf16.*:PagedAttentionPrefill.*:PagedAttentionDecode.*:SamplerKernel.*:Gemv.*:Presets/CudaBackendParity.Logits*:Presets/CudaBackendParity.GreedyTokensMatchWithPreemption*}" \
          > "$OUT/sanitize_$tool.log" 2>&1
        echo "compute-sanitizer $tool: exit $? ($(grep -cE '(ERROR SUMMARY: 0 errors|RACECHECK SUMMARY: 0 hazards)' "$OUT/sanitize_$tool.log") clean summaries)"
        grep -E "(ERROR|RACECHECK) SUMMARY" "$OUT/sanitize_$tool.log" | sort | uniq -c | head -5
      done
      ;;
    ncu-decode)
      # Per-kernel time and DRAM bytes of decode steps (eager, so each kernel is its own launch):
      # NCU_BATCH concurrent requests; the skip passes weight init, prefill and the first steps.
      b=${NCU_BATCH:-1}
      # NCU_INPUT_LEN=2048 NCU_OUTPUT_LEN=1 NCU_SKIP=0 profiles a prefill: the filter leaves out the
      # dummy-weight fill, so the first profiled launch is the prompt's embedding.
      ncu --clock-control none --kernel-name "${NCU_FILTER:-regex:^(?!fill_dummy)}" --launch-skip ${NCU_SKIP:-3000} --launch-count ${NCU_COUNT:-700} --csv --page raw \
        --metrics gpu__time_duration.sum,dram__bytes_read.sum,dram__bytes_write.sum,launch__grid_size,launch__block_size \
        "$IOL" bench --backend cuda --preset llama-3.1-8b --load-format dummy --quiet --max-model-len 4096 --no-cuda-graphs \
        --num-requests $b --input-len ${NCU_INPUT_LEN:-128} --output-len ${NCU_OUTPUT_LEN:-64} --arrival closed --concurrency $b \
        --max-num-seqs $(( b > 8 ? b : 8 )) --max-num-batched-tokens ${NCU_BATCHED_TOKENS:-8192} --out /tmp/ncu-bench.jsonl \
        > "$OUT/ncu_decode_b$b-in${NCU_INPUT_LEN:-128}.csv" 2> "$OUT/ncu_decode_b$b-in${NCU_INPUT_LEN:-128}.err"
      echo "ncu batch $b input ${NCU_INPUT_LEN:-128}: exit $?, $(wc -l < "$OUT/ncu_decode_b$b-in${NCU_INPUT_LEN:-128}.csv") lines"
      tail -3 "$OUT/ncu_decode_b$b-in${NCU_INPUT_LEN:-128}.err"
      ;;
    *) echo "unknown step $step" >&2; exit 2 ;;
  esac
done
