// AVX2 batch encoder for D4 and E8 with q a power of two: Algorithm 1 on 8 chunks at once,
// structure-of-arrays (lane l holds one chunk, register i holds coordinate i of all 8 chunks).
// Bit-identical to the scalar kernels in lattice.h / row_codec_impl.h: the same IEEE operations
// (divide, add 1/2, floor) in the same order, the same tie rules, the same integer recursion.
// Included only by row_codec_impl.h when compiled with -mavx2.
#pragma once

#include <immintrin.h>

#include <algorithm>
#include <cstdint>
#include <cstring>

#include "core/codebook.h"

namespace coset {
namespace simd_avx2 {

// 8 chunks of 4 floats -> 4 registers of coordinates, lane l = chunk l; chunk(l) points at chunk l
// (contiguous for a first try, scattered for retries). Pairing chunk c with chunk c + 4 in one
// register makes the in-lane 4x4 transposes come out in natural chunk order.
template <class ChunkPtr>
inline void LoadD4Chunks(ChunkPtr chunk, __m256 y[4]) {
  __m256 v[4];
  for (int i = 0; i < 4; ++i) {
    v[i] = _mm256_insertf128_ps(_mm256_castps128_ps256(_mm_loadu_ps(chunk(i))), _mm_loadu_ps(chunk(i + 4)), 1);
  }
  const __m256 a = _mm256_unpacklo_ps(v[0], v[1]), b = _mm256_unpackhi_ps(v[0], v[1]);
  const __m256 c = _mm256_unpacklo_ps(v[2], v[3]), d = _mm256_unpackhi_ps(v[2], v[3]);
  y[0] = _mm256_shuffle_ps(a, c, 0x44);
  y[1] = _mm256_shuffle_ps(a, c, 0xEE);
  y[2] = _mm256_shuffle_ps(b, d, 0x44);
  y[3] = _mm256_shuffle_ps(b, d, 0xEE);
}

// 8 chunks of 8 floats -> 8 registers of coordinates (the classic 8x8 transpose).
template <class ChunkPtr>
inline void LoadE8Chunks(ChunkPtr chunk, __m256 y[8]) {
  __m256 r[8], t[8];
  for (int i = 0; i < 8; ++i) r[i] = _mm256_loadu_ps(chunk(i));
  t[0] = _mm256_unpacklo_ps(r[0], r[1]);
  t[1] = _mm256_unpackhi_ps(r[0], r[1]);
  t[2] = _mm256_unpacklo_ps(r[2], r[3]);
  t[3] = _mm256_unpackhi_ps(r[2], r[3]);
  t[4] = _mm256_unpacklo_ps(r[4], r[5]);
  t[5] = _mm256_unpackhi_ps(r[4], r[5]);
  t[6] = _mm256_unpacklo_ps(r[6], r[7]);
  t[7] = _mm256_unpackhi_ps(r[6], r[7]);
  r[0] = _mm256_shuffle_ps(t[0], t[2], 0x44);
  r[1] = _mm256_shuffle_ps(t[0], t[2], 0xEE);
  r[2] = _mm256_shuffle_ps(t[1], t[3], 0x44);
  r[3] = _mm256_shuffle_ps(t[1], t[3], 0xEE);
  r[4] = _mm256_shuffle_ps(t[4], t[6], 0x44);
  r[5] = _mm256_shuffle_ps(t[4], t[6], 0xEE);
  r[6] = _mm256_shuffle_ps(t[5], t[7], 0x44);
  r[7] = _mm256_shuffle_ps(t[5], t[7], 0xEE);
  for (int i = 0; i < 4; ++i) {
    y[i] = _mm256_permute2f128_ps(r[i], r[i + 4], 0x20);
    y[i + 4] = _mm256_permute2f128_ps(r[i], r[i + 4], 0x31);
  }
}

// Nearest D_n point (ambient, as floats) of n coordinate registers; mirrors NearestDnPoint.
template <int n>
inline void NearestDn(const __m256 y[n], __m256 p[n]) {
  const __m256 half = _mm256_set1_ps(0.5f);
  const __m256 abs_mask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7FFFFFFF));
  __m256i sum = _mm256_setzero_si256();
  __m256 best = _mm256_set1_ps(-1.0f);
  __m256i worst = _mm256_setzero_si256();
  for (int i = 0; i < n; ++i) {
    p[i] = _mm256_floor_ps(_mm256_add_ps(y[i], half));
    sum = _mm256_add_epi32(sum, _mm256_cvttps_epi32(p[i]));
    const __m256 gap = _mm256_and_ps(_mm256_sub_ps(y[i], p[i]), abs_mask);
    const __m256 better = _mm256_cmp_ps(gap, best, _CMP_GT_OQ);
    best = _mm256_blendv_ps(best, gap, better);
    worst = _mm256_blendv_epi8(worst, _mm256_set1_epi32(i), _mm256_castps_si256(better));
  }
  const __m256i odd = _mm256_cmpeq_epi32(_mm256_and_si256(sum, _mm256_set1_epi32(1)), _mm256_set1_epi32(1));
  const __m256 one = _mm256_set1_ps(1.0f), minus_one = _mm256_set1_ps(-1.0f);
  for (int i = 0; i < n; ++i) {
    const __m256i fix = _mm256_and_si256(odd, _mm256_cmpeq_epi32(worst, _mm256_set1_epi32(i)));
    const __m256 dir = _mm256_blendv_ps(minus_one, one, _mm256_cmp_ps(y[i], p[i], _CMP_GE_OQ));
    p[i] = _mm256_add_ps(p[i], _mm256_and_ps(dir, _mm256_castsi256_ps(fix)));
  }
}

