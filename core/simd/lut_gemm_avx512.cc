// AVX-512 kernel of LutMatrix's compact-codes path (layout and arithmetic: lut_gemm.h): 16 weight
// rows per register, tiles of 64 rows. A block's codes are decoded with VBMI byte permutes (as the
// row decoder reads Codebook's planar tables: 2 rep(b) of 64 symbols per coordinate in three
// instructions, the levels summed on bytes) into a float panel, then register tiles of up to six
// queries stream it, each weight load and query broadcast shared by 24 FMAs. Bit-identical to
// CompactTileGemmPortable.
#include <algorithm>

#include "core/limits.h"
#include "core/simd/avx512_unit.h"
#include "core/simd/lut_gemm.h"

namespace coset {
namespace {

// Queries per pass over a panel: 6 queries x 4 row registers of accumulators, the 4 weight
// registers of a step and a broadcast fit in 32 registers.
constexpr int kQueryTile = 6;

// 2 rep(b)_i of 64 symbols: BytePlanes::Lookup with the top-bit mask computed once per level.
inline __attribute__((always_inline)) __m512i PlaneLookup(const int8_t* planes, __m512i b, __mmask64 top, int i) {
  const __m512i* plane = reinterpret_cast<const __m512i*>(planes + i * 256);
  const __m512i lo = _mm512_permutex2var_epi8(_mm512_loadu_si512(plane), b, _mm512_loadu_si512(plane + 1));
  const __m512i hi = _mm512_permutex2var_epi8(_mm512_loadu_si512(plane + 2), b, _mm512_loadu_si512(plane + 3));
  return _mm512_mask_blend_epi8(top, lo, hi);
}

// The planes times q^(M-1) for M = 2 (exact in int8: BuildCompact bounds (q + 1) max |2 rep| by
// 127), so the two levels' sum is one byte add instead of log2(q) doublings and an add.
struct TopPlanes {
  alignas(64) int8_t bytes[4 * 256];
  TopPlanes(const int8_t* planes, int log2_q) {
    for (int k = 0; k < 16; ++k) {
      __m512i v = _mm512_loadu_si512(planes + 64 * k);
      for (int s = 0; s < log2_q; ++s) v = _mm512_add_epi8(v, v);
      _mm512_store_si512(bytes + 64 * k, v);
    }
  }
};

// Group g's quads [q_begin, q_end) into panel[((c - 4 q_begin) * 4 + i) * 4 + g][lane]. kLevels and
// kLog2Q > 0 fix the code at compile time (the common q = 4, M = 2); 0 reads them from the args.
// top: TopPlanes of the args' planes when levels = 2.
template <int kLevels, int kLog2Q>
void DecodePanel(const CompactTileArgs& a, const int8_t* top_planes, int g, int64_t q_begin, int64_t q_end,
                 float* panel) {
  const int levels = kLevels > 0 ? kLevels : a.levels;
  const int log2_q = kLog2Q > 0 ? kLog2Q : a.log2_q;
  // vpermps reads the low 4 bits of an index: ramp[k & 3] at every k ignores the next chunk's field.
  const __m512 ramp =
      _mm512_setr_ps(a.ramp[0], a.ramp[1], a.ramp[2], a.ramp[3], a.ramp[0], a.ramp[1], a.ramp[2], a.ramp[3], a.ramp[0],
                     a.ramp[1], a.ramp[2], a.ramp[3], a.ramp[0], a.ramp[1], a.ramp[2], a.ramp[3]);
  for (int64_t quad = q_begin; quad < q_end; ++quad) {
    const uint8_t* codes = a.codes + g * a.group_codes + quad * levels * 64;
    __m512i b[kLevels > 0 ? kLevels : kMaxLevels];
    __mmask64 top[kLevels > 0 ? kLevels : kMaxLevels];
    for (int m = 0; m < levels; ++m) {
      b[m] = _mm512_loadu_si512(codes + m * 64);
      top[m] = _mm512_movepi8_mask(b[m]);
    }
    alignas(64) int8_t points[4][64];  // [i][j * 16 + lane]
    for (int i = 0; i < 4; ++i) {
      __m512i acc;
      if (levels == 2) {
        acc = _mm512_add_epi8(PlaneLookup(top_planes, b[1], top[1], i), PlaneLookup(a.planes, b[0], top[0], i));
      } else {
        acc = PlaneLookup(a.planes, b[levels - 1], top[levels - 1], i);
        for (int m = levels - 2; m >= 0; --m) {
          for (int s = 0; s < log2_q; ++s) acc = _mm512_add_epi8(acc, acc);
          acc = _mm512_add_epi8(acc, PlaneLookup(a.planes, b[m], top[m], i));
        }
      }
      _mm512_store_si512(points[i], acc);
    }
    // Read the bytes back with load-and-widen instructions: left to itself the compiler keeps them
    // in registers and widens each 16-byte part after a lane extract, one more shuffle per 16 weights.
    asm volatile("" : : "r"(points) : "memory");
    const __m512i t =
        _mm512_cvtepu8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(a.t + g * a.group_t + quad * 16)));
    float* w = panel + (quad - q_begin) * 16 * kCompactRows + g * kCompactLanes;
    for (int j = 0; j < 4; ++j) {
      const __m512 r = _mm512_permutexvar_ps(_mm512_srli_epi32(t, 2 * j), ramp);
      for (int i = 0; i < 4; ++i) {
        const __m512i p = _mm512_cvtepi8_epi32(_mm_load_si128(reinterpret_cast<const __m128i*>(points[i] + 16 * j)));
        _mm512_store_ps(w + (j * 4 + i) * kCompactRows, _mm512_mul_ps(_mm512_cvtepi32_ps(p), r));
      }
    }
  }
}

