#include "server/code_buffer_pool.h"

#include "gtest/gtest.h"

namespace coset {
namespace {

CompressedTensor WithBuffers(int64_t symbols, int64_t t = 0) {
  CompressedTensor out;
  out.symbols.resize(symbols);
  out.t.resize(t);
  return out;
}

constexpr int64_t kMiB = int64_t{1} << 20;

TEST(CodeBufferPoolTest, GivesBackBuffersOfAboutTheSizeAsked) {
  CodeBufferPool pool(64 * kMiB);
  pool.Give(WithBuffers(8 * kMiB, 4 * kMiB));
  EXPECT_EQ(pool.bytes(), 12 * kMiB);
  // Not for a request far larger, nor one far smaller (nobody would account for the rest).
  EXPECT_EQ(CodeBufferPool::CapacityOf(pool.Take(14 * kMiB)), 0);
  EXPECT_EQ(CodeBufferPool::CapacityOf(pool.Take(10 * kMiB)), 0);
  EXPECT_EQ(pool.bytes(), 12 * kMiB);
  const CompressedTensor t = pool.Take(13 * kMiB);
  EXPECT_EQ(t.symbols.capacity(), static_cast<size_t>(8 * kMiB));
  EXPECT_EQ(t.t.capacity(), static_cast<size_t>(4 * kMiB));
  EXPECT_EQ(pool.bytes(), 0);
}

TEST(CodeBufferPoolTest, KeepsOnlyLargeBuffersWithinItsBound) {
  CodeBufferPool pool(20 * kMiB);
  pool.Give(WithBuffers(kMiB / 2));  // small: the heap serves those without page faults
  EXPECT_EQ(pool.bytes(), 0);
  pool.Give(WithBuffers(12 * kMiB));
  pool.Give(WithBuffers(12 * kMiB));  // past the bound: freed
  EXPECT_EQ(pool.bytes(), 12 * kMiB);
  for (int i = 0; i < CodeBufferPool::kMaxKept; ++i) pool.Give(WithBuffers(kMiB + i));
  // The oldest went to make room for the newest.
  EXPECT_EQ(pool.bytes(), CodeBufferPool::kMaxKept * kMiB + 6);
  EXPECT_EQ(CodeBufferPool::CapacityOf(pool.Take(12 * kMiB)), 0);
  EXPECT_EQ(pool.Clear(), CodeBufferPool::kMaxKept * kMiB + 6);
  EXPECT_EQ(pool.bytes(), 0);
}

TEST(CodeBufferPoolTest, LentBuffersComeBackWithTheLastReference) {
  CodeBufferPool pool(64 * kMiB);
  pool.Give(WithBuffers(8 * kMiB));
  {
    const std::shared_ptr<CompressedTensor> lent = pool.Lend(8 * kMiB);
    EXPECT_EQ(lent->symbols.capacity(), static_cast<size_t>(8 * kMiB));
    EXPECT_EQ(pool.bytes(), 0);
    const std::shared_ptr<CompressedTensor> empty = pool.Lend();
    EXPECT_EQ(CodeBufferPool::CapacityOf(*empty), 0);
    *empty = WithBuffers(2 * kMiB);  // what a borrower puts there goes back too
  }
  EXPECT_EQ(pool.bytes(), 10 * kMiB);
}

TEST(CodeBufferPoolTest, KeepsNothingWithoutABound) {
  CodeBufferPool pool(0);
  pool.Give(WithBuffers(8 * kMiB));
  EXPECT_EQ(pool.bytes(), 0);
}

}  // namespace
}  // namespace coset
