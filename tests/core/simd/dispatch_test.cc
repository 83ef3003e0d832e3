// The one CPU dispatch facility: names, refusal of levels the CPU lacks, scoped overrides, and
// every kernel family following the active level (CRC-32C here; the row codec and the LUT GEMM in
// tensor_codec_test and inner_product_test).
#include "core/simd/dispatch.h"

#include <random>
#include <vector>

#include "core/crc32c.h"
#include "gtest/gtest.h"

namespace coset {
namespace {

TEST(SimdDispatchTest, NamesRoundTrip) {
  for (SimdLevel level : kAllSimdLevels) {
    EXPECT_EQ(*ParseSimdLevel(SimdLevelName(level)), level);
  }
  EXPECT_EQ(ParseSimdLevel("avx1024").status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(SimdDispatchTest, ActiveLevelNeverExceedsTheDetectedOne) {
  EXPECT_LE(ActiveSimdLevel(), DetectedSimdLevel());
  for (SimdLevel level : kAllSimdLevels) {
    if (level > DetectedSimdLevel()) {
      EXPECT_EQ(SetSimdLevel(level).status().code(), absl::StatusCode::kOutOfRange);
    }
  }
  const SimdLevel before = ActiveSimdLevel();
  {
    ScopedSimdLevel portable(SimdLevel::kPortable);
    EXPECT_TRUE(portable.ok());
    EXPECT_EQ(ActiveSimdLevel(), SimdLevel::kPortable);
  }
  EXPECT_EQ(ActiveSimdLevel(), before);
}

TEST(SimdDispatchTest, Crc32cIsTheSameAtEveryLevel) {
  std::mt19937 rng(5);
  std::vector<uint8_t> data(1001);
  for (auto& b : data) b = static_cast<uint8_t>(rng());
  const uint32_t want = Crc32cRef(data.data(), data.size());
  for (SimdLevel level : kAllSimdLevels) {
    ScopedSimdLevel scoped(level);
    if (!scoped.ok()) continue;  // the CPU lacks it: SimdDispatchTest above checks the refusal
    EXPECT_EQ(Crc32c(data.data(), data.size()), want) << SimdLevelName(level);
  }
}

}  // namespace
}  // namespace coset
