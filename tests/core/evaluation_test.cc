#include "core/evaluation.h"

#include <cmath>

#include "gtest/gtest.h"

namespace coset {
namespace {

TEST(EvaluationTest, MeasuresTheReferenceRateAndDistortion) {
  // D4 q=4 M=2, iid N(0,1), the measured beta: about 22.6 dB at ~4.3 bits/entry (hnlq-reference).
  CodecParams p;
  p.scale = ScaleMode::kNone;
  const TensorCodec codec = *TensorCodec::Create(p);
  const std::vector<float> x = GaussianSamples(1 << 16, 1);
  const EvalResult r = *Evaluate(codec, x.data(), SampleShape(1 << 16));
  EXPECT_EQ(r.samples, 1 << 16);
  EXPECT_NEAR(r.snr_db, 22.6, 0.6);
  EXPECT_NEAR(r.rate_bits_per_entry, 4.27, 0.15);
  EXPECT_GT(r.stored_bits_per_entry, r.rate_bits_per_entry - 0.2);
  EXPECT_GT(r.overload_rate, 0.05);
  EXPECT_LT(r.overload_rate, 0.6);
}

TEST(EvaluationTest, MeasureReconstructionIsMseAndSnr) {
  const std::vector<float> x = {1, 2, 3, 4}, y = {1, 2, 3, 5};
  const EvalResult r = MeasureReconstruction(x.data(), y.data(), 4);
  EXPECT_DOUBLE_EQ(r.mse, 0.25);
  EXPECT_DOUBLE_EQ(r.snr_db, 10 * std::log10(30.0));
  EXPECT_TRUE(std::isinf(MeasureReconstruction(x.data(), x.data(), 4).snr_db));
}

TEST(EvaluationTest, SamplesAreDeterministicAndShapedInRowsOf1024) {
  EXPECT_EQ(GaussianSamples(10, 3), GaussianSamples(10, 3));
  EXPECT_NE(GaussianSamples(10, 3), GaussianSamples(10, 4));
  EXPECT_EQ(SampleShape(4096), (std::vector<int64_t>{4, 1024}));
  EXPECT_EQ(SampleShape(1000), (std::vector<int64_t>{1000}));
}

}  // namespace
}  // namespace coset
