// AVX-512 batch encoder for D4 and E8 with q a power of two: Algorithm 1 on 16 chunks at once
// (lane l holds one chunk, register i holds coordinate i of all 16 chunks). The twin of
// hnlq_avx2.h with twice the lanes, mask registers instead of blends, and, for D4 codebooks of at
// most 256 symbols, rep(b) read with VBMI byte permutes from four 256-byte planes held in
// registers instead of a gather per level. Bit-identical to the scalar kernels (lattice.h,
// row_codec_impl.h): the same IEEE operations in the same order, the same tie rules, the same
// integer recursion. Included only by row_codec_impl.h when compiled with AVX512_COPTS.
#pragma once

#include <immintrin.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <vector>

#include "core/codebook.h"
#include "core/simd/hnlq_avx2.h"

namespace coset {
namespace simd_avx512 {

// Every helper below works on register arrays; an out-of-line call would pass them through memory.
#define COSET_INLINE inline __attribute__((always_inline))

// Nearest D_n point (ambient, as floats) of n coordinate registers; mirrors NearestDnPoint and
// simd_avx2::NearestDn: when the sum is odd, the first coordinate with the strictly largest
// rounding gap is flipped. Fewer operations than a running argmax (D4's encode 3-6 % faster, E8's
// unchanged): the largest gap from a max tree, a compare with it per coordinate, then mask logic
// that flips only the first coordinate at the maximum (the lowest index on ties, as the scalar
// scan's strict comparison picks). The flip's direction, +1 where y >= p, is y - p's sign on 1.0
// (one ternary-logic op; y - p is -0 only for y = -0, and only coordinate 0 can then be flipped).
// Three of the additions run as fused multiply-adds by 1 (a * 1 + c rounds exactly as a + c, signed
// zeros included): on Zen 4, 512-bit additions, roundings, conversions and max share one pipe
// pair at one per cycle, FMAs another (D4's encode ~2 % faster in alternating runs).
template <int n>
COSET_INLINE void NearestDn(const __m512 y[n], __m512 p[n]) {
  const __m512 half = _mm512_set1_ps(0.5f), unit = _mm512_set1_ps(1.0f);
  __m512 diff[n], gap[n];
  __m512i parity = _mm512_setzero_si512();
  for (int i = 0; i < n; ++i) {
    p[i] = _mm512_roundscale_ps(_mm512_fmadd_ps(y[i], unit, half), _MM_FROUND_TO_NEG_INF | _MM_FROUND_NO_EXC);
    parity = _mm512_xor_si512(parity, _mm512_cvttps_epi32(p[i]));
    diff[i] = _mm512_fnmadd_ps(p[i], unit, y[i]);  // y - p
    gap[i] = _mm512_abs_ps(diff[i]);
  }
  __m512 widest = gap[0];
  for (int i = 1; i < n; ++i) widest = _mm512_max_ps(widest, gap[i]);
  __mmask16 pending = _mm512_test_epi32_mask(parity, _mm512_set1_epi32(1));
  const __m512i sign = _mm512_set1_epi32(static_cast<int32_t>(0x80000000u));
  const __m512i one = _mm512_castps_si512(unit);
  __mmask16 at_widest[n];
  for (int i = 0; i < n; ++i) at_widest[i] = _mm512_cmp_ps_mask(gap[i], widest, _CMP_EQ_OQ);
  for (int i = 0; i < n; ++i) {
    const __mmask16 fix = _kand_mask16(at_widest[i], pending);
    pending = _kandn_mask16(at_widest[i], pending);
    // (diff & sign) | 1.0: +-1 with diff's sign. Coordinate 0 is also the one flipped when every
    // gap is 0, where y = -0 gives diff = -0 but y >= p: there + 0 makes it +0.
    const __m512 signed_diff = i == 0 ? _mm512_add_ps(diff[i], _mm512_setzero_ps()) : diff[i];
    const __m512 dir =
        _mm512_castsi512_ps(_mm512_ternarylogic_epi32(_mm512_castps_si512(signed_diff), sign, one, 0xEA));
    p[i] = _mm512_mask3_fmadd_ps(dir, unit, p[i], fix);  // p + dir where fix
  }
}

struct D4Batch {
  static constexpr int kDim = 4;
  static constexpr int kLanes = 16;
  // 16 scattered chunks: four registers of four chunks each (one 16-byte load per chunk), then
  // the transpose of LoadContiguous.
  template <class ChunkPtr>
  static COSET_INLINE void Load(ChunkPtr chunk, __m512 y[4]) {
    __m512 v[4];
    for (int j = 0; j < 4; ++j) {
      const __m256 lo =
          _mm256_insertf128_ps(_mm256_castps128_ps256(_mm_loadu_ps(chunk(4 * j))), _mm_loadu_ps(chunk(4 * j + 1)), 1);
      const __m256 hi = _mm256_insertf128_ps(_mm256_castps128_ps256(_mm_loadu_ps(chunk(4 * j + 2))),
                                             _mm_loadu_ps(chunk(4 * j + 3)), 1);
      v[j] = _mm512_insertf32x8(_mm512_castps256_ps512(lo), hi, 1);
    }
    Transpose(v, y);
  }
  // 16 contiguous chunks (64 floats): four loads and two rounds of two-source permutes.
  static COSET_INLINE void LoadContiguous(const float* x, __m512 y[4]) {
    const __m512 v[4] = {_mm512_loadu_ps(x), _mm512_loadu_ps(x + 16), _mm512_loadu_ps(x + 32), _mm512_loadu_ps(x + 48)};
    Transpose(v, y);
  }
  // v[j] holds chunks 4j..4j+3 (chunk-major) -> y[i] holds coordinate i of chunks 0..15.
  static COSET_INLINE void Transpose(const __m512 v[4], __m512 y[4]) {
    const __m512 v0 = v[0], v1 = v[1], v2 = v[2], v3 = v[3];
    // From a pair of registers (8 chunks): coordinates 0 and 1, then 2 and 3, 8 lanes each.
    const __m512i c01 = _mm512_setr_epi32(0, 4, 8, 12, 16, 20, 24, 28, 1, 5, 9, 13, 17, 21, 25, 29);
    const __m512i c23 = _mm512_setr_epi32(2, 6, 10, 14, 18, 22, 26, 30, 3, 7, 11, 15, 19, 23, 27, 31);
    const __m512 a01 = _mm512_permutex2var_ps(v0, c01, v1), a23 = _mm512_permutex2var_ps(v0, c23, v1);
    const __m512 b01 = _mm512_permutex2var_ps(v2, c01, v3), b23 = _mm512_permutex2var_ps(v2, c23, v3);
    y[0] = _mm512_shuffle_f32x4(a01, b01, 0x44);
    y[1] = _mm512_shuffle_f32x4(a01, b01, 0xEE);
    y[2] = _mm512_shuffle_f32x4(a23, b23, 0x44);
    y[3] = _mm512_shuffle_f32x4(a23, b23, 0xEE);
  }
  // Integer coordinates of the nearest D4 point (mirrors DnKernel).
  static COSET_INLINE void Nearest(const __m512 y[4], __m512i z[4]) {
    __m512 p[4];
    NearestDn<4>(y, p);
    __m512i f[4];
    for (int i = 0; i < 4; ++i) f[i] = _mm512_cvttps_epi32(p[i]);
    z[3] = _mm512_sub_epi32(_mm512_setzero_si512(), f[3]);
    z[2] = _mm512_sub_epi32(z[3], f[2]);
    const __m512i s = _mm512_sub_epi32(z[2], f[1]);
    z[1] = _mm512_srai_epi32(_mm512_add_epi32(s, f[0]), 1);
    z[0] = _mm512_srai_epi32(_mm512_sub_epi32(s, f[0]), 1);
  }
};

struct E8Batch {
  static constexpr int kDim = 8;
  static constexpr int kLanes = 16;
  // 16 scattered chunks: one 32-byte load each, two per register, then Transpose.
  template <class ChunkPtr>
  static COSET_INLINE void Load(ChunkPtr chunk, __m512 y[8]) {
    __m512 v[8];
    for (int j = 0; j < 8; ++j) {
      v[j] = _mm512_insertf32x8(_mm512_castps256_ps512(_mm256_loadu_ps(chunk(2 * j))),
                                _mm256_loadu_ps(chunk(2 * j + 1)), 1);
    }
    Transpose(v, y);
  }
  // 16 contiguous chunks (128 floats): eight loads, then Transpose.
  static COSET_INLINE void LoadContiguous(const float* x, __m512 y[8]) {
    __m512 v[8];
    for (int j = 0; j < 8; ++j) v[j] = _mm512_loadu_ps(x + 16 * j);
    Transpose(v, y);
  }
  // v[j] holds chunks 2j and 2j + 1 (chunk-major) -> y[i] holds coordinate i of chunks 0..15: the
  // 128-bit lanes regrouped into D4Batch's layout (four chunks x coordinates 0-3, then 4-7), then
  // D4Batch's transpose on each half (24 register ops; the AVX2 path's two 8x8 transposes took 48
  // half-width shuffles and 8 inserts).
  static COSET_INLINE void Transpose(const __m512 v[8], __m512 y[8]) {
    __m512 low[4], high[4];
    for (int g = 0; g < 4; ++g) {
      low[g] = _mm512_shuffle_f32x4(v[2 * g], v[2 * g + 1], _MM_SHUFFLE(2, 0, 2, 0));
      high[g] = _mm512_shuffle_f32x4(v[2 * g], v[2 * g + 1], _MM_SHUFFLE(3, 1, 3, 1));
    }
    D4Batch::Transpose(low, y);
    D4Batch::Transpose(high, y + 4);
  }
  // Mirrors E8Kernel: the closer of D8 and D8 + 1/2 (D8 on ties), then coordinates from 2p.
  static COSET_INLINE void Nearest(const __m512 y[8], __m512i z[8]) {
    const __m512 half = _mm512_set1_ps(0.5f);
    __m512 a[8], b[8], shifted[8];
    NearestDn<8>(y, a);
    for (int i = 0; i < 8; ++i) shifted[i] = _mm512_sub_ps(y[i], half);
    NearestDn<8>(shifted, b);
    __m512 da = _mm512_setzero_ps(), db = _mm512_setzero_ps();
    for (int i = 0; i < 8; ++i) {
      b[i] = _mm512_add_ps(b[i], half);
      const __m512 ea = _mm512_sub_ps(y[i], a[i]), eb = _mm512_sub_ps(y[i], b[i]);
      da = _mm512_add_ps(da, _mm512_mul_ps(ea, ea));
      db = _mm512_add_ps(db, _mm512_mul_ps(eb, eb));
    }
    const __mmask16 take_a = _mm512_cmp_ps_mask(da, db, _CMP_LE_OQ);
    const __m512 two = _mm512_set1_ps(2.0f);
    __m512i twice[8];
    for (int i = 0; i < 8; ++i)
      twice[i] = _mm512_cvttps_epi32(_mm512_mul_ps(two, _mm512_mask_blend_ps(take_a, b[i], a[i])));
    z[7] = twice[7];
    __m512i next = _mm512_setzero_si512();
    for (int k = 6; k >= 1; --k) {
      next = _mm512_add_epi32(next, _mm512_srai_epi32(_mm512_sub_epi32(twice[k], twice[7]), 1));
      z[k] = next;
    }
    z[0] = _mm512_srai_epi32(_mm512_add_epi32(_mm512_srai_epi32(_mm512_sub_epi32(twice[0], twice[7]), 1), z[1]), 1);
  }
};

// Four coordinate planes of 256 int8 entries each (Codebook's planar tables), held in registers and
// read with VBMI: entry b of plane i is two 128-entry two-source permutes and a blend on b's top
// bit, for 64 bytes of b at once.
class BytePlanes {
 public:
  explicit BytePlanes(const int8_t* planes) {
    for (int i = 0; i < 4; ++i) {
      for (int k = 0; k < 4; ++k) plane_[i][k] = _mm512_loadu_si512(planes + i * Codebook::kPlanarTableSize + 64 * k);
    }
  }
  COSET_INLINE __m512i Lookup(__m512i b, int i) const {
    const __m512i lo = _mm512_permutex2var_epi8(plane_[i][0], b, plane_[i][1]);
    const __m512i hi = _mm512_permutex2var_epi8(plane_[i][2], b, plane_[i][3]);
    return _mm512_mask_blend_epi8(_mm512_movepi8_mask(b), lo, hi);
  }

