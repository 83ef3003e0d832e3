// AVX2 kernel of LutMatrix's fast path: 8 weight rows per register, one lane per row. The same
// arithmetic, in the same order, as LutGroupGemmPortable (bit-identical; tests check it).
#include <immintrin.h>

#include <algorithm>

#include "core/inner_product.h"

namespace coset {

namespace {

// Queries per pass over the group's codes: their accumulators stay in L1.
constexpr int64_t kQueryTile = 32;

void GroupTile(const LutGroupArgs& a, const float* xq, int64_t batch, float* out) {
  const int d = a.dim;
  __m256 total[kQueryTile], acc[kQueryTile];
  for (int64_t b = 0; b < batch; ++b) total[b] = _mm256_setzero_ps();
  __m256 p[8];
  for (int64_t blk = 0; blk < a.blocks; ++blk) {
    for (int64_t b = 0; b < batch; ++b) acc[b] = _mm256_setzero_ps();
    const int64_t c_end = std::min(a.chunks, (blk + 1) * a.chunks_per_block);
    for (int64_t c = blk * a.chunks_per_block; c < c_end; ++c) {
      const int8_t* pc = a.points + c * d * 8;
      for (int i = 0; i < d; ++i) {
        p[i] = _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(pc + i * 8))));
      }
      const __m256i t = _mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(a.t + c * 8)));
      const __m256 r = _mm256_i32gather_ps(a.ramp, t, 4);
      for (int64_t b = 0; b < batch; ++b) {
        const float* x = xq + b * a.padded_cols + c * d;
        __m256 dot = _mm256_mul_ps(_mm256_broadcast_ss(x), p[0]);
        for (int i = 1; i < d; ++i) dot = _mm256_fmadd_ps(_mm256_broadcast_ss(x + i), p[i], dot);
        acc[b] = _mm256_fmadd_ps(r, dot, acc[b]);
      }
    }
    const __m256 hb = _mm256_loadu_ps(a.half_base + blk * 8);
    for (int64_t b = 0; b < batch; ++b) total[b] = _mm256_fmadd_ps(hb, acc[b], total[b]);
  }
  for (int64_t b = 0; b < batch; ++b) _mm256_storeu_ps(out + b * 8, total[b]);
}

}  // namespace

void LutGroupGemmAvx2(const LutGroupArgs& a, const float* xq, int64_t batch, float* out) {
  for (int64_t first = 0; first < batch; first += kQueryTile) {
    GroupTile(a, xq + first * a.padded_cols, std::min(kQueryTile, batch - first), out + first * 8);
  }
}

}  // namespace coset