struct D4Batch {
  static constexpr int kDim = 4;
  static constexpr int kLanes = 8;
  template <class ChunkPtr>
  static void Load(ChunkPtr chunk, __m256 y[4]) {
    LoadD4Chunks(chunk, y);
  }
  // Integer coordinates of the nearest D4 point (mirrors DnKernel).
  static void Nearest(const __m256 y[4], __m256i z[4]) {
    __m256 p[4];
    NearestDn<4>(y, p);
    __m256i f[4];
    for (int i = 0; i < 4; ++i) f[i] = _mm256_cvttps_epi32(p[i]);
    z[3] = _mm256_sub_epi32(_mm256_setzero_si256(), f[3]);
    z[2] = _mm256_sub_epi32(z[3], f[2]);
    const __m256i s = _mm256_sub_epi32(z[2], f[1]);
    z[1] = _mm256_srai_epi32(_mm256_add_epi32(s, f[0]), 1);
    z[0] = _mm256_srai_epi32(_mm256_sub_epi32(s, f[0]), 1);
  }
};

struct E8Batch {
  static constexpr int kDim = 8;
  static constexpr int kLanes = 8;
  template <class ChunkPtr>
  static void Load(ChunkPtr chunk, __m256 y[8]) {
    LoadE8Chunks(chunk, y);
  }
  // Mirrors E8Kernel: the closer of D8 and D8 + 1/2 (D8 on ties), then coordinates from 2p.
  static void Nearest(const __m256 y[8], __m256i z[8]) {
    const __m256 half = _mm256_set1_ps(0.5f);
    __m256 a[8], b[8], shifted[8];
    NearestDn<8>(y, a);
    for (int i = 0; i < 8; ++i) shifted[i] = _mm256_sub_ps(y[i], half);
    NearestDn<8>(shifted, b);
    __m256 da = _mm256_setzero_ps(), db = _mm256_setzero_ps();
    for (int i = 0; i < 8; ++i) {
      b[i] = _mm256_add_ps(b[i], half);
      const __m256 ea = _mm256_sub_ps(y[i], a[i]), eb = _mm256_sub_ps(y[i], b[i]);
      da = _mm256_add_ps(da, _mm256_mul_ps(ea, ea));
      db = _mm256_add_ps(db, _mm256_mul_ps(eb, eb));
    }
    const __m256 take_a = _mm256_cmp_ps(da, db, _CMP_LE_OQ);
    const __m256 two = _mm256_set1_ps(2.0f);
    __m256i twice[8];
    for (int i = 0; i < 8; ++i)
      twice[i] = _mm256_cvttps_epi32(_mm256_mul_ps(two, _mm256_blendv_ps(b[i], a[i], take_a)));
    z[7] = twice[7];
    __m256i next = _mm256_setzero_si256();
    for (int k = 6; k >= 1; --k) {
      next = _mm256_add_epi32(next, HalveExact(_mm256_sub_epi32(twice[k], twice[7])));
      z[k] = next;
    }
    z[0] = HalveExact(_mm256_add_epi32(HalveExact(_mm256_sub_epi32(twice[0], twice[7])), z[1]));
  }
  // v / 2 for even v (C++ division truncates; for even values it equals the arithmetic shift).
  static __m256i HalveExact(__m256i v) { return _mm256_srai_epi32(v, 1); }
};

