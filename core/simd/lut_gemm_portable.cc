// Portable LUT GEMM kernels (the reference for every ISA), the high-T corrections and the kernel
// tables.
#include <algorithm>
#include <cmath>

#include "core/simd/lut_gemm.h"

namespace coset {

void LutGroupGemmPortable(const LutGroupArgs& a, const float* xq, int64_t batch, float* out) {
  // Mirrors LutGroupGemmAvx2 operation for operation (fused multiply-adds included), so the two
  // are bit-identical: per block, chunk c accumulates into partial (c - first) % 4.
  for (int64_t b = 0; b < batch; ++b) {
    const float* x = xq + b * a.padded_cols;
    for (int lane = 0; lane < 8; ++lane) {
      float total = 0.0f;
      for (int64_t blk = 0; blk < a.blocks; ++blk) {
        float acc[4] = {0.0f, 0.0f, 0.0f, 0.0f};
        const int64_t c_begin = blk * a.chunks_per_block;
        const int64_t c_end = std::min(a.chunks, c_begin + a.chunks_per_block);
        for (int64_t c = c_begin; c < c_end; ++c) {
          const float dot = LaneChunkDot(a, x + c * a.dim, a.points + c * a.dim * 8, lane);
          float& partial = acc[(c - c_begin) & 3];
          partial = std::fmaf(a.ramp[a.t[c * 8 + lane]], dot, partial);
        }
        total = std::fmaf(a.half_base[blk * 8 + lane], (acc[0] + acc[1]) + (acc[2] + acc[3]), total);
      }
      out[b * 8 + lane] = total;
    }
  }
}

void ApplyHighT(const LutGroupArgs& a, const LutHighT* begin, const LutHighT* end, const float* xq, int64_t batch,
                float* out) {
  for (const LutHighT* h = begin; h != end; ++h) {
    const int8_t* p = a.points + static_cast<int64_t>(h->chunk) * a.dim * 8;
    const float half_base = a.half_base[(h->chunk / a.chunks_per_block) * 8 + h->lane];
    for (int64_t b = 0; b < batch; ++b) {
      const float* x = xq + b * a.padded_cols + static_cast<int64_t>(h->chunk) * a.dim;
      out[b * 8 + h->lane] += half_base * (h->extra * LaneChunkDot(a, x, p, h->lane));
    }
  }
}

void CompactTileGemmPortable(const CompactTileArgs& a, const float* xq, int64_t batch, float* panel, float* out) {
  std::fill(out, out + batch * kCompactRows, 0.0f);
  ForEachPortableCompactBlock(a, panel, [&](int64_t blk, int64_t q_begin, int64_t q_end) {
    const int64_t steps = 16 * (q_end - q_begin);  // (chunk, coordinate) pairs
    for (int64_t b = 0; b < batch; ++b) {
      const float* x = xq + b * a.query_stride + 16 * q_begin;
      for (int row = 0; row < kCompactRows; ++row) {
        float acc = 0.0f;
        for (int64_t s = 0; s < steps; ++s) acc = std::fmaf(x[s], panel[s * kCompactRows + row], acc);
        float& total = out[b * kCompactRows + row];
        total = std::fmaf(a.half_base[blk * kCompactRows + row], acc, total);
      }
    }
  });
}

CompactTileGemmFn GetCompactTileGemm(SimdLevel level) {
  if (level >= SimdLevel::kAvx512 && DetectedSimdLevel() >= SimdLevel::kAvx512) return &CompactTileGemmAvx512;
  if (level >= SimdLevel::kAvx2 && DetectedSimdLevel() >= SimdLevel::kAvx2) return &CompactTileGemmAvx2;
  return &CompactTileGemmPortable;
}

LutGroupPairGemmFn GetLutGroupPairGemm(SimdLevel level) {
  if (level >= SimdLevel::kAvx512 && DetectedSimdLevel() >= SimdLevel::kAvx512) return &LutGroupPairGemmAvx512;
  return nullptr;
}

LutGroupGemmFn GetLutGroupGemm(SimdLevel level) {
  if (level >= SimdLevel::kAvx2 && DetectedSimdLevel() >= SimdLevel::kAvx2) return &LutGroupGemmAvx2;
  return &LutGroupGemmPortable;
}

}  // namespace coset
