// Decode GEMV (gemv.cuh). Floor: the weight bytes over DRAM bandwidth; everything else is hidden
// behind that stream or small next to it.
//
// A CTA of 8 warps covers a tile of output columns; the `splits` warps of one column each reduce a
// slice of k and meet in shared memory (split-K inside the CTA, so the sum order is fixed). Splits
// exist to spread the columns evenly: the grid is what fits on the GPU at once, and 6144 QKV
// columns over the 4224 warps that fit left half the warps idle for half the kernel; split in two,
// its 1536 tiles of 4 columns make 2.9 waves of the 528 CTAs that fit (choose_splits). Each warp's lanes stream its weight
// rows with 16-byte loads, kUnroll loads per lane in flight (Little's law asks ~20 KB per SM at
// 3 TB/s), multiply by the input rows in fp32 and reduce with shuffles.
//
// The input rows: with an RMSNorm in front, every CTA stages the normalised rows in shared memory
// (it recomputes the norm of the few rows it needs: an L2 read of m·k·2 bytes per CTA instead of a
// kernel launch and a DRAM round trip). Without one, at m <= 2, warps read x straight through L1
// (no prologue before the weight stream starts; the staging of a 28 KB row of the down projection
// cost every CTA a chain of L2 round trips before its first weight load); larger m stage as well.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <map>

#include "iol/backend/cuda/cuda_check.hpp"
#include "iol/backend/cuda/kernels/gemv.cuh"
#include "iol/backend/cuda/kernels/quant_codec.cuh"
#include "iol/core/error.hpp"

