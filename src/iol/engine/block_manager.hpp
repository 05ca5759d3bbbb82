// BlockManager: the paged KV-cache pool. Reference-counted fixed-size blocks, per-sequence block
// tables, copy-on-write for shared partial blocks, and automatic prefix caching: every full block
// is keyed by a hash of its tokens chained with its parent's hash (as vLLM/nano-vllm); free blocks
// keep their contents and key until reused, and are evicted least-recently-freed first.
#pragma once
#include <cstdint>
#include <list>
#include <optional>
#include <span>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

namespace iol::engine {

struct BlockManagerStats {
  int64_t num_blocks = 0;
  int64_t num_used_blocks = 0;    // referenced by at least one sequence
  int64_t num_free_blocks = 0;    // allocatable (includes cached ones)
  int64_t num_cached_blocks = 0;  // free but still holding a reusable full block
  int64_t prefix_queried_tokens = 0;
  int64_t prefix_hit_tokens = 0;
  double prefix_hit_rate() const {
    return prefix_queried_tokens ? static_cast<double>(prefix_hit_tokens) / static_cast<double>(prefix_queried_tokens) : 0.0;
  }
};

class BlockManager {
 public:
  BlockManager(int64_t num_blocks, int64_t block_size, bool enable_prefix_caching);

  int64_t block_size() const { return block_size_; }
  int64_t num_blocks() const { return static_cast<int64_t>(blocks_.size()); }
  int64_t num_free_blocks() const { return static_cast<int64_t>(free_list_.size()); }
  bool prefix_caching() const { return enable_prefix_caching_; }

  // Longest cached prefix of `token_ids` in whole blocks, leaving at least one token to compute
  // (its logits are needed). Returns the blocks; does not take them.
  // block_hashes: the chained hashes of the sequence's full blocks (extend_block_hashes), kept
  // by the sequence so a prompt is hashed once, not at every admission attempt.
  std::vector<int32_t> find_cached_prefix(std::span<const int32_t> token_ids, std::span<const uint64_t> block_hashes) const;
  std::vector<int32_t> find_cached_prefix(std::span<const int32_t> token_ids) const;  // hashes computed here
  // Takes the cached prefix blocks for a sequence (reference counts +1) and records the query
  // for the hit rate; returns the number of cached tokens. `block_table` must be empty.
  int64_t take_cached_prefix(std::span<const int32_t> token_ids, std::span<const uint64_t> block_hashes,
                             std::vector<int32_t>& block_table);
  int64_t take_cached_prefix(std::span<const int32_t> token_ids, std::vector<int32_t>& block_table);

  // Blocks needed so that a table holding `table_size` blocks can hold `num_tokens` tokens.
  int64_t blocks_needed(int64_t table_size, int64_t num_tokens) const;
  bool can_allocate(int64_t num_new_blocks) const { return num_new_blocks <= num_free_blocks(); }
  // Grows `block_table` to hold `num_tokens` tokens; throws iol::Error if blocks run out
  // (callers check can_allocate first).
  void allocate(std::vector<int32_t>& block_table, int64_t num_tokens);

  // Registers the full blocks among the first `num_computed_tokens` of a sequence in the prefix
  // cache (their K/V is now computed).
  // Blocks [num_committed_blocks, full blocks computed) are registered and the counter advanced.
  void commit_full_blocks(std::span<const int32_t> token_ids, std::span<const uint64_t> block_hashes,
                          int64_t num_computed_tokens, std::span<const int32_t> block_table,
                          int64_t& num_committed_blocks);
  void commit_full_blocks(std::span<const int32_t> token_ids, int64_t num_computed_tokens,
                          std::span<const int32_t> block_table);  // every full block, hashes computed here

  // Appends the chained hash of every block of `token_ids` that is full and not yet in `hashes`.
  static void extend_block_hashes(std::span<const int32_t> token_ids, int64_t block_size, std::vector<uint64_t>& hashes);
  std::vector<uint64_t> block_hashes_of(std::span<const int32_t> token_ids) const;

  // Another sequence shares every block of `block_table` (parallel sampling): references +1.
  std::vector<int32_t> fork(std::span<const int32_t> block_table);
  // Before writing into logical block `index`: if it is shared, replace it by a private copy.
  // Returns {source, destination} for the backend to copy, or nullopt.
  std::optional<std::pair<int32_t, int32_t>> make_writable(std::vector<int32_t>& block_table, int64_t index);

  // Drops the table's references (last block first, so a prefix's tail is evicted before its head).
  void free(std::vector<int32_t>& block_table);
  // Drops the blocks past those that hold `num_tokens` tokens (speculative slots of rejected
  // proposals), last first.
  void truncate(std::vector<int32_t>& block_table, int64_t num_tokens);

  int32_t ref_count(int32_t block) const { return blocks_[static_cast<size_t>(block)].ref_count; }
  BlockManagerStats stats() const;
  // Checks every internal invariant; returns a description of the first violation, or empty.
  std::string check_invariants() const;

 private:
  struct Block {
    int32_t ref_count = 0;
    std::optional<uint64_t> hash;     // set while it holds a registered full block
    std::vector<int32_t> token_ids;   // that block's tokens, to verify hash hits exactly
    std::list<int32_t>::iterator free_position;
    bool in_free_list = false;
  };
  static uint64_t chain_hash(uint64_t parent, std::span<const int32_t> tokens);
  int32_t pop_free_block();
  void take_block(int32_t block);
  std::optional<int32_t> lookup(uint64_t hash, std::span<const int32_t> tokens) const;

  int64_t block_size_;
  bool enable_prefix_caching_;
  std::vector<Block> blocks_;
  std::list<int32_t> free_list_;  // front: evicted first
  std::unordered_map<uint64_t, int32_t> cached_block_by_hash_;
  int64_t prefix_queried_tokens_ = 0, prefix_hit_tokens_ = 0;
};

}  // namespace iol::engine
