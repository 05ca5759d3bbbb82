// Paged attention for any query length (prefill, chunked prefill, mixed batches): FlashAttention-2
// (Dao 2023, "FlashAttention-2: Faster Attention with Better Parallelism and Work Partitioning")
// with the K/V tiles gathered through the block tables into shared memory.
//
// One CTA of 8 warps owns a tile of 128 query rows of one sequence and loops over the keys in
// tiles of 64: S = Q·K^T and O += P·V on tensor cores (mma.sync m16n8k16, bf16 in, fp32
// accumulate; operands from shared memory through ldmatrix), softmax online (running max and sum
// per row, in the log2 domain), P rounded to bf16 for P·V as FA2 does. Each warp owns 16 rows, so
// the softmax statistics never leave the warp.
//
// GQA packing: a tile's 128 rows are (token, head) pairs of `heads_per_tile` heads of the same KV
// group (row r = token r / heads_per_tile, head r % heads_per_tile), so a K/V tile loaded once
// serves every head of the group. For long prompts this changes nothing (the work per CTA is the
// same), but for short queries (chunks, speculative tokens, decode rows) it fills the tile's rows with
// useful work instead of 1..n tokens of one head.
//
// Pipelining as in FA2: V_j is fetched (cp.async) while S_j = Q·K_j^T runs, K_{j+1} while
// O += P_j·V_j runs. Tiles above the diagonal or below the sliding window are never visited; the
// mask is applied only to tiles that cross a row's causal or window boundary.
//
// An FP8 cache (kFp8): the K/V tiles travel as E4M3 codes by cp.async into a staging pair (16
// codes per chunk, plain [key][D] bytes), issued where the bf16 path issues its tiles; after each
// wait, every thread widens the chunks it loaded into the same swizzled bf16 tiles
// (kv_cache_format.cuh) before the barrier that publishes them. No barrier is added: K is widened
// after the barrier that ends the previous S = Q·K^T, V after the one that ends the previous P·V.
#include <cstdint>

#include <cuda_bf16.h>

#include "iol/backend/cuda/cuda_check.hpp"
#include "iol/backend/cuda/kernels/paged_attention.cuh"
#include "iol/backend/cuda/kernels/quant_codec.cuh"
#include "iol/core/error.hpp"

