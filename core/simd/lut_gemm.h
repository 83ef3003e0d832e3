// Kernels of LutMatrix's two fast paths (core/inner_product.h), private to core: one group of weight
// rows against a batch of queries. Each ISA has its file (lut_gemm_portable.cc, lut_gemm_avx2.cc,
// lut_gemm_avx512.cc); the portable one is the reference the others match bit for bit
// (tests/core/inner_product_test.cc).
//
// int8-lanes layout, groups of 8 rows: points[c][i][lane] int8 = 2 x coordinate i of chunk c's
// lattice point for row `lane`; t[c][lane] = min(T, 7); half_base[block][lane] = 0.5 x scale x beta
// (0 for zero blocks). Per query and row, chunk c of a block (first chunk `first`):
//   dot = x[d c] p_0, then dot = fma(x[d c + i], p_i, dot) for i = 1..d-1,
//   partial[(c - first) % 4] = fma(ramp[t], dot, partial[...]),
//   total = fma(half_base, (partial[0] + partial[1]) + (partial[2] + partial[3]), total) per block.
// AVX2 takes one group per register; the AVX-512 pair kernel two (LutGroupPairGemmAvx512).
//
// compact-codes layout (D4 with at most 256 symbols per level), groups of 16 rows and quads of 4
// chunks (16 entries of a row): codes[quad][level][j][lane] = the stored symbol b_level of chunk
// 4 quad + j, one byte (4 bits per entry at q = 4, M = 2, as stored); t[quad][lane] packs
// min(T, 3) of the quad's 4 chunks in 2-bit fields (larger T are patches, below). The kernels take
// tiles of 4 groups (64 rows; half_base[block][row] = 0.5 x scale x beta), decode the codes into
// weights (through a float panel of a block; AVX-512 with at most 8 queries straight into registers
// or through a panel of one quad)
//   w[c][i][row] = float(sum_m q^m 2 rep(b_m)_i) * ramp[T]
// (exact integer Horner sum, one rounding; the few chunks with T > 3 get their own ramp[T]) and
// then, per query and row, accumulate
//   acc = fma(x[4 c + i], w[c][i], acc)   for c in the block, i = 0..3 in order,
//   total = fma(half_base, acc, total)   per block.
// A single chain per (query, row): the 4 row groups of a tile give a single query 4 independent
// chains, and a tile of queries shares every weight load and every query broadcast.
#pragma once

#include <algorithm>
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
// Two groups at once (the same dim and chunks; a1 may be a0 again when there is no second group),
// 16 rows per register: out is batch x 16, lanes 0-7 a0's rows and 8-15 a1's.
using LutGroupPairGemmFn = void (*)(const LutGroupArgs& a0, const LutGroupArgs& a1, const float* xq, int64_t batch,
                                    float* out);
void LutGroupPairGemmAvx512(const LutGroupArgs& a0, const LutGroupArgs& a1, const float* xq, int64_t batch, float* out);
// The pair kernel for a SIMD level, or null below AVX-512.
LutGroupPairGemmFn GetLutGroupPairGemm(SimdLevel level);
// The smallest batch LutMatrix gives the pair kernel: below it the AVX2 kernel is as fast or
// faster (16384 x 8192, one thread, E8 / D4: batch 1 7.8 / 8.8 ms against 9.6 / 11.9, batch 2
// 12.7 / 12.7 against 12.6 / 13.4; batch 3 16.5 / 15.3 against 14.3 / 14.4).
inline constexpr int64_t kLanePairMinBatch = 3;

// Adds the high-T corrections of one group to out (batch x 8), after the kernel.
void ApplyHighT(const LutGroupArgs& args, const LutHighT* begin, const LutHighT* end, const float* xq, int64_t batch,
                float* out);

// compact-codes: one tile of kCompactGroups groups of 16 rows (layout above).
inline constexpr int kCompactLanes = 16;
inline constexpr int kCompactGroups = 4;
inline constexpr int kCompactRows = kCompactLanes * kCompactGroups;
inline constexpr int64_t kMaxCompactBlockQuads = 64;
// Floats of panel scratch a kernel needs: one block of one tile (64 KB at the default 256-entry block).
inline constexpr int64_t CompactPanelFloats(int64_t quads_per_block) { return quads_per_block * 16 * kCompactRows; }
struct CompactTileArgs {
  int levels = 0;
  int log2_q = 0;
  int64_t quads = 0;            // per row, padded: chunks are padded with the zero point
  int64_t quads_per_block = 0;  // at most kMaxCompactBlockQuads
  int64_t blocks = 0;
  int64_t query_stride = 0;        // floats per query in xq: quads * 16
  const uint8_t* codes = nullptr;  // group g's codes at codes + g * group_codes
  int64_t group_codes = 0;
  const uint8_t* t = nullptr;  // group g's T fields at t + g * group_t
  int64_t group_t = 0;
  const float* half_base = nullptr;               // [block][row of the tile]
  const int8_t* planes = nullptr;                 // Codebook::rep_point_x2_planar_int8: 4 planes of 256 int8
  const int8_t* top_planes = nullptr;             // M = 2: planes times q (exact in int8), else null
  const float* ramp = nullptr;                    // ramp[0..3]
  const LutMatrix::RampPatch* patches = nullptr;  // chunks with T > 3, sorted by chunk
  const LutMatrix::RampPatch* patches_end = nullptr;
};
// out: batch x 64 (row-major per query); panel: CompactPanelFloats(quads_per_block) of scratch,
// 64-byte aligned.
using CompactTileGemmFn = void (*)(const CompactTileArgs& args, const float* xq, int64_t batch, float* panel,
                                   float* out);
