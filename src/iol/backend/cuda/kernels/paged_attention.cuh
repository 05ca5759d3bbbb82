// Paged attention over the KV cache (layout docs/kv-cache.md: per layer [num_blocks][block_size]
// [num_kv_heads][head_dim], bf16 or E4M3 codes: kv_cache_format.cuh), causal, GQA, optional
// sliding window, head_dim 64 or 128. An FP8 cache is widened to bf16 tiles in shared memory
// (decode(q) · scale, rounded to bf16), then the same tensor-core code runs as for bf16.
// The new tokens' K/V are already in the cache (rope_kv_write runs first), so both kernels read
// every key — earlier context and this step's — through the block tables.
#pragma once
#include <cstddef>
#include <cstdint>

#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include "iol/backend/cuda/kernels/kv_cache_format.cuh"

namespace iol::backend::cuda::kernels {

struct PagedAttentionParams {
  const __nv_bfloat16* q = nullptr;  // [num_tokens][q_row_stride], head h at column h * head_dim
  int64_t q_row_stride = 0;          // elements between tokens (the fused qkv buffer's width)
  const void* k_cache = nullptr;  // this layer's K (kv_format elements)
  const void* v_cache = nullptr;  // this layer's V
  KvCacheFormat kv_format = KvCacheFormat::Bf16;
  float k_scale = 1.0f, v_scale = 1.0f;  // FP8: the per-tensor scales (kv_cache_format.cuh)
  const int32_t* query_start_loc = nullptr;  // [num_seqs + 1]
  const int32_t* context_lens = nullptr;     // [num_seqs]: tokens in the cache incl. this step's
  const int32_t* block_tables = nullptr;     // [num_seqs][max_blocks_per_seq]
  int max_blocks_per_seq = 0;
  // The sequences this launch handles: seq_indices[0..num_selected) index the arrays above.
  const int32_t* seq_indices = nullptr;
  int num_selected = 0;
  int max_query_len = 0;  // longest query among the selected sequences (prefill grid size)
  int max_context_len = 0;  // longest context among the selected sequences (decode split size)
  int num_heads = 0, num_kv_heads = 0, head_dim = 0, block_size = 0;
  int sliding_window = 0;  // 0 = full; else token at position p sees [p - window + 1, p]
  float scale = 0.0f;      // softmax scale, 1/sqrt(head_dim)
  __nv_bfloat16* out = nullptr;  // [num_tokens][num_heads * head_dim]
};

// Any query length (prefill, chunked prefill, decode): the token at position p of a sequence with
// context length L and query length n is at p = L - n + i for its i-th query row.
// FlashAttention-2 style (online softmax, tensor cores).
void paged_attention_prefill(const PagedAttentionParams& params, cudaStream_t stream);

// Query length 1 for every selected sequence. Split-KV flash-decoding: the context is cut into
// up to max_splits parts, and the last CTA of a sequence's parts to finish merges them; the query
// heads of a GQA group share K/V loads.
// workspace: paged_attention_decode_workspace_bytes(max_num_seqs, ...) bytes, reserved by the
// caller for up to max_num_seqs selected rows and cleared once by
// paged_attention_decode_workspace_init (its arrival counters must start at zero; every call leaves
// them at zero, so CUDA graph replays need nothing more).
void paged_attention_decode(const PagedAttentionParams& params, int max_num_seqs, int max_splits, void* workspace,
                            cudaStream_t stream);
size_t paged_attention_decode_workspace_bytes(int max_num_seqs, int num_heads, int head_dim, int max_splits);
void paged_attention_decode_workspace_init(void* workspace, int max_num_seqs, int num_heads);  // blocking

}  // namespace iol::backend::cuda::kernels
