// Real data for accuracy benchmarks and examples: Fashion-MNIST (Debian's dataset-fashion-mnist,
// IDX files, gzip) and a softmax-regression layer trained on it.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace coset {

inline constexpr char kFashionMnistDir[] = "/usr/share/datasets/fashion-mnist";

struct Images {
  int64_t count = 0;
  int64_t pixels = 0;         // 784
  std::vector<float> values;  // count * pixels, scaled to [0, 1]
  std::vector<int> labels;    // count
};

// Reads `{prefix}-images-idx3-ubyte.gz` and `{prefix}-labels-idx1-ubyte.gz` (prefix train or t10k).
absl::StatusOr<Images> ReadFashionMnist(const std::string& prefix, const std::string& dir = kFashionMnistDir);

// Trains softmax regression (10 x 784 weights, row-major) with plain SGD; deterministic.
std::vector<float> TrainSoftmaxLayer(const Images& train, int epochs, uint64_t seed);

// Accuracy of a 10 x 784 softmax layer on `test`.
double SoftmaxAccuracy(const std::vector<float>& weights, const Images& test);

}  // namespace coset