namespace iol::backend::cuda::kernels {
namespace {

using bf16 = __nv_bfloat16;

constexpr int kWarps = 8;
constexpr int kThreads = kWarps * 32;
constexpr int kVec = 8;  // bf16 per 16-byte load

union Bf16x8 {
  uint4 raw;
  __nv_bfloat162 pair[4];
};

__device__ __forceinline__ float dot8(uint4 w, uint4 x, float acc) {
  Bf16x8 a, b;
  a.raw = w;
  b.raw = x;
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    const float2 wf = __bfloat1622float2(a.pair[i]), xf = __bfloat1622float2(b.pair[i]);
    acc = fmaf(wf.x, xf.x, acc);
    acc = fmaf(wf.y, xf.y, acc);
  }
  return acc;
}

// acc += Σ decode(w[i]) · x[i] over the 16 8-bit weights of one 16-byte load and the 16 bf16
// inputs of two.
template <GemvWeights W>
__device__ __forceinline__ float dot16(uint4 w, uint4 x0, uint4 x1, float acc) {
  const uint32_t words[4] = {w.x, w.y, w.z, w.w};
  Bf16x8 xs[2];
  xs[0].raw = x0;
  xs[1].raw = x1;
#pragma unroll
  for (int q = 0; q < 4; ++q) {
    float d[4];
    if constexpr (W == GemvWeights::Fp8E4M3) decode4_e4m3(words[q], d);
    else decode4_int8(words[q], d);
    const float2 a = __bfloat1622float2(xs[q / 2].pair[(q % 2) * 2]), b = __bfloat1622float2(xs[q / 2].pair[(q % 2) * 2 + 1]);
    acc = fmaf(d[0], a.x, acc);
    acc = fmaf(d[1], a.y, acc);
    acc = fmaf(d[2], b.x, acc);
    acc = fmaf(d[3], b.y, acc);
  }
  return acc;
}

template <GemvWeights W>
constexpr int elements_per_load() { return W == GemvWeights::Bf16 ? 8 : 16; }
template <GemvWeights W>
constexpr int element_bytes() { return W == GemvWeights::Bf16 ? 2 : 1; }

__device__ __forceinline__ float warp_sum(float v) {
#pragma unroll
  for (int offset = 16; offset > 0; offset >>= 1) v += __shfl_xor_sync(0xffffffffu, v, offset);
  return v;
}

__device__ __forceinline__ float round_bf16(float v) { return __bfloat162float(__float2bfloat16_rn(v)); }

// silu(g) * up in fp32, as kernels::silu_mul (torch's silu: g / (1 + e^-g)).
__device__ __forceinline__ float silu_times(float gate, float up) { return gate / (1.0f + expf(-gate)) * up; }

// Stages x [M][k] into xs, normalised as transformers' LlamaRMSNorm in bf16 when kNorm: fp32 sum of
// squares, x * rsqrt(mean + eps) rounded to bf16, times the weight, rounded again. One pass over
// global memory: the raw rows are copied while their squares are summed, then normalised in place.
template <int M, bool kNorm>
__device__ __forceinline__ void stage_rows(const GemvParams& p, bf16* xs) {
  const int vecs = p.k / kVec;
  const uint4* src = reinterpret_cast<const uint4*>(p.x);
  uint4* dst = reinterpret_cast<uint4*>(xs);
  if constexpr (!kNorm) {
    for (int i = threadIdx.x; i < M * vecs; i += kThreads) dst[i] = src[i];
  } else {
    __shared__ float partial[M][kWarps];
#pragma unroll
    for (int m = 0; m < M; ++m) {
      float squares = 0.0f;
      for (int i = threadIdx.x; i < vecs; i += kThreads) {
        Bf16x8 v;
        v.raw = src[m * vecs + i];
        dst[m * vecs + i] = v.raw;
#pragma unroll
        for (int e = 0; e < 4; ++e) {
          const float2 f = __bfloat1622float2(v.pair[e]);
          squares = fmaf(f.x, f.x, fmaf(f.y, f.y, squares));
        }
      }
      squares = warp_sum(squares);
      if (threadIdx.x % 32 == 0) partial[m][threadIdx.x / 32] = squares;
    }
    __syncthreads();
    const uint4* weight = reinterpret_cast<const uint4*>(p.norm_weight);
#pragma unroll
    for (int m = 0; m < M; ++m) {
      float total = 0.0f;
#pragma unroll
      for (int w = 0; w < kWarps; ++w) total += partial[m][w];
      const float inv_rms = rsqrtf(total / static_cast<float>(p.k) + p.norm_eps);
      for (int i = threadIdx.x; i < vecs; i += kThreads) {
        Bf16x8 v, g, y;
        v.raw = dst[m * vecs + i];  // this thread's own copy from the pass above
        g.raw = weight[i];
#pragma unroll
        for (int e = 0; e < 4; ++e) {
          const float2 xf = __bfloat1622float2(v.pair[e]);
          const float2 n = __bfloat1622float2(__floats2bfloat162_rn(xf.x * inv_rms, xf.y * inv_rms));
          const float2 gf = __bfloat1622float2(g.pair[e]);
          y.pair[e] = __floats2bfloat162_rn(gf.x * n.x, gf.y * n.y);
        }
        dst[m * vecs + i] = y.raw;
      }
    }
  }
  __syncthreads();
}

// FP8 W8A8: the staged rows quantized per token in place, as kernels::quantize_rows does (the
// largest magnitude, q = encode(x · qmax / amax)), each element replaced by decode(q) — exact in
// bf16 (E4M3 has 4 significant bits) — and the scales left in row_scales.
template <int M>
__device__ __forceinline__ void quantize_staged_rows(bf16* xs, int k, float* row_scales) {
  __shared__ float partial[M][kWarps];
  const int vecs = k / kVec;
  uint4* rows = reinterpret_cast<uint4*>(xs);
#pragma unroll
  for (int m = 0; m < M; ++m) {
    float amax = 0.0f;
    for (int i = threadIdx.x; i < vecs; i += kThreads) {
      Bf16x8 v;
      v.raw = rows[m * vecs + i];
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        const float2 f = __bfloat1622float2(v.pair[e]);
        amax = fmaxf(amax, fmaxf(fabsf(f.x), fabsf(f.y)));
      }
    }
#pragma unroll
    for (int offset = 16; offset > 0; offset >>= 1) amax = fmaxf(amax, __shfl_xor_sync(0xffffffffu, amax, offset));
    if (threadIdx.x % 32 == 0) partial[m][threadIdx.x / 32] = amax;
  }
  __syncthreads();
#pragma unroll
  for (int m = 0; m < M; ++m) {
    float amax = 0.0f;
#pragma unroll
    for (int w = 0; w < kWarps; ++w) amax = fmaxf(amax, partial[m][w]);
    const float inv = row_inverse_scale(amax, kFp8E4M3Max, true);
    if (threadIdx.x == 0) row_scales[m] = row_scale(amax, kFp8E4M3Max, true);
    for (int i = threadIdx.x; i < vecs; i += kThreads) {
      Bf16x8 v;
      v.raw = rows[m * vecs + i];  // this thread's own elements: no barrier needed before the write
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        const float2 f = __bfloat1622float2(v.pair[e]);
        v.pair[e] = __floats2bfloat162_rn(decode_e4m3(encode_e4m3(__fmul_rn(f.x, inv))),
                                          decode_e4m3(encode_e4m3(__fmul_rn(f.y, inv))));
      }
      rows[m * vecs + i] = v.raw;
    }
  }
  __syncthreads();
}