void CompactTileGemmPortable(const CompactTileArgs& args, const float* xq, int64_t batch, float* panel, float* out);
void CompactTileGemmAvx2(const CompactTileArgs& args, const float* xq, int64_t batch, float* panel, float* out);
void CompactTileGemmAvx512(const CompactTileArgs& args, const float* xq, int64_t batch, float* panel, float* out);
CompactTileGemmFn GetCompactTileGemm(SimdLevel level);

// 2 x the lattice point of (chunk c, row) of a compact tile, coordinate i: the exact Horner sum.
inline int32_t CompactPointX2(const CompactTileArgs& a, int64_t c, int row, int i) {
  const uint8_t* quad = a.codes + (row / kCompactLanes) * a.group_codes + (c / 4) * a.levels * 64 +
                        (c % 4) * kCompactLanes + row % kCompactLanes;
  int32_t acc = 0;
  for (int m = a.levels - 1; m >= 0; --m) acc = acc * (1 << a.log2_q) + a.planes[i * 256 + quad[m * 64]];
  return acc;
}

// The panel of group g's rows for quads [quad_begin, quad_end) of a compact tile, portable code
// (the reference; the AVX2 kernel uses it as is): panel[((c - 4 quad_begin) * 4 + i) * 4 + g][lane].
inline void DecodeCompactPanel(const CompactTileArgs& a, int g, int64_t quad_begin, int64_t quad_end, float* panel) {
  for (int64_t c = 4 * quad_begin; c < 4 * quad_end; ++c) {
    const uint8_t* t = a.t + g * a.group_t + (c / 4) * kCompactLanes;
    for (int i = 0; i < 4; ++i) {
      float* w = panel + (((c - 4 * quad_begin) * 4 + i) * kCompactGroups + g) * kCompactLanes;
      for (int lane = 0; lane < kCompactLanes; ++lane) {
        const float ramp = a.ramp[(t[lane] >> (2 * (c % 4))) & 3];
        w[lane] = static_cast<float>(CompactPointX2(a, c, g * kCompactLanes + lane, i)) * ramp;
      }
    }
  }
}

// Rewrites the panel weights of the chunks with T > 3 in quads [quad_begin, quad_end) (after all
// groups of the block are decoded) from `next` on; returns the first patch past the range.
inline const LutMatrix::RampPatch* PatchCompactPanel(const CompactTileArgs& a, const LutMatrix::RampPatch* next,
                                                     int64_t quad_begin, int64_t quad_end, float* panel) {
  for (; next != a.patches_end && next->chunk < 4 * quad_end; ++next) {
    for (int i = 0; i < 4; ++i) {
      panel[((next->chunk - 4 * quad_begin) * 4 + i) * kCompactRows + next->row] =
          static_cast<float>(CompactPointX2(a, next->chunk, next->row, i)) * next->ramp;
    }
  }
  return next;
}

// The block loop of a compact kernel: decode(quad_begin, quad_end, panel) fills a block's panel
// (patches included), then fn(block, quad_begin, quad_end) reads it.
template <typename Decode, typename Fn>
inline void ForEachCompactBlock(const CompactTileArgs& a, float* panel, Decode&& decode, Fn&& fn) {
  for (int64_t blk = 0; blk < a.blocks; ++blk) {
    const int64_t q_begin = blk * a.quads_per_block, q_end = std::min(a.quads, q_begin + a.quads_per_block);
    decode(q_begin, q_end, panel);
    fn(blk, q_begin, q_end);
  }
}

// ForEachCompactBlock with the portable decoder (portable and AVX2 kernels).
template <typename Fn>
inline void ForEachPortableCompactBlock(const CompactTileArgs& a, float* panel, Fn&& fn) {
  const LutMatrix::RampPatch* patch = a.patches;
  auto decode = [&](int64_t q_begin, int64_t q_end, float* p) {
    for (int g = 0; g < kCompactGroups; ++g) DecodeCompactPanel(a, g, q_begin, q_end, p);
    patch = PatchCompactPanel(a, patch, q_begin, q_end, p);
  };
  ForEachCompactBlock(a, panel, decode, fn);
}

// <x chunk, lattice point of `lane`> for the int8-lanes layout, in the kernels' operation order.
inline float LaneChunkDot(const LutGroupArgs& a, const float* x, const int8_t* p, int lane) {
  float dot = x[0] * static_cast<float>(p[lane]);
  for (int i = 1; i < a.dim; ++i) dot = std::fmaf(x[i], static_cast<float>(p[i * 8 + lane]), dot);
  return dot;
}

}  // namespace coset