// The engine of Algorithm 1: `batches` batches of 8 chunks. Batch b's lane l is chunk
// chunk_at(b * 8 + l) of x, multiplied by its lane of inv_of(b) (1 / step) and, with kClamp,
// clamped as the scalar encoder does (limits.h: out-of-range chunks overload either way; without,
// the caller knows the clamp would change nothing: RowCodecContext::clamp_chunk_coordinates).
// store(b, lanes, mask) receives the symbols (lanes[m][l]: level m of lane l) and the overload
// mask (bit l).
template <class Batch, bool kClamp, class ChunkAt, class InvOf, class Store>
inline void EncodeBatches(const Codebook& cb, int levels, const float* x, int64_t batches, ChunkAt chunk_at,
                          InvOf inv_of, Store store) {
  constexpr int d = Batch::kDim;
  constexpr int kWords = (d + 3) / 4;
  // Two independent batches per iteration: their table gathers overlap instead of stalling.
  constexpr int kU = 2;
  const int log2_q = cb.log2_q();
  const __m128i shift = _mm_cvtsi32_si128(log2_q);
  const __m256i digit_mask = _mm256_set1_epi32(cb.q() - 1);
  const __m256i zero = _mm256_setzero_si256();
  const int* rep = cb.rep_coords_int8x4().data();
  const __m256 highest = _mm256_set1_ps(kMaxChunkCoordinate), lowest = _mm256_set1_ps(-kMaxChunkCoordinate);
  for (int64_t first = 0; first < batches; first += kU) {
    const int u_count = static_cast<int>(std::min<int64_t>(kU, batches - first));
    __m256 y[kU][d];
    __m256i z[kU][d];
    alignas(32) int32_t lanes[kU][kMaxLevels][8];
    for (int u = 0; u < u_count; ++u) {
      const int64_t batch = first + u;
      Batch::Load([&](int l) { return x + static_cast<int64_t>(chunk_at(batch * 8 + l)) * d; }, y[u]);
      const __m256 inv = inv_of(batch);
      for (int i = 0; i < d; ++i) {
        y[u][i] = _mm256_mul_ps(y[u][i], inv);
        if constexpr (kClamp) y[u][i] = _mm256_min_ps(_mm256_max_ps(y[u][i], lowest), highest);
      }
      Batch::Nearest(y[u], z[u]);
    }
    for (int m = 0; m < levels; ++m) {
      __m256i packed[kU][kWords];
      for (int u = 0; u < u_count; ++u) {
        __m256i sym = _mm256_and_si256(z[u][0], digit_mask);
        for (int i = 1; i < d; ++i) {
          sym = _mm256_or_si256(sym,
                                _mm256_sll_epi32(_mm256_and_si256(z[u][i], digit_mask), _mm_cvtsi32_si128(i * log2_q)));
        }
        _mm256_store_si256(reinterpret_cast<__m256i*>(lanes[u][m]), sym);
        // One gather per 4 coordinates: rep(b) packed as int8x4.
        const __m256i row = kWords == 1 ? sym : _mm256_slli_epi32(sym, kWords == 2 ? 1 : 2);
        for (int w = 0; w < kWords; ++w) {
          packed[u][w] = _mm256_i32gather_epi32(rep, _mm256_add_epi32(row, _mm256_set1_epi32(w)), 4);
        }
      }
      for (int u = 0; u < u_count; ++u) {
        for (int i = 0; i < d; ++i) {
          const __m256i r =
              _mm256_srai_epi32(_mm256_sll_epi32(packed[u][i / 4], _mm_cvtsi32_si128(24 - 8 * (i % 4))), 24);
          z[u][i] = _mm256_sra_epi32(_mm256_sub_epi32(z[u][i], r), shift);
        }
      }
    }
    for (int u = 0; u < u_count; ++u) {
      __m256i any = z[u][0];
      for (int i = 1; i < d; ++i) any = _mm256_or_si256(any, z[u][i]);
      const uint32_t mask = ~_mm256_movemask_ps(_mm256_castsi256_ps(_mm256_cmpeq_epi32(any, zero))) & 0xFF;
      store(first + u, lanes[u], mask);
    }
  }
}