// Accumulates kTile queries (x: the first one's entries of these steps) over `steps` (chunk,
// coordinate) steps of the panel.
template <int kTile>
inline __attribute__((always_inline)) void Accumulate(__m512 (&acc)[kTile][kCompactGroups], const float* x,
                                                      int64_t stride, int64_t steps, const float* panel) {
  for (int64_t s = 0; s < steps; ++s) {
    __m512 w[kCompactGroups];
    for (int g = 0; g < kCompactGroups; ++g) w[g] = _mm512_load_ps(panel + s * kCompactRows + g * kCompactLanes);
    for (int b = 0; b < kTile; ++b) {
      const __m512 xs = _mm512_set1_ps(x[b * stride + s]);
      for (int g = 0; g < kCompactGroups; ++g) acc[b][g] = _mm512_fmadd_ps(xs, w[g], acc[b][g]);
    }
  }
}

// out += half_base * acc, per query and row.
template <int kTile>
inline __attribute__((always_inline)) void Finish(const __m512 (&acc)[kTile][kCompactGroups], const float* half_base,
                                                  float* out) {
  for (int g = 0; g < kCompactGroups; ++g) {
    const __m512 hb = _mm512_loadu_ps(half_base + g * kCompactLanes);
    for (int b = 0; b < kTile; ++b) {
      float* o = out + b * kCompactRows + g * kCompactLanes;
      _mm512_storeu_ps(o, _mm512_fmadd_ps(hb, acc[b][g], _mm512_loadu_ps(o)));
    }
  }
}

template <int kTile>
void Tile(const float* x, int64_t stride, int64_t steps, const float* panel, const float* half_base, float* out) {
  __m512 acc[kTile][kCompactGroups];
  for (int b = 0; b < kTile; ++b) {
    for (int g = 0; g < kCompactGroups; ++g) acc[b][g] = _mm512_setzero_ps();
  }
  Accumulate<kTile>(acc, x, stride, steps, panel);
  Finish<kTile>(acc, half_base, out);
}

