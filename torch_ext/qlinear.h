// coset::torch::QLinear: the C++ twin of coset_torch.nn.QLinear for LibTorch users. nn.Linear
// semantics with FP32 shadow weights, weights and/or activations quantized with HNLQ and a
// straight-through gradient, re-quantization every `quantize_every` steps, and an inference mode
// that keeps only the codes and computes x W^T on them (LutMatrix).
//
// Inside namespace coset::torch, LibTorch is spelled ::torch.
#pragma once

#include <torch/torch.h>

#include <memory>

#include "core/inner_product.h"
#include "core/tensor_codec.h"

namespace coset {
namespace torch {

struct QLinearOptions {
  QLinearOptions(int64_t in, int64_t out) : in_features(in), out_features(out) {}
  int64_t in_features;
  int64_t out_features;
  bool bias = true;
  CodecParams config;
  bool quantize_weights = true;
  bool quantize_activations = false;
  int64_t quantize_every = 1;
};

class QLinearImpl : public ::torch::nn::Module {
 public:
  explicit QLinearImpl(const QLinearOptions& options);

  // x: [..., in_features] float32 (CPU); returns [..., out_features].
  ::torch::Tensor forward(const ::torch::Tensor& x);
  // Freezes the quantized weights as codes and drops the shadow weights.
  void inference();
  bool inference_only() const { return matrix_ != nullptr; }

  ::torch::Tensor weight;        // [out, in] (undefined after inference())
  ::torch::Tensor bias;          // [out] or undefined
  ::torch::Tensor weight_codes;  // uint8 blob (core/FORMAT.md), registered as a buffer

 private:
  ::torch::Tensor Quantize(const ::torch::Tensor& x) const;  // decode(encode(x)), no gradient
  QLinearOptions options_;
  std::shared_ptr<const TensorCodec> codec_;
  ::torch::Tensor cached_;
  int64_t steps_ = 0;
  std::shared_ptr<const LutMatrix> matrix_;
};

// What TORCH_MODULE(QLinear) would declare; spelled out because the macro names torch::nn
// unqualified, which inside coset::torch would not find LibTorch.
class QLinear : public ::torch::nn::ModuleHolder<QLinearImpl> {
 public:
  using ::torch::nn::ModuleHolder<QLinearImpl>::ModuleHolder;
  using Impl = QLinearImpl;
};

}  // namespace torch
}  // namespace coset
