// Per-block scaling and the randomized Hadamard rotation applied before quantization.
#pragma once

#include <cstdint>
#include <vector>

#include "core/chunk_math.h"  // FloatToBf16, Bf16ToFloat, FwhtSegments

namespace coset {

// Random signs of the rotation, one per position in a block, from SplitMix64(seed).
std::vector<float> RotationSigns(uint64_t seed, int64_t block);

// x <- H D x on a block of `n` floats (D = diag(signs)). H is the orthonormal Walsh-Hadamard
// transform applied to consecutive power-of-two segments (n = 2^a + 2^b + ..., largest first), so
// any block length works and the inverse is exact up to float rounding.
void RotateForward(const float* signs, int64_t n, float* x);
// x <- D H x, the inverse of RotateForward.
void RotateInverse(const float* signs, int64_t n, float* x);

}  // namespace coset
