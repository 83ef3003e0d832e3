// coset::torch::QLinear (the C++ module) against torch::nn::Linear.
#include "gtest/gtest.h"
#include "torch_ext/qlinear.h"

namespace coset {
namespace {

torch::QLinear Make(bool quantize, int q = 4, int levels = 2) {
  torch::QLinearOptions o(64, 24);
  o.quantize_weights = quantize;
  o.config.q = q;
  o.config.M = levels;
  return torch::QLinear(o);
}

TEST(QLinearCcTest, WithoutQuantizationItIsLinear) {
  ::torch::manual_seed(0);
  torch::QLinear q = Make(false);
  const ::torch::Tensor x = ::torch::randn({5, 64});
  const ::torch::Tensor want = ::torch::nn::functional::linear(x, q->weight, q->bias);
  EXPECT_TRUE(::torch::equal(q(x), want));
}

TEST(QLinearCcTest, CloseAtHighRateAndGradientsAreStraightThrough) {
  ::torch::manual_seed(0);
  torch::QLinear q = Make(true, 8, 3);
  const ::torch::Tensor x = ::torch::randn({16, 64});
  const ::torch::Tensor exact = ::torch::nn::functional::linear(x, q->weight, q->bias).detach();
  const ::torch::Tensor y = q(x);
  EXPECT_LT(((y - exact).norm() / exact.norm()).item<float>(), 2e-3f);
  y.sum().backward();
  EXPECT_TRUE(::torch::allclose(q->weight.grad(), x.sum(0).unsqueeze(0).expand({24, 64})));
}

TEST(QLinearCcTest, InferenceOnTheCodesMatchesTheQuantizedForward) {
  ::torch::manual_seed(0);
  torch::QLinear q = Make(true);
  q->eval();
  const ::torch::Tensor x = ::torch::randn({3, 7, 64});
  const ::torch::Tensor trained = q(x).detach();
  q->inference();
  EXPECT_FALSE(q->weight.defined());
  EXPECT_GT(q->weight_codes.numel(), 0);
  EXPECT_TRUE(::torch::allclose(q(x), trained, 1e-5, 1e-5));
  EXPECT_THROW(q(::torch::randn({2, 63})), c10::Error);
}

}  // namespace
}  // namespace coset
