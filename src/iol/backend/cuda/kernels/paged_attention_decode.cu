// Paged attention for decode rows (query length 1): split-KV flash-decoding (Dao, Haziza, Massa,
// Sizov 2023, "Flash-Decoding for long-context inference"), in one kernel: the partitions' partial
// results are merged by whichever of their CTAs finishes last (an arrival counter per sequence and
// head group), instead of by a second kernel as in vLLM's paged_attention_v2 — at batch 1 that
// second launch cost ~5 us per layer, as much as the attention itself.
//
// Grid (selected sequence, head group, split): a CTA owns one KV head, the query heads of
// its GQA group that share it (up to 16: the rows of one m16 MMA tile, so each K/V byte is read
// from DRAM once per group), and one partition of the context. Decode is bound by DRAM bandwidth,
// so the CTA is a streaming pipeline: K/V tiles of 64 tokens are gathered through the block table
// with cp.async into a ring of kStages shared-memory stages, kStages - 1 tiles in flight while one
// is consumed — deep memory parallelism that costs no registers. Each of the 4 warps takes 16 keys
// of a tile and keeps its own online softmax (Milakov & Gimelshein 2018): S = Q·K^T and O += P·V on
// tensor cores (mma.sync m16n8k16, as in the prefill kernel; the rows past the group are padding,
// which costs nothing the memory system would not idle through anyway). The warps merge at the end.
// A sequence whose attended span fits one partition writes bf16 out directly; otherwise the CTA
// leaves (max, sum, unnormalised out) in fp32 in the workspace.
//
// The merge (log-sum-exp combine): rescale the partials by exp2(max_k - max) and divide by the
// merged sum, summing over the partitions in their order, so the result does not depend on which
// CTA came last. Sequences with one partition have nothing to merge.
//
// Partitions: the grid has num_splits partitions per sequence, chosen on the host so the whole grid
// fills the GPU (about kTargetCtasPerSm CTAs per SM over all sequences and head groups, at most
// max_splits, never more than one 64-token tile each). Each sequence then cuts its own attended
// span evenly over those splits, in whole tiles (partition_tokens_for): a lone 150-token sequence
// spreads over 3 CTAs per head group instead of 1, a lone 32k one over 32 CTAs of 1k tokens, and at
// batch 256 every sequence stays in one CTA and merges nothing. The cut depends only on the
// sequence's own context length and the grid, so a CUDA graph captured for the longest context
// serves every shorter one.
//
// An FP8 cache (kFp8): the ring's stages hold E4M3 tiles (half the bytes in flight per tile), and
// each tile, once landed, is widened by the threads that loaded it into one bf16 tile pair laid out
// as above; one more barrier per tile, then the same MMAs.
//
// The mma/ldmatrix/cp.async helpers repeat those of paged_attention_prefill.cu (one file per kernel).
#include <algorithm>
#include <cstdint>
#include <type_traits>

#include <cuda_bf16.h>

#include "iol/backend/cuda/cuda_check.hpp"
#include "iol/backend/cuda/kernels/paged_attention.cuh"
#include "iol/backend/cuda/kernels/quant_codec.cuh"
#include "iol/core/error.hpp"