// acc[r][m] += W row r (rows[r]) · x row m over k in [begin, end), by one warp. x is the staged
// rows in shared memory (kStaged) or the input in global memory, read through L1.
template <GemvWeights W, int M, int R, bool kStaged>
__device__ __forceinline__ void warp_dot_rows(const unsigned char* const (&rows)[R], const bf16* x, int k, int begin,
                                              int end, float (&acc)[R][M]) {
  constexpr int kUnroll = 8 / R;  // 16-byte weight loads in flight per lane
  constexpr int kElems = elements_per_load<W>(), kBytes = element_bytes<W>();
  const int lane = threadIdx.x % 32;
  for (int base = begin + lane * kElems; base < end; base += 32 * kElems * kUnroll) {
    uint4 w[R][kUnroll];
#pragma unroll
    for (int u = 0; u < kUnroll; ++u) {
      const int idx = base + u * 32 * kElems;
#pragma unroll
      for (int r = 0; r < R; ++r)
        w[r][u] = idx < end ? __ldcs(reinterpret_cast<const uint4*>(rows[r] + static_cast<int64_t>(idx) * kBytes))
                            : make_uint4(0, 0, 0, 0);
    }
#pragma unroll
    for (int u = 0; u < kUnroll; ++u) {
      const int idx = base + u * 32 * kElems;
      if (idx >= end) break;
#pragma unroll
      for (int m = 0; m < M; ++m) {
        const uint4* at = reinterpret_cast<const uint4*>(x + m * k + idx);
        if constexpr (W == GemvWeights::Bf16) {
          const uint4 xv = kStaged ? *at : __ldg(at);
#pragma unroll
          for (int r = 0; r < R; ++r) acc[r][m] = dot8(w[r][u], xv, acc[r][m]);
        } else {
          const uint4 x0 = kStaged ? at[0] : __ldg(at), x1 = kStaged ? at[1] : __ldg(at + 1);
#pragma unroll
          for (int r = 0; r < R; ++r) acc[r][m] = dot16<W>(w[r][u], x0, x1, acc[r][m]);
        }
      }
    }
  }
#pragma unroll
  for (int r = 0; r < R; ++r)
#pragma unroll
    for (int m = 0; m < M; ++m) acc[r][m] = warp_sum(acc[r][m]);
}

// Programmatic dependent launch (Hopper): the GEMV lets the next kernel's CTAs be scheduled as
// soon as its own are all running, and itself may start before the kernel in front of it has
// finished. Everything before grid_dependency_wait() reads only the weights, which nothing
// writes; after it, the previous kernel's outputs are complete and visible.
__device__ __forceinline__ void allow_dependent_launch() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("griddepcontrol.launch_dependents;");
#endif
}
__device__ __forceinline__ void grid_dependency_wait() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("griddepcontrol.wait;" ::: "memory");
#endif
}

