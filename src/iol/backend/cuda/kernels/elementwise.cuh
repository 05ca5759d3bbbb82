// Launchers of the small memory-bound kernels of a Llama step. Each lives in its own .cu
// (embedding.cu, rms_norm.cu, rope_kv_write.cu, silu_mul.cu, copy_blocks.cu) with a CPU
// reference test in tests/gpu/. Activations are bf16, row-major, rows = tokens; all take a stream
// and only launch (no synchronisation, no allocation), so they can be captured in CUDA graphs.
#pragma once
#include <cstdint>

#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include "iol/backend/cuda/kernels/kv_cache_format.cuh"

namespace iol::backend::cuda::kernels {

using bf16 = __nv_bfloat16;

// out[t] = table[token_ids[t]]; table [vocab][hidden].
void embedding(const bf16* table, const int32_t* token_ids, int num_tokens, int hidden, bf16* out,
               cudaStream_t stream);

// out[r] = rms_norm(x[rows ? rows[r] : r]) * weight, as transformers' LlamaRMSNorm in bf16:
// variance and normalisation in fp32, the normalised value rounded to bf16, then times weight.
void rms_norm(const bf16* x, const int32_t* rows, const bf16* weight, float eps, int num_rows, int hidden,
              bf16* out, cudaStream_t stream);

// residual[r] += delta[r] (rounded to bf16, as transformers adds in bf16), then
// out[r] = rms_norm(residual[r]) * weight. One pass over the rows.
void add_rms_norm(bf16* residual, const bf16* delta, const bf16* weight, float eps, int num_rows, int hidden,
                  bf16* out, cudaStream_t stream);

// qkv: [num_tokens][(num_heads + 2 * num_kv_heads) * head_dim] (q heads, then k heads, then v
// heads). Rotates q and k in place (rotate_half convention: pairs (i, i + head_dim/2), angle
// positions[t] * inv_freq[i] in fp32) and writes k and v of token t into slot slot_mapping[t] of
// the layer's caches ([num_blocks * block_size][num_kv_heads][head_dim], bf16). Slot -1: not
// written (padding rows of a CUDA graph).
// With format Fp8E4M3 the caches hold E4M3 codes (one byte per element, kv_cache_format.cuh):
// encode_e4m3(bf16(k) / k_scale), and the same for v.
void rope_kv_write(bf16* qkv, const int32_t* positions, const int64_t* slot_mapping, const float* inv_freq,
                   int num_tokens, int num_heads, int num_kv_heads, int head_dim, void* k_cache, void* v_cache,
                   KvCacheFormat format, float k_scale, float v_scale, cudaStream_t stream);
inline void rope_kv_write(bf16* qkv, const int32_t* positions, const int64_t* slot_mapping, const float* inv_freq,
                          int num_tokens, int num_heads, int num_kv_heads, int head_dim, bf16* k_cache, bf16* v_cache,
                          cudaStream_t stream) {
  rope_kv_write(qkv, positions, slot_mapping, inv_freq, num_tokens, num_heads, num_kv_heads, head_dim, k_cache, v_cache,
                KvCacheFormat::Bf16, 1.0f, 1.0f, stream);
}

// gate_up: [num_tokens][2 * inter] (gate columns, then up columns); out[t][i] = silu(gate) * up,
// computed in fp32 and rounded once.
void silu_mul(const bf16* gate_up, int num_tokens, int inter, bf16* out, cudaStream_t stream);

// For every layer, copies block pairs[2i] to block pairs[2i+1] in both caches. A cache is
// num_layers consecutive layers of layer_stride elements; a block is block_elements elements.
// copy_blocks_bytes: the same with strides in bytes (any KV element type).
void copy_blocks_bytes(void* k_cache, void* v_cache, const int32_t* pairs, int num_pairs, int num_layers,
                       int64_t layer_stride_bytes, int64_t block_bytes, cudaStream_t stream);
inline void copy_blocks(bf16* k_cache, bf16* v_cache, const int32_t* pairs, int num_pairs, int num_layers,
                        int64_t layer_stride, int64_t block_elements, cudaStream_t stream) {
  copy_blocks_bytes(k_cache, v_cache, pairs, num_pairs, num_layers, layer_stride * 2, block_elements * 2, stream);
}

// out[i] = bias[i % n] + x[i] for x [rows][n] (in place allowed), bf16.
void add_bias(bf16* x, const bf16* bias, int rows, int n, cudaStream_t stream);

}  // namespace iol::backend::cuda::kernels