namespace iol::backend::cuda::kernels {
namespace {

using bf16 = __nv_bfloat16;

// 8 warps x 16 rows: each K/V tile brought into shared memory serves 128 query rows. On an H100
// this ran the 2048-token, 32/8-head, d128 prompt in 224 us against 245 us with 4 warps x 16 rows
// (both at 8 warps per SM: the 227 registers per thread allow one 256-thread CTA).
constexpr int kWarps = 8;
constexpr int kThreads = kWarps * 32;
constexpr int kTileRows = kWarps * 16;  // query rows per CTA: one m16 MMA row block per warp
constexpr int kTileKeys = 64;           // keys per K/V tile
// At most 16 heads share a tile, so a tile still holds >= 8 tokens (a coarser causal diagonal
// would waste more of the masked tile).
constexpr int kMaxHeadsPerTile = 16;
constexpr float kLog2e = 1.4426950408889634f;

// Shared-memory tiles are [rows][head_dim] bf16 with the 16-byte chunks of a row XOR-swizzled by
// (row % 8): the 8 row addresses of one ldmatrix (and the 8 chunks of one row a cp.async wave
// writes) then fall into 8 different bank groups, without padding.
template <int D>
__device__ __forceinline__ int swizzle(int row, int chunk) {
  return row * D + ((chunk ^ (row & 7)) << 3);
}

__device__ __forceinline__ uint32_t smem_address(const void* pointer) {
  return static_cast<uint32_t>(__cvta_generic_to_shared(pointer));
}

// 16-byte global → shared copy that bypasses L1; with valid == false it writes 16 zero bytes (the
// source is not read), so rows past the context or past the query are zeros, never garbage.
__device__ __forceinline__ void cp_async_16(uint32_t dst, const void* src, bool valid) {
  const int src_bytes = valid ? 16 : 0;
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(dst), "l"(src), "r"(src_bytes)
               : "memory");
}
__device__ __forceinline__ void cp_async_commit() { asm volatile("cp.async.commit_group;\n" ::: "memory"); }
__device__ __forceinline__ void cp_async_wait_all() { asm volatile("cp.async.wait_group 0;\n" ::: "memory"); }

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

// d += a·b, a 16x16 (row), b 16x8 (col), bf16 → fp32 (PTX ISA, "mma.m16n8k16" fragment layouts).
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

// 2^x; ex2.approx of -inf is +0, which is what masked scores need.
__device__ __forceinline__ float fast_exp2(float x) {
  float y;
  asm("ex2.approx.ftz.f32 %0, %1;\n" : "=f"(y) : "f"(x));
  return y;
}

template <int D, bool kFp8>
__global__ void __launch_bounds__(kThreads)
    paged_attention_prefill_kernel(const PagedAttentionParams p, int heads_per_tile_log2, float scale_log2) {
  constexpr int kChunksPerRow = D / 8;                     // 16-byte chunks in a head_dim row
  constexpr int kRowsPerWave = kThreads / kChunksPerRow;  // rows one cp.async wave covers
  constexpr int kQueryWaves = kTileRows / kRowsPerWave;
  constexpr int kWaves = kTileKeys / kRowsPerWave;  // per K or V tile

  extern __shared__ __align__(128) unsigned char smem[];
  bf16* s_q = reinterpret_cast<bf16*>(smem);
  bf16* s_k = s_q + kTileRows * D;
  bf16* s_v = s_k + kTileKeys * D;
  uint8_t* s_k_codes = reinterpret_cast<uint8_t*>(s_v + kTileKeys * D);  // FP8 staging
  uint8_t* s_v_codes = s_k_codes + kTileKeys * D;

  const int seq = p.seq_indices[blockIdx.z];
  const int q_start = p.query_start_loc[seq];
  const int query_len = p.query_start_loc[seq + 1] - q_start;
  const int context_len = p.context_lens[seq];
  const int tokens_per_tile = kTileRows >> heads_per_tile_log2;
  // Tiles are launched last-first: late tiles of a causal prompt have the most keys, so they start
  // in the first wave and the short ones fill in behind them.
  const int tile_token0 = (gridDim.x - 1 - blockIdx.x) * tokens_per_tile;
  if (tile_token0 >= query_len) return;
  const int tile_token_last = min(tile_token0 + tokens_per_tile, query_len) - 1;
  const int first_pos = context_len - query_len + tile_token0;
  const int last_pos = context_len - query_len + tile_token_last;
  const int window = p.sliding_window;
  const int head0 = blockIdx.y << heads_per_tile_log2;
  const int head_mask = (1 << heads_per_tile_log2) - 1;
  const int kv_head = head0 / (p.num_heads / p.num_kv_heads);

  // Keys [key_lo, last_pos] are the union of the tile rows' ranges.
  const int key_lo = window > 0 ? max(0, first_pos - window + 1) : 0;
  const int tile_begin = key_lo / kTileKeys;
  const int tile_end = last_pos / kTileKeys;  // inclusive

  const int tid = threadIdx.x;
  const int warp = tid / 32;
  const int lane = tid % 32;
  const int load_chunk = tid % kChunksPerRow;
  const int load_row0 = tid / kChunksPerRow;

  // ---- Q tile (zeros for rows past the query) ----
  for (int w = 0; w < kQueryWaves; ++w) {
    const int row = load_row0 + w * kRowsPerWave;
    const int token = tile_token0 + (row >> heads_per_tile_log2);
    const int head = head0 + (row & head_mask);
    const bool valid = token < query_len;
    const bf16* src = valid ? p.q + static_cast<int64_t>(q_start + token) * p.q_row_stride + head * D + load_chunk * 8
                            : p.q;
    cp_async_16(smem_address(s_q + swizzle<D>(row, load_chunk)), src, valid);
  }

  // ---- K/V gather through the block table ----
  // The slot (block * block_size + offset) of each row this thread copies; -1 past the context.
  const int32_t* block_table = p.block_tables + static_cast<int64_t>(seq) * p.max_blocks_per_seq;
  const int block_size = p.block_size;
  const int64_t slot_stride = static_cast<int64_t>(p.num_kv_heads) * D;
  const bf16* k_base = static_cast<const bf16*>(p.k_cache) + kv_head * D + load_chunk * 8;
  const bf16* v_base = static_cast<const bf16*>(p.v_cache) + kv_head * D + load_chunk * 8;
  auto find_slots = [&](int tile, int (&slots)[kWaves]) {
#pragma unroll
    for (int w = 0; w < kWaves; ++w) {
      const int key = tile * kTileKeys + load_row0 + w * kRowsPerWave;
      slots[w] = key < context_len ? block_table[key / block_size] * block_size + key % block_size : -1;
    }
  };
  auto issue_bf16_tile = [&](const bf16* base, bf16* dst, const int (&slots)[kWaves]) {
#pragma unroll
    for (int w = 0; w < kWaves; ++w) {
      const int row = load_row0 + w * kRowsPerWave;
      const bf16* src = slots[w] >= 0 ? base + slots[w] * slot_stride : base;
      cp_async_16(smem_address(dst + swizzle<D>(row, load_chunk)), src, slots[w] >= 0);
    }
  };
  // FP8: tile `tile` of a cache into its staging buffer, 16 codes per chunk (zeros past the context).
  constexpr int kCodeChunksPerRow = D / 16;
  constexpr int kCodeRowsPerPass = kThreads / kCodeChunksPerRow;
  constexpr int kCodePasses = kTileKeys / kCodeRowsPerPass;
  const int code_chunk = tid % kCodeChunksPerRow, code_row0 = tid / kCodeChunksPerRow;
  auto issue_fp8_tile = [&](const void* cache, uint8_t* stage, int tile) {
    const uint8_t* base = static_cast<const uint8_t*>(cache) + kv_head * D + code_chunk * 16;
#pragma unroll
    for (int i = 0; i < kCodePasses; ++i) {
      const int row = code_row0 + i * kCodeRowsPerPass, key = tile * kTileKeys + row;
      const bool valid = key < context_len;
      const int64_t slot = valid ? int64_t{block_table[key / block_size]} * block_size + key % block_size : 0;
      cp_async_16(smem_address(stage + row * D + code_chunk * 16), base + slot * slot_stride, valid);
    }
  };
  // FP8: this thread's landed chunks of a staging buffer, widened into a bf16 tile.
  auto widen_fp8_stage = [&](const uint8_t* stage, float scale, bf16* dst) {
#pragma unroll
    for (int i = 0; i < kCodePasses; ++i) {
      const int row = code_row0 + i * kCodeRowsPerPass;
      widen_e4m3x16(*reinterpret_cast<const uint4*>(stage + row * D + code_chunk * 16), scale,
                    *reinterpret_cast<uint4*>(dst + swizzle<D>(row, 2 * code_chunk)),
                    *reinterpret_cast<uint4*>(dst + swizzle<D>(row, 2 * code_chunk + 1)));
    }
  };
  auto issue_tile = [&](bool values, bf16* dst, int tile, const int (&slots)[kWaves]) {
    if constexpr (kFp8) issue_fp8_tile(values ? p.v_cache : p.k_cache, values ? s_v_codes : s_k_codes, tile);
    else issue_bf16_tile(values ? v_base : k_base, dst, slots);
  };

  int slots[kWaves];
  find_slots(tile_begin, slots);
  issue_tile(false, s_k, tile_begin, slots);
  cp_async_commit();

  // Fragment coordinates (PTX mma.m16n8k16 layouts): this thread holds rows group and group + 8 of
  // its warp's 16, columns 2 * quad_lane and + 1 of every n8 tile.
  const int group = lane / 4;
  const int quad_lane = lane % 4;
  const int warp_row0 = warp * 16;
  int row_pos[2];  // absolute position of the thread's two rows (padding rows clamp to the last)
#pragma unroll
  for (int half = 0; half < 2; ++half) {
    const int token = min(tile_token0 + ((warp_row0 + group + 8 * half) >> heads_per_tile_log2), tile_token_last);
    row_pos[half] = context_len - query_len + token;
  }

  uint32_t q_frag[D / 16][4];
  float o_acc[D / 8][4];
#pragma unroll
  for (int n = 0; n < D / 8; ++n) o_acc[n][0] = o_acc[n][1] = o_acc[n][2] = o_acc[n][3] = 0.0f;
  float row_max[2] = {-INFINITY, -INFINITY};  // log2 domain: max of score * scale * log2(e)
  float row_sum[2] = {0.0f, 0.0f};            // this thread's share; summed over the quad at the end

  for (int tile = tile_begin; tile <= tile_end; ++tile) {
    cp_async_wait_all();
    if constexpr (kFp8) widen_fp8_stage(s_k_codes, p.k_scale, s_k);  // every warp is past S_{tile-1}
    __syncthreads();  // K_tile (and, first time, Q) visible; every warp is done with V_{tile-1}
    if (tile == tile_begin) {
#pragma unroll
      for (int kk = 0; kk < D / 16; ++kk)
        ldmatrix_x4(q_frag[kk], smem_address(s_q + swizzle<D>(warp_row0 + lane % 16, kk * 2 + lane / 16)));
    }
    issue_tile(true, s_v, tile, slots);
    cp_async_commit();
    int next_slots[kWaves];
    if (tile < tile_end) find_slots(tile + 1, next_slots);

    // ---- S = Q K^T (16 x 64 per warp) ----
    float s_acc[kTileKeys / 8][4];
#pragma unroll
    for (int n = 0; n < kTileKeys / 8; ++n) s_acc[n][0] = s_acc[n][1] = s_acc[n][2] = s_acc[n][3] = 0.0f;
#pragma unroll
    for (int kk = 0; kk < D / 16; ++kk) {
#pragma unroll
      for (int np = 0; np < kTileKeys / 16; ++np) {
        uint32_t b[4];  // b0,b1 of keys np*16..+7, then of keys np*16+8..+15
        ldmatrix_x4(b, smem_address(s_k + swizzle<D>(np * 16 + lane % 8 + (lane / 16) * 8, kk * 2 + (lane / 8) % 2)));
        mma_bf16_16816(s_acc[2 * np], q_frag[kk], b[0], b[1]);
        mma_bf16_16816(s_acc[2 * np + 1], q_frag[kk], b[2], b[3]);
      }
    }

    // ---- causal / sliding-window mask, only where a boundary crosses the tile ----
    const int key0 = tile * kTileKeys;
    const bool needs_mask = key0 + kTileKeys - 1 > first_pos || (window > 0 && key0 <= last_pos - window);
    if (needs_mask) {
#pragma unroll
      for (int n = 0; n < kTileKeys / 8; ++n) {
#pragma unroll
        for (int e = 0; e < 4; ++e) {
          const int key = key0 + n * 8 + 2 * quad_lane + (e & 1);
          const int pos = row_pos[e / 2];
          if (key > pos || (window > 0 && key <= pos - window)) s_acc[n][e] = -INFINITY;
        }
      }
    }

    // ---- online softmax (FA2 Algorithm 1, lines 8-10) ----
#pragma unroll
    for (int half = 0; half < 2; ++half) {
      float tile_max = -INFINITY;
#pragma unroll
      for (int n = 0; n < kTileKeys / 8; ++n) tile_max = fmaxf(tile_max, fmaxf(s_acc[n][2 * half], s_acc[n][2 * half + 1]));
      tile_max = fmaxf(tile_max, __shfl_xor_sync(0xffffffffu, tile_max, 1));
      tile_max = fmaxf(tile_max, __shfl_xor_sync(0xffffffffu, tile_max, 2));
      const float new_max = fmaxf(row_max[half], tile_max * scale_log2);
      // A row with every key so far masked keeps max -inf; subtracting 0 instead keeps exp2 at 0
      // rather than NaN (-inf - -inf).
      const float base = new_max == -INFINITY ? 0.0f : new_max;
      const float correction = fast_exp2(row_max[half] - base);
      row_max[half] = new_max;
      float tile_sum = 0.0f;
#pragma unroll
      for (int n = 0; n < kTileKeys / 8; ++n) {
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

    cp_async_wait_all();
    if constexpr (kFp8) widen_fp8_stage(s_v_codes, p.v_scale, s_v);  // every warp is past P_{tile-1}·V
    __syncthreads();  // V_tile visible; every warp is done with K_tile
    if (tile < tile_end) {
      issue_tile(false, s_k, tile + 1, next_slots);
#pragma unroll
      for (int w = 0; w < kWaves; ++w) slots[w] = next_slots[w];
    }
    cp_async_commit();

    // ---- O += P V: the S accumulator layout is the A-fragment layout of P (FA2 §3.1) ----
#pragma unroll
    for (int kk = 0; kk < kTileKeys / 16; ++kk) {
      const uint32_t p_frag[4] = {pack_bf16x2(s_acc[2 * kk][0], s_acc[2 * kk][1]),
                                  pack_bf16x2(s_acc[2 * kk][2], s_acc[2 * kk][3]),
                                  pack_bf16x2(s_acc[2 * kk + 1][0], s_acc[2 * kk + 1][1]),
                                  pack_bf16x2(s_acc[2 * kk + 1][2], s_acc[2 * kk + 1][3])};
#pragma unroll
      for (int dp = 0; dp < D / 16; ++dp) {
        uint32_t b[4];  // b0,b1 of dims dp*16..+7, then of dims dp*16+8..+15
        ldmatrix_x4_trans(b, smem_address(s_v + swizzle<D>(kk * 16 + lane % 8 + ((lane / 8) % 2) * 8, dp * 2 + lane / 16)));
        mma_bf16_16816(o_acc[2 * dp], p_frag, b[0], b[1]);
        mma_bf16_16816(o_acc[2 * dp + 1], p_frag, b[2], b[3]);
      }
    }
  }

  // ---- O / l → bf16, staged through this warp's rows of s_q for 16-byte stores ----
  float inv_sum[2];
#pragma unroll
  for (int half = 0; half < 2; ++half) {
    float sum = row_sum[half];
    sum += __shfl_xor_sync(0xffffffffu, sum, 1);
    sum += __shfl_xor_sync(0xffffffffu, sum, 2);
    inv_sum[half] = sum > 0.0f ? 1.0f / sum : 0.0f;  // 0 only for padding rows, never stored
  }
#pragma unroll
  for (int n = 0; n < D / 8; ++n) {
#pragma unroll
    for (int half = 0; half < 2; ++half) {
      const int row = warp_row0 + group + 8 * half;
      const int offset = swizzle<D>(row, n) + 2 * quad_lane;
      *reinterpret_cast<uint32_t*>(s_q + offset) =
          pack_bf16x2(o_acc[n][2 * half] * inv_sum[half], o_acc[n][2 * half + 1] * inv_sum[half]);
    }
  }
  __syncwarp();
  const int64_t out_row_stride = static_cast<int64_t>(p.num_heads) * D;
  for (int index = lane; index < 16 * kChunksPerRow; index += 32) {
    const int row = warp_row0 + index / kChunksPerRow;
    const int chunk = index % kChunksPerRow;
    const int token = tile_token0 + (row >> heads_per_tile_log2);
    if (token >= query_len) continue;
    const int head = head0 + (row & head_mask);
    *reinterpret_cast<uint4*>(p.out + (q_start + token) * out_row_stride + head * D + chunk * 8) =
        *reinterpret_cast<const uint4*>(s_q + swizzle<D>(row, chunk));
  }
}

template <int D, bool kFp8>
void launch_prefill(const PagedAttentionParams& p, cudaStream_t stream) {
  constexpr size_t kSmemBytes =
      static_cast<size_t>(kTileRows + 2 * kTileKeys) * D * sizeof(bf16) + (kFp8 ? size_t{2} * kTileKeys * D : 0);
  if constexpr (kSmemBytes > 48 * 1024) {
    static const bool configured = [] {
      IOL_CUDA_CHECK(cudaFuncSetAttribute(paged_attention_prefill_kernel<D, kFp8>,
                                          cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(kSmemBytes)));
      return true;
    }();
    (void)configured;
  }
  const int group_size = p.num_heads / p.num_kv_heads;
  // The largest power of two that divides the group (and 64): the heads of one tile share a KV head.
  int heads_per_tile_log2 = 0;
  while ((1 << (heads_per_tile_log2 + 1)) <= kMaxHeadsPerTile && group_size % (1 << (heads_per_tile_log2 + 1)) == 0)
    ++heads_per_tile_log2;
  const int tokens_per_tile = kTileRows >> heads_per_tile_log2;
  const dim3 grid((p.max_query_len + tokens_per_tile - 1) / tokens_per_tile, p.num_heads >> heads_per_tile_log2,
                  p.num_selected);
  const float scale_log2 = p.scale * kLog2e;
  paged_attention_prefill_kernel<D, kFp8><<<grid, kThreads, kSmemBytes, stream>>>(p, heads_per_tile_log2, scale_log2);
  IOL_CUDA_LAUNCH_CHECK();
}

}  // namespace

void paged_attention_prefill(const PagedAttentionParams& params, cudaStream_t stream) {
  if (params.num_selected == 0 || params.max_query_len == 0) return;
  if (params.num_kv_heads <= 0 || params.num_heads % params.num_kv_heads != 0)
    fail("paged_attention_prefill: num_heads {} is not a multiple of num_kv_heads {}", params.num_heads,
         params.num_kv_heads);
  if (params.block_size < 1) fail("paged_attention_prefill: block_size {} must be >= 1", params.block_size);
  if (params.q_row_stride % 8 != 0)
    fail("paged_attention_prefill: q_row_stride {} must be a multiple of 8 elements (16-byte loads)",
         params.q_row_stride);
  if (params.num_selected > 65535)
    fail("paged_attention_prefill: {} sequences exceed the grid's 65535", params.num_selected);
  const bool fp8 = params.kv_format == KvCacheFormat::Fp8E4M3;
  switch (params.head_dim) {
    case 64: return fp8 ? launch_prefill<64, true>(params, stream) : launch_prefill<64, false>(params, stream);
    case 128: return fp8 ? launch_prefill<128, true>(params, stream) : launch_prefill<128, false>(params, stream);
    default:
      fail("paged_attention_prefill: head_dim {} is not supported (64 or 128); add a template instance",
           params.head_dim);
  }
}

}  // namespace iol::backend::cuda::kernels
