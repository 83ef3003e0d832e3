#include "bench/datasets.h"

#include <zlib.h>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <random>

#include "absl/strings/str_cat.h"

namespace coset {
namespace {

absl::StatusOr<std::vector<uint8_t>> ReadGzip(const std::string& path) {
  gzFile f = gzopen(path.c_str(), "rb");
  if (f == nullptr) return absl::NotFoundError(absl::StrCat("cannot open ", path, " (install dataset-fashion-mnist)"));
  std::vector<uint8_t> out;
  uint8_t buf[1 << 16];
  int n;
  while ((n = gzread(f, buf, sizeof(buf))) > 0) out.insert(out.end(), buf, buf + n);
  const bool error = n < 0;
  gzclose(f);
  if (error) return absl::DataLossError(absl::StrCat(path, ": gzip stream is corrupt"));
  return out;
}

uint32_t BigEndian32(const uint8_t* p) {
  return (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | p[3];
}

}  // namespace

absl::StatusOr<Images> ReadFashionMnist(const std::string& prefix, const std::string& dir) {
  auto images = ReadGzip(absl::StrCat(dir, "/", prefix, "-images-idx3-ubyte.gz"));
  if (!images.ok()) return images.status();
  auto labels = ReadGzip(absl::StrCat(dir, "/", prefix, "-labels-idx1-ubyte.gz"));
  if (!labels.ok()) return labels.status();
  if (images->size() < 16 || BigEndian32(images->data()) != 0x803 || labels->size() < 8 ||
      BigEndian32(labels->data()) != 0x801) {
    return absl::DataLossError("Fashion-MNIST files have unexpected IDX headers");
  }
  Images out;
  out.count = BigEndian32(images->data() + 4);
  out.pixels = int64_t{BigEndian32(images->data() + 8)} * BigEndian32(images->data() + 12);
  if (images->size() != 16 + static_cast<size_t>(out.count * out.pixels) ||
      labels->size() != 8 + static_cast<size_t>(out.count)) {
    return absl::DataLossError("Fashion-MNIST files are truncated");
  }
  out.values.resize(out.count * out.pixels);
  for (size_t i = 0; i < out.values.size(); ++i) out.values[i] = (*images)[16 + i] / 255.0f;
  out.labels.assign(labels->begin() + 8, labels->end());
  return out;
}

std::vector<float> TrainSoftmaxLayer(const Images& train, int epochs, uint64_t seed) {
  const int64_t k = 10, p = train.pixels;
  std::vector<float> w(k * p, 0.0f);
  std::vector<int64_t> order(train.count);
  std::iota(order.begin(), order.end(), 0);
  std::mt19937_64 rng(seed);
  float logits[10];
  for (int e = 0; e < epochs; ++e) {
    std::shuffle(order.begin(), order.end(), rng);
    const float lr = 0.05f / (1 + e);
    for (int64_t idx : order) {
      const float* x = &train.values[idx * p];
      float max_logit = -INFINITY;
      for (int c = 0; c < k; ++c) {
        float z = 0;
        for (int64_t j = 0; j < p; ++j) z += w[c * p + j] * x[j];
        logits[c] = z;
        max_logit = std::max(max_logit, z);
      }
      float sum = 0;
      for (int c = 0; c < k; ++c) sum += (logits[c] = std::exp(logits[c] - max_logit));
      for (int c = 0; c < k; ++c) {
        const float g = logits[c] / sum - (train.labels[idx] == c ? 1.0f : 0.0f);
        for (int64_t j = 0; j < p; ++j) w[c * p + j] -= lr * g * x[j];
      }
    }
  }
  return w;
}

double SoftmaxAccuracy(const std::vector<float>& weights, const Images& test) {
  const int64_t p = test.pixels;
  int64_t correct = 0;
  for (int64_t i = 0; i < test.count; ++i) {
    int best = 0;
    float best_z = -INFINITY;
    for (int c = 0; c < 10; ++c) {
      float z = 0;
      for (int64_t j = 0; j < p; ++j) z += weights[c * p + j] * test.values[i * p + j];
      if (z > best_z) {
        best_z = z;
        best = c;
      }
    }
    correct += best == test.labels[i];
  }
  return static_cast<double>(correct) / test.count;
}

}  // namespace coset
