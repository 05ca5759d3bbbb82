// ForwardBatch: everything a backend needs for one model step over several sequences, each
// contributing one or more new tokens (prefill chunks and decodes mixed). See docs/kv-cache.md.
#pragma once
#include <cstdint>
#include <span>

namespace iol::backend {

struct ForwardBatch {
  // Per token (num_tokens): the new tokens of every sequence, sequence after sequence.
  std::span<const int32_t> token_ids;
  std::span<const int32_t> positions;     // absolute position of each token in its sequence
  std::span<const int64_t> slot_mapping;  // KV slot the token's K/V is written to: block * block_size + offset
  // Per sequence (num_seqs).
  std::span<const int32_t> query_start_loc;  // num_seqs + 1 prefix sums over the tokens above
  std::span<const int32_t> context_lens;     // tokens in the KV cache after this step
  std::span<const int32_t> block_tables;     // num_seqs × max_blocks_per_seq physical block ids (-1 = unused)
  int32_t max_blocks_per_seq = 0;
  // Rows of the token list whose logits are wanted (typically each sequence's last token).
  std::span<const int32_t> logits_indices;

  size_t num_tokens() const { return token_ids.size(); }
  size_t num_seqs() const { return context_lens.size(); }
};

}  // namespace iol::backend