// The symbols of two levels (lanes[m][l]: level m of lane l) as one 32-bit word per lane, b_0 in
// the low `bits` bits and b_1 above them (symbols of at most 16 bits): their order in the row once
// stored (little-endian).
inline __m256i SymbolPairs(const int32_t (*lanes)[8], int bits) {
  const __m256i s0 = _mm256_load_si256(reinterpret_cast<const __m256i*>(lanes[0]));
  const __m256i s1 = _mm256_load_si256(reinterpret_cast<const __m256i*>(lanes[1]));
  return _mm256_or_si256(s0, _mm256_sll_epi32(s1, _mm_cvtsi32_si128(bits)));
}

// First try of n8 (a multiple of 8) contiguous chunks of x at one step (x * inv_step): writes
// symbols[c * levels + m] and overload_masks[c / 8] (bit c % 8 set when chunk c overloads).
// `prefetch` (may be null): as many floats to bring into L1, spread over the batches. kClamp:
// as for EncodeBatches.
template <class Batch, bool kClamp, typename SymbolT>
inline void EncodeAtStep(const Codebook& cb, int levels, const float* x, int64_t n8, float inv_step, SymbolT* symbols,
                         uint8_t* overload_masks, const float* prefetch = nullptr) {
  constexpr int d = Batch::kDim;
  const __m256 inv = _mm256_set1_ps(inv_step);
  EncodeBatches<Batch, kClamp>(
      cb, levels, x, n8 / 8, [](int64_t c) { return c; },
      [&](int64_t batch) {
        if (prefetch != nullptr) {
          for (int line = 0; line < 8 * d; line += 16) _mm_prefetch(prefetch + batch * 8 * d + line, _MM_HINT_T0);
        }
        return inv;
      },
      [&](int64_t batch, const int32_t(*lanes)[8], uint32_t mask) {
        overload_masks[batch] = static_cast<uint8_t>(mask);
        SymbolT* out = symbols + batch * 8 * levels;
        if (sizeof(SymbolT) == 1 && levels == 2) {
          // 8 chunks x (b_0, b_1) bytes = 16 bytes, interleaved with one pack and one permute.
          const __m256i pairs = SymbolPairs(lanes, 8);
          const __m256i packed16 = _mm256_permute4x64_epi64(_mm256_packus_epi32(pairs, pairs), 0x08);
          _mm_storeu_si128(reinterpret_cast<__m128i*>(out), _mm256_castsi256_si128(packed16));
        } else if (sizeof(SymbolT) == 2 && levels == 2) {
          // 8 chunks x (b_0, b_1) 16-bit symbols = 32 bytes: one shift-or, one store (a scalar
          // store per symbol was a sixth of E8's first try).
          _mm256_storeu_si256(reinterpret_cast<__m256i*>(out), SymbolPairs(lanes, 16));
        } else {
          for (int l = 0; l < 8; ++l) {
            for (int m = 0; m < levels; ++m) out[l * levels + m] = static_cast<SymbolT>(lanes[m][l]);
          }
        }
      });
}

// A retry round's results in place: chunk chunks[l] (l < n, a multiple of 4) takes its two
// symbols, one PairT (uint16_t: two bytes; uint32_t: two 16-bit symbols), from pairs[l], and
// T = tc. Byte stores may alias anything, so the pointers, T and four chunks' pairs and indices
// are read into locals before their stores; through the callers' captured references every value
// was reloaded after every store (a fifth of the retries' time).
template <typename PairT>
inline __attribute__((always_inline)) void StoreRetried(const PairT* pairs, const int32_t* chunks, int n, void* symbols,
                                                        uint8_t* t, uint8_t tc) {
  uint8_t* const out = static_cast<uint8_t*>(symbols);
  for (int l = 0; l < n; l += 4) {
    PairT four_pairs[4];
    int32_t four_chunks[4];
    std::memcpy(four_pairs, pairs + l, sizeof(four_pairs));
    std::memcpy(four_chunks, chunks + l, sizeof(four_chunks));
    for (int k = 0; k < 4; ++k) {
      std::memcpy(out + static_cast<int64_t>(four_chunks[k]) * sizeof(PairT), &four_pairs[k], sizeof(PairT));
      t[four_chunks[k]] = tc;
    }
  }
}