 private:
  __m512i plane_[4][4];
};

// rep(b) coordinate lookups of one level. Planar: up to 256 symbols and d = 4, each coordinate a
// 256-byte plane in four registers, read with two VBMI two-source permutes (128 entries each) and
// a blend on the index's top bit. Otherwise one gather per 4 coordinates of the int8x4 table.
// Byte c (c < 16) is coordinate 0 of chunk c in two registers of eight 8-byte entries.
alignas(64) inline constexpr int8_t kCoordinateBytes[64] = {0,  8,  16, 24, 32, 40,  48,  56,
                                                            64, 72, 80, 88, 96, 104, 112, 120};

template <int d>
class RepLookup {
 public:
  explicit RepLookup(const Codebook& cb)
      : rep_(cb.rep_coords_int8x4().data()),
        planar_(d == 4 && !cb.rep_coords_planar_int8().empty()),
        planes_(planar_ ? cb.rep_coords_planar_int8().data() : kZeroPlanes) {}
  // r[i] = coordinate i of rep(sym) per lane, as int32.
  COSET_INLINE void operator()(__m512i sym, __m512i r[d]) const {
    if (d == 4 && planar_) {
      const __m512i index = _mm512_castsi128_si512(_mm512_cvtepi32_epi8(sym));
      for (int i = 0; i < (d < 4 ? d : 4); ++i)
        r[i] = _mm512_cvtepi8_epi32(_mm512_castsi512_si128(planes_.Lookup(index, i)));
      return;
    }
    if constexpr (d == 8) {
      // One 8-byte entry per chunk: two 8-lane qword gathers (half the elements of four dword
      // gathers), then coordinate i of the 16 chunks picked out with one byte permute.
      const int64_t* table = reinterpret_cast<const int64_t*>(rep_);
      const __m512i lo = _mm512_i32gather_epi64(_mm512_castsi512_si256(sym), table, 8);
      const __m512i hi = _mm512_i32gather_epi64(_mm512_extracti64x4_epi64(sym, 1), table, 8);
      const __m512i first = _mm512_loadu_si512(kCoordinateBytes);
      for (int i = 0; i < 8; ++i) {
        const __m512i picked = _mm512_permutex2var_epi8(lo, _mm512_add_epi8(first, _mm512_set1_epi8(i)), hi);
        r[i] = _mm512_cvtepi8_epi32(_mm512_castsi512_si128(picked));
      }
      return;
    }
    constexpr int kWords = (d + 3) / 4;
    const __m512i row = kWords == 1 ? sym : _mm512_slli_epi32(sym, kWords == 2 ? 1 : 2);
    for (int w = 0; w < kWords; ++w) {
      const __m512i packed = _mm512_i32gather_epi32(_mm512_add_epi32(row, _mm512_set1_epi32(w)), rep_, 4);
      for (int i = 4 * w; i < std::min(d, 4 * w + 4); ++i) {
        r[i] = _mm512_srai_epi32(_mm512_slli_epi32(packed, 24 - 8 * (i % 4)), 24);
      }
    }
  }

