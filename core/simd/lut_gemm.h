// Kernels of LutMatrix's two fast paths (core/inner_product.h), private to core: one group of weight
// rows against a batch of queries. Each ISA has its file (lut_gemm_portable.cc, lut_gemm_avx2.cc,
// lut_gemm_avx512.cc); the portable one is the reference the others match bit for bit
// (tests/core/inner_product_test.cc).
//
// int8-lanes layout, groups of 8 rows: points[c][i][lane] int8 = 2 x coordinate i of chunk c's
// lattice point for row `lane`; t[c][lane] = min(T, 7); half_base[block][lane] = 0.5 x scale x beta
// (0 for zero blocks).
//
// compact-codes layout (D4 with at most 256 symbols per level), groups of 16 rows and quads of 4
// chunks (16 entries of a row): codes[quad][level][j][lane] = the stored symbol b_level of chunk
// 4 quad + j, one byte (4 bits per entry at q = 4, M = 2, as stored); t[quad][lane] packs
// min(T, 3) of the quad's 4 chunks in 2-bit fields (larger T are corrections); half_base as above.
// The kernels decode a block of codes into a float panel of weights
//   w[c][i][lane] = float(sum_m q^m 2 rep(b_m)_i) * ramp[min(T, 3)]
// (exact integer Horner sum, one rounding) and then, per query and row, accumulate
//   acc[c % 4] = fma(x[4 c + i], w[c][i], acc[c % 4])   for c in the block, i = 0..3 in order,
//   total = fma(half_base, (acc[0] + acc[1]) + (acc[2] + acc[3]), total)  per block.
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

// compact-codes: one group of 16 rows (layout above).
struct CompactGroupArgs {
  int levels = 0;
  int log2_q = 0;
  int64_t quads = 0;            // per row, padded: chunks are padded with the zero point
  int64_t quads_per_block = 0;  // at most kMaxCompactBlockQuads
  int64_t blocks = 0;
  int64_t query_stride = 0;  // floats per query in xq: quads * 16
  const uint8_t* codes = nullptr;
  const uint8_t* t = nullptr;
  const float* half_base = nullptr;
  const int8_t* planes = nullptr;  // Codebook::rep_point_x2_planar_int8: 4 planes of 256 int8
  const float* ramp = nullptr;     // ramp[0..3]
};
inline constexpr int kCompactLanes = 16;
inline constexpr int64_t kMaxCompactBlockQuads = 64;  // the panel of one block: at most 64 KB
// out: batch x 16 (lane-major per query); panel: kMaxCompactBlockQuads * 256 floats of scratch.
using CompactGroupGemmFn = void (*)(const CompactGroupArgs& args, const float* xq, int64_t batch, float* panel,
                                    float* out);
void CompactGroupGemmPortable(const CompactGroupArgs& args, const float* xq, int64_t batch, float* panel, float* out);
void CompactGroupGemmAvx2(const CompactGroupArgs& args, const float* xq, int64_t batch, float* panel, float* out);
void CompactGroupGemmAvx512(const CompactGroupArgs& args, const float* xq, int64_t batch, float* panel, float* out);
CompactGroupGemmFn GetCompactGroupGemm(SimdLevel level);

// 2 x the lattice point of (chunk c, lane) of a compact group, coordinate i: the exact Horner sum.
inline int32_t CompactPointX2(const CompactGroupArgs& a, int64_t c, int lane, int i) {
  const uint8_t* quad = a.codes + (c / 4) * a.levels * 64 + (c % 4) * kCompactLanes + lane;
  int32_t acc = 0;
  for (int m = a.levels - 1; m >= 0; --m) acc = acc * (1 << a.log2_q) + a.planes[i * 256 + quad[m * 64]];
  return acc;
}

// The weight panel of quads [quad_begin, quad_end) of a compact group, portable code (the reference;
// the AVX2 kernel uses it as is): panel[(c - 4 quad_begin) * 4 + i][lane].
inline void DecodeCompactPanel(const CompactGroupArgs& a, int64_t quad_begin, int64_t quad_end, float* panel) {
  for (int64_t c = 4 * quad_begin; c < 4 * quad_end; ++c) {
    const uint8_t* t = a.t + (c / 4) * kCompactLanes;
    for (int i = 0; i < 4; ++i) {
      float* w = panel + ((c - 4 * quad_begin) * 4 + i) * kCompactLanes;
      for (int lane = 0; lane < kCompactLanes; ++lane) {
        const float ramp = a.ramp[(t[lane] >> (2 * (c % 4))) & 3];
        w[lane] = static_cast<float>(CompactPointX2(a, c, lane, i)) * ramp;
      }
    }
  }
}

// Adds the corrections of chunks with T > 3 of one compact group to out (batch x 16).
void ApplyCompactHighT(const CompactGroupArgs& args, const LutHighT* begin, const LutHighT* end, const float* xq,
                       int64_t batch, float* out);

// <x chunk, lattice point of `lane`> for the int8-lanes layout, in the kernels' operation order.
inline float LaneChunkDot(const LutGroupArgs& a, const float* x, const int8_t* p, int lane) {
  float dot = x[0] * static_cast<float>(p[lane]);
  for (int i = 1; i < a.dim; ++i) dot = std::fmaf(x[i], static_cast<float>(p[i * 8 + lane]), dot);
  return dot;
}

}  // namespace coset
