// AVX-512 kernel of LutMatrix's compact-codes path (layout and arithmetic: lut_gemm.h): 16 weight
// rows per register. A block's codes are decoded with VBMI byte permutes (as the row decoder reads
// Codebook's planar tables: 2 rep(b) of 64 symbols per coordinate in three instructions, the
// levels' Horner sum on bytes) into a float panel in L1, then tiles of up to six queries stream the panel, each weight reused by
// every query of the tile while it is in a register. Bit-identical to CompactGroupGemmPortable.
#if !defined(__AVX512F__) || !defined(__AVX512BW__) || !defined(__AVX512VBMI__)
#error "lut_gemm_avx512.cc needs AVX512_COPTS (third_party/coset.bzl)"
#endif
// GCC 12's AVX-512 headers trip -W(maybe-)uninitialized on their own placeholders (PR 105593).
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#endif
#include <immintrin.h>

#include <algorithm>

#include "core/limits.h"
#include "core/simd/lut_gemm.h"

namespace coset {
namespace {

// Queries per pass over a panel: 6 x 4 partial accumulators and the weights fit in 32 registers.
constexpr int kQueryTile = 6;

// 2 rep(b)_i of 64 symbols: BytePlanes::Lookup with the top-bit mask computed once per level.
inline __attribute__((always_inline)) __m512i PlaneLookup(const int8_t* planes, __m512i b, __mmask64 top, int i) {
  const __m512i* plane = reinterpret_cast<const __m512i*>(planes + i * 256);
  const __m512i lo = _mm512_permutex2var_epi8(_mm512_loadu_si512(plane), b, _mm512_loadu_si512(plane + 1));
  const __m512i hi = _mm512_permutex2var_epi8(_mm512_loadu_si512(plane + 2), b, _mm512_loadu_si512(plane + 3));
  return _mm512_mask_blend_epi8(top, lo, hi);
}

// Quads [q_begin, q_end) of the group into panel[(c - 4 q_begin) * 4 + i][lane]. kLevels and
// kLog2Q > 0 fix the code at compile time (the common q = 4, M = 2); 0 reads them from the args.
template <int kLevels, int kLog2Q>
void DecodePanel(const CompactGroupArgs& a, int64_t q_begin, int64_t q_end, float* panel) {
  const int levels = kLevels > 0 ? kLevels : a.levels;
  const int log2_q = kLog2Q > 0 ? kLog2Q : a.log2_q;
  // vpermps reads the low 4 bits of an index: ramp[k & 3] at every k ignores the next chunk's field.
  const __m512 ramp = _mm512_setr_ps(a.ramp[0], a.ramp[1], a.ramp[2], a.ramp[3], a.ramp[0], a.ramp[1], a.ramp[2],
                                     a.ramp[3], a.ramp[0], a.ramp[1], a.ramp[2], a.ramp[3], a.ramp[0], a.ramp[1],
                                     a.ramp[2], a.ramp[3]);
  for (int64_t quad = q_begin; quad < q_end; ++quad) {
    const uint8_t* codes = a.codes + quad * levels * 64;
    __m512i b[kLevels > 0 ? kLevels : kMaxLevels];
    __mmask64 top[kLevels > 0 ? kLevels : kMaxLevels];
    for (int m = 0; m < levels; ++m) {
      b[m] = _mm512_loadu_si512(codes + m * 64);
      top[m] = _mm512_movepi8_mask(b[m]);
    }
    alignas(64) int8_t points[4][64];  // [i][j * 16 + lane]
    for (int i = 0; i < 4; ++i) {
      __m512i acc = PlaneLookup(a.planes, b[levels - 1], top[levels - 1], i);
      for (int m = levels - 2; m >= 0; --m) {
        for (int s = 0; s < log2_q; ++s) acc = _mm512_add_epi8(acc, acc);
        acc = _mm512_add_epi8(acc, PlaneLookup(a.planes, b[m], top[m], i));
      }
      _mm512_store_si512(points[i], acc);
    }
    const __m512i t = _mm512_cvtepu8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(a.t + quad * 16)));
    float* w = panel + (quad - q_begin) * 4 * 4 * kCompactLanes;
    for (int j = 0; j < 4; ++j) {
      const __m512 r = _mm512_permutexvar_ps(_mm512_srli_epi32(t, 2 * j), ramp);
      for (int i = 0; i < 4; ++i) {
        const __m512i p = _mm512_cvtepi8_epi32(_mm_load_si128(reinterpret_cast<const __m128i*>(points[i] + 16 * j)));
        _mm512_store_ps(w + (j * 4 + i) * kCompactLanes, _mm512_mul_ps(_mm512_cvtepi32_ps(p), r));
      }
    }
  }
}