 private:
  // Planes of zeros for configurations without planar tables (never looked up).
  alignas(64) static constexpr int8_t kZeroPlanes[4 * Codebook::kPlanarTableSize] = {};
  const int32_t* rep_;
  bool planar_;
  BytePlanes planes_;
};

// y * inv, clamped to +-kMaxChunkCoordinate as the scalar encoder does (kClamp: see
// RowCodecContext::clamp_chunk_coordinates).
template <bool kClamp>
COSET_INLINE __m512 ScaleAndClamp(__m512 y, __m512 inv) {
  if constexpr (!kClamp) return _mm512_mul_ps(y, inv);
  const __m512 highest = _mm512_set1_ps(kMaxChunkCoordinate), lowest = _mm512_set1_ps(-kMaxChunkCoordinate);
  return _mm512_min_ps(_mm512_max_ps(_mm512_mul_ps(y, inv), lowest), highest);
}

// The first step of Algorithm 1 for batch u: its chunks loaded (load(u, y)), scaled by inv_of(u)
// and clamped as the scalar encoder does, then their nearest lattice points (z: integer
// coordinates, as Batch::Nearest gives them).
template <class Batch, bool kClamp, class LoadBatch, class InvOf>
COSET_INLINE void NearestOfBatch(LoadBatch& load, InvOf& inv_of, int64_t u, __m512i z[Batch::kDim]) {
  __m512 y[Batch::kDim];
  load(u, y);
  const __m512 inv = inv_of(u);
  for (int i = 0; i < Batch::kDim; ++i) y[i] = ScaleAndClamp<kClamp>(y[i], inv);
  Batch::Nearest(y, z);
}

// The engine of Algorithm 1 on `batches` batches of 16 chunks; see simd_avx2::EncodeBatches.
// load(b, y) fills y with batch b's chunks; store(b, lanes, mask) receives lanes[m][l] (level m of
// lane l) and the 16-bit overload mask. Two batches per iteration, level by level, so that the
// table gathers of one overlap the other's work.
template <class Batch, bool kClamp, class LoadBatch, class InvOf, class Store>
inline void EncodeBatches(const Codebook& cb, int levels, int64_t batches, LoadBatch load, InvOf inv_of, Store store) {
  constexpr int d = Batch::kDim;
  constexpr int kU = 2;
  const int log2_q = cb.log2_q();
  const __m512i digit_mask = _mm512_set1_epi32(cb.q() - 1);
  const RepLookup<d> lookup(cb);
  for (int64_t first = 0; first < batches; first += kU) {
    const int u_count = static_cast<int>(std::min<int64_t>(kU, batches - first));
    __m512i z[kU][d];
    alignas(64) int32_t lanes[kU][kMaxLevels][16];
    for (int u = 0; u < u_count; ++u) NearestOfBatch<Batch, kClamp>(load, inv_of, first + u, z[u]);
    for (int m = 0; m < levels; ++m) {
      __m512i r[kU][d];
      for (int u = 0; u < u_count; ++u) {
        __m512i sym = _mm512_and_si512(z[u][0], digit_mask);
        for (int i = 1; i < d; ++i) {
          sym = _mm512_or_si512(sym,
                                _mm512_sll_epi32(_mm512_and_si512(z[u][i], digit_mask), _mm_cvtsi32_si128(i * log2_q)));
        }
        _mm512_store_si512(lanes[u][m], sym);
        lookup(sym, r[u]);
      }
      for (int u = 0; u < u_count; ++u) {
        for (int i = 0; i < d; ++i) {
          z[u][i] = _mm512_sra_epi32(_mm512_sub_epi32(z[u][i], r[u][i]), _mm_cvtsi32_si128(log2_q));
        }
      }
    }
    for (int u = 0; u < u_count; ++u) {
      __m512i any = z[u][0];
      for (int i = 1; i < d; ++i) any = _mm512_or_si512(any, z[u][i]);
      store(first + u, lanes[u], static_cast<uint32_t>(_mm512_test_epi32_mask(any, any)));
    }
  }
}

// The two levels of D4 with q = 4 (the default code) on 64 chunks at once, one byte per chunk and
// coordinate: z is saturated to int8, the level recursion runs on bytes. Exact wherever it
// matters: with |rep coordinate| <= kMaxRep, a chunk that does not overload has
// z = rep(b_0) + 4 rep(b_1), so |z| <= 5 kMaxRep = 40 and every step is exact; a chunk with some
// |z| >= 120 overloads, and its saturated bytes still end with |z_1| >= 28 > kMaxRep, so it is
// reported overloaded (its symbols are then retried or zeroed, never kept).
class D4ByteLevels {
 public:
  static constexpr int kMaxRep = 8;
  static bool Applies(const Codebook& cb, int levels) {
    return levels == 2 && cb.q() == 4 && cb.symbol_dim() == 4 && !cb.rep_coords_planar_int8().empty() &&
           cb.max_abs_rep_coord() <= kMaxRep;
  }
  explicit D4ByteLevels(const Codebook& cb) : rep_(cb.rep_coords_planar_int8().data()) {}
  // z[i]: coordinate i of 64 chunks (int8, saturated). Writes b_0 and b_1 per chunk; returns the
  // overload mask (bit c: chunk c).
  COSET_INLINE __mmask64 Run(const __m512i z[4], __m512i& b0, __m512i& b1) const {
    b0 = Symbol<0>(z);
    // z - rep(b_0) = 4 z_1 (a multiple of 4 coordinate by coordinate): b_1 is read from its bits
    // 2-3, and z_1 = rep(b_1) (no overload) is checked as 4 z_1 = 4 rep(b_1), so z_1 itself (a
    // byte shift with sign extension, four operations per coordinate) is never formed.
    __m512i diff[4];
    for (int i = 0; i < 4; ++i) diff[i] = _mm512_subs_epi8(z[i], rep_.Lookup(b0, i));
    b1 = Symbol<2>(diff);
    __mmask64 same = ~__mmask64{0};
    for (int i = 0; i < 4; ++i) {
      const __m512i rep = rep_.Lookup(b1, i);
      const __m512i twice = _mm512_add_epi8(rep, rep);  // |rep| <= kMaxRep: 4 rep fits a byte
      same &= _mm512_cmpeq_epi8_mask(diff[i], _mm512_add_epi8(twice, twice));
    }
    return ~same;
  }

