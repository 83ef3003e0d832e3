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

void CompactGroupGemmPortable(const CompactGroupArgs& a, const float* xq, int64_t batch, float* panel, float* out) {
  std::fill(out, out + batch * kCompactLanes, 0.0f);
  for (int64_t blk = 0; blk < a.blocks; ++blk) {
    const int64_t q_begin = blk * a.quads_per_block, q_end = std::min(a.quads, q_begin + a.quads_per_block);
    DecodeCompactPanel(a, q_begin, q_end, panel);
    const int64_t chunks = 4 * (q_end - q_begin);
    for (int64_t b = 0; b < batch; ++b) {
      const float* x = xq + b * a.query_stride + 16 * q_begin;
      for (int lane = 0; lane < kCompactLanes; ++lane) {
        float acc[4] = {0.0f, 0.0f, 0.0f, 0.0f};
        for (int64_t c = 0; c < chunks; ++c) {
          for (int i = 0; i < 4; ++i)
            acc[c & 3] = std::fmaf(x[4 * c + i], panel[(c * 4 + i) * kCompactLanes + lane], acc[c & 3]);
        }
        float& total = out[b * kCompactLanes + lane];
        total = std::fmaf(a.half_base[blk * kCompactLanes + lane], (acc[0] + acc[1]) + (acc[2] + acc[3]), total);
      }
    }
  }
}

void ApplyCompactHighT(const CompactGroupArgs& a, const LutHighT* begin, const LutHighT* end, const float* xq,
                       int64_t batch, float* out) {
  for (const LutHighT* h = begin; h != end; ++h) {
    float p[4];
    for (int i = 0; i < 4; ++i) p[i] = static_cast<float>(CompactPointX2(a, h->chunk, h->lane, i));
    const float half_base = a.half_base[(h->chunk / (4 * a.quads_per_block)) * kCompactLanes + h->lane];
    for (int64_t b = 0; b < batch; ++b) {
      const float* x = xq + b * a.query_stride + static_cast<int64_t>(h->chunk) * 4;
      float dot = x[0] * p[0];
      for (int i = 1; i < 4; ++i) dot = std::fmaf(x[i], p[i], dot);
      out[b * kCompactLanes + h->lane] += half_base * (h->extra * dot);
    }
  }
}

CompactGroupGemmFn GetCompactGroupGemm(SimdLevel level) {
  if (level >= SimdLevel::kAvx512 && DetectedSimdLevel() >= SimdLevel::kAvx512) return &CompactGroupGemmAvx512;
  if (level >= SimdLevel::kAvx2 && DetectedSimdLevel() >= SimdLevel::kAvx2) return &CompactGroupGemmAvx2;
  return &CompactGroupGemmPortable;
}

LutGroupGemmFn GetLutGroupGemm(SimdLevel level) {
  if (level >= SimdLevel::kAvx2 && DetectedSimdLevel() >= SimdLevel::kAvx2) return &LutGroupGemmAvx2;
  return &LutGroupGemmPortable;
}

}  // namespace coset
