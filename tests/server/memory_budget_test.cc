#include "server/memory_budget.h"

#include <thread>
#include <utility>
#include <vector>

#include "gtest/gtest.h"
#include "server/request_context.h"

namespace coset {
namespace {

TEST(MemoryBudgetTest, ReservationsCountResidentBytesAndAreGivenBack) {
  int64_t resident = 100;
  MemoryBudget budget(1000, [&] { return resident; });
  ASSERT_TRUE(budget.Reserve(800, "a").ok());
  const absl::Status refused = budget.Reserve(101, "the decoded tensor");
  EXPECT_EQ(refused.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_NE(refused.message().find("the decoded tensor needs 101 bytes"), std::string::npos) << refused;
  EXPECT_EQ(budget.reserved(), 800);
  budget.Release(800);
  resident = 950;
  EXPECT_FALSE(budget.Reserve(51, "b").ok());
  EXPECT_TRUE(budget.Reserve(50, "c").ok());
}

TEST(MemoryBudgetTest, AReservationThatWouldFailReclaimsWhatIsKeptForSpeed) {
  int64_t kept = 500;  // e.g. code buffers kept between encodes, counted as resident
  int reclaims = 0;
  MemoryBudget budget(
      1000, [&] { return kept; },
      [&] {
        ++reclaims;
        return std::exchange(kept, 0);
      });
  ASSERT_TRUE(budget.Reserve(400, "fits beside what is kept").ok());
  EXPECT_EQ(reclaims, 0);
  EXPECT_EQ(kept, 500);
  ASSERT_TRUE(budget.Reserve(500, "fits once it is freed").ok());
  EXPECT_EQ(reclaims, 1);
  EXPECT_EQ(kept, 0);
  // Nothing left to reclaim: refused as before.
  EXPECT_EQ(budget.Reserve(200, "too much").code(), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(budget.reserved(), 900);
}

TEST(MemoryBudgetTest, ConcurrentReservationsNeverOvershoot) {
  MemoryBudget budget(1000, [] { return int64_t{0}; });
  std::atomic<int> granted{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 1000; ++i) granted += budget.Reserve(10, "x").ok();
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(granted.load(), 100);
  EXPECT_EQ(budget.reserved(), 1000);
}

TEST(MemoryBudgetTest, ARequestContextReleasesWhatItReservedWhenItEnds) {
  MemoryBudget budget(1000, [] { return int64_t{0}; });
  {
    RequestContext rc([] { return absl::OkStatus(); }, nullptr, &budget);
    ASSERT_TRUE(rc.Reserve(600, "a").ok());
    ASSERT_TRUE(rc.Reserve(300, "b").ok());
    EXPECT_FALSE(rc.Reserve(200, "c").ok());
    EXPECT_EQ(rc.reserved(), 900);
  }
  EXPECT_EQ(budget.reserved(), 0);
}

}  // namespace
}  // namespace coset