// Pulls the first kUnroll 16-byte chunks per lane of this warp's first weight row(s) into L2
// while the previous kernel drains (weights only: safe before grid_dependency_wait).
template <GemvWeights W, int R>
__device__ __forceinline__ void prefetch_first_rows(const GemvParams& p, int j, int begin, int end) {
  if (j >= p.n) return;
  const int lane = threadIdx.x % 32;
  constexpr int kUnroll = 8 / R;
  constexpr int kElems = elements_per_load<W>(), kBytes = element_bytes<W>();
#pragma unroll
  for (int r = 0; r < R; ++r) {
    const unsigned char* row = static_cast<const unsigned char*>(p.w) + (static_cast<int64_t>(r) * p.n + j) * p.k * kBytes;
#pragma unroll
    for (int u = 0; u < kUnroll; ++u) {
      const int idx = begin + lane * kElems + u * 32 * kElems;
      if (idx < end) asm volatile("prefetch.global.L2 [%0];" ::"l"(row + static_cast<int64_t>(idx) * kBytes));
    }
  }
}

template <GemvWeights W, bool kActQuant, int M, GemvEpilogue kEpilogue, bool kNorm, bool kStaged>
__global__ void __launch_bounds__(kThreads) gemv_kernel(const GemvParams p, int splits, bool early_trigger) {
  extern __shared__ __align__(16) unsigned char smem[];
  constexpr int R = kEpilogue == GemvEpilogue::SwiGlu ? 2 : 1;  // weight rows per output column
  constexpr int kElems = elements_per_load<W>(), kBytes = element_bytes<W>();
  static_assert(!kActQuant || (W == GemvWeights::Fp8E4M3 && kStaged), "activation quantization works on staged rows");
  __shared__ float slice_sums[kWarps][R][M];
  __shared__ float row_scales[M];
  const bf16* x = p.x;
  if constexpr (kStaged) x = reinterpret_cast<const bf16*>(smem);

  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int columns_per_tile = kWarps / splits, column = warp / splits, slice = warp % splits;
  const int vecs = p.k / kElems, slice_vecs = (vecs + splits - 1) / splits;
  const int begin = min(vecs, slice * slice_vecs) * kElems, end = min(vecs, (slice + 1) * slice_vecs) * kElems;
  const int tiles = (p.n + columns_per_tile - 1) / columns_per_tile;

  if (early_trigger) allow_dependent_launch();
  prefetch_first_rows<W, R>(p, blockIdx.x * columns_per_tile + column, begin, end);
  grid_dependency_wait();
  if constexpr (kStaged) stage_rows<M, kNorm>(p, reinterpret_cast<bf16*>(smem));
  if constexpr (kActQuant) quantize_staged_rows<M>(reinterpret_cast<bf16*>(smem), p.k, row_scales);

  // The tile loop is uniform over the CTA (the __syncthreads below).
  for (int tile = blockIdx.x; tile < tiles; tile += gridDim.x) {
    const int j = tile * columns_per_tile + column;
    float acc[R][M];
#pragma unroll
    for (int r = 0; r < R; ++r)
#pragma unroll
      for (int m = 0; m < M; ++m) acc[r][m] = 0.0f;
    if (j < p.n) {
      const unsigned char* rows[R];
#pragma unroll
      for (int r = 0; r < R; ++r)
        rows[r] = static_cast<const unsigned char*>(p.w) + (static_cast<int64_t>(r) * p.n + j) * p.k * kBytes;
      warp_dot_rows<W, M, R, kStaged>(rows, x, p.k, begin, end, acc);
    }
    if (splits > 1) {
      // Slice 0 adds the other slices' sums in slice order: the same sum for every launch.
      if (lane == 0)
#pragma unroll
        for (int r = 0; r < R; ++r)
#pragma unroll
          for (int m = 0; m < M; ++m) slice_sums[warp][r][m] = acc[r][m];
      __syncthreads();
      if (slice == 0)
        for (int s = 1; s < splits; ++s)
#pragma unroll
          for (int r = 0; r < R; ++r)
#pragma unroll
            for (int m = 0; m < M; ++m) acc[r][m] += slice_sums[warp + s][r][m];
      __syncthreads();
    }
    if (slice != 0 || j >= p.n) continue;

    // Lane m writes row m's output (every lane holds every sum after the butterfly).
#pragma unroll
    for (int m = 0; m < M; ++m) {
      if (lane != m) continue;
      const int64_t o = static_cast<int64_t>(m) * p.n + j;
      // 8-bit weights: the sums scaled back, (Σ · s_x) · s_w, as the CPU reference does.
      const float s_x = kActQuant ? row_scales[m] : 1.0f;
      float y = acc[0][m];
      if constexpr (W != GemvWeights::Bf16) y = y * s_x * p.weight_scale[j];
      if (p.bias) y += __bfloat162float(p.bias[j]);
      if constexpr (kEpilogue == GemvEpilogue::StoreBf16) {
        static_cast<bf16*>(p.out)[o] = __float2bfloat16_rn(y);
      } else if constexpr (kEpilogue == GemvEpilogue::StoreF32) {
        if constexpr (W == GemvWeights::Bf16) static_cast<float*>(p.out)[o] = y;
      } else if constexpr (kEpilogue == GemvEpilogue::AddResidual) {
        bf16* residual = static_cast<bf16*>(p.out);
        residual[o] = __float2bfloat16_rn(__bfloat162float(residual[o]) + round_bf16(y));
      } else {
        float up = acc[R - 1][m];
        if constexpr (W != GemvWeights::Bf16) up = up * s_x * p.weight_scale[p.n + j];
        if (p.bias) up += __bfloat162float(p.bias[p.n + j]);
        static_cast<bf16*>(p.out)[o] = __float2bfloat16_rn(silu_times(round_bf16(y), round_bf16(up)));
      }
    }
  }
}

