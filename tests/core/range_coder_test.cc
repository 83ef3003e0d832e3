#include "core/range_coder.h"

#include <algorithm>
#include <cmath>
#include <random>
#include <vector>

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

}  // namespace
}  // namespace coset
