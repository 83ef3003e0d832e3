#include "core/thread_pool.h"

#include <atomic>
#include <vector>

#include "gtest/gtest.h"

namespace coset {
namespace {

TEST(ThreadPoolTest, CoversTheRangeExactlyOnceAtEverySize) {
  for (int threads : {1, 2, 4}) {
    ThreadPool pool(threads);
    EXPECT_EQ(pool.concurrency(), threads);
    for (int64_t n : {0, 1, 7, 1000}) {
      std::vector<std::atomic<int>> hits(n);
      pool.ParallelFor(n, [&](int64_t b, int64_t e) {
        ASSERT_LE(b, e);
        for (int64_t i = b; i < e; ++i) ++hits[i];
      });
      for (int64_t i = 0; i < n; ++i) EXPECT_EQ(hits[i].load(), 1) << threads << " " << n << " " << i;
    }
  }
}

TEST(ThreadPoolTest, InlineExecutorRunsOnTheCallingThread) {
  int64_t covered = 0;
  InlineExecutor()->ParallelFor(10, [&](int64_t b, int64_t e) { covered += e - b; });
  EXPECT_EQ(covered, 10);
  EXPECT_EQ(InlineExecutor()->concurrency(), 1);
}

}  // namespace
}  // namespace coset