// Quads per panel when a single query tile reads it: a quarter of a default block, 16 KB, stays in
// L1 between its decode and its one read (a whole block's 64 KB would go through L2).
constexpr int64_t kSmallBatchQuads = 4;

// Batches of at most kQueryTile queries: the block's accumulators stay in registers while the
// block is decoded and read in L1-sized parts (the same operations in the same order).
template <int kTile, int kLevels, int kLog2Q>
void SmallBatch(const CompactTileArgs& a, const int8_t* top_planes, const float* xq, float* panel, float* out) {
  const LutMatrix::RampPatch* patch = a.patches;
  for (int64_t blk = 0; blk < a.blocks; ++blk) {
    const int64_t q_begin = blk * a.quads_per_block, q_end = std::min(a.quads, q_begin + a.quads_per_block);
    __m512 acc[kTile][kCompactGroups];
    for (int b = 0; b < kTile; ++b) {
      for (int g = 0; g < kCompactGroups; ++g) acc[b][g] = _mm512_setzero_ps();
    }
    for (int64_t part = q_begin; part < q_end; part += kSmallBatchQuads) {
      const int64_t part_end = std::min(q_end, part + kSmallBatchQuads);
      for (int g = 0; g < kCompactGroups; ++g) DecodePanel<kLevels, kLog2Q>(a, top_planes, g, part, part_end, panel);
      patch = PatchCompactPanel(a, patch, part, part_end, panel);
      Accumulate<kTile>(acc, xq + 16 * part, a.query_stride, 16 * (part_end - part), panel);
    }
    Finish<kTile>(acc, a.half_base + blk * kCompactRows, out);
  }
}

using SmallBatchFn = void (*)(const CompactTileArgs&, const int8_t*, const float*, float*, float*);
template <int kLevels, int kLog2Q>
constexpr SmallBatchFn kSmallBatch[kQueryTile + 1] = {nullptr,
                                                      &SmallBatch<1, kLevels, kLog2Q>,
                                                      &SmallBatch<2, kLevels, kLog2Q>,
                                                      &SmallBatch<3, kLevels, kLog2Q>,
                                                      &SmallBatch<4, kLevels, kLog2Q>,
                                                      &SmallBatch<5, kLevels, kLog2Q>,
                                                      &SmallBatch<6, kLevels, kLog2Q>};

using TileFn = void (*)(const float*, int64_t, int64_t, const float*, const float*, float*);
constexpr TileFn kTiles[kQueryTile + 1] = {nullptr, &Tile<1>, &Tile<2>, &Tile<3>, &Tile<4>, &Tile<5>, &Tile<6>};

}  // namespace

void CompactTileGemmAvx512(const CompactTileArgs& a, const float* xq, int64_t batch, float* panel, float* out) {
  const bool q4m2 = a.levels == 2 && a.log2_q == 2;
  const TopPlanes top(a.planes, a.log2_q);
  std::fill(out, out + batch * kCompactRows, 0.0f);
  if (batch <= kQueryTile) return (q4m2 ? kSmallBatch<2, 2> : kSmallBatch<0, 0>)[batch](a, top.bytes, xq, panel, out);
  const auto decode_group = q4m2 ? &DecodePanel<2, 2> : &DecodePanel<0, 0>;
  auto decode = [&](int g, int64_t q_begin, int64_t q_end, float* p) {
    decode_group(a, top.bytes, g, q_begin, q_end, p);
  };
  ForEachCompactBlock(a, panel, decode, [&](int64_t blk, int64_t q_begin, int64_t q_end) {
    for (int64_t first = 0; first < batch; first += kQueryTile) {
      kTiles[std::min<int64_t>(kQueryTile, batch - first)](
          xq + first * a.query_stride + 16 * q_begin, a.query_stride, 16 * (q_end - q_begin), panel,
          a.half_base + blk * kCompactRows, out + first * kCompactRows);
    }
  });
}

}  // namespace coset