bool is_aligned_16(const void* p) { return reinterpret_cast<uintptr_t>(p) % 16 == 0; }

int num_sms() {
  static const int sms = [] {
    int device = 0, count = 0;
    IOL_CUDA_CHECK(cudaGetDevice(&device));
    IOL_CUDA_CHECK(cudaDeviceGetAttribute(&count, cudaDevAttrMultiProcessorCount, device));
    return count;
  }();
  return sms;
}

// Programmatic dependent launch needs compute capability 9.0 (the griddepcontrol instructions).
// IOL_GEMV_PDL selects it for experiments (docs/performance.md): 0 off, 1 launched early but
// dependents released only at exit, 2 dependents released as soon as every CTA runs. Defaults by
// weight type, from the H200's batch-1 TPOT: bf16 off (4.57 ms off, 4.55 with 1, 4.70 with 2:
// waiting CTAs take the slots); 8-bit 2 (FP8 3.43 ms off, 3.44 with 1, 3.31 with 2: the short
// 8-bit streams gain from overlapping the next GEMV's launch and prologue).
int programmatic_launch_mode(bool eight_bit) {
  static const int major = [] {
    int device = 0, value = 0;
    IOL_CUDA_CHECK(cudaGetDevice(&device));
    IOL_CUDA_CHECK(cudaDeviceGetAttribute(&value, cudaDevAttrComputeCapabilityMajor, device));
    return value;
  }();
  static const int forced = [] {
    const char* env = std::getenv("IOL_GEMV_PDL");
    if (env == nullptr || *env == 0) return -1;
    const int value = std::atoi(env);
    return value >= 0 && value <= 2 ? value : -1;
  }();
  if (major < 9) return 0;
  if (forced >= 0) return forced;
  return eight_bit ? 2 : 0;
}

// Experiment knobs, read once (docs/performance.md): IOL_GEMV_SPLITS=1|2|4|8 forces the k-splits
// where the caller left them to the shape; IOL_GEMV_STAGE=1 stages x in shared memory always.
int env_int(const char* name, int fallback) {
  const char* env = std::getenv(name);
  return env == nullptr || *env == 0 ? fallback : std::atoi(env);
}
int forced_splits() {
  static const int splits = [] {
    const int v = env_int("IOL_GEMV_SPLITS", 0);
    return v == 1 || v == 2 || v == 4 || v == 8 ? v : 0;
  }();
  return splits;
}
bool always_stage() {
  static const bool stage = env_int("IOL_GEMV_STAGE", 0) == 1;
  return stage;
}

