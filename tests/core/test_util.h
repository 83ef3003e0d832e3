// Shared helpers of the core tests.
#pragma once

#include <cstdint>
#include <random>
#include <vector>

#include "core/tensor_codec.h"
#include "gtest/gtest.h"

namespace coset {
namespace testing_util {

// n iid N(0, sigma^2) floats from std::mt19937(seed).
inline std::vector<float> Gaussian(int64_t n, uint32_t seed, float sigma = 1.0f) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> g(0.0f, sigma);
  std::vector<float> x(n);
  for (float& v : x) v = g(rng);
  return x;
}

// A code to test: lattice name, q and M, and its CodecParams (everything else default).
struct Config {
  const char* lattice;
  int q;
  int levels;
};

inline CodecParams Params(const Config& c, ScaleMode scale = ScaleMode::kRms) {
  CodecParams p;
  p.lattice = *Lattice::Parse(c.lattice);
  p.q = c.q;
  p.M = c.levels;
  p.scale = scale;
  return p;
}

inline std::vector<float> DecodeAll(const CompressedTensor& t) {
  std::vector<float> y(t.layout.numel);
  EXPECT_TRUE(DecodeTensor(t, y.data()).ok());
  return y;
}

}  // namespace testing_util
}  // namespace coset
