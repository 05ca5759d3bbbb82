#include "iol/engine/block_manager.hpp"

#include <algorithm>
#include <string>

#include <fmt/format.h>

#include "iol/core/error.hpp"
#include "iol/core/rng.hpp"

namespace iol::engine {

BlockManager::BlockManager(int64_t num_blocks, int64_t block_size, bool enable_prefix_caching)
    : block_size_(block_size), enable_prefix_caching_(enable_prefix_caching), blocks_(static_cast<size_t>(num_blocks)) {
  if (num_blocks <= 0 || block_size <= 0) fail("KV cache: need at least one block of at least one token");
  for (int32_t b = 0; b < num_blocks; ++b) {
    free_list_.push_back(b);
    blocks_[static_cast<size_t>(b)].free_position = std::prev(free_list_.end());
    blocks_[static_cast<size_t>(b)].in_free_list = true;
  }
}

uint64_t BlockManager::chain_hash(uint64_t parent, std::span<const int32_t> tokens) {
  uint64_t state = parent ^ 0x6a09e667f3bcc909ull;
  uint64_t hash = splitmix64(state);
  for (int32_t token : tokens) {
    state ^= static_cast<uint64_t>(static_cast<uint32_t>(token)) + hash;
    hash = splitmix64(state);
  }
  return hash;
}

std::optional<int32_t> BlockManager::lookup(uint64_t hash, std::span<const int32_t> tokens) const {
  auto it = cached_block_by_hash_.find(hash);
  if (it == cached_block_by_hash_.end()) return std::nullopt;
  const Block& block = blocks_[static_cast<size_t>(it->second)];
  if (!std::equal(block.token_ids.begin(), block.token_ids.end(), tokens.begin(), tokens.end())) return std::nullopt;
  return it->second;
}

void BlockManager::extend_block_hashes(std::span<const int32_t> token_ids, int64_t block_size,
                                       std::vector<uint64_t>& hashes) {
  for (size_t i = hashes.size(); (i + 1) * static_cast<size_t>(block_size) <= token_ids.size(); ++i)
    hashes.push_back(chain_hash(hashes.empty() ? 0 : hashes.back(),
                                token_ids.subspan(i * static_cast<size_t>(block_size), static_cast<size_t>(block_size))));
}

std::vector<uint64_t> BlockManager::block_hashes_of(std::span<const int32_t> token_ids) const {
  std::vector<uint64_t> hashes;
  extend_block_hashes(token_ids, block_size_, hashes);
  return hashes;
}

std::vector<int32_t> BlockManager::find_cached_prefix(std::span<const int32_t> token_ids,
                                                      std::span<const uint64_t> block_hashes) const {
  std::vector<int32_t> found;
  if (!enable_prefix_caching_) return found;
  const int64_t n = static_cast<int64_t>(token_ids.size());
  for (int64_t i = 0; (i + 1) * block_size_ <= n - 1 && i < static_cast<int64_t>(block_hashes.size()); ++i) {
    auto tokens = token_ids.subspan(static_cast<size_t>(i * block_size_), static_cast<size_t>(block_size_));
    auto block = lookup(block_hashes[static_cast<size_t>(i)], tokens);
    if (!block) break;
    found.push_back(*block);
  }
  return found;
}

std::vector<int32_t> BlockManager::find_cached_prefix(std::span<const int32_t> token_ids) const {
  return find_cached_prefix(token_ids, block_hashes_of(token_ids));
}

void BlockManager::take_block(int32_t block) {
  Block& b = blocks_[static_cast<size_t>(block)];
  if (b.in_free_list) {
    free_list_.erase(b.free_position);
    b.in_free_list = false;
  }
  ++b.ref_count;
}

int64_t BlockManager::take_cached_prefix(std::span<const int32_t> token_ids, std::vector<int32_t>& block_table) {
  return take_cached_prefix(token_ids, block_hashes_of(token_ids), block_table);
}

int64_t BlockManager::take_cached_prefix(std::span<const int32_t> token_ids, std::span<const uint64_t> block_hashes,
                                         std::vector<int32_t>& block_table) {
  if (!block_table.empty()) fail("KV cache: prefix lookup on a sequence that already holds blocks");
  std::vector<int32_t> cached = find_cached_prefix(token_ids, block_hashes);
  for (int32_t block : cached) {
    take_block(block);
    block_table.push_back(block);
  }
  const int64_t hit = static_cast<int64_t>(cached.size()) * block_size_;
  if (enable_prefix_caching_) {
    prefix_queried_tokens_ += static_cast<int64_t>(token_ids.size());
    prefix_hit_tokens_ += hit;
  }
  return hit;
}

int64_t BlockManager::blocks_needed(int64_t table_size, int64_t num_tokens) const {
  return std::max<int64_t>(0, (num_tokens + block_size_ - 1) / block_size_ - table_size);
}

int32_t BlockManager::pop_free_block() {
  if (free_list_.empty()) fail("KV cache: out of blocks (the scheduler should have preempted)");
  int32_t block = free_list_.front();
  Block& b = blocks_[static_cast<size_t>(block)];
  // Reusing a cached block evicts its prefix-cache entry.
  if (b.hash) {
    auto it = cached_block_by_hash_.find(*b.hash);
    if (it != cached_block_by_hash_.end() && it->second == block) cached_block_by_hash_.erase(it);
    b.hash.reset();
    b.token_ids.clear();
  }
  take_block(block);
  return block;
}

void BlockManager::allocate(std::vector<int32_t>& block_table, int64_t num_tokens) {
  int64_t needed = blocks_needed(static_cast<int64_t>(block_table.size()), num_tokens);
  if (!can_allocate(needed)) fail("KV cache: {} blocks needed, {} free", needed, num_free_blocks());
  for (int64_t i = 0; i < needed; ++i) block_table.push_back(pop_free_block());
}

void BlockManager::commit_full_blocks(std::span<const int32_t> token_ids, int64_t num_computed_tokens,
                                      std::span<const int32_t> block_table) {
  int64_t num_committed = 0;
  commit_full_blocks(token_ids, block_hashes_of(token_ids), num_computed_tokens, block_table, num_committed);
}

void BlockManager::commit_full_blocks(std::span<const int32_t> token_ids, std::span<const uint64_t> block_hashes,
                                      int64_t num_computed_tokens, std::span<const int32_t> block_table,
                                      int64_t& num_committed_blocks) {
  if (!enable_prefix_caching_) return;
  // Only the blocks that filled since the last commit: host work per step follows the new tokens.
  for (int64_t i = num_committed_blocks; (i + 1) * block_size_ <= num_computed_tokens; ++i, ++num_committed_blocks) {
    auto tokens = token_ids.subspan(static_cast<size_t>(i * block_size_), static_cast<size_t>(block_size_));
    const uint64_t hash = block_hashes[static_cast<size_t>(i)];
    Block& block = blocks_[static_cast<size_t>(block_table[static_cast<size_t>(i)])];
    if (block.hash) continue;  // registered earlier (or taken from the cache)
    if (cached_block_by_hash_.count(hash)) continue;  // an identical block is already cached
    block.hash = hash;
    block.token_ids.assign(tokens.begin(), tokens.end());
    cached_block_by_hash_[hash] = block_table[static_cast<size_t>(i)];
  }
}

std::vector<int32_t> BlockManager::fork(std::span<const int32_t> block_table) {
  for (int32_t block : block_table) take_block(block);
  return {block_table.begin(), block_table.end()};
}

std::optional<std::pair<int32_t, int32_t>> BlockManager::make_writable(std::vector<int32_t>& block_table, int64_t index) {
  int32_t& slot = block_table[static_cast<size_t>(index)];
  if (blocks_[static_cast<size_t>(slot)].ref_count <= 1) return std::nullopt;
  int32_t copy = pop_free_block();
  int32_t source = slot;
  --blocks_[static_cast<size_t>(source)].ref_count;
  slot = copy;
  return std::make_pair(source, copy);
}

void BlockManager::free(std::vector<int32_t>& block_table) {
  for (auto it = block_table.rbegin(); it != block_table.rend(); ++it) {
    Block& b = blocks_[static_cast<size_t>(*it)];
    if (--b.ref_count == 0) {
      free_list_.push_back(*it);
      b.free_position = std::prev(free_list_.end());
      b.in_free_list = true;
    }
  }
  block_table.clear();
}

void BlockManager::truncate(std::vector<int32_t>& block_table, int64_t num_tokens) {
  const auto keep = static_cast<size_t>((num_tokens + block_size_ - 1) / block_size_);
  for (; block_table.size() > keep; block_table.pop_back()) {
    Block& b = blocks_[static_cast<size_t>(block_table.back())];
    if (--b.ref_count == 0) {
      free_list_.push_back(block_table.back());
      b.free_position = std::prev(free_list_.end());
      b.in_free_list = true;
    }
  }
}

BlockManagerStats BlockManager::stats() const {
  BlockManagerStats s;
  s.num_blocks = num_blocks();
  s.num_free_blocks = num_free_blocks();
  s.num_used_blocks = s.num_blocks - s.num_free_blocks;
  for (int32_t block : free_list_) s.num_cached_blocks += blocks_[static_cast<size_t>(block)].hash ? 1 : 0;
  s.prefix_queried_tokens = prefix_queried_tokens_;
  s.prefix_hit_tokens = prefix_hit_tokens_;
  return s;
}

std::string BlockManager::check_invariants() const {
  int64_t in_list = 0;
  for (int32_t block : free_list_) {
    const Block& b = blocks_[static_cast<size_t>(block)];
    if (!b.in_free_list || b.ref_count != 0) return fmt::format("block {} in the free list with ref_count {}", block, b.ref_count);
    ++in_list;
  }
  for (size_t i = 0; i < blocks_.size(); ++i) {
    const Block& b = blocks_[i];
    if (b.ref_count < 0) return fmt::format("block {} has ref_count {}", i, b.ref_count);
    if ((b.ref_count == 0) != b.in_free_list) return fmt::format("block {}: ref_count {} but in_free_list {}", i, b.ref_count, b.in_free_list);
    if (b.hash) {
      auto it = cached_block_by_hash_.find(*b.hash);
      if (it == cached_block_by_hash_.end() || it->second != static_cast<int32_t>(i))
        return fmt::format("block {} has a hash the cache does not map to it", i);
    }
  }
  for (const auto& [hash, block] : cached_block_by_hash_)
    if (blocks_[static_cast<size_t>(block)].hash != hash) return fmt::format("cache entry for block {} is stale", block);
  if (in_list != num_free_blocks()) return "free list size mismatch";
  return {};
}

}  // namespace iol::engine
