#include "core/block_transform.h"

namespace coset {
namespace {

uint64_t SplitMix64(uint64_t& state) {
  uint64_t z = (state += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

}  // namespace

std::vector<float> RotationSigns(uint64_t seed, int64_t block) {
  std::vector<float> signs(block);
  uint64_t state = seed;
  uint64_t bits = 0;
  for (int64_t i = 0; i < block; ++i) {
    if (i % 64 == 0) bits = SplitMix64(state);
    signs[i] = (bits >> (i % 64)) & 1 ? -1.0f : 1.0f;
  }
  return signs;
}

void RotateForward(const float* signs, int64_t n, float* x) {
  for (int64_t i = 0; i < n; ++i) x[i] *= signs[i];
  FwhtSegments(x, n);
}

void RotateInverse(const float* signs, int64_t n, float* x) {
  FwhtSegments(x, n);
  for (int64_t i = 0; i < n; ++i) x[i] *= signs[i];
}

}  // namespace coset