namespace iol::backend::cuda::kernels {
namespace {

using bf16 = __nv_bfloat16;

constexpr int kWarps = 4;
constexpr int kThreads = kWarps * 32;
constexpr int kTileKeys = kWarps * 16;  // one n16 slice of keys per warp
// 3 stages x 32 KiB (head_dim 128) leave room for 2 CTAs per SM: up to 4 tiles (128 KiB) in flight
// per SM, several times what Little's law asks at ~25 GB/s per SM and ~1-2 us of loaded latency.
// 4 stages at 1 CTA per SM took 40% longer on an H100; 2 stages at 3 CTAs per SM about the same.
constexpr int kStages = 3;              // 2 tiles in flight while one is consumed
constexpr int kTargetCtasPerSm = 2;  // the kernel's occupancy (__launch_bounds__ below)
constexpr int kMaxHeadsPerCta = 16;  // the rows of an m16 tile
constexpr float kLog2e = 1.4426950408889634f;

// Shared-memory tiles are [keys][head_dim] bf16, 16-byte chunks XOR-swizzled by (row % 8) so the
// 8 rows of an ldmatrix hit 8 different bank groups.
template <int D>
__device__ __forceinline__ int swizzle(int row, int chunk) {
  return row * D + ((chunk ^ (row & 7)) << 3);
}

__device__ __forceinline__ uint32_t smem_address(const void* pointer) {
  return static_cast<uint32_t>(__cvta_generic_to_shared(pointer));
}

// With valid == false, 16 zero bytes are written and the source is not read.
__device__ __forceinline__ void cp_async_16(uint32_t dst, const void* src, bool valid) {
  const int src_bytes = valid ? 16 : 0;
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(dst), "l"(src), "r"(src_bytes)
               : "memory");
}
__device__ __forceinline__ void cp_async_commit() { asm volatile("cp.async.commit_group;\n" ::: "memory"); }
template <int kPending>
__device__ __forceinline__ void cp_async_wait() {
  asm volatile("cp.async.wait_group %0;\n" ::"n"(kPending) : "memory");
}

__device__ __forceinline__ void ldmatrix_x4(uint32_t (&r)[4], uint32_t address) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0, %1, %2, %3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(address));
}
__device__ __forceinline__ void ldmatrix_x4_trans(uint32_t (&r)[4], uint32_t address) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0, %1, %2, %3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(address));
}