 private:
  // b = sum_i (bits kAt, kAt + 1 of v_i) 4^i: each v_i's digit moved to bits 2i, 2i + 1 with a word
  // shift and merged under a mask that keeps the digits below (bit-select ternary logic), which
  // also drops the bits a word shift carries in from the neighbour byte.
  template <int kAt>
  static COSET_INLINE __m512i Symbol(const __m512i v[4]) {
    auto at = [](__m512i x, int from, int to) {
      return from < to ? _mm512_slli_epi16(x, to - from) : from > to ? _mm512_srli_epi16(x, from - to) : x;
    };
    constexpr int kSelectFirst = 0xE4;  // c ? a : b
    __m512i b = at(v[0], kAt, 0);
    for (int i = 1; i < 4; ++i) {
      b = _mm512_ternarylogic_epi32(b, at(v[i], kAt, 2 * i), _mm512_set1_epi8(static_cast<char>((1 << (2 * i)) - 1)),
                                    kSelectFirst);
    }
    return b;
  }
  BytePlanes rep_;  // coordinates of rep(b)
};

// Up to 64 D4 chunks through D4ByteLevels: load(u, y) fills batch u (16 chunks, u < batches <= 4),
// inv_of(u) its 1 / steps. Stores (b_0, b_1) interleaved per chunk into pairs[128]; returns the
// overload mask (bits of lanes past 16 * batches are meaningless).
template <bool kClamp, class LoadBatch, class InvOf>
COSET_INLINE __mmask64 EncodeD4Group(const D4ByteLevels& levels, int batches, LoadBatch load, InvOf inv_of,
                                     uint8_t* pairs) {
  __m512i zb[4];
  for (int u = 0; u < batches; ++u) {
    __m512i z[4];
    NearestOfBatch<D4Batch, kClamp>(load, inv_of, u, z);
    for (int i = 0; i < 4; ++i) {
      const __m128i packed = _mm512_cvtsepi32_epi8(z[i]);  // saturating: see D4ByteLevels
      // Into 128-bit lane u (a merge-masked broadcast: the lane index need not be a constant).
      zb[i] = _mm512_mask_broadcast_i32x4(u == 0 ? _mm512_setzero_si512() : zb[i],
                                          static_cast<__mmask16>(0xF << (4 * u)), packed);
    }
  }
  __m512i b0, b1;
  const __mmask64 over = levels.Run(zb, b0, b1);
  // Chunk c's pair (b_0, b_1) at bytes 2c, 2c + 1.
  const __m512i first =
      _mm512_set_epi8(95, 31, 94, 30, 93, 29, 92, 28, 91, 27, 90, 26, 89, 25, 88, 24, 87, 23, 86, 22, 85, 21, 84, 20,
                      83, 19, 82, 18, 81, 17, 80, 16, 79, 15, 78, 14, 77, 13, 76, 12, 75, 11, 74, 10, 73, 9, 72, 8, 71,
                      7, 70, 6, 69, 5, 68, 4, 67, 3, 66, 2, 65, 1, 64, 0);
  const __m512i second = _mm512_add_epi8(first, _mm512_set1_epi8(32));
  _mm512_storeu_si512(pairs, _mm512_permutex2var_epi8(b0, first, b1));
  _mm512_storeu_si512(pairs + 64, _mm512_permutex2var_epi8(b0, second, b1));
  return over;
}

// E8ByteLevels' permute from its packed coordinates (byte 16 L + 4 i + j of register i / 4:
// coordinate i of chunk 4 L + j) to chunk order: byte 8 c + i of half[h] reads coordinate i of
// chunk 8 h + c.
struct E8ChunkByteIndex {
  alignas(64) int8_t half[2][64];
};
constexpr E8ChunkByteIndex MakeE8ChunkBytes() {
  E8ChunkByteIndex x{};
  for (int chunk = 0; chunk < 16; ++chunk) {
    for (int i = 0; i < 8; ++i) {
      x.half[chunk / 8][8 * (chunk % 8) + i] =
          static_cast<int8_t>(64 * (i / 4) + 16 * (chunk / 4) + 4 * (i % 4) + chunk % 4);
    }
  }
  return x;
}
inline constexpr E8ChunkByteIndex kE8ChunkBytes = MakeE8ChunkBytes();

// The two levels of E8 with q = 4 (the default E8 code) on bytes, D4ByteLevels' idea for 16-bit
// symbols: a chunk's 8 coordinates are the 8 bytes of a 64-bit lane (8 chunks per register), so
// that its symbol is assembled with two multiply-adds, its qword is the index of rep(b)'s 8-byte
// entry (a qword gather lands it in place, no permutes to pick coordinates out), and a level is a
// byte subtraction. Exact wherever it matters, as for D4: with |rep coordinate| <= kMaxRep = 25, a
// chunk that does not overload has z = rep(b_0) + 4 rep(b_1), |z| <= 5 kMaxRep = 125 < 128; a
// chunk with a saturated byte (|z| > 127) or a saturated z - rep(b_0) has |z - rep(b_0)| >= 102
// > 4 kMaxRep there, so it is reported overloaded (its symbols are then retried or zeroed).
class E8ByteLevels {
 public:
  static constexpr int kMaxRep = 25;
  static bool Applies(const Codebook& cb, int levels) {
    return levels == 2 && cb.q() == 4 && cb.symbol_dim() == 8 && !cb.rep_coords_int8x4().empty() &&
           cb.max_abs_rep_coord() <= kMaxRep;
  }
  explicit E8ByteLevels(const Codebook& cb) : rep_(cb.rep_coords_int8x4().data()) {}
  // z[u][i]: coordinate i of batch u's 16 chunks (int32). Writes batch u's (b_0 | b_1 << 16) per
  // chunk into pairs[16 u .. 16 u + 16) and returns the overload mask (bit 16 u + l: chunk l of u).
  template <int kBatches>
  COSET_INLINE uint32_t Run(const __m512i (*z)[8], uint32_t* pairs) const {
    constexpr int kHalves = 2 * kBatches;  // 8 chunks each
    __m512i v[kHalves], b0[kHalves], diff[kHalves], b1[kHalves], rep[kHalves];
    for (int u = 0; u < kBatches; ++u) ChunkBytes(z[u], v + 2 * u);
    for (int h = 0; h < kHalves; ++h) b0[h] = Symbol<0>(v[h]);
    for (int h = 0; h < kHalves; ++h) rep[h] = Rep(b0[h]);
    for (int h = 0; h < kHalves; ++h) {
      diff[h] = _mm512_subs_epi8(v[h], rep[h]);
      // z - rep(b_0) = 4 z_1: b_1 from its bits 2-3, and z_1 = rep(b_1) checked as 4 z_1 = 4 rep(b_1).
      b1[h] = Symbol<2>(diff[h]);
    }
    for (int h = 0; h < kHalves; ++h) rep[h] = Rep(b1[h]);
    uint32_t over = 0;
    for (int h = 0; h < kHalves; ++h) {
      const __m512i twice = _mm512_add_epi8(rep[h], rep[h]);  // |4 rep| <= 100 fits a byte
      over |= static_cast<uint32_t>(_mm512_cmpneq_epi64_mask(diff[h], _mm512_add_epi8(twice, twice))) << (8 * h);
    }
    for (int h = 0; h < kHalves; ++h) {
      const __m512i pair = _mm512_or_si512(b0[h], _mm512_slli_epi64(b1[h], 16));
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(pairs + 8 * h), _mm512_cvtepi64_epi32(pair));
    }
    return over;
  }

