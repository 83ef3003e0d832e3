// Per-block scaling and the randomized Hadamard rotation applied before quantization.
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>
#include <vector>

namespace coset {

// bfloat16: scales are stored in 16 bits with float32's range (gradients can be far below fp16's).
inline uint16_t FloatToBf16(float value) {
  uint32_t bits;
  std::memcpy(&bits, &value, 4);
  bits += 0x7FFFu + ((bits >> 16) & 1u);  // round to nearest even
  uint16_t out = static_cast<uint16_t>(bits >> 16);
  if ((out & 0x7F80u) == 0x7F80u) out = static_cast<uint16_t>((out & 0x8000u) | 0x7F7Fu);  // no Inf
  return out;
}

inline float Bf16ToFloat(uint16_t value) {
  const uint32_t bits = static_cast<uint32_t>(value) << 16;
  float out;
  std::memcpy(&out, &bits, 4);
  return out;
}

// Random signs of the rotation, one per position in a block, from SplitMix64(seed).
std::vector<float> RotationSigns(uint64_t seed, int64_t block);

// x <- H D x on a block of `n` floats (D = diag(signs)). H is the orthonormal Walsh-Hadamard
// transform applied to consecutive power-of-two segments (n = 2^a + 2^b + ..., largest first), so
// any block length works and the inverse is exact up to float rounding.
void RotateForward(const float* signs, int64_t n, float* x);
// x <- D H x, the inverse of RotateForward.
void RotateInverse(const float* signs, int64_t n, float* x);

}  // namespace coset