// The k-splits that spread n columns most evenly over `slots` resident CTAs: a tile of 8 / splits
// columns per CTA, ceil(tiles / slots) waves of which the last may be partial; the CTAs of the
// last wave finish while the others idle, so the useful fraction is (tiles / slots) / waves. More
// splits only where they gain 2% (each slice is then shorter, with fewer loads in flight), and
// never below 1024 elements per slice (four 16-byte loads per lane: under ncu the LM head at 8
// splits of 512 elements ran at 0.54 of the read ceiling against 0.94 unsplit).
int choose_splits(int n, int k, int64_t slots, int elements_per_load) {
  int best = 1;
  double best_fraction = 0.0;
  for (int splits : {1, 2, 4, 8}) {
    if (splits > 1 && k / splits < 4 * 32 * elements_per_load) break;
    const int64_t tiles = (int64_t{n} + kWarps / splits - 1) / (kWarps / splits);
    const double waves = static_cast<double>(tiles) / static_cast<double>(slots);
    const double fraction = waves / std::ceil(waves);
    if (fraction > best_fraction + 0.02) best = splits, best_fraction = fraction;
  }
  return best;
}

template <GemvWeights W, bool kActQuant, int M, GemvEpilogue kEpilogue, bool kNorm, bool kStaged>
void launch(const GemvParams& p, cudaStream_t stream) {
  auto kernel = gemv_kernel<W, kActQuant, M, kEpilogue, kNorm, kStaged>;
  constexpr size_t kMaxSmem = kStaged ? M * kMaxGemvK * sizeof(bf16) : 0;
  static const bool configured = [kernel] {
    if (kMaxSmem > 0)
      IOL_CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(kMaxSmem)));
    return true;
  }();
  (void)configured;
  const size_t smem = kStaged ? static_cast<size_t>(M) * p.k * sizeof(bf16) : 0;
  // CTAs resident per SM, by k (the staged rows' shared memory): queried once per shape, so a
  // launch inside a graph capture makes no query (the backend runs each shape once before).
  static std::map<int, int> per_sm_by_k;
  auto found = per_sm_by_k.find(p.k);
  if (found == per_sm_by_k.end()) {
    int per_sm = 0;
    IOL_CUDA_CHECK(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&per_sm, kernel, kThreads, smem));
    found = per_sm_by_k.emplace(p.k, std::max(per_sm, 1)).first;
  }
  // All the CTAs that fit, each looping over tiles. (A smaller grid giving every warp the same
  // column count measured 2.5% slower: fewer loads in flight, CTAs uneven per SM.)
  const int64_t slots = int64_t{found->second} * num_sms();
  const int splits = p.k_splits > 0 ? p.k_splits : forced_splits() > 0 ? forced_splits() : choose_splits(p.n, p.k, slots, elements_per_load<W>());
  const int64_t tiles = (int64_t{p.n} + kWarps / splits - 1) / (kWarps / splits);
  const int grid = static_cast<int>(std::max<int64_t>(1, std::min<int64_t>(tiles, slots)));
  cudaLaunchConfig_t config{};
  config.gridDim = dim3(static_cast<unsigned>(grid));
  config.blockDim = dim3(kThreads);
  config.dynamicSmemBytes = smem;
  config.stream = stream;
  cudaLaunchAttribute attribute{};
  attribute.id = cudaLaunchAttributeProgrammaticStreamSerialization;
  attribute.val.programmaticStreamSerializationAllowed = 1;
  const int pdl = programmatic_launch_mode(W != GemvWeights::Bf16);
  if (pdl > 0) {
    config.attrs = &attribute;
    config.numAttrs = 1;
  }
  IOL_CUDA_CHECK(cudaLaunchKernelEx(&config, kernel, p, splits, pdl == 2));
  IOL_CUDA_LAUNCH_CHECK();
}

