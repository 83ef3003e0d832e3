#include "core/beta_table.h"

#include <cmath>

#include "gtest/gtest.h"

namespace coset {
namespace {

TEST(BetaTableTest, MeasuredEntriesSitOnTheReferenceGrid) {
  // The reference grid is beta_min (1 + 0.05 k), k < 40; measured betas fall inside it.
  for (const char* name : {"D4", "E8"}) {
    const Lattice lattice = *Lattice::Parse(name);
    ASSERT_TRUE(HasMeasuredBeta(lattice, 4, 2, ScaleMode::kNone)) << name;
    const double ratio = DefaultBeta(lattice, 4, 2, ScaleMode::kNone) / BetaGridMin(lattice, 4, 2);
    EXPECT_GE(ratio, 1.0 - 1e-6) << name;
    EXPECT_LE(ratio, 1.0 + 0.05 * 39 + 1e-6) << name;
  }
}

TEST(BetaTableTest, FallbackIsTheMedianRatioOfTheGridMinimum) {
  const Lattice d7 = *Lattice::Parse("D7");
  ASSERT_FALSE(HasMeasuredBeta(d7, 5, 3, ScaleMode::kRms));
  EXPECT_FLOAT_EQ(DefaultBeta(d7, 5, 3, ScaleMode::kRms),
                  static_cast<float>(kFallbackBetaRatio * BetaGridMin(d7, 5, 3)));
  EXPECT_FLOAT_EQ(DefaultBeta(d7, 5, 3, ScaleMode::kAbsMax),
                  static_cast<float>(kFallbackBetaRatio * BetaGridMin(d7, 5, 3) / 2.9));
}

TEST(BetaTableTest, GridMinimumFollowsTheFormula) {
  const Lattice d4 = Lattice::D4();
  EXPECT_NEAR(BetaGridMin(d4, 4, 2), std::sqrt(4.0 / 6.0) / (16.0 * std::sqrt(0.10833)), 1e-12);
}

}  // namespace
}  // namespace coset
