#include "core/block_transform.h"

#include <cmath>
#include <random>

#include "gtest/gtest.h"

namespace coset {
namespace {

TEST(BlockTransformTest, RotationIsOrthonormalAndInverted) {
  std::mt19937 rng(1);
  std::normal_distribution<float> g;
  for (int64_t n : {1, 8, 64, 256, 96}) {
    const std::vector<float> signs = RotationSigns(7, n);
    std::vector<float> x(n), y;
    for (float& v : x) v = g(rng);
    y = x;
    RotateForward(signs.data(), n, y.data());
    double nx = 0, ny = 0;
    for (int64_t i = 0; i < n; ++i) {
      nx += double(x[i]) * x[i];
      ny += double(y[i]) * y[i];
    }
    EXPECT_NEAR(ny, nx, 1e-4 * nx) << n;  // norms are kept
    RotateInverse(signs.data(), n, y.data());
    for (int64_t i = 0; i < n; ++i) EXPECT_NEAR(y[i], x[i], 1e-5) << n;
  }
  EXPECT_EQ(RotationSigns(7, 64), RotationSigns(7, 64));
  EXPECT_NE(RotationSigns(7, 64), RotationSigns(8, 64));
}

TEST(BlockTransformTest, Bf16RoundsToNearestAndSaturates) {
  EXPECT_EQ(Bf16ToFloat(FloatToBf16(1.0f)), 1.0f);
  EXPECT_EQ(Bf16ToFloat(FloatToBf16(-2.5f)), -2.5f);
  const float x = 1.0f + 1.0f / 256;  // between two bf16 values: within half a unit
  EXPECT_NEAR(Bf16ToFloat(FloatToBf16(x)), x, 1.0f / 256);
  // A scale never becomes Inf: it saturates at the largest finite bf16.
  EXPECT_TRUE(std::isfinite(Bf16ToFloat(FloatToBf16(INFINITY))));
  EXPECT_GT(Bf16ToFloat(FloatToBf16(INFINITY)), 3e38f);
  EXPECT_EQ(Bf16ToFloat(FloatToBf16(0.0f)), 0.0f);
}

}  // namespace
}  // namespace coset