// x is staged in shared memory when it must be normalised or quantized, or when m > 2 rows read
// through L1 per weight load would crowd it (see the top of this file).
template <GemvWeights W, bool kActQuant, int M, GemvEpilogue kEpilogue>
void launch_for_input(const GemvParams& p, cudaStream_t stream) {
  if (p.norm_weight != nullptr) return launch<W, kActQuant, M, kEpilogue, true, true>(p, stream);
  if constexpr (kActQuant || M > 2) {
    return launch<W, kActQuant, M, kEpilogue, false, true>(p, stream);
  } else {
    if (always_stage()) return launch<W, kActQuant, M, kEpilogue, false, true>(p, stream);
    return launch<W, kActQuant, M, kEpilogue, false, false>(p, stream);
  }
}

template <GemvWeights W, bool kActQuant, int M>
void dispatch_epilogue(const GemvParams& p, cudaStream_t stream) {
  switch (p.epilogue) {
    case GemvEpilogue::StoreBf16: return launch_for_input<W, kActQuant, M, GemvEpilogue::StoreBf16>(p, stream);
    case GemvEpilogue::StoreF32:
      if constexpr (W == GemvWeights::Bf16) return launch_for_input<W, kActQuant, M, GemvEpilogue::StoreF32>(p, stream);
      else return;  // rejected by gemv_supports
    case GemvEpilogue::AddResidual: return launch_for_input<W, kActQuant, M, GemvEpilogue::AddResidual>(p, stream);
    case GemvEpilogue::SwiGlu: return launch_for_input<W, kActQuant, M, GemvEpilogue::SwiGlu>(p, stream);
  }
}

template <int M>
void dispatch_weights(const GemvParams& p, cudaStream_t stream) {
  switch (p.weights) {
    case GemvWeights::Bf16: return dispatch_epilogue<GemvWeights::Bf16, false, M>(p, stream);
    case GemvWeights::Fp8E4M3:
      if (p.quantize_activations) return dispatch_epilogue<GemvWeights::Fp8E4M3, true, M>(p, stream);
      return dispatch_epilogue<GemvWeights::Fp8E4M3, false, M>(p, stream);
    case GemvWeights::Int8: return dispatch_epilogue<GemvWeights::Int8, false, M>(p, stream);
  }
}

}  // namespace

bool gemv_supports(const GemvParams& p) {
  const bool splits_ok = p.k_splits == 0 || p.k_splits == 1 || p.k_splits == 2 || p.k_splits == 4 || p.k_splits == 8;
  const bool eight_bit = p.weights != GemvWeights::Bf16;
  const int granule = eight_bit ? 16 : kVec;
  const bool quant_ok = !eight_bit ? !p.quantize_activations
                                   : p.weight_scale != nullptr && p.epilogue != GemvEpilogue::StoreF32 &&
                                         (!p.quantize_activations || p.weights == GemvWeights::Fp8E4M3);
  return splits_ok && quant_ok && p.m >= 1 && p.m <= kMaxGemvRows && p.n >= 1 && p.k >= granule && p.k % granule == 0 &&
         p.k <= kMaxGemvK &&
         is_aligned_16(p.x) && is_aligned_16(p.w) && (p.norm_weight == nullptr || is_aligned_16(p.norm_weight)) &&
         p.out != nullptr;
}

void gemv(const GemvParams& p, cudaStream_t stream) {
  if (!gemv_supports(p))
    fail("gemv: unsupported shape m={} n={} k={} k_splits={} (m in [1, {}], k a multiple of 8, 16 for 8-bit weights, "
         "up to {}, k_splits 0, 1, 2, 4 or 8, 16-byte aligned rows; 8-bit weights need their scales and no fp32 output; "
         "activation quantization only with fp8 weights)",
         p.m, p.n, p.k, p.k_splits, kMaxGemvRows, kMaxGemvK);
  switch (p.m) {
    case 1: return dispatch_weights<1>(p, stream);
    case 2: return dispatch_weights<2>(p, stream);
    case 3: return dispatch_weights<3>(p, stream);
    default: return dispatch_weights<4>(p, stream);
  }
}

}  // namespace iol::backend::cuda::kernels
