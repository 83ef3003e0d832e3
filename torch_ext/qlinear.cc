#include "torch_ext/qlinear.h"

#include <cstring>
#include <vector>

#include "core/format.h"

namespace coset {
namespace torch {

QLinearImpl::QLinearImpl(const QLinearOptions& options) : options_(options) {
  auto codec = TensorCodec::Create(options.config);
  TORCH_CHECK(codec.ok(), "coset: ", std::string(codec.status().message()));
  TORCH_CHECK(options.quantize_every >= 1, "coset: quantize_every must be >= 1");
  codec_ = std::make_shared<const TensorCodec>(std::move(*codec));
  // nn.Linear's initialization.
  ::torch::nn::Linear reference(
      ::torch::nn::LinearOptions(options.in_features, options.out_features).bias(options.bias));
  weight = register_parameter("weight", reference->weight.detach().clone());
  if (options.bias) bias = register_parameter("bias", reference->bias.detach().clone());
  weight_codes = register_buffer("weight_codes", ::torch::empty({0}, ::torch::kUInt8));
}

::torch::Tensor QLinearImpl::Quantize(const ::torch::Tensor& x) const {
  const ::torch::Tensor xc = x.detach().to(::torch::kFloat).contiguous();
  std::vector<int64_t> shape(xc.sizes().begin(), xc.sizes().end());
  auto t = codec_->Encode(xc.data_ptr<float>(), shape);
  TORCH_CHECK(t.ok(), "coset: ", std::string(t.status().message()));
  ::torch::Tensor out = ::torch::empty_like(xc);
  const auto status = codec_->Decode(*t, out.data_ptr<float>());
  TORCH_CHECK(status.ok(), "coset: ", std::string(status.message()));
  return out;
}

::torch::Tensor QLinearImpl::forward(const ::torch::Tensor& input) {
  TORCH_CHECK(input.size(-1) == options_.in_features, "coset: input's last dimension (", input.size(-1),
              ") must be in_features (", options_.in_features, ")");
  ::torch::Tensor x = input;
  if (options_.quantize_activations) x = x + (Quantize(x) - x).detach();  // straight-through
  if (matrix_ != nullptr) {
    const ::torch::Tensor x2 = x.detach().to(::torch::kFloat).reshape({-1, options_.in_features}).contiguous();
    ::torch::Tensor y = ::torch::empty({x2.size(0), options_.out_features}, ::torch::kFloat);
    if (x2.size(0) > 0) {
      const auto status = matrix_->Gemm(x2.data_ptr<float>(), x2.size(0), y.data_ptr<float>());
      TORCH_CHECK(status.ok(), "coset: ", std::string(status.message()));
    }
    std::vector<int64_t> shape(input.sizes().begin(), input.sizes().end());
    shape.back() = options_.out_features;
    y = y.reshape(shape);
    return bias.defined() ? y + bias : y;
  }
  ::torch::Tensor w = weight;
  if (options_.quantize_weights) {
    if (!cached_.defined() || (is_training() && steps_ % options_.quantize_every == 0)) cached_ = Quantize(weight);
    w = cached_ + (weight - weight.detach());  // exactly the quantized values, gradient to the shadow
  }
  if (is_training()) ++steps_;
  return ::torch::nn::functional::linear(x, w, bias);
}

void QLinearImpl::inference() {
  const ::torch::Tensor w = weight.detach().to(::torch::kFloat).contiguous();
  auto t = codec_->Encode(w.data_ptr<float>(), {options_.out_features, options_.in_features});
  TORCH_CHECK(t.ok(), "coset: ", std::string(t.status().message()));
  const std::vector<uint8_t> blob = Serialize(*t);
  // In place: the registered buffer and this member are the same tensor.
  weight_codes.resize_({static_cast<int64_t>(blob.size())});
  std::memcpy(weight_codes.data_ptr<uint8_t>(), blob.data(), blob.size());
  auto matrix = LutMatrix::Create(*t);
  TORCH_CHECK(matrix.ok(), "coset: ", std::string(matrix.status().message()));
  matrix_ = std::make_shared<const LutMatrix>(std::move(*matrix));
  // Drop the shadow weights' memory (LibTorch 1.13 cannot unregister a parameter).
  ::torch::NoGradGuard no_grad;
  weight.set_data(::torch::empty({0}));
  weight = ::torch::Tensor();
  cached_ = ::torch::Tensor();
  eval();
}

}  // namespace torch
}  // namespace coset