// kTile queries (x: the first one's entries of this block) against `chunks` chunks of the panel.
template <int kTile>
inline __attribute__((always_inline)) void Tile(const float* x, int64_t stride, int64_t chunks, const float* panel,
                                                const float* half_base, float* out) {
  __m512 acc[kTile][4];
  for (int b = 0; b < kTile; ++b) {
    for (int j = 0; j < 4; ++j) acc[b][j] = _mm512_setzero_ps();
  }
  for (int64_t c = 0; c < chunks; c += 4) {
    const float* w = panel + c * 4 * kCompactLanes;
    const float* xc = x + 4 * c;
    for (int j = 0; j < 4; ++j) {
      for (int i = 0; i < 4; ++i) {
        const __m512 wi = _mm512_load_ps(w + (j * 4 + i) * kCompactLanes);
        for (int b = 0; b < kTile; ++b) {
          acc[b][j] = _mm512_fmadd_ps(_mm512_set1_ps(xc[b * stride + 4 * j + i]), wi, acc[b][j]);
        }
      }
    }
  }
  const __m512 hb = _mm512_loadu_ps(half_base);
  for (int b = 0; b < kTile; ++b) {
    const __m512 sum = _mm512_add_ps(_mm512_add_ps(acc[b][0], acc[b][1]), _mm512_add_ps(acc[b][2], acc[b][3]));
    float* o = out + b * kCompactLanes;
    _mm512_storeu_ps(o, _mm512_fmadd_ps(hb, sum, _mm512_loadu_ps(o)));
  }
}

}  // namespace

void CompactGroupGemmAvx512(const CompactGroupArgs& a, const float* xq, int64_t batch, float* panel, float* out) {
  const auto decode = a.levels == 2 && a.log2_q == 2 ? &DecodePanel<2, 2> : &DecodePanel<0, 0>;
  std::fill(out, out + batch * kCompactLanes, 0.0f);
  for (int64_t blk = 0; blk < a.blocks; ++blk) {
    const int64_t q_begin = blk * a.quads_per_block, q_end = std::min(a.quads, q_begin + a.quads_per_block);
    decode(a, q_begin, q_end, panel);
    const int64_t chunks = 4 * (q_end - q_begin);
    const float* hb = a.half_base + blk * kCompactLanes;
    for (int64_t first = 0; first < batch; first += kQueryTile) {
      const float* x = xq + first * a.query_stride + 16 * q_begin;
      float* o = out + first * kCompactLanes;
      switch (std::min<int64_t>(kQueryTile, batch - first)) {
        case 1: Tile<1>(x, a.query_stride, chunks, panel, hb, o); break;
        case 2: Tile<2>(x, a.query_stride, chunks, panel, hb, o); break;
        case 3: Tile<3>(x, a.query_stride, chunks, panel, hb, o); break;
        case 4: Tile<4>(x, a.query_stride, chunks, panel, hb, o); break;
        case 5: Tile<5>(x, a.query_stride, chunks, panel, hb, o); break;
        default: Tile<6>(x, a.query_stride, chunks, panel, hb, o); break;
      }
    }
  }
}

}  // namespace coset
