// The sampler on the device, one CTA of 1024 threads per sampling row, fp32 logits, vocab up to
// 2^19. It meets the host contract (sampling/sampler.hpp) token for token:
//   1. raw log-softmax (online max/sum, one pass) for the drawn token's logprob and the top-N;
//   2. penalties and masked ids written into the row's workspace copy (the raw row is shared by
//      the n samples of a prompt and stays untouched);
//   3. greedy: argmax, lowest id first; a row without penalties or masks never copies its logits;
//   4. otherwise Gumbel-max over the tokens kept by top-k, top-p and min-p (Gumbel 1954, Maddison
//      et al. 2014), with the Philox noise of core/philox.hpp, so no prefix sum over the vocabulary.
// Top-k, top-p and the top-N logprobs need a threshold, not a sort: a radix select (four 8-bit
// digits of the order-preserving key of a float) finds the token where the count (top-k, top-N)
// or the probability mass (top-p) of the tokens ranked above it crosses the target, ranking by
// (value desc, id asc) exactly as the host's stable sort; ties at the threshold are resolved in id
// order by a slow path that only runs when several tokens share the threshold value.
// Only launches: no allocation, no synchronisation with the host (CUDA-graph capturable).
#include "iol/backend/cuda/kernels/sampler.cuh"

#include <climits>
#include <cmath>

#include "iol/backend/cuda/cuda_check.hpp"
#include "iol/core/philox.hpp"

