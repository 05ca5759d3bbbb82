#include <gtest/gtest.h>

#include "iol/core/error.hpp"
#include "iol/engine/block_manager.hpp"

namespace iol::engine {
namespace {

TEST(BlockManager, AllocatesOnDemandAndFreesEverything) {
  BlockManager bm(4, 4, false);
  std::vector<int32_t> table;
  bm.allocate(table, 5);
  EXPECT_EQ(table.size(), 2u);
  bm.allocate(table, 8);
  EXPECT_EQ(table.size(), 2u);  // still fits
  bm.allocate(table, 9);
  EXPECT_EQ(table.size(), 3u);
  EXPECT_EQ(bm.num_free_blocks(), 1);
  EXPECT_FALSE(bm.can_allocate(2));
  EXPECT_THROW(bm.allocate(table, 17), Error);
  bm.free(table);
  EXPECT_EQ(bm.num_free_blocks(), 4);
  EXPECT_EQ(bm.check_invariants(), "");
}

TEST(BlockManager, PrefixCacheReusesFullBlocksAndKeepsOneTokenToCompute) {
  BlockManager bm(8, 4, true);
  std::vector<int32_t> tokens = {1, 2, 3, 4, 5, 6, 7, 8, 9};
  std::vector<int32_t> a;
  EXPECT_EQ(bm.take_cached_prefix(tokens, a), 0);
  bm.allocate(a, 9);
  bm.commit_full_blocks(tokens, 9, a);  // blocks [1..4] and [5..8] are full
  std::vector<int32_t> b;
  EXPECT_EQ(bm.take_cached_prefix(tokens, b), 8);
  EXPECT_EQ(b, (std::vector<int32_t>{a[0], a[1]}));
  EXPECT_EQ(bm.ref_count(a[0]), 2);
  // An 8-token prompt equal to the two blocks reuses only one: its last token needs computing.
  std::vector<int32_t> c, eight(tokens.begin(), tokens.begin() + 8);
  EXPECT_EQ(bm.take_cached_prefix(eight, c), 4);
  // A different first block breaks the chain even if the second matches.
  std::vector<int32_t> d, other = {0, 2, 3, 4, 5, 6, 7, 8, 9};
  EXPECT_EQ(bm.take_cached_prefix(other, d), 0);
  EXPECT_NEAR(bm.stats().prefix_hit_rate(), 12.0 / (9 + 8 + 9 + 9), 1e-12);
  EXPECT_EQ(bm.check_invariants(), "");
}

TEST(BlockManager, FreedCachedBlocksAreReusedThenEvictedLeastRecentlyFreedFirst) {
  BlockManager bm(3, 2, true);
  std::vector<int32_t> t1 = {1, 2, 3}, t2 = {7, 8, 9};
  std::vector<int32_t> a, b;
  bm.allocate(a, 3);
  bm.commit_full_blocks(t1, 3, a);
  bm.free(a);  // block with [1,2] stays cached while free
  EXPECT_EQ(bm.stats().num_cached_blocks, 1);
  std::vector<int32_t> again;
  EXPECT_EQ(bm.take_cached_prefix(t1, again), 2);
  bm.free(again);
  // Filling the pool evicts the cached block.
  bm.allocate(b, 6);
  bm.commit_full_blocks(t2, 2, b);
  bm.free(b);
  std::vector<int32_t> probe;
  EXPECT_EQ(bm.take_cached_prefix(t1, probe), 0);
  EXPECT_EQ(bm.check_invariants(), "");
}

TEST(BlockManager, ForkSharesAndCopyOnWriteSeparates) {
  BlockManager bm(4, 4, false);
  std::vector<int32_t> parent;
  bm.allocate(parent, 6);
  std::vector<int32_t> child = bm.fork(parent);
  EXPECT_EQ(bm.ref_count(parent[1]), 2);
  auto copy = bm.make_writable(child, 1);
  ASSERT_TRUE(copy.has_value());
  EXPECT_EQ(copy->first, parent[1]);
  EXPECT_NE(child[1], parent[1]);
  EXPECT_EQ(bm.ref_count(parent[1]), 1);
  EXPECT_FALSE(bm.make_writable(parent, 1).has_value());  // now private
  bm.free(child);
  bm.free(parent);
  EXPECT_EQ(bm.num_free_blocks(), 4);
  EXPECT_EQ(bm.check_invariants(), "");
}

}  // namespace
}  // namespace iol::engine
