#include "server/request_context.h"

#include <atomic>
#include <chrono>

#include "core/thread_pool.h"
#include "gtest/gtest.h"

namespace coset {
namespace {

TEST(RequestContextTest, SmallWorkStaysInlineLargeWorkUsesThePool) {
  ThreadPool pool(3);
  RequestContext rc([] { return absl::OkStatus(); }, &pool);
  EXPECT_FALSE(rc.cancelled());
  EXPECT_EQ(rc.ExecutorFor(10)->concurrency(), 1);
  EXPECT_EQ(rc.ExecutorFor(RequestContext::kParallelThreshold)->concurrency(), pool.concurrency());
  std::atomic<int64_t> covered{0};
  rc.ExecutorFor(RequestContext::kParallelThreshold)->ParallelFor(1000, [&](int64_t b, int64_t e) {
    covered += e - b;
  });
  EXPECT_EQ(covered.load(), 1000);
}

TEST(RequestContextTest, ACancelledCallStopsItsWorkEarly) {
  bool gone = false;
  RequestContext rc([&] { return gone ? absl::DeadlineExceededError("late") : absl::OkStatus(); }, nullptr);
  int64_t covered = 0;
  // The client leaves after the first slice: the rest is skipped.
  rc.ExecutorFor(10)->ParallelFor(1000, [&](int64_t b, int64_t e) {
    covered += e - b;
    gone = true;
  });
  EXPECT_TRUE(rc.cancelled());
  EXPECT_EQ(rc.Interruption().code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_EQ(covered, 64);
}

TEST(RequestContextTest, ACancellationAtTheDeadlineIsTheDeadline) {
  using std::chrono::milliseconds;
  const auto now = std::chrono::system_clock::now();
  const auto code = [&](std::chrono::system_clock::time_point deadline) {
    return RequestContext::InterruptionOfCancelled(deadline, now).code();
  };
  EXPECT_EQ(code(now - milliseconds(5)), absl::StatusCode::kDeadlineExceeded);  // past it
  // The client's own deadline timer, arriving just before the server's copy of the deadline.
  EXPECT_EQ(code(now + milliseconds(5)), absl::StatusCode::kDeadlineExceeded);
  EXPECT_EQ(code(now + RequestContext::kDeadlineSkew), absl::StatusCode::kDeadlineExceeded);
  // A client that gave up well before its deadline, or had none.
  EXPECT_EQ(code(now + RequestContext::kDeadlineSkew + milliseconds(1)), absl::StatusCode::kCancelled);
  EXPECT_EQ(code(std::chrono::system_clock::time_point::max()), absl::StatusCode::kCancelled);
}

TEST(RequestContextTest, SuccessActionsRunOnlyWhenAsked) {
  int counted = 0;
  {
    RequestContext failed([] { return absl::OkStatus(); }, nullptr);
    failed.OnSuccess([&] { ++counted; });
  }  // a request that failed never runs them
  EXPECT_EQ(counted, 0);
  RequestContext ok([] { return absl::OkStatus(); }, nullptr);
  ok.OnSuccess([&] { ++counted; });
  ok.RunSuccessActions();
  ok.RunSuccessActions();  // once only
  EXPECT_EQ(counted, 1);
}

TEST(RequestContextTest, TakenReservationsAreNotReleasedByTheContext) {
  MemoryBudget budget(1 << 20, [] { return int64_t{0}; });
  {
    RequestContext rc([] { return absl::OkStatus(); }, nullptr, &budget);
    ASSERT_TRUE(rc.Reserve(1000, "test").ok());
    EXPECT_EQ(rc.TakeReservations(), 1000);
  }
  EXPECT_EQ(budget.reserved(), 1000);  // now the taker's to give back
  budget.Release(1000);
}

}  // namespace
}  // namespace coset
