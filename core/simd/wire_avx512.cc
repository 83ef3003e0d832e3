// AVX-512 kernels of the DDP wire forms (simd/wire_kernels.h), compiled with AVX512_COPTS;
// dispatch picks them only on CPUs with those features.
#include <algorithm>
#include <cstdint>

#include "core/simd/avx512_unit.h"
#include "core/simd/wire_kernels.h"

namespace coset {
namespace avx512 {

// Exact sums (core/exact_sum.cc). Lanes hold entries in their own order: a 128-bit lane is one D4
// chunk, so the chunk's parity and farthest coordinate are found with in-lane shuffles, no
// transposes.

void QuantizeD4Run(const float* x, float* residual, int64_t n, float to_lattice, float from_lattice, int32_t bound,
                   int32_t* points) {
  const __m512 to = _mm512_set1_ps(to_lattice), from = _mm512_set1_ps(from_lattice);
  const __m512 half = _mm512_set1_ps(0.5f), lowest = _mm512_set1_ps(-16777216.0f),
               highest = _mm512_set1_ps(16777216.0f), one = _mm512_set1_ps(1.0f), minus_one = _mm512_set1_ps(-1.0f);
  const __m512i most = _mm512_set1_epi32(bound), least = _mm512_set1_epi32(-bound), odd_bit = _mm512_set1_epi32(1);
  for (int64_t i = 0; i < n; i += 16) {
    const int64_t left = n - i;
    // Valid entries, and the whole chunks they touch (a partial last chunk is zero-padded).
    const __mmask16 valid = left >= 16 ? 0xFFFF : static_cast<__mmask16>((1u << left) - 1);
    const __mmask16 chunks = left >= 16 ? 0xFFFF : static_cast<__mmask16>((1u << ((left + 3) & ~3)) - 1);
    __m512 v = _mm512_add_ps(_mm512_maskz_loadu_ps(valid, x + i),
                             residual != nullptr ? _mm512_maskz_loadu_ps(valid, residual + i) : _mm512_setzero_ps());
    __m512 y = _mm512_mul_ps(v, to);
    y = _mm512_maskz_mov_ps(_mm512_cmp_ps_mask(y, y, _CMP_ORD_Q), y);  // NaN -> 0
    // floor(y + 1/2), clamped to +-2^24 first as the portable rounding does.
    const __m512 t = _mm512_min_ps(_mm512_max_ps(_mm512_add_ps(y, half), lowest), highest);
    __m512 p = _mm512_roundscale_ps(t, _MM_FROUND_TO_NEG_INF | _MM_FROUND_NO_EXC);
    // The chunk's largest rounding gap (every lane of the chunk gets it), then the first
    // coordinate holding it: a set bit survives only with no set bit below it in its nibble.
    const __m512 gap = _mm512_abs_ps(_mm512_sub_ps(y, p));
    const __m512 pair_max = _mm512_max_ps(gap, _mm512_permute_ps(gap, 0xB1));
    const __m512 chunk_max = _mm512_max_ps(pair_max, _mm512_permute_ps(pair_max, 0x4E));
    const unsigned at_max = _mm512_cmp_ps_mask(gap, chunk_max, _CMP_EQ_OQ);
    const unsigned below = ((at_max << 1) & 0xEEEEu) | ((at_max << 2) & 0xCCCCu) | ((at_max << 3) & 0x8888u);
    // Odd coordinate sums (exact in int32) are re-rounded at that coordinate, towards y.
    const __m512i z = _mm512_cvttps_epi32(p);
    const __m512i pair_sum = _mm512_add_epi32(z, _mm512_shuffle_epi32(z, _MM_PERM_CDAB));
    const __m512i chunk_sum = _mm512_add_epi32(pair_sum, _mm512_shuffle_epi32(pair_sum, _MM_PERM_BADC));
    const __mmask16 fix = static_cast<__mmask16>(at_max & ~below) & _mm512_test_epi32_mask(chunk_sum, odd_bit);
    const __m512 away = _mm512_mask_blend_ps(_mm512_cmp_ps_mask(y, p, _CMP_GE_OQ), minus_one, one);
    p = _mm512_mask_add_ps(p, fix, p, away);
    const __m512i point = _mm512_min_epi32(_mm512_max_epi32(_mm512_cvttps_epi32(p), least), most);
    _mm512_mask_storeu_epi32(points + i, chunks, point);
    if (residual != nullptr) {
      _mm512_mask_storeu_ps(residual + i, valid, _mm512_sub_ps(v, _mm512_mul_ps(_mm512_cvtepi32_ps(point), from)));
    }
  }
}

int64_t UnpackFields(const int64_t* words, int64_t count, int bits, int32_t offset, int32_t* values) {
  const int fields = 63 / bits;
  // Byte k of 64-bit lane j: field k (first) or field 8 + k (second) of word j.
  alignas(64) uint8_t first_shift[64], second_shift[64], order[128] = {};
  for (int j = 0; j < 8; ++j) {
    for (int k = 0; k < 8; ++k) {
      first_shift[8 * j + k] = static_cast<uint8_t>(k * bits);
      second_shift[8 * j + k] = static_cast<uint8_t>(std::min(8 + k, fields - 1) * bits);
    }
  }
  // Entry j * fields + k of eight words, from byte 8 j + k of the first (k < 8) or the second
  // (64 + 8 j + k - 8) register.
  for (int j = 0; j < 8; ++j) {
    for (int k = 0; k < fields; ++k)
      order[j * fields + k] = static_cast<uint8_t>(k < 8 ? 8 * j + k : 64 + 8 * j + k - 8);
  }
  const __m512i first_v = _mm512_load_si512(first_shift), second_v = _mm512_load_si512(second_shift);
  const __m512i order_lo = _mm512_load_si512(order), order_hi = _mm512_load_si512(order + 64);
  const __m512i mask = _mm512_set1_epi8(static_cast<char>((1u << bits) - 1)), offset_v = _mm512_set1_epi32(offset);
  const int64_t per_group = 8 * fields;  // entries of eight words: 56..96
  alignas(64) uint8_t bytes[128];
  int64_t e = 0;
  for (; e + per_group <= count; e += per_group) {
    const __m512i w = _mm512_loadu_si512(words + e / fields);
    const __m512i a = _mm512_and_si512(_mm512_multishift_epi64_epi8(first_v, w), mask);
    const __m512i b = _mm512_and_si512(_mm512_multishift_epi64_epi8(second_v, w), mask);
    _mm512_store_si512(bytes, _mm512_permutex2var_epi8(a, order_lo, b));
    _mm512_store_si512(bytes + 64, _mm512_permutex2var_epi8(a, order_hi, b));
    for (int i = 0; i < per_group; i += 16) {
      const __m512i v = _mm512_cvtepu8_epi32(_mm_load_si128(reinterpret_cast<const __m128i*>(bytes + i)));
      const __mmask16 keep = per_group - i >= 16 ? 0xFFFF : static_cast<__mmask16>((1u << (per_group - i)) - 1);
      _mm512_mask_storeu_epi32(values + e + i, keep, _mm512_sub_epi32(v, offset_v));
    }
  }
  return e;
}

// Bucket packets (core/bucket_packet.cc).

uint8_t UnpackCounters(const uint8_t* in, int64_t groups, int bits, uint8_t* out) {
  // Byte i of 64-bit lane j comes from packed byte j * bits + i (bytes past the lane's `bits` are
  // never read by the shifts below); field k of the lane starts at bit k * bits.
  alignas(64) uint8_t gather[64], shifts[64];
  for (int j = 0; j < 8; ++j) {
    for (int i = 0; i < 8; ++i) {
      gather[8 * j + i] = static_cast<uint8_t>(j * bits + (i < bits ? i : bits - 1));
      shifts[8 * j + i] = static_cast<uint8_t>(i * bits);
    }
  }
  const __m512i gather_v = _mm512_load_si512(gather), shifts_v = _mm512_load_si512(shifts);
  const __m512i mask = _mm512_set1_epi8(static_cast<char>((1u << bits) - 1));
  const __mmask64 group_bytes = bits >= 8 ? ~__mmask64{0} : (__mmask64{1} << (8 * bits)) - 1;
  __m512i largest = _mm512_setzero_si512();
  for (int64_t g = 0; g < groups; ++g) {
    const __m512i packed = _mm512_maskz_loadu_epi8(group_bytes, in + g * 8 * bits);
    const __m512i lanes = _mm512_permutexvar_epi8(gather_v, packed);
    const __m512i counters = _mm512_and_si512(_mm512_multishift_epi64_epi8(shifts_v, lanes), mask);
    _mm512_storeu_si512(out + 64 * g, counters);
    largest = _mm512_max_epu8(largest, counters);
  }
  alignas(64) uint8_t bytes[64];
  _mm512_store_si512(bytes, largest);
  uint8_t m = 0;
  for (const uint8_t b : bytes) m = b > m ? b : m;
  return m;
}

void PackCounters(const uint8_t* in, int64_t groups, int bits, uint8_t* out) {
  // Lanes of 16 bits: c0 + c1 * 2^bits (< 2^12: no saturation); of 32: those two joined at 2 bits;
  // of 64: the two halves joined at 4 bits, eight counters in the low 8 * bits bits.
  const __m512i pair = _mm512_set1_epi16(static_cast<int16_t>(1 | (1 << (8 + bits))));
  const __m512i quad = _mm512_set1_epi32(1 | (1 << (16 + 2 * bits)));
  const __m512i low_half = _mm512_set1_epi64(0xFFFFFFFFll);
  const __m128i shift = _mm_cvtsi32_si128(4 * bits);
  alignas(64) uint8_t pick[64] = {};
  for (int i = 0; i < 8 * bits; ++i) pick[i] = static_cast<uint8_t>(8 * (i / bits) + i % bits);
  const __m512i pick_v = _mm512_load_si512(pick);
  const __mmask64 group_bytes = (__mmask64{1} << (8 * bits)) - 1;
  for (int64_t g = 0; g < groups; ++g) {
    const __m512i counters = _mm512_loadu_si512(in + 64 * g);
    const __m512i pairs = _mm512_maddubs_epi16(counters, pair);
    const __m512i quads = _mm512_madd_epi16(pairs, quad);
    const __m512i eights =
        _mm512_or_si512(_mm512_and_si512(quads, low_half), _mm512_sll_epi64(_mm512_srli_epi64(quads, 32), shift));
    _mm512_mask_storeu_epi8(out + 8 * bits * g, group_bytes, _mm512_permutexvar_epi8(pick_v, eights));
  }
}

}  // namespace avx512
}  // namespace coset
