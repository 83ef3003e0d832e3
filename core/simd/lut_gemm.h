// Kernels of LutMatrix's fast path (core/inner_product.h), private to core: one group of 8 weight
// rows against a batch of queries. Each ISA has its file (lut_gemm_portable.cc, lut_gemm_avx2.cc);
// the portable one is the reference the others match bit for bit (tests/core/lut_gemm_test.cc).
//
// Layout of one group: points[c][i][lane] int8 = 2 x coordinate i of chunk c's lattice point for
// row `lane`; t[c][lane] = min(T, 7); half_base[block][lane] = 0.5 x scale x beta (0 for zero blocks).
#pragma once

#include <cmath>
#include <cstdint>

#include "core/inner_product.h"
#include "core/simd/dispatch.h"

namespace coset {

// xq: batch x padded_cols (rotated, zero-padded queries); out: batch x 8 (lane-major per query).
struct LutGroupArgs {
  int dim = 0;
  int64_t chunks = 0;
  int64_t chunks_per_block = 0;
  int64_t blocks = 0;
  int64_t padded_cols = 0;
  const int8_t* points = nullptr;
  const uint8_t* t = nullptr;
  const float* half_base = nullptr;
  const float* ramp = nullptr;  // ramp[0..7]; t holds min(T, 7), larger T are corrections
};

using LutHighT = LutMatrix::HighT;
using LutGroupGemmFn = void (*)(const LutGroupArgs& args, const float* xq, int64_t batch, float* out);

void LutGroupGemmPortable(const LutGroupArgs& args, const float* xq, int64_t batch, float* out);
void LutGroupGemmAvx2(const LutGroupArgs& args, const float* xq, int64_t batch, float* out);
// The kernel for a SIMD level (the best one at or below it).
LutGroupGemmFn GetLutGroupGemm(SimdLevel level);

// Adds the high-T corrections of one group to out (batch x 8), after the kernel.
void ApplyHighT(const LutGroupArgs& args, const LutHighT* begin, const LutHighT* end, const float* xq, int64_t batch,
                float* out);

// <x chunk, lattice point of `lane`> for the fast-path layout, in the kernels' operation order.
inline float LaneChunkDot(const LutGroupArgs& a, const float* x, const int8_t* p, int lane) {
  float dot = x[0] * static_cast<float>(p[lane]);
  for (int i = 1; i < a.dim; ++i) dot = std::fmaf(x[i], static_cast<float>(p[i * 8 + lane]), dot);
  return dot;
}

}  // namespace coset