 private:
  // Coordinate registers (16 chunks, int32) -> two registers of 8 chunks x 8 bytes, saturated:
  // two rounds of saturating packs (in 128-bit lanes: byte 16 L + 4 i + j of p[k] is coordinate
  // 4 k + i of chunk 4 L + j), then one two-source byte permute per half.
  static COSET_INLINE void ChunkBytes(const __m512i z[8], __m512i v[2]) {
    __m512i p[2];
    for (int k = 0; k < 2; ++k) {
      p[k] = _mm512_packs_epi16(_mm512_packs_epi32(z[4 * k], z[4 * k + 1]),
                                _mm512_packs_epi32(z[4 * k + 2], z[4 * k + 3]));
    }
    for (int h = 0; h < 2; ++h) v[h] = _mm512_permutex2var_epi8(p[0], _mm512_load_si512(kE8ChunkBytes.half[h]), p[1]);
  }
  // b = sum_i (bits kAt, kAt + 1 of byte i) 4^i per 64-bit lane, in its low 16 bits (zeros above):
  // digit pairs joined by a byte multiply-add (1, 4), pairs of pairs by a word multiply-add
  // (1, 16), and the two 8-bit halves of the qword by a shift.
  template <int kAt>
  static COSET_INLINE __m512i Symbol(__m512i v) {
    const __m512i digits = _mm512_and_si512(kAt == 0 ? v : _mm512_srli_epi64(v, kAt), _mm512_set1_epi8(3));
    const __m512i quads =
        _mm512_madd_epi16(_mm512_maddubs_epi16(digits, _mm512_set1_epi16(0x0401)), _mm512_set1_epi32(0x00100001));
    constexpr int kOrAnd = 0xA8;  // (a | b) & c
    return _mm512_ternarylogic_epi64(quads, _mm512_srli_epi64(quads, 24), _mm512_set1_epi64(0xFFFF), kOrAnd);
  }
  // rep(b) of 8 chunks: one 8-byte entry per 64-bit lane.
  COSET_INLINE __m512i Rep(__m512i symbols) const {
    return _mm512_i64gather_epi64(symbols, reinterpret_cast<const long long*>(rep_), 8);
  }
  const int32_t* rep_;  // 8 coordinate bytes of rep(b) per symbol
};

// Up to two E8 batches (16 chunks each) through E8ByteLevels: load(u, y) fills batch u, inv_of(u)
// its 1 / steps. Stores (b_0 | b_1 << 16) per chunk into pairs[32]; returns the overload mask.
template <bool kClamp, class LoadBatch, class InvOf>
COSET_INLINE uint32_t EncodeE8Group(const E8ByteLevels& levels, int batches, LoadBatch load, InvOf inv_of,
                                    uint32_t* pairs) {
  __m512i z[2][8];
  for (int u = 0; u < batches; ++u) NearestOfBatch<E8Batch, kClamp>(load, inv_of, u, z[u]);
  return batches == 2 ? levels.Run<2>(z, pairs) : levels.Run<1>(z, pairs);
}

// The symbols of two levels (lanes[m][l]: level m of lane l) as one 32-bit word per lane, b_0 in
// the low SymbolT and b_1 above it: their order in the row once stored (little-endian).
template <typename SymbolT>
COSET_INLINE __m512i SymbolPairs(const int32_t (*lanes)[16]) {
  static_assert(sizeof(SymbolT) <= 2, "two symbols per 32-bit lane");
  return _mm512_or_si512(_mm512_load_si512(lanes[0]),
                         _mm512_slli_epi32(_mm512_load_si512(lanes[1]), 8 * sizeof(SymbolT)));
}

// First try of n16 (a multiple of 16) contiguous chunks of x at one step (x * inv_step): writes
// symbols[c * levels + m] and the overload masks, a bit per chunk (bytes c / 8). `prefetch` (may
// be null): as many floats to bring into L1, spread over the batches (the next row's block: its
// RMS, the first thing to read it, stalled on L2 with prefetches into L2 only, 0.4 us a row).
template <class Batch, bool kClamp, typename SymbolT>
inline void EncodeAtStep(const Codebook& cb, int levels, const float* x, int64_t n16, float inv_step, SymbolT* symbols,
                         uint8_t* overload_masks, const float* prefetch = nullptr) {
  constexpr int d = Batch::kDim;
  const __m512 inv = _mm512_set1_ps(inv_step);
  auto load = [&](int64_t batch, __m512* y) {
    if (prefetch != nullptr) {
      for (int line = 0; line < 16 * d; line += 16) _mm_prefetch(prefetch + batch * 16 * d + line, _MM_HINT_T0);
    }
    Batch::LoadContiguous(x + batch * 16 * d, y);
  };
  if constexpr (d == 4 && sizeof(SymbolT) == 1) {
    if (D4ByteLevels::Applies(cb, levels)) {
      const D4ByteLevels byte_levels(cb);
      for (int64_t first = 0; first < n16 / 16; first += 4) {
        const int batches = static_cast<int>(std::min<int64_t>(4, n16 / 16 - first));
        alignas(64) uint8_t tail[128];
        uint8_t* pairs = batches == 4 ? reinterpret_cast<uint8_t*>(symbols + first * 32) : tail;
        const __mmask64 over = EncodeD4Group<kClamp>(
            byte_levels, batches, [&](int u, __m512* y) { load(first + u, y); }, [&](int) { return inv; }, pairs);
        std::memcpy(overload_masks + first * 2, &over, 2 * batches);
        if (pairs == tail) std::memcpy(symbols + first * 32, tail, 32 * batches);
      }
      return;
    }
  }
  if constexpr (d == 8 && sizeof(SymbolT) == 2) {
    if (E8ByteLevels::Applies(cb, levels)) {
      const E8ByteLevels byte_levels(cb);
      for (int64_t first = 0; first < n16 / 16; first += 2) {
        const int batches = static_cast<int>(std::min<int64_t>(2, n16 / 16 - first));
        const uint32_t over = EncodeE8Group<kClamp>(
            byte_levels, batches, [&](int u, __m512* y) { load(first + u, y); }, [&](int) { return inv; },
            reinterpret_cast<uint32_t*>(symbols + first * 32));  // (b_0, b_1) of a chunk: its row order
        std::memcpy(overload_masks + first * 2, &over, 2 * batches);
      }
      return;
    }
  }
  EncodeBatches<Batch, kClamp>(
      cb, levels, n16 / 16, load, [&](int64_t) { return inv; },
      [&](int64_t batch, const int32_t(*lanes)[16], uint32_t mask) {
        overload_masks[2 * batch] = static_cast<uint8_t>(mask);
        overload_masks[2 * batch + 1] = static_cast<uint8_t>(mask >> 8);
        SymbolT* out = symbols + batch * 16 * levels;
        if constexpr (sizeof(SymbolT) <= 2) {
          if (levels == 2) {
            // 16 chunks x (b_0, b_1): one shift-or, then one (narrowing) store. A scalar store per
            // symbol had been a sixth of E8's first try.
            const __m512i pairs = SymbolPairs<SymbolT>(lanes);
            if constexpr (sizeof(SymbolT) == 1) {
              _mm256_storeu_si256(reinterpret_cast<__m256i*>(out), _mm512_cvtepi32_epi16(pairs));
            } else {
              _mm512_storeu_si512(out, pairs);
            }
            return;
          }
        }
        for (int l = 0; l < 16; ++l) {
          for (int m = 0; m < levels; ++m) out[l * levels + m] = static_cast<SymbolT>(lanes[m][l]);
        }
      });
}

// One round of the overload ramp (see simd_avx2::EncodeRetries), 16 chunks per batch (up to 64
// per group through D4ByteLevels where it applies).
template <class Batch, bool kClamp, typename SymbolT>
inline void EncodeRetries(const Codebook& cb, int levels, const float* x, const int32_t* list, const float* base,
                          int64_t n16, float ramp, uint8_t tc, SymbolT* symbols, uint8_t* t, uint8_t* overload_masks) {
  constexpr int d = Batch::kDim;
  const __m512 ramp_v = _mm512_set1_ps(ramp), one = _mm512_set1_ps(1.0f);
  // 1 / (base * ramp), as the scalar encoder rounds it.
  auto inv_at = [&](int64_t k) { return _mm512_div_ps(one, _mm512_mul_ps(_mm512_loadu_ps(base + k), ramp_v)); };
  auto load_at = [&](int64_t k, __m512* y) {
    Batch::Load([&](int l) { return x + static_cast<int64_t>(list[k + l]) * d; }, y);
  };
  if constexpr (d == 4 && sizeof(SymbolT) == 1) {
    if (D4ByteLevels::Applies(cb, levels)) {
      const D4ByteLevels byte_levels(cb);
      alignas(64) uint16_t pairs[64];  // (b_0, b_1) per chunk
      for (int64_t first = 0; first < n16; first += 64) {
        const int batches = static_cast<int>(std::min<int64_t>(4, (n16 - first) / 16));
        const __mmask64 over = EncodeD4Group<kClamp>(
            byte_levels, batches, [&](int u, __m512* y) { load_at(first + 16 * u, y); },
            [&](int u) { return inv_at(first + 16 * u); }, reinterpret_cast<uint8_t*>(pairs));
        std::memcpy(overload_masks + first / 8, &over, 2 * batches);
        simd_avx2::StoreRetried(pairs, list + first, 16 * batches, symbols, t, tc);
      }
      return;
    }
  }
  if constexpr (d == 8 && sizeof(SymbolT) == 2) {
    if (E8ByteLevels::Applies(cb, levels)) {
      const E8ByteLevels byte_levels(cb);
      alignas(64) uint32_t pairs[32];  // (b_0, b_1) per chunk
      for (int64_t first = 0; first < n16; first += 32) {
        const int batches = static_cast<int>(std::min<int64_t>(2, (n16 - first) / 16));
        const uint32_t over = EncodeE8Group<kClamp>(
            byte_levels, batches, [&](int u, __m512* y) { load_at(first + 16 * u, y); },
            [&](int u) { return inv_at(first + 16 * u); }, pairs);
        std::memcpy(overload_masks + first / 8, &over, 2 * batches);
        simd_avx2::StoreRetried(pairs, list + first, 16 * batches, symbols, t, tc);
      }
      return;
    }
  }
  EncodeBatches<Batch, kClamp>(
      cb, levels, n16 / 16, [&](int64_t batch, __m512* y) { load_at(batch * 16, y); },
      [&](int64_t batch) { return inv_at(batch * 16); },
      [&](int64_t batch, const int32_t(*lanes)[16], uint32_t mask) {
        overload_masks[2 * batch] = static_cast<uint8_t>(mask);
        overload_masks[2 * batch + 1] = static_cast<uint8_t>(mask >> 8);
        if constexpr (sizeof(SymbolT) == 2) {
          if (levels == 2) {
            // One 4-byte store of (b_0, b_1) per chunk, reading the list once.
            alignas(64) uint32_t pairs[16];
            _mm512_store_si512(pairs, SymbolPairs<SymbolT>(lanes));
            simd_avx2::StoreRetried(pairs, list + batch * 16, 16, symbols, t, tc);
            return;
          }
        }
        for (int l = 0; l < 16; ++l) {
          const int32_t c = list[batch * 16 + l];
          SymbolT* out = symbols + static_cast<int64_t>(c) * levels;
          for (int m = 0; m < levels; ++m) out[m] = static_cast<SymbolT>(lanes[m][l]);
          t[c] = tc;
        }
      });
}

using simd_avx2::DecodeChunksInt8;

// Writes 16 decoded floats v at o: with an epilogue, base + scale * v as ScaleAddImpl computes it
// (base: its 16 floats, or null for 0); else plain stores, or with `stream` non-temporal ones
// (o 16-byte aligned), for outputs far larger than the caches, where they save the
// read-for-ownership of every written line.
COSET_INLINE void StoreDecoded16(float* o, __m512 v, bool stream, bool epilogue, const float* base, float scale) {
  if (epilogue) {
    const __m512 b = base != nullptr ? _mm512_loadu_ps(base) : _mm512_setzero_ps();
    _mm512_storeu_ps(o, _mm512_add_ps(b, _mm512_mul_ps(_mm512_set1_ps(scale), v)));
  } else if (!stream) {
    _mm512_storeu_ps(o, v);
  } else if (reinterpret_cast<uintptr_t>(o) % 64 == 0) {
    _mm512_stream_ps(o, v);
  } else {
    // malloc'd buffers are often only 16-byte aligned: four 16-byte non-temporal stores still
    // fill whole lines in the write-combining buffers.
    _mm_stream_ps(o, _mm512_castps512_ps128(v));
    _mm_stream_ps(o + 4, _mm512_extractf32x4_ps(v, 1));
    _mm_stream_ps(o + 8, _mm512_extractf32x4_ps(v, 2));
    _mm_stream_ps(o + 12, _mm512_extractf32x4_ps(v, 3));
  }
}

// D4ByteDecoder's split of 64 chunks' (b_0, b_1) pairs into one register per level: byte
// 16 L + 4 j + m of level[k] is b_k of chunk 16 j + 4 m + L.
struct D4SplitIndex {
  alignas(64) int8_t level[2][64];
};
constexpr D4SplitIndex MakeD4Split() {
  D4SplitIndex s{};
  for (int p = 0; p < 64; ++p) {
    for (int m = 0; m < 2; ++m) s.level[m][p] = static_cast<int8_t>(2 * (16 * (p / 4 % 4) + 4 * (p % 4) + p / 16) + m);
  }
  return s;
}
inline constexpr D4SplitIndex kD4Split = MakeD4Split();

// Algorithm 2 for D4 with q = 4, M = 2 on 64 chunks at once: the (b_0, b_1) bytes are split with
// two permutes, 2 rep(b_m) looked up per coordinate from the planes of rep_point_x2_planar_int8,
// the exact Horner sum 4 * 2rep(b_1) + 2rep(b_0) taken on bytes (|.| <= 5 kMaxX2 < 128), brought
// into chunk order on bytes, widened, converted and multiplied once by step / 2 (the same single
// rounding as the scalar decoder). `stream`: non-temporal stores (out 16-byte aligned), for outputs
// far larger than the caches, where they save the read-for-ownership of every written line.
class D4ByteDecoder {
 public:
  static constexpr int kChunks = 64;  // per Decode
  static constexpr int kMaxX2 = 25;
  static bool Applies(const Codebook& cb, int levels) {
    return levels == 2 && cb.q() == 4 && cb.symbol_dim() == 4 && !cb.rep_point_x2_planar_int8().empty() &&
           cb.max_abs_rep_point_x2() <= kMaxX2;
  }
  explicit D4ByteDecoder(const Codebook& cb) : points_(cb.rep_point_x2_planar_int8().data()) {}
  // symbols: 64 chunks x (b_0, b_1); steps: 64; out: 256 floats. With an epilogue (`epilogue`
  // true) out = base + scale * v instead of v (base may be out itself, or null for 0), as
  // ScaleAddImpl computes it: the decoded floats never go through a row buffer.
  COSET_INLINE void Decode(const uint8_t* symbols, const float* steps, float* out, bool stream, bool epilogue = false,
                           const float* base = nullptr, float scale = 1.0f) const {
    const __m512i v0 = _mm512_loadu_si512(symbols), v1 = _mm512_loadu_si512(symbols + 64);
    const __m512i b0 = _mm512_permutex2var_epi8(v0, _mm512_load_si512(kD4Split.level[0]), v1),
                  b1 = _mm512_permutex2var_epi8(v0, _mm512_load_si512(kD4Split.level[1]), v1);
    __m512i acc[4];
    for (int i = 0; i < 4; ++i) {
      const __m512i p1 = points_.Lookup(b1, i), p0 = points_.Lookup(b0, i);
      const __m512i twice = _mm512_add_epi8(p1, p1);
      acc[i] = _mm512_add_epi8(_mm512_add_epi8(twice, twice), p0);
    }
    // Byte 16 L + 4 j + m of acc holds chunk 16 j + 4 m + L (kD4Split), so that in-lane
    // interleaves alone (no lane-crossing permute: those share one pipe on Zen 4) leave the four
    // coordinates of chunk 16 j + 4 m + L in lane L of z[m] below, i.e. z[m] is 16 consecutive
    // output floats. A transpose of the floats (two lane-crossing permutes per 16) was 10 % slower.
    const __m512i a01lo = _mm512_unpacklo_epi8(acc[0], acc[1]), a01hi = _mm512_unpackhi_epi8(acc[0], acc[1]);
    const __m512i a23lo = _mm512_unpacklo_epi8(acc[2], acc[3]), a23hi = _mm512_unpackhi_epi8(acc[2], acc[3]);
    const __m512i r[4] = {_mm512_unpacklo_epi16(a01lo, a23lo), _mm512_unpackhi_epi16(a01lo, a23lo),
                          _mm512_unpacklo_epi16(a01hi, a23hi), _mm512_unpackhi_epi16(a01hi, a23hi)};
    const __m512i zero = _mm512_setzero_si512();
    // Each 16 steps transposed 4 x 4 (lane L, element m: chunk 16 j + 4 m + L), so that one in-lane
    // broadcast gives each lane its chunk's step.
    const __m512i transpose = _mm512_setr_epi32(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15);
    // The bytes are widened into the top byte of each int32 (interleaves with zeros, no shifts):
    // x 2^24, undone on the step, which is multiplied by 2^-25 instead of 1/2. Both factors stay
    // exact (a step is 0 or at least kMinStep, so step x 2^-25 is no subnormal) and their product
    // rounds once, to the same float as x * (step / 2).
    const __m512 half_2_24 = _mm512_set1_ps(1.0f / 33554432.0f);  // 2^-25
    for (int j = 0; j < 4; ++j) {
      const __m512 s = _mm512_mul_ps(_mm512_permutexvar_ps(transpose, _mm512_loadu_ps(steps + 16 * j)), half_2_24);
      const __m512i wlo = _mm512_unpacklo_epi8(zero, r[j]), whi = _mm512_unpackhi_epi8(zero, r[j]);
      const __m512i z[4] = {_mm512_unpacklo_epi16(zero, wlo), _mm512_unpackhi_epi16(zero, wlo),
                            _mm512_unpacklo_epi16(zero, whi), _mm512_unpackhi_epi16(zero, whi)};
      // Lane L's step of chunk 16 j + 4 m + L, in all four of its floats (immediates, one per m).
      const __m512 step_of[4] = {_mm512_permute_ps(s, 0x00), _mm512_permute_ps(s, 0x55), _mm512_permute_ps(s, 0xAA),
                                 _mm512_permute_ps(s, 0xFF)};
      for (int m = 0; m < 4; ++m) {
        const __m512 v = _mm512_mul_ps(_mm512_cvtepi32_ps(z[m]), step_of[m]);
        const int at = 64 * j + 16 * m;
        StoreDecoded16(out + at, v, stream, epilogue, base != nullptr ? base + at : nullptr, scale);
      }
    }
  }

