// AVX2 kernels of LutMatrix's fast paths: 8 weight rows per register, one lane per row. The same
// arithmetic, in the same order, as the portable kernels (bit-identical; tests check it): per
// block, chunk c goes to partial accumulator (c - first) % 4, combined as (a0 + a1) + (a2 + a3).
// The four partials break the dependency chain of the accumulation.
#include <immintrin.h>

#include <algorithm>

#include "core/simd/lut_gemm.h"

namespace coset {
namespace {

// Queries per pass over the group's codes: their accumulators stay in L1.
constexpr int64_t kQueryTile = 16;
// How far ahead the int8-lanes kernel prefetches: 64 chunks, 2 KB of D4 points, 4 KB of E8 (32 and
// 48 chunks were as fast for E8, 96 and more slower for both).
constexpr int64_t kPrefetchChunks = 64;
constexpr int64_t kL2PrefetchChunks = 256;

// The points of chunks c..c+3 of an int8-lanes group into the cache level kHint (a prefetch past
// the end of the array never faults).
// The hint's type differs between compilers (GCC: enum _mm_hint, clang: int), hence the cast.
template <int d, int kHint>
inline void PrefetchFourChunks(const int8_t* points, int64_t c) {
  const int8_t* first = points + c * d * 8;
  for (int line = 0; line < d * 8 * 4; line += 64)
    _mm_prefetch(reinterpret_cast<const char*>(first + line), static_cast<decltype(_MM_HINT_T0)>(kHint));
}

// kBatch > 0 fixes the number of queries at compile time (1: everything stays in registers).
template <int d, int kBatch>
void GroupTile(const LutGroupArgs& a, const float* xq, int64_t runtime_batch, float* out) {
  const int64_t batch = kBatch > 0 ? kBatch : runtime_batch;
  constexpr int64_t kSlots = kBatch > 0 ? kBatch : kQueryTile;
  const __m256 ramp = _mm256_loadu_ps(a.ramp);  // T <= 7 here (see LutHighT)
  __m256 total[kSlots], acc[kSlots][4];
  for (int64_t b = 0; b < batch; ++b) total[b] = _mm256_setzero_ps();
  for (int64_t blk = 0; blk < a.blocks; ++blk) {
    for (int64_t b = 0; b < batch; ++b) {
      for (int k = 0; k < 4; ++k) acc[b][k] = _mm256_setzero_ps();
    }
    const int64_t c_begin = blk * a.chunks_per_block;
    const int64_t c_end = std::min(a.chunks, c_begin + a.chunks_per_block);
    // One chunk into partial accumulator k (compile-time in the unrolled loop, so batch-1
    // accumulators stay in registers).
    auto chunk = [&](int64_t c, int k) __attribute__((always_inline)) {
      const int8_t* pc = a.points + c * d * 8;
      __m256 p[d];
      for (int i = 0; i < d; ++i) {
        p[i] = _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(pc + i * 8))));
      }
      const __m256i t = _mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(a.t + c * 8)));
      const __m256 r = _mm256_permutevar8x32_ps(ramp, t);
      for (int64_t b = 0; b < batch; ++b) {
        const float* x = xq + b * a.padded_cols + c * d;
        __m256 dot = _mm256_mul_ps(_mm256_broadcast_ss(x), p[0]);
        for (int i = 1; i < d; ++i) dot = _mm256_fmadd_ps(_mm256_broadcast_ss(x + i), p[i], dot);
        acc[b][k] = _mm256_fmadd_ps(r, dot, acc[b][k]);
      }
    };
    int64_t c = c_begin;
    for (; c + 4 <= c_end; c += 4) {
      // The points and T of the chunks kPrefetchChunks ahead into L1: the hardware prefetchers
      // alone left batch 1 at 10.4-10.8 ms (16 GB/s of the 24 one core streams) for D4 and E8;
      // with this 8.2-8.5 (D4) and 7.7-8.1 (E8), batch 8 40-43 -> 38.7-39.3 (alternating builds).
      PrefetchFourChunks<d, _MM_HINT_T0>(a.points, c + kPrefetchChunks);
      _mm_prefetch(reinterpret_cast<const char*>(a.t + (c + kPrefetchChunks) * 8), _MM_HINT_T0);
      // A single query also takes the points kL2PrefetchChunks ahead into L2: batch 1 8.2-8.7 ->
      // 7.6-7.8 ms for D4, 7.8-7.9 -> 7.6-7.8 for E8 (batch 2 was no faster).
      if constexpr (kBatch == 1) PrefetchFourChunks<d, _MM_HINT_T1>(a.points, c + kL2PrefetchChunks);
      chunk(c, 0);
      chunk(c + 1, 1);
      chunk(c + 2, 2);
      chunk(c + 3, 3);
    }
    for (int k = 0; c < c_end; ++c, ++k) chunk(c, k);
    const __m256 hb = _mm256_loadu_ps(a.half_base + blk * 8);
    for (int64_t b = 0; b < batch; ++b) {
      const __m256 sum = _mm256_add_ps(_mm256_add_ps(acc[b][0], acc[b][1]), _mm256_add_ps(acc[b][2], acc[b][3]));
      total[b] = _mm256_fmadd_ps(hb, sum, total[b]);
    }
  }
  for (int64_t b = 0; b < batch; ++b) _mm256_storeu_ps(out + b * 8, total[b]);
}

template <int d>
void GroupGemm(const LutGroupArgs& a, const float* xq, int64_t batch, float* out) {
  if (batch == 1) return GroupTile<d, 1>(a, xq, 1, out);
  for (int64_t first = 0; first < batch; first += kQueryTile) {
    GroupTile<d, 0>(a, xq + first * a.padded_cols, std::min(kQueryTile, batch - first), out + first * 8);
  }
}

// compact-codes: one query against a decoded panel, 64 rows as eight registers (eight chains).
void CompactQuery(const float* x, int64_t steps, const float* panel, const float* half_base, float* out) {
  __m256 acc[8];
  for (int r = 0; r < 8; ++r) acc[r] = _mm256_setzero_ps();
  for (int64_t s = 0; s < steps; ++s) {
    const __m256 xs = _mm256_broadcast_ss(x + s);
    for (int r = 0; r < 8; ++r) acc[r] = _mm256_fmadd_ps(xs, _mm256_loadu_ps(panel + s * kCompactRows + 8 * r), acc[r]);
  }
  for (int r = 0; r < 8; ++r) {
    _mm256_storeu_ps(out + 8 * r,
                     _mm256_fmadd_ps(_mm256_loadu_ps(half_base + 8 * r), acc[r], _mm256_loadu_ps(out + 8 * r)));
  }
}

}  // namespace

void CompactTileGemmAvx2(const CompactTileArgs& a, const float* xq, int64_t batch, float* panel, float* out) {
  std::fill(out, out + batch * kCompactRows, 0.0f);
  ForEachPortableCompactBlock(a, panel, [&](int64_t blk, int64_t q_begin, int64_t q_end) {
    for (int64_t b = 0; b < batch; ++b) {
      CompactQuery(xq + b * a.query_stride + 16 * q_begin, 16 * (q_end - q_begin), panel,
                   a.half_base + blk * kCompactRows, out + b * kCompactRows);
    }
  });
}

void LutGroupGemmAvx2(const LutGroupArgs& a, const float* xq, int64_t batch, float* out) {
  if (a.dim == 4) return GroupGemm<4>(a, xq, batch, out);
  return GroupGemm<8>(a, xq, batch, out);
}

}  // namespace coset
