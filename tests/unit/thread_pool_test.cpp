#include <gtest/gtest.h>

#include <atomic>
#include <vector>

#include "iol/core/thread_pool.hpp"

namespace iol {

TEST(ThreadPool, CoversEveryIndexExactlyOnce) {
  ThreadPool pool(3);
  for (size_t n : {0u, 1u, 2u, 5u, 1000u}) {
    std::vector<std::atomic<int>> hits(n);
    for (int round = 0; round < 20; ++round)
      pool.parallel_for(n, [&](size_t begin, size_t end) {
        for (size_t i = begin; i < end; ++i) hits[i]++;
      });
    for (size_t i = 0; i < n; ++i) ASSERT_EQ(hits[i].load(), 20) << "n " << n << " index " << i;
  }
}

}  // namespace iol
