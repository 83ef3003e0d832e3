#include "core/exact_sum.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <type_traits>
#include <vector>

#ifdef __SSE2__
#include <emmintrin.h>
#include <xmmintrin.h>
#endif

#include "absl/strings/str_cat.h"
#include "core/limits.h"
#include "core/simd/dispatch.h"
#include "core/simd/wire_kernels.h"
#include "core/status_macros.h"
#include "core/symbol_packing.h"

namespace coset {
namespace {

// floor(v + 1/2), the lattice kernels' tie rule (lattice.h), without branches or libm: std::floor
// is a libm call on baseline x86-64 (no SSE4.1 round), and a branch on the sign mispredicts on
// every other random entry; both made this loop 3-4x slower. |v| <= 2^24 here (y is bounded by
// `range`); anything else is clamped there, and NaN (a NaN gradient) maps to 0.
inline float RoundHalfUpFast(float v) {
  float t = v + 0.5f;
  t = t == t ? t : 0.0f;
  t = std::min(std::max(t, -16777216.0f), 16777216.0f);
  const int32_t truncated = static_cast<int32_t>(t);
  return static_cast<float>(truncated - static_cast<int32_t>(static_cast<float>(truncated) > t));
}

// RoundHalfUpFast over an array; SSE2 (every x86-64) four at a time, the same results.
void RoundHalfUpAll(const float* y, int64_t n, float* p) {
  int64_t i = 0;
#ifdef __SSE2__
  const __m128 half = _mm_set1_ps(0.5f), lo = _mm_set1_ps(-16777216.0f), hi = _mm_set1_ps(16777216.0f);
  for (; i + 4 <= n; i += 4) {
    __m128 t = _mm_add_ps(_mm_loadu_ps(y + i), half);
    t = _mm_and_ps(t, _mm_cmpord_ps(t, t));  // NaN -> 0
    t = _mm_min_ps(_mm_max_ps(t, lo), hi);
    const __m128 truncated = _mm_cvtepi32_ps(_mm_cvttps_epi32(t));
    // floor = truncated - 1 where truncation rounded up (negative non-integers).
    _mm_storeu_ps(p + i, _mm_sub_ps(truncated, _mm_and_ps(_mm_cmpgt_ps(truncated, t), _mm_set1_ps(1.0f))));
  }
#endif
  for (; i < n; ++i) p[i] = RoundHalfUpFast(y[i]);
}

// D_n's parity fix for n = 4, in place on rounded p: where a chunk's coordinates sum to an odd
// number, re-round its farthest-rounded coordinate (the first on equal gaps) towards y. SSE2, four
// chunks at a time (transposed, so each register holds one coordinate of four chunks); returns how
// many entries it did (a multiple of 16), the caller finishes the rest.
int64_t FixD4Parity(const float* y, float* p, int64_t n) {
  int64_t i = 0;
#ifdef __SSE2__
  const __m128 sign = _mm_set1_ps(-0.0f), one = _mm_set1_ps(1.0f), minus_one = _mm_set1_ps(-1.0f);
  for (; i + 16 <= n; i += 16) {
    __m128 p0 = _mm_loadu_ps(p + i), p1 = _mm_loadu_ps(p + i + 4), p2 = _mm_loadu_ps(p + i + 8),
           p3 = _mm_loadu_ps(p + i + 12);
    __m128 y0 = _mm_loadu_ps(y + i), y1 = _mm_loadu_ps(y + i + 4), y2 = _mm_loadu_ps(y + i + 8),
           y3 = _mm_loadu_ps(y + i + 12);
    _MM_TRANSPOSE4_PS(p0, p1, p2, p3);
    _MM_TRANSPOSE4_PS(y0, y1, y2, y3);
    const __m128 g0 = _mm_andnot_ps(sign, _mm_sub_ps(y0, p0)), g1 = _mm_andnot_ps(sign, _mm_sub_ps(y1, p1)),
                 g2 = _mm_andnot_ps(sign, _mm_sub_ps(y2, p2)), g3 = _mm_andnot_ps(sign, _mm_sub_ps(y3, p3));
    const __m128i sum = _mm_cvttps_epi32(_mm_add_ps(_mm_add_ps(p0, p1), _mm_add_ps(p2, p3)));
    const __m128 odd = _mm_castsi128_ps(_mm_cmpeq_epi32(_mm_and_si128(sum, _mm_set1_epi32(1)), _mm_set1_epi32(1)));
    const __m128 m = _mm_max_ps(_mm_max_ps(g0, g1), _mm_max_ps(g2, g3));
    __m128 taken = _mm_cmpeq_ps(g0, m);
    const __m128 s0 = taken;
    const __m128 s1 = _mm_andnot_ps(taken, _mm_cmpeq_ps(g1, m));
    taken = _mm_or_ps(taken, s1);
    const __m128 s2 = _mm_andnot_ps(taken, _mm_cmpeq_ps(g2, m));
    taken = _mm_or_ps(taken, s2);
    const __m128 s3 = _mm_andnot_ps(taken, _mm_cmpeq_ps(g3, m));
    auto fix = [&](__m128 pj, __m128 yj, __m128 sj) {
      const __m128 up = _mm_cmpge_ps(yj, pj);
      const __m128 dir = _mm_or_ps(_mm_and_ps(up, one), _mm_andnot_ps(up, minus_one));
      return _mm_add_ps(pj, _mm_and_ps(_mm_and_ps(sj, odd), dir));
    };
    p0 = fix(p0, y0, s0);
    p1 = fix(p1, y1, s1);
    p2 = fix(p2, y2, s2);
    p3 = fix(p3, y3, s3);
    _MM_TRANSPOSE4_PS(p0, p1, p2, p3);
    _mm_storeu_ps(p + i, p0);
    _mm_storeu_ps(p + i + 4, p1);
    _mm_storeu_ps(p + i + 8, p2);
    _mm_storeu_ps(p + i + 12, p3);
  }
#endif
  return i;
}

// E8's nearest point as integral coordinates 2p: E8 = D8 ∪ (D8 + 1/2), the closer candidate (D8 on
// equal distance), with the registry's D_n kernel (lattice.h), exactly as E8Kernel picks it.
void NearestE8Twice(const float* y, int32_t* c) {
  float a[8], b[8], shifted[8];
  lattice_internal::NearestDnPoint(y, 8, a);
  for (int i = 0; i < 8; ++i) shifted[i] = y[i] - 0.5f;
  lattice_internal::NearestDnPoint(shifted, 8, b);
  float da = 0, db = 0;
  for (int i = 0; i < 8; ++i) {
    da += (y[i] - a[i]) * (y[i] - a[i]);
    db += (shifted[i] - b[i]) * (shifted[i] - b[i]);
  }
  for (int i = 0; i < 8; ++i) c[i] = da <= db ? 2 * static_cast<int32_t>(a[i]) : 2 * static_cast<int32_t>(b[i]) + 1;
}

}  // namespace

absl::StatusOr<ExactSumSpec> ExactSumSpec::Create(const CodecParams& params, int world, int bound) {
  COSET_RETURN_IF_ERROR(ValidateParams(params));
  if (params.block <= 0) return absl::InvalidArgumentError("exact sums need resolved parameters (block > 0)");
  if (world < 1 || world > (1 << 16)) {
    return absl::InvalidArgumentError(absl::StrCat("world size must be in 1..65536, got ", world));
  }
  ExactSumSpec s;
  s.lattice = params.lattice;
  s.dim = params.lattice.dim();
  s.world = world;
  s.block = params.block;
  switch (params.lattice.kind()) {
    case LatticeKind::kZ:
    case LatticeKind::kD:
      s.coordinate_factor = 1;
      break;
    case LatticeKind::kE8:
      s.coordinate_factor = 2;
      break;
    case LatticeKind::kA2:
      return absl::InvalidArgumentError("exact sums need integral coordinates: use Zn, Dn or E8, not A2");
  }
  if (bound == 0) {
    // The code region's span: its points reach about +-(q^M - 1) per integral coordinate (measured:
    // D4 q=4 M=2 -15..15, q=3 -8..8; E8 q=4 M=2 2p in -30..26), i.e. M log2 q + 1 bits at W = 1.
    int64_t qm = 1;
    for (int m = 0; m < params.M; ++m) qm *= params.q;
    bound = static_cast<int>(std::min<int64_t>(s.coordinate_factor * (qm - 1), int64_t{1} << 24));
  }
  if (bound < 1 || bound > (1 << 24))
    return absl::InvalidArgumentError(absl::StrCat("bound must be in 1..2^24, got ", bound));
  s.bound = bound;
  s.range = s.coordinate_factor == 1 ? static_cast<float>(bound) : (bound - 1) / 2.0f;
  if (s.range <= 0.0f) return absl::InvalidArgumentError("E8 exact sums need bound >= 3");
  s.bits = BitWidth(int64_t{2} * world * bound);
  if (s.bits > 31) {
    return absl::InvalidArgumentError(absl::StrCat("sums of ", world, " ranks at bound ", bound, " need ", s.bits,
                                                   " bits per coordinate (at most 31)"));
  }
  s.fields_per_word = 63 / s.bits;
  s.unit = std::lcm<int64_t>(s.dim, s.fields_per_word);
  return s;
}

void BlockAbsMax(const ExactSumSpec& spec, const float* x, const float* residual, int64_t numel, int64_t begin,
                 int64_t end, float* out) {
  for (int64_t b = begin; b < end; ++b) {
    const int64_t lo = b * spec.block, hi = std::min(numel, lo + spec.block);
    float m = 0.0f;
    int64_t i = lo;
#ifdef __SSE2__
    // Four lanes at a time: max_ps(a, m) keeps m where a is NaN, as std::max(m, a) does, and a max
    // is exact in any order.
    const __m128 magnitude = _mm_castsi128_ps(_mm_set1_epi32(0x7FFFFFFF));
    __m128 lanes = _mm_setzero_ps();
    for (; i + 4 <= hi; i += 4) {
      __m128 v = _mm_loadu_ps(x + i);
      if (residual != nullptr) v = _mm_add_ps(v, _mm_loadu_ps(residual + i));
      lanes = _mm_max_ps(_mm_and_ps(v, magnitude), lanes);
    }
    alignas(16) float lane[4];
    _mm_store_ps(lane, lanes);
    for (const float l : lane) m = std::max(m, l);
#endif
    for (; i < hi; ++i) m = std::max(m, std::fabs(x[i] + (residual != nullptr ? residual[i] : 0.0f)));
    out[b] = std::max(m, kMinStep);
  }
}

namespace {

// Field packing. kBits > 0 fixes the field width at compile time, so the per-word loop unrolls;
// 0 takes `bits` at run time. WithWidth picks the compile-time kernel for the common widths (5..9
// bits: D4 q=4 M=2 at W = 1..16) and the run-time one otherwise.
template <int kBits>
void PackFieldsAt(int bits, const int32_t* values, int64_t count, int32_t bias, int64_t* words) {
  const int width = kBits > 0 ? kBits : bits;
  const int fields = 63 / width;
  for (int64_t e = 0; e < count; e += fields) {
    uint64_t packed = 0;
    for (int k = 0; k < fields; ++k) packed |= static_cast<uint64_t>(values[e + k] + bias) << (width * k);
    *words++ = static_cast<int64_t>(packed);
  }
}

template <int kBits>
void UnpackFieldsAt(int bits, const int64_t* words, int64_t count, int32_t offset, int32_t* values) {
  const int width = kBits > 0 ? kBits : bits;
  const int fields = 63 / width;
  const uint64_t mask = (uint64_t{1} << width) - 1;
  for (int64_t e = 0; e < count; e += fields) {
    const uint64_t packed = static_cast<uint64_t>(*words++);
    for (int k = 0; k < fields; ++k) values[e + k] = static_cast<int32_t>((packed >> (width * k)) & mask) - offset;
  }
}

// Calls fn(std::integral_constant<int, W>) with W = bits for 5..9, else W = 0.
template <typename Fn>
void WithWidth(int bits, Fn&& fn) {
  switch (bits) {
    case 5:
      return fn(std::integral_constant<int, 5>());
    case 6:
      return fn(std::integral_constant<int, 6>());
    case 7:
      return fn(std::integral_constant<int, 7>());
    case 8:
      return fn(std::integral_constant<int, 8>());
    case 9:
      return fn(std::integral_constant<int, 9>());
    default:
      return fn(std::integral_constant<int, 0>());
  }
}

// values: count entries, count a multiple of 63 / bits (whole words); + bias makes them >= 0.
void PackFields(int bits, const int32_t* values, int64_t count, int32_t bias, int64_t* words) {
  WithWidth(bits, [&](auto w) { PackFieldsAt<decltype(w)::value>(bits, values, count, bias, words); });
}

// values: room for count rounded up to whole words; each field minus offset.
void UnpackFields(int bits, const int64_t* words, int64_t count, int32_t offset, int32_t* values) {
  // AVX-512 takes whole groups of eight words; the loops below the rest.
  const int64_t done = bits <= 8 && ActiveSimdLevel() >= SimdLevel::kAvx512
                           ? avx512::UnpackFields(words, count, bits, offset, values)
                           : 0;
  WithWidth(bits, [&](auto w) {
    UnpackFieldsAt<decltype(w)::value>(bits, words + done / (63 / bits), count - done, offset, values + done);
  });
}

// Work is done in tiles of whole units (about 4096 entries): lattice points or summed fields go
// through a small int32 buffer, so the packing and scaling loops run over plain arrays.
int64_t TileEntries(const ExactSumSpec& spec) { return spec.unit * std::max<int64_t>(1, 4096 / spec.unit); }

}  // namespace

void QuantizeToWords(const ExactSumSpec& spec, const float* x, float* residual, int64_t numel, const float* scales,
                     int64_t begin, int64_t end, int64_t* words) {
  const int d = spec.dim, F = spec.fields_per_word, bits = spec.bits;
  const LatticeKind kind = spec.lattice.kind();
  const int64_t first = begin * spec.unit, last = end * spec.unit, tile_len = TileEntries(spec);
  // D4 (the default code) on AVX-512: one register pass per block instead of the loops below, which
  // alone use v, y and p.
  const bool d4_avx512 = kind == LatticeKind::kD && d == 4 && ActiveSimdLevel() >= SimdLevel::kAvx512;
  const int64_t float_tile = d4_avx512 ? 0 : tile_len;
  std::vector<float> v(float_tile), y(float_tile), p(float_tile);
  std::vector<int32_t> tile(tile_len);
  for (int64_t t0 = first; t0 < last; t0 += tile_len) {
    const int64_t t1 = std::min(last, t0 + tile_len), live = std::max<int64_t>(0, std::min(t1, numel) - t0);
    const int64_t len = t1 - t0;
    if (d4_avx512) {
      for (int64_t i = 0; i < live;) {
        const int64_t block = (t0 + i) / spec.block, stop = std::min(live, (block + 1) * spec.block - t0);
        avx512::QuantizeD4Run(x + t0 + i, residual != nullptr ? residual + t0 + i : nullptr, stop - i,
                              spec.range / scales[block], scales[block] / (spec.range * spec.coordinate_factor),
                              spec.bound, tile.data() + i);
        i = stop;
      }
      // Whole chunks past numel are zeros, whose nearest point is 0.
      std::fill(tile.begin() + std::min(len, (live + d - 1) / d * d), tile.begin() + len, 0);
      PackFields(bits, tile.data(), len, spec.bound, words + t0 / F);
      continue;
    }
    // v = x + residual and y = v scaled to the lattice, block by block (entries past numel: 0).
    for (int64_t i = 0; i < live; ++i) v[i] = x[t0 + i] + (residual != nullptr ? residual[t0 + i] : 0.0f);
    std::fill(v.begin() + live, v.begin() + len, 0.0f);
    for (int64_t i = 0; i < live;) {
      const int64_t block = (t0 + i) / spec.block, stop = std::min(live, (block + 1) * spec.block - t0);
      const float to_lattice = spec.range / scales[block];
      for (; i < stop; ++i) {
        const float scaled = v[i] * to_lattice;
        y[i] = scaled == scaled ? scaled : 0.0f;  // a NaN gradient's entries quantize as 0
      }
    }
    std::fill(y.begin() + live, y.begin() + len, 0.0f);
    if (kind == LatticeKind::kE8) {
      for (int64_t i = 0; i < len; i += d) NearestE8Twice(y.data() + i, tile.data() + i);
    } else {
      // Z^n and D_n: round every entry (a loop the compiler vectorizes), then D_n fixes the
      // parity of each chunk by re-rounding its farthest-rounded coordinate (the first on ties).
      RoundHalfUpAll(y.data(), len, p.data());
      if (kind == LatticeKind::kD) {
        for (int64_t i = d == 4 ? FixD4Parity(y.data(), p.data(), len) : 0; i < len; i += d) {
          int32_t sum = 0;
          int worst = 0;
          float worst_gap = -1.0f;
          for (int j = 0; j < d; ++j) {
            sum += static_cast<int32_t>(p[i + j]);
            const float gap = std::fabs(y[i + j] - p[i + j]);
            worst = gap > worst_gap ? j : worst;  // selects, not branches: the data is random
            worst_gap = std::max(gap, worst_gap);
          }
          const float away = y[i + worst] >= p[i + worst] ? 1.0f : -1.0f;
          p[i + worst] += static_cast<float>(sum & 1) * away;
        }
      }
      for (int64_t i = 0; i < len; ++i) tile[i] = static_cast<int32_t>(p[i]);
    }
    // Float rounding can put y a hair past `range`; the clamp keeps every field in its bits.
    for (int64_t i = 0; i < len; ++i) tile[i] = std::clamp(tile[i], -spec.bound, spec.bound);
    if (residual != nullptr) {
      for (int64_t i = 0; i < live;) {
        const int64_t block = (t0 + i) / spec.block, stop = std::min(live, (block + 1) * spec.block - t0);
        const float from_lattice = scales[block] / (spec.range * spec.coordinate_factor);
        for (; i < stop; ++i) residual[t0 + i] = v[i] - static_cast<float>(tile[i]) * from_lattice;
      }
    }
    // Pack: F fields per word, offset by bound so that every field is non-negative.
    PackFields(bits, tile.data(), len, spec.bound, words + t0 / F);
  }
}

void WordsToValues(const ExactSumSpec& spec, const int64_t* words, int64_t numel, const float* scales, int summed_ranks,
                   float multiplier, int64_t begin, int64_t end, float* out) {
  const int F = spec.fields_per_word, bits = spec.bits;
  const int32_t offset = summed_ranks * spec.bound;
  const float per_scale = multiplier / (spec.range * spec.coordinate_factor);
  const int64_t first = begin * spec.unit, last = std::min(numel, end * spec.unit), tile_len = TileEntries(spec);
  std::vector<int32_t> tile(tile_len + F);
  for (int64_t t0 = first; t0 < last; t0 += tile_len) {
    const int64_t t1 = std::min(last, t0 + tile_len);
    UnpackFields(bits, words + t0 / F, t1 - t0, offset, tile.data());
    for (int64_t e = t0; e < t1;) {
      const int64_t block = e / spec.block, stop = std::min(t1, (block + 1) * spec.block);
      const float step = scales[block] * per_scale;
      const int32_t* ci = tile.data() - t0;
      for (; e < stop; ++e) out[e] = static_cast<float>(ci[e]) * step;
    }
  }
}

}  // namespace coset