namespace iol::backend::cuda::kernels {
namespace {

using sampling::kMaxLogprobs;
using sampling::SamplingRow;

constexpr int kThreads = 1024;
constexpr int kWarps = kThreads / 32;
constexpr unsigned kFullMask = 0xffffffffu;
constexpr int kRadixBits = 8;
constexpr int kRadixBins = 1 << kRadixBits;
constexpr int kMaxVocab = 1 << 19;
// Probability mass relative to the most likely token, in fixed point: m in [0, 1] times 2^44, so a
// row's total stays below 2^63 (vocab <= 2^19), sums are exact and order-independent, and a
// token's mass resolves to 6e-14 of the top token's.
constexpr float kMassScale = 17592186044416.0f;  // 2^44
// Repetition-penalty bookkeeping per token: prompt occurrence flag | output occurrence count.
constexpr int kPromptFlag = 1 << 30;

// Gumbel(0, 1) noise of `token`: -log(-log u) in double, rounded once to float. The same formula
// as sampling::gumbel_noise (sampling/sampler.hpp, C++20, so not included in this C++17 file);
// tests/gpu/sampler_kernel_test.cu checks the two samplers draw the same tokens.
__device__ __forceinline__ float gumbel_noise(const SamplingRow& row, int32_t token) {
  const double u = sampling_uniform(row.seed, row.sample_index, row.position, static_cast<uint32_t>(token));
  return static_cast<float>(-log(-log(u)));
}
// u lies in [2^-25, 1 - 2^-25], so the noise is at most 17.33: a token whose scaled logit is this
// far below the best score so far cannot win the draw.
constexpr float kMaxGumbelNoise = 18.0f;

// Workspace per row: the edited logits, then the occurrence counts, each padded to 128 bytes.
__host__ __device__ size_t row_stride(int vocab) { return (static_cast<size_t>(vocab) + 31) / 32 * 32; }

// Order-preserving key of a float: a > b ⟺ key(a) > key(b); -0 is folded into +0 first because
// the host ranks by value, where they are equal.
__device__ __forceinline__ uint32_t order_key(float value) {
  const uint32_t bits = __float_as_uint(__fadd_rn(value, 0.0f));
  return (bits & 0x80000000u) ? ~bits : (bits | 0x80000000u);
}

// Calls f(i, logit, in_range) for this thread's tokens i of a row, ascending. One CTA streams a
// whole row, so memory-level parallelism has to come from each thread: kUnroll float4 loads are
// issued together (a row that is not 16-byte aligned falls back to scalar loads). Every thread
// makes the same number of calls, so warp intrinsics inside f stay converged; calls past the
// vocabulary have in_range false. Results never depend on which thread saw which token.
constexpr int kUnroll = 2;
template <typename F>
__device__ __forceinline__ void for_each_logit(const float* row, int vocab, F&& f) {
  if (reinterpret_cast<uintptr_t>(row) % 16 == 0 && vocab % 4 == 0) {
    const float4* row4 = reinterpret_cast<const float4*>(row);
    const int vocab4 = vocab / 4;
    for (int base = 0; base < vocab4; base += kThreads * kUnroll) {
      float4 v[kUnroll];
#pragma unroll
      for (int u = 0; u < kUnroll; ++u) {
        const int j = base + u * kThreads + static_cast<int>(threadIdx.x);
        v[u] = j < vocab4 ? row4[j] : float4{0.0f, 0.0f, 0.0f, 0.0f};
      }
#pragma unroll
      for (int u = 0; u < kUnroll; ++u) {
        const int j = base + u * kThreads + static_cast<int>(threadIdx.x);
        const bool in_range = j < vocab4;
        f(4 * j, v[u].x, in_range);
        f(4 * j + 1, v[u].y, in_range);
        f(4 * j + 2, v[u].z, in_range);
        f(4 * j + 3, v[u].w, in_range);
      }
    }
    return;
  }
  for (int base = 0; base < vocab; base += kThreads * kUnroll) {
    float v[kUnroll];
#pragma unroll
    for (int u = 0; u < kUnroll; ++u) {
      const int i = base + u * kThreads + static_cast<int>(threadIdx.x);
      v[u] = i < vocab ? row[i] : 0.0f;
    }
#pragma unroll
    for (int u = 0; u < kUnroll; ++u) {
      const int i = base + u * kThreads + static_cast<int>(threadIdx.x);
      f(i, v[u], i < vocab);
    }
  }
}

// A candidate and its rank order: larger value first, then lower id (torch.argmax, the host's
// stable sort). NaN never wins.
struct ArgMax {
  float value;
  int32_t id;
};
__device__ __forceinline__ ArgMax better(ArgMax a, ArgMax b) {
  return (b.value > a.value || (b.value == a.value && b.id < a.id)) ? b : a;
}

// Online max and sum of exp(x - max) (Milakov & Gimelshein 2018), with the argmax.
struct RowStats {
  float max;
  int32_t argmax;
  float sum;
};
__device__ __forceinline__ RowStats merge(RowStats a, RowStats b) {
  const ArgMax m = better({a.max, a.argmax}, {b.max, b.argmax});
  if (m.value == -INFINITY) return {m.value, m.id, 0.0f};
  return {m.value, m.id, a.sum * expf(a.max - m.value) + b.sum * expf(b.max - m.value)};
}

template <typename T>
__device__ __forceinline__ T shuffle_xor(T v, int mask) { return __shfl_xor_sync(kFullMask, v, mask); }
__device__ __forceinline__ ArgMax shuffle_xor(ArgMax v, int mask) {
  return {__shfl_xor_sync(kFullMask, v.value, mask), __shfl_xor_sync(kFullMask, v.id, mask)};
}
__device__ __forceinline__ RowStats shuffle_xor(RowStats v, int mask) {
  return {__shfl_xor_sync(kFullMask, v.max, mask), __shfl_xor_sync(kFullMask, v.argmax, mask),
          __shfl_xor_sync(kFullMask, v.sum, mask)};
}

// Scratch for block-wide reductions and scans: one slot per warp and one for the result.
struct alignas(16) ReduceSlot {
  unsigned char bytes[16];
};
using BlockScratch = ReduceSlot[kWarps + 1];

// Block-wide reduction; every thread gets the result. Ends with a barrier so the scratch can be
// reused at once.
template <typename T, typename Op>
__device__ T block_reduce(T v, Op op, BlockScratch& scratch) {
  static_assert(sizeof(T) <= sizeof(ReduceSlot));
  T* slots = reinterpret_cast<T*>(scratch);
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
  for (int offset = 16; offset > 0; offset /= 2) v = op(v, shuffle_xor(v, offset));
  if (lane == 0) slots[warp] = v;
  __syncthreads();
  if (warp == 0) {
    v = slots[lane];  // kWarps == 32: one slot per lane
    for (int offset = 16; offset > 0; offset /= 2) v = op(v, shuffle_xor(v, offset));
    if (lane == 0) slots[kWarps] = v;
  }
  __syncthreads();
  v = slots[kWarps];
  __syncthreads();
  return v;
}

// Block-wide exclusive prefix sum in thread order; `total` gets the sum of all.
__device__ unsigned long long block_exclusive_scan(unsigned long long v, unsigned long long& total, BlockScratch& scratch) {
  unsigned long long* slots = reinterpret_cast<unsigned long long*>(scratch);
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
  unsigned long long inclusive = v;
  for (int offset = 1; offset < 32; offset *= 2) {
    const unsigned long long up = __shfl_up_sync(kFullMask, inclusive, offset);
    if (lane >= offset) inclusive += up;
  }
  if (lane == 31) slots[warp] = inclusive;
  __syncthreads();
  if (warp == 0) {
    const unsigned long long warp_total = slots[lane];
    unsigned long long warp_inclusive = warp_total;
    for (int offset = 1; offset < 32; offset *= 2) {
      const unsigned long long up = __shfl_up_sync(kFullMask, warp_inclusive, offset);
      if (lane >= offset) warp_inclusive += up;
    }
    slots[lane] = warp_inclusive - warp_total;  // exclusive offset of each warp
    if (lane == 31) slots[kWarps] = warp_inclusive;
  }
  __syncthreads();
  const unsigned long long result = slots[warp] + inclusive - v;
  total = slots[kWarps];
  __syncthreads();
  return result;
}

// The kept tokens of a ranking: key > key_ or (key == key_ and id <= cut). kKeepAll keeps all.
struct Threshold {
  uint32_t key;
  int32_t cut;
  __device__ bool keeps(int32_t id, uint32_t k) const { return k > key || (k == key && id <= cut); }
};
constexpr Threshold kKeepAll{0u, INT_MAX};

// Histogram copies: warp w adds into copy w % kHistogramCopies, so fewer warps contend for one
// bin's shared-memory atomics (logits crowd into a few exponents at the first digit).
constexpr int kHistogramCopies = 8;

struct RadixShared {
  unsigned long long weight[kHistogramCopies][kRadixBins];
  uint32_t count[kHistogramCopies][kRadixBins];
  unsigned long long target;  // weight to reach
  unsigned long long above;   // weight of the tokens ranked above the current bucket
  int bin;                    // the bucket of the next digit that holds the crossing, -1: none
  uint32_t in_bucket;         // tokens in that bucket
};

// Radix select over the tokens of `row` that admit(i, key) accepts: finds the kept set of the
// ranking (key desc, id asc) whose tokens each have less than `target` weight ranked before them,
// target = target_of(total weight). Unweighted (weight 1) that is the first `target` tokens
// (top-k, top-N); weighted by weight_of(logit) (fixed-point mass) it is the smallest head whose
// mass reaches `target` (top-p). One pass per 8-bit digit: a histogram of count and weight per
// digit value (warp-aggregated atomics, since logits crowd into few exponents), then warp 0 finds
// the digit value where the weight from above crosses the target. It stops early when that
// bucket holds a single token.
template <bool kWeighted, typename Admit, typename WeightOf, typename TargetOf>
__device__ Threshold radix_select(const float* row, int vocab, Admit admit, WeightOf weight_of, TargetOf target_of,
                                  RadixShared& sh, BlockScratch& scratch) {
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
  uint32_t prefix = 0;
  for (int level = 0; level < 32 / kRadixBits; ++level) {
    const int shift = 32 - kRadixBits * (level + 1);
    for (int b = threadIdx.x; b < kRadixBins * kHistogramCopies; b += kThreads) {
      sh.weight[b / kRadixBins][b % kRadixBins] = 0;
      sh.count[b / kRadixBins][b % kRadixBins] = 0;
    }
    if (level == 0 && threadIdx.x == 0) sh.above = 0;
    __syncthreads();
    for_each_logit(row, vocab, [&](int i, float v, bool in_range) {
      const uint32_t key = order_key(v);
      int bin = -1;
      if (in_range && (level == 0 || (key >> (shift + kRadixBits)) == (prefix >> (shift + kRadixBits))) && admit(i, key))
        bin = static_cast<int>((key >> shift) & (kRadixBins - 1));
      if (__ballot_sync(kFullMask, bin >= 0) == 0) return;  // deeper digits: most warps hold none
      // Lanes with the same digit add once.
      const unsigned group = __match_any_sync(kFullMask, bin);
      unsigned long long w = __popc(group);
      if constexpr (kWeighted) {
        // Weights <= 2^44 split in 22-bit halves: 32 of them fit __reduce_add_sync's 32 bits.
        const unsigned long long mine = bin >= 0 ? weight_of(v) : 0ull;
        w = __reduce_add_sync(group, static_cast<unsigned>(mine & 0x3FFFFFu)) +
            (static_cast<unsigned long long>(__reduce_add_sync(group, static_cast<unsigned>(mine >> 22))) << 22);
      }
      if (bin >= 0 && lane == __ffs(group) - 1) {
        atomicAdd(&sh.count[warp % kHistogramCopies][bin], static_cast<uint32_t>(__popc(group)));
        atomicAdd(&sh.weight[warp % kHistogramCopies][bin], w);
      }
    });
    __syncthreads();
    if (warp == 0) {
      // Lane l owns digits 255 - 8l down to 248 - 8l: lanes in ascending order walk the ranking.
      constexpr int kPerLane = kRadixBins / 32;
      const auto weight_of_bin = [&](int b) {
        unsigned long long sum = 0;
        for (int c = 0; c < kHistogramCopies; ++c) sum += sh.weight[c][b];
        return sum;
      };
      unsigned long long chunk = 0;
      for (int k = 0; k < kPerLane; ++k) chunk += weight_of_bin(kRadixBins - 1 - kPerLane * lane - k);
      unsigned long long inclusive = chunk;
      for (int offset = 1; offset < 32; offset *= 2) {
        const unsigned long long up = __shfl_up_sync(kFullMask, inclusive, offset);
        if (lane >= offset) inclusive += up;
      }
      if (level == 0) {
        const unsigned long long total = __shfl_sync(kFullMask, inclusive, 31);
        if (lane == 0) sh.target = target_of(total);
      }
      __syncwarp();
      const unsigned long long need = sh.target - sh.above;
      unsigned long long before = inclusive - chunk;
      const bool mine = before < need && need <= inclusive;
      if (lane == 0) sh.bin = -1;
      __syncwarp();
      if (mine) {
        for (int k = 0; k < kPerLane; ++k) {
          const int b = kRadixBins - 1 - kPerLane * lane - k;
          const unsigned long long w = weight_of_bin(b);
          if (before + w >= need) {
            uint32_t count = 0;
            for (int c = 0; c < kHistogramCopies; ++c) count += sh.count[c][b];
            sh.bin = b;
            sh.in_bucket = count;
            sh.above += before;
            break;
          }
          before += w;
        }
      }
    }
    __syncthreads();
    const int bin = sh.bin;
    if (bin < 0) return kKeepAll;  // the target exceeds the total: nothing is cut
    prefix |= static_cast<uint32_t>(bin) << shift;
    const uint32_t in_bucket = sh.in_bucket;
    __syncthreads();  // everyone has read the histogram before the next level clears it
    // A bucket of one token: keeping every key >= the bucket's smallest key keeps exactly the
    // tokens above it and that one.
    if (in_bucket == 1) return {prefix, INT_MAX};
  }

  // Several tokens share the threshold key `prefix` (a slow path: one block scan per 1024 ids):
  // keep them in id order while the weight before them stays below the target. Kept ties are a
  // prefix in id order, so the result is a cut id.
  const unsigned long long need = sh.target - sh.above;
  unsigned long long running = 0;
  int32_t cut = -1;
  for (int base = 0; base < vocab && running < need; base += kThreads) {
    const int i = base + threadIdx.x;
    bool tie = false;
    unsigned long long w = 0;
    if (i < vocab) {
      const float v = row[i];
      const uint32_t key = order_key(v);
      tie = key == prefix && admit(i, key);
      if (tie) w = kWeighted ? weight_of(v) : 1ull;
    }
    unsigned long long chunk_total;
    const unsigned long long before = block_exclusive_scan(w, chunk_total, scratch);
    if (tie && running + before < need) cut = i;
    running += chunk_total;
  }
  cut = block_reduce(cut, [](int32_t a, int32_t b) { return a > b ? a : b; }, scratch);
  return {prefix, cut};
}

__global__ void __launch_bounds__(kThreads, 1) sampler_kernel(SamplerParams p) {
  __shared__ BlockScratch scratch;
  __shared__ RadixShared radix;
  __shared__ float top_values[kMaxLogprobs];
  __shared__ int32_t top_ids[kMaxLogprobs];
  __shared__ int top_count;

  const int r = blockIdx.x;
  const SamplingRow& row = p.rows[r];
  const int vocab = p.vocab;
  const float* raw = p.logits + static_cast<size_t>(row.logits_row) * vocab;
  const bool has_penalties = row.has_penalties();
  const bool edited = has_penalties || row.masked_end > row.masked_begin;
  float* edited_row = static_cast<float*>(p.workspace) + 2 * row_stride(vocab) * static_cast<size_t>(r);
  int* counts = reinterpret_cast<int*>(edited_row + row_stride(vocab));

  // 1. Raw statistics (the logprobs' normaliser and, unedited, the greedy token), copying the row
  // into the workspace when it will be edited.
  RowStats stats{-INFINITY, INT_MAX, 0.0f};
  bool non_finite = false;
  for_each_logit(raw, vocab, [&](int i, float x, bool in_range) {
    if (!in_range) return;
    non_finite |= !isfinite(x);
    if (edited) edited_row[i] = x;
    if (x > stats.max) {
      stats.sum = (stats.max == -INFINITY ? 0.0f : stats.sum * expf(stats.max - x)) + 1.0f;
      stats.max = x;
      stats.argmax = i;
    } else if (x != -INFINITY) {
      stats.sum += expf(x - stats.max);
    } else if (stats.argmax == INT_MAX) {
      stats.argmax = i;  // an all -inf row still has a first maximum
    }
  });
  // NaN/Inf logits (broken weights or activations): the row fails with kInvalidToken (-1) and the
  // engine fails that request, as the host sampler does (sampling/batch_sampler.hpp). The whole
  // block leaves together (__syncthreads_or is uniform), before anything reads raw[token].
  if (__syncthreads_or(non_finite)) {
    if (threadIdx.x == 0) {
      p.out_tokens[r] = -1;
      p.out_logprobs[r] = NAN;
    }
    return;
  }
  stats = block_reduce(stats, [](RowStats a, RowStats b) { return merge(a, b); }, scratch);
  const double log_normaliser = static_cast<double>(stats.max) + log(static_cast<double>(stats.sum));

  // 2. Penalties: repetition over the distinct ids of prompt ∪ output, presence and frequency over
  // the output, as sampling::apply_penalties. Occurrences are counted per id with atomics in the
  // row's count region, whose entries for these ids are cleared first (no state across launches);
  // every occurrence of an id then writes the same value, computed from the raw logit, so
  // duplicates need no ownership. Explicit _rn ops: no FMA contraction, the host's rounding.
  if (has_penalties) {
    const bool repetition = row.repetition_penalty != 1.0f;
    const int begin = repetition ? row.prompt_begin : row.prompt_end;
    for (int j = begin + threadIdx.x; j < row.output_end; j += kThreads) {
      const int32_t id = p.token_ids[j];
      if (id >= 0 && id < vocab) counts[id] = 0;
    }
    __syncthreads();
    for (int j = begin + threadIdx.x; j < row.output_end; j += kThreads) {
      const int32_t id = p.token_ids[j];
      if (id < 0 || id >= vocab) continue;
      if (j < row.prompt_end) atomicOr(&counts[id], kPromptFlag);
      else atomicAdd(&counts[id], 1);
    }
    __syncthreads();
    const bool additive = row.presence_penalty != 0.0f || row.frequency_penalty != 0.0f;
    for (int j = begin + threadIdx.x; j < row.output_end; j += kThreads) {
      const int32_t id = p.token_ids[j];
      if (id < 0 || id >= vocab) continue;
      const int in_output = counts[id] & ~kPromptFlag;
      float v = raw[id];
      if (repetition) v = v > 0.0f ? __fdiv_rn(v, row.repetition_penalty) : __fmul_rn(v, row.repetition_penalty);
      if (additive && in_output > 0)
        v = __fsub_rn(v, __fadd_rn(row.presence_penalty, __fmul_rn(row.frequency_penalty, static_cast<float>(in_output))));
      edited_row[id] = v;
    }
  }
  if (edited) {
    __syncthreads();
    for (int j = row.masked_begin + threadIdx.x; j < row.masked_end; j += kThreads) {
      const int32_t id = p.token_ids[j];
      if (id >= 0 && id < vocab) edited_row[id] = -INFINITY;
    }
    __syncthreads();
  }
  const float* logits = edited ? edited_row : raw;

  // 3. The most likely token after penalties: the greedy token, and the anchor of the filters
  // (top-k, top-p and min-p always keep it) and of the Gumbel draw.
  ArgMax top{stats.max, stats.argmax};
  if (edited) {
    ArgMax local{-INFINITY, INT_MAX};
    for_each_logit(logits, vocab, [&](int i, float v, bool in_range) {
      if (in_range) local = better(local, {v, i});
    });
    top = block_reduce(local, [](ArgMax a, ArgMax b) { return better(a, b); }, scratch);
  }
  if (top.id == INT_MAX) top.id = 0;  // a row of NaN: still a valid id

  int32_t token = top.id;
  if (!row.greedy()) {
    // 4. Filters by thresholds, then Gumbel-max: argmax of s_i + g_i over kept tokens, with
    // s_i = logit_i / T and g_i = gumbel_noise (Philox), exactly as the host forms them.
    const float temperature = row.temperature;
    const float s_max = __fdiv_rn(top.value, temperature);
    const auto admit_all = [](int, uint32_t) { return true; };
    const auto unweighted = [](float) { return 1ull; };
    Threshold top_k = kKeepAll;
    if (row.top_k > 0 && row.top_k < vocab) {
      const unsigned long long k = static_cast<unsigned long long>(row.top_k);
      top_k = radix_select<false>(logits, vocab, admit_all, unweighted, [k](unsigned long long) { return k; }, radix,
                                  scratch);
    }
    // Top-p over the mass top-k kept; as the host: a token stays while the mass ranked before it is
    // below top_p × kept mass, i.e. below ceil(top_p × kept) in fixed point.
    Threshold top_p = kKeepAll;
    if (row.top_p < 1.0f) {
      const double fraction = row.top_p;
      top_p = radix_select<true>(
          logits, vocab, [&](int i, uint32_t key) { return top_k.keeps(i, key); },
          [&](float logit) {
            return __float2ull_rn(expf(__fsub_rn(__fdiv_rn(logit, temperature), s_max)) * kMassScale);
          },
          [fraction](unsigned long long total) {
            return static_cast<unsigned long long>(ceil(fraction * static_cast<double>(total)));
          },
          radix, scratch);
    }
    const float min_p = row.min_p;
    // Start from the most likely token's score: a token whose s_i is more than the largest noise
    // below the best score so far cannot win, which skips Philox for most of a peaked row.
    ArgMax best{__fadd_rn(s_max, gumbel_noise(row, top.id)), top.id};
    for_each_logit(logits, vocab, [&](int i, float v, bool in_range) {
      const float s = __fdiv_rn(v, temperature);
      if (!in_range || !(__fadd_rn(s, kMaxGumbelNoise) >= best.value)) return;
      const uint32_t k = order_key(v);
      if (!top_k.keeps(i, k) || !top_p.keeps(i, k)) return;
      if (min_p > 0.0f && expf(__fsub_rn(s, s_max)) < min_p) return;
      best = better(best, {__fadd_rn(s, gumbel_noise(row, i)), i});
    });
    token = block_reduce(best, [](ArgMax a, ArgMax b) { return better(a, b); }, scratch).id;
  }
  if (threadIdx.x == 0) {
    p.out_tokens[r] = token;
    p.out_logprobs[r] = static_cast<float>(static_cast<double>(raw[token]) - log_normaliser);
  }

  // Top-N raw logprobs: the N-th largest raw logit by radix select, the N tokens at or above it
  // gathered in shared memory, then ranked by (value desc, id asc).
  const int n = min(min(row.num_top_logprobs, kMaxLogprobs), vocab);
  if (n > 0) {
    const Threshold nth = radix_select<false>(
        raw, vocab, [](int, uint32_t) { return true; }, [](float) { return 1ull; },
        [n](unsigned long long) { return static_cast<unsigned long long>(n); }, radix, scratch);
    if (threadIdx.x == 0) top_count = 0;
    __syncthreads();
    for_each_logit(raw, vocab, [&](int i, float v, bool in_range) {
      if (!in_range || !nth.keeps(i, order_key(v))) return;
      const int slot = atomicAdd(&top_count, 1);
      if (slot < kMaxLogprobs) {
        top_values[slot] = v;
        top_ids[slot] = i;
      }
    });
    __syncthreads();
    if (static_cast<int>(threadIdx.x) < n) {
      const ArgMax mine{top_values[threadIdx.x], top_ids[threadIdx.x]};
      int rank = 0;
      for (int j = 0; j < n; ++j) rank += better(mine, {top_values[j], top_ids[j]}).id != mine.id;
      p.out_top_ids[r * kMaxLogprobs + rank] = mine.id;
      p.out_top_logprobs[r * kMaxLogprobs + rank] = static_cast<float>(static_cast<double>(mine.value) - log_normaliser);
    }
  }
}

}  // namespace

size_t sampler_workspace_bytes(int max_rows, int vocab) {
  if (vocab < 1 || vocab > kMaxVocab)
    fail("cuda sampler: vocab {} is outside [1, {}] (the fixed-point mass sums of top-p would overflow)", vocab,
         kMaxVocab);
  return static_cast<size_t>(max_rows) * 2 * row_stride(vocab) * sizeof(float);
}

void sample(const SamplerParams& params, cudaStream_t stream) {
  if (params.num_rows == 0) return;
  sampler_kernel<<<params.num_rows, kThreads, 0, stream>>>(params);
  IOL_CUDA_LAUNCH_CHECK();
}

}  // namespace iol::backend::cuda::kernels