__device__ __forceinline__ void mma_bf16_16816(float (&d)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1) {
  asm volatile(
      "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, "
      "{%0, %1, %2, %3};\n"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}

__device__ __forceinline__ uint32_t pack_bf16x2(float low, float high) {
  const __nv_bfloat162 pair = __floats2bfloat162_rn(low, high);
  return *reinterpret_cast<const uint32_t*>(&pair);
}

__device__ __forceinline__ float fast_exp2(float x) {
  float y;
  asm("ex2.approx.ftz.f32 %0, %1;\n" : "=f"(y) : "f"(x));
  return y;
}

// Context positions this sequence's decode row attends: [lo, context_len).
__device__ __forceinline__ int attended_lo(int context_len, int window) {
  return window > 0 ? max(0, context_len - window) : 0;
}

// Workspace (fp32), indexed by (selected index i, head h, split k), split fastest:
// partial_out [num_selected][num_heads][num_splits][head_dim], then partial_max and partial_sum
// [num_selected][num_heads][num_splits].
struct DecodeWorkspace {
  float* partial_out;
  float* partial_max;  // log2 domain: max of score * scale * log2(e)
  float* partial_sum;
  int* arrivals;       // [selected row][head group]: partitions finished; zero between launches
};

// The tokens of each of a sequence's partitions: its span cut evenly over the grid's splits, in
// whole tiles.
__device__ __forceinline__ int partition_tokens_for(int span, int num_splits) {
  const int share = (span + num_splits - 1) / num_splits;
  return max(kTileKeys, (share + kTileKeys - 1) / kTileKeys * kTileKeys);
}

// The ring of stages (K tile, then V tile, in the cache's element type) and, for FP8, the bf16
// tile pair the MMAs read.
template <int D, bool kFp8>
constexpr size_t decode_stage_bytes() {
  return static_cast<size_t>(2) * kTileKeys * D * (kFp8 ? 1 : sizeof(bf16));
}
template <int D, bool kFp8>
constexpr size_t decode_smem_bytes() {
  return kStages * decode_stage_bytes<D, kFp8>() + (kFp8 ? static_cast<size_t>(2) * kTileKeys * D * sizeof(bf16) : 0);
}

// 16 E4M3 codes widened to bf16 and stored as two swizzled 16-byte chunks of a bf16 tile.
__device__ __forceinline__ void widen_fp8_chunk(uint4 codes, float scale, uint4* dst0, uint4* dst1) {
  widen_e4m3x16(codes, scale, *dst0, *dst1);
}

template <int D, bool kFp8>
__global__ void __launch_bounds__(kThreads, 2)
    paged_attention_decode_kernel(const PagedAttentionParams p, int heads_per_cta, int num_splits, float scale_log2,
                                  DecodeWorkspace workspace) {
  // A 16-byte chunk holds 8 bf16 or 16 E4M3 elements.
  constexpr int kChunkElems = kFp8 ? 16 : 8;
  constexpr int kChunksPerRow = D / kChunkElems;
  constexpr int kRowsPerWave = kThreads / kChunksPerRow;
  constexpr int kWaves = kTileKeys / kRowsPerWave;
  constexpr size_t kStageBytes = decode_stage_bytes<D, kFp8>();
  static_assert(static_cast<size_t>(kWarps) * kMaxHeadsPerCta * (D + 2) * sizeof(float) <=
                    decode_smem_bytes<D, kFp8>(),
                "the merge reuses the pipeline's shared memory");

  extern __shared__ __align__(128) unsigned char smem[];
  // The bf16 tiles the MMAs read: the current stage (bf16 cache) or the widened copy (FP8).
  bf16* s_widened = reinterpret_cast<bf16*>(smem + kStages * kStageBytes);

  const int selected = blockIdx.x;
  const int seq = p.seq_indices[selected];
  const int context_len = p.context_lens[seq];
  const int lo = attended_lo(context_len, p.sliding_window);
  const int partition_tokens = partition_tokens_for(context_len - lo, num_splits);
  const int seq_splits = (context_len - lo + partition_tokens - 1) / partition_tokens;
  const int split = blockIdx.z;
  if (split >= seq_splits) return;
  const int begin = lo + split * partition_tokens;
  const int end = min(context_len, begin + partition_tokens);
  const int num_tiles = (end - begin + kTileKeys - 1) / kTileKeys;

  const int head0 = blockIdx.y * heads_per_cta;
  const int kv_head = head0 / (p.num_heads / p.num_kv_heads);
  const int tid = threadIdx.x;
  const int warp = tid / 32;
  const int lane = tid % 32;
  const int q_row = p.query_start_loc[seq];

  // ---- K/V gather through the block table ----
  const int load_chunk = tid % kChunksPerRow;
  const int load_row0 = tid / kChunksPerRow;
  const int32_t* block_table = p.block_tables + static_cast<int64_t>(seq) * p.max_blocks_per_seq;
  const int block_size = p.block_size;
  const int64_t slot_stride = static_cast<int64_t>(p.num_kv_heads) * D;
  using Element = std::conditional_t<kFp8, uint8_t, bf16>;
  const Element* k_base = static_cast<const Element*>(p.k_cache) + kv_head * D + load_chunk * kChunkElems;
  const Element* v_base = static_cast<const Element*>(p.v_cache) + kv_head * D + load_chunk * kChunkElems;
  auto find_slots = [&](int tile, int (&slots)[kWaves]) {
#pragma unroll
    for (int w = 0; w < kWaves; ++w) {
      const int key = begin + tile * kTileKeys + load_row0 + w * kRowsPerWave;
      slots[w] = tile < num_tiles && key < end ? block_table[key / block_size] * block_size + key % block_size : -1;
    }
  };
  // bf16 stages are swizzled for ldmatrix; FP8 stages are plain [key][D] bytes (only the thread
  // that loaded a chunk reads it back, to widen it).
  auto issue_tile = [&](int stage, const int (&slots)[kWaves]) {
    unsigned char* s_k = smem + stage * kStageBytes;
    unsigned char* s_v = s_k + kStageBytes / 2;
#pragma unroll
    for (int w = 0; w < kWaves; ++w) {
      const int row = load_row0 + w * kRowsPerWave;
      const bool valid = slots[w] >= 0;
      const int64_t offset = valid ? slots[w] * slot_stride : 0;
      const int at = kFp8 ? row * D + load_chunk * 16 : swizzle<D>(row, load_chunk) * static_cast<int>(sizeof(bf16));
      cp_async_16(smem_address(s_k + at), k_base + offset, valid);
      cp_async_16(smem_address(s_v + at), v_base + offset, valid);
    }
  };
  // FP8: this thread's landed chunks of a stage, widened into the bf16 tile pair.
  auto widen_tile = [&](int stage) {
    const unsigned char* s_k = smem + stage * kStageBytes;
    const unsigned char* s_v = s_k + kStageBytes / 2;
    bf16* w_k = s_widened;
    bf16* w_v = s_widened + kTileKeys * D;
#pragma unroll
    for (int w = 0; w < kWaves; ++w) {
      const int row = load_row0 + w * kRowsPerWave;
      const int at = row * D + load_chunk * 16;
      widen_fp8_chunk(*reinterpret_cast<const uint4*>(s_k + at), p.k_scale,
                      reinterpret_cast<uint4*>(w_k + swizzle<D>(row, 2 * load_chunk)),
                      reinterpret_cast<uint4*>(w_k + swizzle<D>(row, 2 * load_chunk + 1)));
      widen_fp8_chunk(*reinterpret_cast<const uint4*>(s_v + at), p.v_scale,
                      reinterpret_cast<uint4*>(w_v + swizzle<D>(row, 2 * load_chunk)),
                      reinterpret_cast<uint4*>(w_v + swizzle<D>(row, 2 * load_chunk + 1)));
    }
  };

  // Prologue: tiles 0 .. kStages-2 in flight. One commit group per tile, empty past the end, so
  // wait_group<kStages - 2> always means "tile t has landed".
  int slots[kWaves];
#pragma unroll
  for (int s = 0; s < kStages - 1; ++s) {
    find_slots(s, slots);
    if (s < num_tiles) issue_tile(s, slots);
    cp_async_commit();
  }
  find_slots(kStages - 1, slots);  // the next tile to issue; its table reads overlap the wait

  // ---- Q as the A operand: rows = the CTA's heads (zeros past heads_per_cta), k = head_dim ----
  const int group = lane / 4;
  const int quad_lane = lane % 4;
  uint32_t q_frag[D / 16][4];
  {
    const bf16* q_base = p.q + static_cast<int64_t>(q_row) * p.q_row_stride + head0 * D + 2 * quad_lane;
#pragma unroll
    for (int kk = 0; kk < D / 16; ++kk) {
#pragma unroll
      for (int r = 0; r < 4; ++r) {
        const int row = group + 8 * (r % 2);
        const int col = kk * 16 + 8 * (r / 2);
        q_frag[kk][r] = row < heads_per_cta ? *reinterpret_cast<const uint32_t*>(q_base + row * D + col) : 0u;
      }
    }
  }

  float o_acc[D / 8][4];
#pragma unroll
  for (int n = 0; n < D / 8; ++n) o_acc[n][0] = o_acc[n][1] = o_acc[n][2] = o_acc[n][3] = 0.0f;
  float row_max[2] = {-INFINITY, -INFINITY};  // log2 domain, rows group and group + 8
  float row_sum[2] = {0.0f, 0.0f};            // this thread's keys; summed over the quad at the end
  const int warp_key0 = warp * 16;

  for (int tile = 0; tile < num_tiles; ++tile) {
    cp_async_wait<kStages - 2>();
    __syncthreads();  // tile visible to all warps; every warp is done with the stage refilled below
    if (tile + kStages - 1 < num_tiles) issue_tile((tile + kStages - 1) % kStages, slots);
    cp_async_commit();
    find_slots(tile + kStages, slots);

    const bf16* s_k;
    if constexpr (kFp8) {
      // Every warp finished the previous tile's MMAs at the barrier above; widen, then share.
      widen_tile(tile % kStages);
      __syncthreads();
      s_k = s_widened;
    } else {
      s_k = reinterpret_cast<const bf16*>(smem + (tile % kStages) * kStageBytes);
    }
    const bf16* s_v = s_k + kTileKeys * D;

    // ---- S = Q K^T for this warp's 16 keys ----
    float s_acc[2][4] = {{0.0f, 0.0f, 0.0f, 0.0f}, {0.0f, 0.0f, 0.0f, 0.0f}};
#pragma unroll
    for (int kk = 0; kk < D / 16; ++kk) {
      uint32_t b[4];
      ldmatrix_x4(b, smem_address(s_k + swizzle<D>(warp_key0 + lane % 8 + (lane / 16) * 8, kk * 2 + (lane / 8) % 2)));
      mma_bf16_16816(s_acc[0], q_frag[kk], b[0], b[1]);
      mma_bf16_16816(s_acc[1], q_frag[kk], b[2], b[3]);
    }
    // Keys past the partition (only in the last tile) are masked; their V rows were zero-filled.
    const int key0 = begin + tile * kTileKeys + warp_key0;
    if (key0 + 16 > end) {
#pragma unroll
      for (int n = 0; n < 2; ++n)
#pragma unroll
        for (int e = 0; e < 4; ++e)
          if (key0 + n * 8 + 2 * quad_lane + (e & 1) >= end) s_acc[n][e] = -INFINITY;
    }

    // ---- online softmax ----
#pragma unroll
    for (int half = 0; half < 2; ++half) {
      float tile_max = fmaxf(fmaxf(s_acc[0][2 * half], s_acc[0][2 * half + 1]),
                             fmaxf(s_acc[1][2 * half], s_acc[1][2 * half + 1]));
      tile_max = fmaxf(tile_max, __shfl_xor_sync(0xffffffffu, tile_max, 1));
      tile_max = fmaxf(tile_max, __shfl_xor_sync(0xffffffffu, tile_max, 2));
      const float new_max = fmaxf(row_max[half], tile_max * scale_log2);
      // A warp whose keys are all masked so far keeps max -inf: subtract 0 so exp2 gives 0, not NaN.
      const float base = new_max == -INFINITY ? 0.0f : new_max;
      const float correction = fast_exp2(row_max[half] - base);
      row_max[half] = new_max;
      float tile_sum = 0.0f;
#pragma unroll
      for (int n = 0; n < 2; ++n) {
#pragma unroll
        for (int e = 2 * half; e < 2 * half + 2; ++e) {
          s_acc[n][e] = fast_exp2(fmaf(s_acc[n][e], scale_log2, -base));
          tile_sum += s_acc[n][e];
        }
      }
      row_sum[half] = row_sum[half] * correction + tile_sum;
#pragma unroll
      for (int n = 0; n < D / 8; ++n) {
        o_acc[n][2 * half] *= correction;
        o_acc[n][2 * half + 1] *= correction;
      }
    }

    // ---- O += P V (P rounded to bf16, as in FlashAttention-2) ----
    const uint32_t p_frag[4] = {pack_bf16x2(s_acc[0][0], s_acc[0][1]), pack_bf16x2(s_acc[0][2], s_acc[0][3]),
                                pack_bf16x2(s_acc[1][0], s_acc[1][1]), pack_bf16x2(s_acc[1][2], s_acc[1][3])};
#pragma unroll
    for (int dp = 0; dp < D / 16; ++dp) {
      uint32_t b[4];
      ldmatrix_x4_trans(b, smem_address(s_v + swizzle<D>(warp_key0 + lane % 8 + ((lane / 8) % 2) * 8, dp * 2 + lane / 16)));
      mma_bf16_16816(o_acc[2 * dp], p_frag, b[0], b[1]);
      mma_bf16_16816(o_acc[2 * dp + 1], p_frag, b[2], b[3]);
    }
  }

  // ---- merge the warps: the pipeline's shared memory becomes [warp][head][D] partials ----
  cp_async_wait<0>();
  __syncthreads();
  float* s_out = reinterpret_cast<float*>(smem);                  // [kWarps][kMaxHeadsPerCta][D]
  float* s_max = s_out + kWarps * kMaxHeadsPerCta * D;             // [kWarps][kMaxHeadsPerCta]
  float* s_sum = s_max + kWarps * kMaxHeadsPerCta;
#pragma unroll
  for (int half = 0; half < 2; ++half) {
    const int row = group + 8 * half;
    float sum = row_sum[half];
    sum += __shfl_xor_sync(0xffffffffu, sum, 1);
    sum += __shfl_xor_sync(0xffffffffu, sum, 2);
    if (row < heads_per_cta) {
      if (quad_lane == 0) {
        s_max[warp * kMaxHeadsPerCta + row] = row_max[half];  // -inf for a warp that saw no key
        s_sum[warp * kMaxHeadsPerCta + row] = sum;
      }
#pragma unroll
      for (int n = 0; n < D / 8; ++n) {
        float* dst = s_out + (warp * kMaxHeadsPerCta + row) * D + n * 8 + 2 * quad_lane;
        dst[0] = o_acc[n][2 * half];
        dst[1] = o_acc[n][2 * half + 1];
      }
    }
  }
  __syncthreads();

  const int num_heads = p.num_heads;
  for (int index = tid; index < heads_per_cta * D; index += kThreads) {
    const int h = index / D;
    const int d = index % D;
    float merged_max = -INFINITY;
#pragma unroll
    for (int w = 0; w < kWarps; ++w) merged_max = fmaxf(merged_max, s_max[w * kMaxHeadsPerCta + h]);  // warp 0 saw a key
    float out = 0.0f, sum = 0.0f;
#pragma unroll
    for (int w = 0; w < kWarps; ++w) {
      const float weight = fast_exp2(s_max[w * kMaxHeadsPerCta + h] - merged_max);
      out = fmaf(weight, s_out[(w * kMaxHeadsPerCta + h) * D + d], out);
      sum = fmaf(weight, s_sum[w * kMaxHeadsPerCta + h], sum);
    }
    const int head = head0 + h;
    if (seq_splits == 1) {
      p.out[(static_cast<int64_t>(q_row) * num_heads + head) * D + d] = __float2bfloat16_rn(out / sum);
    } else {
      const int64_t partial = (static_cast<int64_t>(selected) * num_heads + head) * num_splits + split;
      workspace.partial_out[partial * D + d] = out;
      if (d == 0) {
        workspace.partial_max[partial] = merged_max;
        workspace.partial_sum[partial] = sum;
      }
    }
  }
  if (seq_splits == 1) return;

  // ---- the last partition of this sequence and head group to finish merges them all ----
  // Release: every thread's partials are visible device-wide before thread 0 counts this CTA in;
  // the CTA that brings the count to seq_splits resets it (no other CTA of this launch touches it
  // again) and reads the others' partials through L2 (__ldcg: L1 is not coherent across SMs).
  // (No static shared memory here: the dynamic pipeline buffer may take the whole 48 KiB default.)
  __threadfence();
  __syncthreads();
  bool last = false;
  if (tid == 0) {
    int* arrivals = workspace.arrivals + static_cast<int64_t>(selected) * gridDim.y + blockIdx.y;
    last = atomicAdd(arrivals, 1) == seq_splits - 1;
    if (last) *arrivals = 0;
  }
  if (!__syncthreads_or(last)) return;
  __threadfence();
  for (int index = tid; index < heads_per_cta * D; index += kThreads) {
    const int head = head0 + index / D;
    const int d = index % D;
    const int64_t first = (static_cast<int64_t>(selected) * num_heads + head) * num_splits;
    float merged_max = -INFINITY;
    for (int k = 0; k < seq_splits; ++k) merged_max = fmaxf(merged_max, __ldcg(workspace.partial_max + first + k));
    float out = 0.0f, sum = 0.0f;
    for (int k = 0; k < seq_splits; ++k) {
      const float weight = fast_exp2(__ldcg(workspace.partial_max + first + k) - merged_max);
      sum = fmaf(weight, __ldcg(workspace.partial_sum + first + k), sum);
      out = fmaf(weight, __ldcg(workspace.partial_out + (first + k) * D + d), out);
    }
    p.out[(static_cast<int64_t>(q_row) * num_heads + head) * D + d] = __float2bfloat16_rn(out / sum);
  }
}

template <int D, bool kFp8>
void launch_decode(const PagedAttentionParams& p, int heads_per_cta, int num_splits, DecodeWorkspace workspace,
                   cudaStream_t stream) {
  constexpr size_t kSmemBytes = decode_smem_bytes<D, kFp8>();
  if constexpr (kSmemBytes > 48 * 1024) {
    static const bool configured = [] {
      IOL_CUDA_CHECK(cudaFuncSetAttribute(paged_attention_decode_kernel<D, kFp8>,
                                          cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(kSmemBytes)));
      return true;
    }();
    (void)configured;
  }
  const dim3 grid(p.num_selected, p.num_heads / heads_per_cta, num_splits);
  paged_attention_decode_kernel<D, kFp8><<<grid, kThreads, kSmemBytes, stream>>>(p, heads_per_cta, num_splits,
                                                                                 p.scale * kLog2e, workspace);
  IOL_CUDA_LAUNCH_CHECK();
}

// Layout: the arrival counters [max_num_seqs][num_heads] (an upper bound on the head groups) at the
// front, 16-byte aligned, then partial_out, partial_max and partial_sum of the launch.
size_t arrivals_bytes(int max_num_seqs, int num_heads) {
  return (static_cast<size_t>(max_num_seqs) * num_heads * sizeof(int) + 15) / 16 * 16;
}

}  // namespace