 private:
  BytePlanes points_;  // 2 rep(b) in ambient coordinates
};

// Algorithm 2 for E8 with two levels of 16-bit symbols (q = 4: the default E8 code), 8 chunks per
// call: the 2 rep(b_m) entries of each chunk (8 bytes each, from rep_point_x2_int8) read with
// scalar loads (two 8-lane qword gathers per level were slower than the AVX2 loop), the exact
// Horner sum q * 2rep(b_1) + 2rep(b_0) taken on bytes (|.| <= (q + 1) max |2 rep| < 128, checked
// by Applies), then, per 2 chunks, one widen, one convert and one multiply by step / 2 (the same
// single rounding as the scalar decoder and DecodeChunksInt8). `stream` and the epilogue as in
// D4ByteDecoder (StoreDecoded16).
class E8ByteDecoder {
 public:
  static constexpr int kChunks = 8;  // per Decode
  // For 16-bit symbols (the caller's type), i.e. q = 4.
  static bool Applies(const Codebook& cb, int levels) {
    return levels == 2 && cb.symbol_dim() == 8 && cb.q_is_power_of_two() && !cb.rep_point_x2_int8().empty() &&
           (cb.q() + 1) * cb.max_abs_rep_point_x2() < 128;
  }
  explicit E8ByteDecoder(const Codebook& cb)
      : table_(reinterpret_cast<const int64_t*>(cb.rep_point_x2_int8().data())), log2_q_(cb.log2_q()) {}
  // symbols: 8 chunks x (b_0, b_1); steps: 8; out: 64 floats.
  COSET_INLINE void Decode(const uint16_t* symbols, const float* steps, float* out, bool stream, bool epilogue = false,
                           const float* base = nullptr, float scale = 1.0f) const {
    __m128i e0[4], e1[4];
    for (int j = 0; j < 4; ++j) {
      e0[j] = _mm_insert_epi64(_mm_cvtsi64_si128(table_[symbols[4 * j]]), table_[symbols[4 * j + 2]], 1);
      e1[j] = _mm_insert_epi64(_mm_cvtsi64_si128(table_[symbols[4 * j + 1]]), table_[symbols[4 * j + 3]], 1);
    }
    const __m512i p0 = Join(e0), p1 = Join(e1);
    // q * p1 on bytes: log2 q doublings (no byte shift exists; q <= 4 here in practice).
    __m512i acc = p1;
    for (int k = 0; k < log2_q_; ++k) acc = _mm512_add_epi8(acc, acc);
    alignas(64) int8_t coords8[64];
    _mm512_store_si512(coords8, _mm512_add_epi8(acc, p0));
    const __m512 half_steps = _mm512_castps256_ps512(_mm256_mul_ps(_mm256_loadu_ps(steps), _mm256_set1_ps(0.5f)));
    for (int u = 0; u < 4; ++u) {
      // Chunks 2u and 2u + 1: 16 coordinates, each chunk's step / 2 in its 8 lanes.
      const __m512i coords = _mm512_cvtepi8_epi32(_mm_load_si128(reinterpret_cast<const __m128i*>(coords8 + 16 * u)));
      const __m512 step_u = _mm512_permutexvar_ps(
          _mm512_set_epi32(2 * u + 1, 2 * u + 1, 2 * u + 1, 2 * u + 1, 2 * u + 1, 2 * u + 1, 2 * u + 1, 2 * u + 1,
                           2 * u, 2 * u, 2 * u, 2 * u, 2 * u, 2 * u, 2 * u, 2 * u),
          half_steps);
      const __m512 v = _mm512_mul_ps(_mm512_cvtepi32_ps(coords), step_u);
      StoreDecoded16(out + 16 * u, v, stream, epilogue, base != nullptr ? base + 16 * u : nullptr, scale);
    }
  }

 private:
  static COSET_INLINE __m512i Join(const __m128i e[4]) {
    const __m256i lo = _mm256_inserti128_si256(_mm256_castsi128_si256(e[0]), e[1], 1);
    const __m256i hi = _mm256_inserti128_si256(_mm256_castsi128_si256(e[2]), e[3], 1);
    return _mm512_inserti64x4(_mm512_castsi256_si512(lo), hi, 1);
  }
  const int64_t* table_;
  int log2_q_;
};

#undef COSET_INLINE

}  // namespace simd_avx512
}  // namespace coset
