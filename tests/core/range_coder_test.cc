#include "core/range_coder.h"

#include <algorithm>
#include <cmath>
#include <random>
#include <tuple>
#include <vector>

#include "core/crc32c.h"
#include "core/thread_pool.h"
#include "gtest/gtest.h"

namespace coset {
namespace {

TEST(RangeCoderTest, RoundTripsAndDetectsTruncation) {
  std::mt19937 rng(1);
  for (int t_max : {0, 1, 5, 31, 63}) {
    std::geometric_distribution<int> geo(0.7);
    std::vector<uint8_t> t(5000);
    for (auto& v : t) v = static_cast<uint8_t>(std::min(geo(rng), t_max));
    const std::vector<uint8_t> coded = EncodeOverloadCounts(t.data(), t.size(), t_max);
    std::vector<uint8_t> back(t.size());
    ASSERT_TRUE(DecodeOverloadCounts(coded.data(), coded.size(), t.size(), t_max, back.data()).ok());
    EXPECT_EQ(back, t);
    if (t_max > 0 && coded.size() > 8) {
      EXPECT_FALSE(DecodeOverloadCounts(coded.data(), coded.size() / 2, t.size(), t_max, back.data()).ok());
    }
  }
}

TEST(RangeCoderTest, CostsCloseToTheEntropy) {
  std::mt19937 rng(2);
  std::bernoulli_distribution overload(0.1);
  std::vector<uint8_t> t(100000);
  for (auto& v : t) v = overload(rng) ? 1 : 0;
  const std::vector<uint8_t> coded = EncodeOverloadCounts(t.data(), t.size(), 31);
  const double h = -(0.9 * std::log2(0.9) + 0.1 * std::log2(0.1));  // T=1 then a certain 0: ~H
  EXPECT_LT(8.0 * coded.size() / t.size(), h * 1.05 + 0.01);
}

// The T stream is part of the blob format (FORMAT.md): its bytes for a fixed input must never
// change, whatever the coder's implementation. Pinned by their CRC-32C and length, over every
// t_max's unary cut and several segments.
TEST(RangeCoderTest, BytesOfTheFormatAreStable) {
  uint32_t state = 12345;
  std::vector<uint8_t> t(3 * kOverloadSegment + 777);
  ThreadPool pool(2);
  for (auto& v : t) {
    state = state * 1664525u + 1013904223u;  // a fixed LCG: the same values on every platform
    const uint32_t r = state >> 8;
    v = static_cast<uint8_t>(r % 3 != 0 ? 0 : 1 + (r >> 4) % 5 + ((r >> 12) % 97 == 0 ? 40 : 0));
  }
  for (const auto& [t_max, size, crc] : std::vector<std::tuple<int, size_t, uint32_t>>{{0, 36, 3033960235u},
                                                                                       {1, 365671, 1367939071u},
                                                                                       {5, 674228, 243273541u},
                                                                                       {31, 683204, 2328061142u},
                                                                                       {63, 692131, 1791921097u}}) {
    std::vector<uint8_t> capped(t);
    for (auto& v : capped) v = static_cast<uint8_t>(std::min<int>(v, t_max));
    const std::vector<uint8_t> coded = EncodeOverloadCounts(capped.data(), capped.size(), t_max);
    EXPECT_EQ(coded.size(), size) << "t_max " << t_max;
    EXPECT_EQ(Crc32c(coded.data(), coded.size()), crc) << "t_max " << t_max;
    std::vector<uint8_t> back(t.size());
    ASSERT_TRUE(DecodeOverloadCounts(coded.data(), coded.size(), t.size(), t_max, back.data()).ok());
    EXPECT_EQ(back, capped);
    // Segments coded and decoded on two threads: the same bytes and values.
    EXPECT_EQ(EncodeOverloadCounts(capped.data(), capped.size(), t_max, &pool), coded) << "t_max " << t_max;
    std::vector<uint8_t> back_parallel(t.size());
    ASSERT_TRUE(DecodeOverloadCounts(coded.data(), coded.size(), t.size(), t_max, back_parallel.data(), &pool).ok());
    EXPECT_EQ(back_parallel, capped);
  }
}

}  // namespace
}  // namespace coset