size_t paged_attention_decode_workspace_bytes(int max_num_seqs, int num_heads, int head_dim, int max_splits) {
  return arrivals_bytes(max_num_seqs, num_heads) +
         static_cast<size_t>(max_num_seqs) * num_heads * max_splits * (head_dim + 2) * sizeof(float);
}

void paged_attention_decode_workspace_init(void* workspace, int max_num_seqs, int num_heads) {
  IOL_CUDA_CHECK(cudaMemset(workspace, 0, arrivals_bytes(max_num_seqs, num_heads)));
}

void paged_attention_decode(const PagedAttentionParams& params, int max_num_seqs, int max_splits, void* workspace,
                            cudaStream_t stream) {
  if (params.num_selected == 0) return;
  if (params.num_selected > max_num_seqs)
    fail("paged_attention_decode: {} selected rows exceed the workspace's {}", params.num_selected, max_num_seqs);
  if (params.num_kv_heads <= 0 || params.num_heads % params.num_kv_heads != 0)
    fail("paged_attention_decode: num_heads {} is not a multiple of num_kv_heads {}", params.num_heads,
         params.num_kv_heads);
  if (params.block_size < 1) fail("paged_attention_decode: block_size {} must be >= 1", params.block_size);
  if (params.q_row_stride % 8 != 0)
    fail("paged_attention_decode: q_row_stride {} must be a multiple of 8 elements (16-byte loads)",
         params.q_row_stride);
  if (max_splits < 1 || max_splits > 65535)
    fail("paged_attention_decode: max_splits {} must be in [1, 65535]", max_splits);
  if (params.head_dim != 64 && params.head_dim != 128)
    fail("paged_attention_decode: head_dim {} is not supported (64 or 128); add a template instance",
         params.head_dim);

  // Every selected row attends at most max_span positions. Splits: enough CTAs to fill the GPU,
  // but no more than one tile per split for the longest span, and at most max_splits.
  int max_span = params.sliding_window > 0 ? std::min(params.max_context_len, params.sliding_window)
                                           : params.max_context_len;
  max_span = std::max(max_span, 1);
  static const int num_sms = [] {
    int device = 0, sms = 0;
    IOL_CUDA_CHECK(cudaGetDevice(&device));
    IOL_CUDA_CHECK(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, device));
    return sms;
  }();

  // The largest power of two (<= 16) dividing the GQA group: one CTA's heads share a KV head.
  const int group_size = params.num_heads / params.num_kv_heads;
  int heads_per_cta = 1;
  while (heads_per_cta * 2 <= kMaxHeadsPerCta && group_size % (heads_per_cta * 2) == 0) heads_per_cta *= 2;
  const int64_t ctas_per_split = int64_t{params.num_selected} * (params.num_heads / heads_per_cta);
  const int64_t wanted = (int64_t{kTargetCtasPerSm} * num_sms + ctas_per_split - 1) / ctas_per_split;
  const int num_splits = static_cast<int>(
      std::clamp<int64_t>(std::min<int64_t>(wanted, (max_span + kTileKeys - 1) / kTileKeys), 1, max_splits));

  if (num_splits > 1 && workspace == nullptr)
    fail("paged_attention_decode: {} splits need a workspace (paged_attention_decode_workspace_bytes)", num_splits);

  const size_t partials = static_cast<size_t>(params.num_selected) * params.num_heads * num_splits;
  DecodeWorkspace parts{};
  if (workspace != nullptr) {
    parts.arrivals = static_cast<int*>(workspace);
    float* base = reinterpret_cast<float*>(static_cast<char*>(workspace) + arrivals_bytes(max_num_seqs, params.num_heads));
    parts.partial_out = base;
    parts.partial_max = base + partials * params.head_dim;
    parts.partial_sum = base + partials * (params.head_dim + 1);
  }
  const bool fp8 = params.kv_format == KvCacheFormat::Fp8E4M3;
  if (params.head_dim == 64)
    fp8 ? launch_decode<64, true>(params, heads_per_cta, num_splits, parts, stream)
        : launch_decode<64, false>(params, heads_per_cta, num_splits, parts, stream);
  else
    fp8 ? launch_decode<128, true>(params, heads_per_cta, num_splits, parts, stream)
        : launch_decode<128, false>(params, heads_per_cta, num_splits, parts, stream);
}

}  // namespace iol::backend::cuda::kernels