// One round of the overload ramp, round tc: chunks list[0, n8) of x (n8 a multiple of 8; a padding
// entry repeats a real one, so it writes the same result) at steps base[k] * ramp. Writes each
// chunk's symbols and T in place (symbols[list[k] * levels + m], t[list[k]] = tc: a chunk still
// overloaded is overwritten by a later round) and overload_masks[k / 8] bit k % 8. kClamp: as for
// EncodeBatches.
template <class Batch, bool kClamp, typename SymbolT>
inline void EncodeRetries(const Codebook& cb, int levels, const float* x, const int32_t* list, const float* base,
                          int64_t n8, float ramp, uint8_t tc, SymbolT* symbols, uint8_t* t, uint8_t* overload_masks) {
  const __m256 ramp_v = _mm256_set1_ps(ramp), one = _mm256_set1_ps(1.0f);
  EncodeBatches<Batch, kClamp>(
      cb, levels, x, n8 / 8, [&](int64_t k) { return list[k]; },
      // 1 / (base * ramp), as the scalar encoder rounds it.
      [&](int64_t batch) { return _mm256_div_ps(one, _mm256_mul_ps(_mm256_loadu_ps(base + batch * 8), ramp_v)); },
      [&](int64_t batch, const int32_t(*lanes)[8], uint32_t mask) {
        overload_masks[batch] = static_cast<uint8_t>(mask);
        if (sizeof(SymbolT) == 2 && levels == 2) {
          // One 4-byte store of (b_0, b_1) per chunk, reading the list once.
          alignas(32) uint32_t pairs[8];
          _mm256_store_si256(reinterpret_cast<__m256i*>(pairs), SymbolPairs(lanes, 16));
          StoreRetried(pairs, list + batch * 8, 8, symbols, t, tc);
          return;
        }
        for (int l = 0; l < 8; ++l) {
          const int32_t c = list[batch * 8 + l];
          SymbolT* out = symbols + static_cast<int64_t>(c) * levels;
          for (int m = 0; m < levels; ++m) out[m] = static_cast<SymbolT>(lanes[m][l]);
          t[c] = tc;
        }
      });
}

// Algorithm 2 from the int8 table of doubled representatives (d = 8: one chunk per register;
// d = 4: two). An exact integer Horner sum, then one float multiply by step / 2: bit-identical to
// the float decoder (the same real product, rounded once). symbols: n * levels; steps: n;
// out: n * d floats. For d = 4, n must be even.
template <int d, typename SymbolT>
inline void DecodeChunksInt8(const Codebook& cb, int levels, const SymbolT* symbols, int64_t n, const float* steps,
                             float* out) {
  static_assert(d == 4 || d == 8, "int8 decoder handles D4 and E8");
  const int8_t* table = cb.rep_point_x2_int8().data();
  const __m128i shift = _mm_cvtsi32_si128(cb.log2_q());
  constexpr int kPerRegister = 8 / d;
  auto load = [&](int64_t c, int m) -> __m256i {
    if constexpr (d == 8) {
      return _mm256_cvtepi8_epi32(
          _mm_loadl_epi64(reinterpret_cast<const __m128i*>(table + 8 * symbols[c * levels + m])));
    } else {
      int32_t lo, hi;
      std::memcpy(&lo, table + 4 * symbols[c * levels + m], 4);
      std::memcpy(&hi, table + 4 * symbols[(c + 1) * levels + m], 4);
      return _mm256_cvtepi8_epi32(_mm_cvtsi32_si128(lo) | _mm_slli_si128(_mm_cvtsi32_si128(hi), 4));
    }
  };
  for (int64_t c = 0; c < n; c += kPerRegister) {
    __m256i acc = load(c, levels - 1);
    for (int m = levels - 2; m >= 0; --m) acc = _mm256_add_epi32(_mm256_sll_epi32(acc, shift), load(c, m));
    __m256 half_step;
    if constexpr (d == 8) {
      half_step = _mm256_set1_ps(0.5f * steps[c]);
    } else {
      half_step = _mm256_setr_m128(_mm_set1_ps(0.5f * steps[c]), _mm_set1_ps(0.5f * steps[c + 1]));
    }
    _mm256_storeu_ps(out + d * c, _mm256_mul_ps(_mm256_cvtepi32_ps(acc), half_step));
  }
}

}  // namespace simd_avx2
}  // namespace coset
