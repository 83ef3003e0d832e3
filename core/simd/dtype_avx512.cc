// AVX-512 conversions of core/dtype.h, picked at run time through simd/dispatch.h: the hardware's
// float16 conversions (vcvtph2ps, vcvtps2ph with round to nearest even: AVX512F) and bfloat16 as
// integer shifts, 16 elements a step and a masked tail. The same bits as the portable functions
// (tests/core/dtype_test.cc runs every 16-bit pattern and random floats, NaN included, through both).
#include "core/simd/avx512_unit.h"
#include "core/simd/dtype_kernels.h"

namespace coset {
namespace avx512 {
namespace {

// 16-bit elements [i, i + 16), or the masked tail (zeros past n).
inline __m256i Load16(const uint16_t* src, int64_t i, int64_t n) {
  if (n - i >= 16) return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(src + i));
  return _mm256_maskz_loadu_epi16(static_cast<__mmask16>((1u << (n - i)) - 1), src + i);
}

inline void StoreFloats(float* dst, int64_t i, int64_t n, __m512 v) {
  if (n - i >= 16) return _mm512_storeu_ps(dst + i, v);
  _mm512_mask_storeu_ps(dst + i, static_cast<__mmask16>((1u << (n - i)) - 1), v);
}

inline __m512 LoadFloats(const float* src, int64_t i, int64_t n) {
  if (n - i >= 16) return _mm512_loadu_ps(src + i);
  return _mm512_maskz_loadu_ps(static_cast<__mmask16>((1u << (n - i)) - 1), src + i);
}

inline void Store16(uint16_t* dst, int64_t i, int64_t n, __m256i v) {
  if (n - i >= 16) return _mm256_storeu_si256(reinterpret_cast<__m256i*>(dst + i), v);
  _mm256_mask_storeu_epi16(dst + i, static_cast<__mmask16>((1u << (n - i)) - 1), v);
}

}  // namespace

void HalfToFloat(const uint16_t* src, int64_t n, float* dst) {
  for (int64_t i = 0; i < n; i += 16) StoreFloats(dst, i, n, _mm512_cvtph_ps(Load16(src, i, n)));
}

void FloatToHalf(const float* src, int64_t n, uint16_t* dst) {
  for (int64_t i = 0; i < n; i += 16) {
    Store16(dst, i, n, _mm512_cvtps_ph(LoadFloats(src, i, n), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
  }
}

void Bfloat16ToFloat(const uint16_t* src, int64_t n, float* dst) {
  for (int64_t i = 0; i < n; i += 16) {
    StoreFloats(dst, i, n, _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(Load16(src, i, n)), 16)));
  }
}

void FloatToBfloat16(const float* src, int64_t n, uint16_t* dst) {
  const __m512i magnitude = _mm512_set1_epi32(0x7FFFFFFF), inf = _mm512_set1_epi32(0x7F800000);
  const __m512i half_ulp = _mm512_set1_epi32(0x7FFF), one = _mm512_set1_epi32(1), quiet = _mm512_set1_epi32(0x0040);
  for (int64_t i = 0; i < n; i += 16) {
    const __m512i bits = _mm512_castps_si512(LoadFloats(src, i, n));
    // Nearest, ties to even (a carry may reach Inf); a NaN keeps its top bits with the quiet bit set.
    const __m512i even = _mm512_and_si512(_mm512_srli_epi32(bits, 16), one);
    const __m512i rounded = _mm512_srli_epi32(_mm512_add_epi32(bits, _mm512_add_epi32(half_ulp, even)), 16);
    const __mmask16 nan = _mm512_cmpgt_epu32_mask(_mm512_and_si512(bits, magnitude), inf);
    const __m512i out = _mm512_mask_or_epi32(rounded, nan, _mm512_srli_epi32(bits, 16), quiet);
    Store16(dst, i, n, _mm512_cvtepi32_epi16(out));
  }
}

}  // namespace avx512
}  // namespace coset
