// AVX-512 kernels of LutMatrix's fast paths (layouts and arithmetic: lut_gemm.h). int8-lanes from
// batch 3 on: two groups per register, below (LanePairTile). compact-codes: 16 weight
// rows per register, tiles of 64 rows. Codes are decoded with VBMI byte permutes (as the row
// decoder reads Codebook's planar tables: 2 rep(b) of 64 symbols per coordinate in three
// instructions, the levels summed on bytes). Up to six queries take each decoded weight straight
// into their FMAs; seven and eight walk each block twice, two row groups a pass, through a
// quad-sized weight panel in L1; larger batches decode a block into a float panel that register
// tiles of six queries stream, each weight load and query broadcast shared by 24 FMAs.
// Bit-identical to CompactTileGemmPortable and LutGroupGemmPortable.
#include <algorithm>

#include "core/limits.h"
#include "core/simd/avx512_unit.h"
#include "core/simd/lut_gemm.h"

namespace coset {
namespace {

#define COSET_LUT_INLINE inline __attribute__((always_inline))
// Lambdas holding register arrays: called out of line they would pass them through memory.
#define COSET_LUT_LAMBDA_INLINE __attribute__((always_inline))

// Queries per pass over a panel: 6 queries x 4 row registers of accumulators, the 4 weight
// registers of a step and a broadcast fit in 32 registers.
constexpr int kQueryTile = 6;

// acc = fma(broadcast(*x), w, acc) with the broadcast folded into the FMA as a memory operand
// ({1to16}). Written with _mm512_set1_ps the compiler emits one vbroadcastss per query value and
// step, which on Zen 4 competes with the FMAs (batch 8: 32.3 ms with it, 30.7 without). The same
// fused multiply-add, so the same bits.
COSET_LUT_INLINE void FmaBroadcast(const float* x, __m512 w, __m512& acc) {
  asm("vfmadd231ps %[x]%{1to16%}, %[w], %[acc]" : [acc] "+v"(acc) : [w] "v"(w), [x] "m"(*x));
}

// broadcast(*x) * p, the broadcast folded into the multiply as FmaBroadcast does.
COSET_LUT_INLINE __m512 MulBroadcast(const float* x, __m512 p) {
  __m512 out;
  asm("vmulps %[x]%{1to16%}, %[p], %[out]" : [out] "=v"(out) : [p] "v"(p), [x] "m"(*x));
  return out;
}

// One coordinate's plane of 256 int8 entries in four registers, read with VBMI: entry b of 64
// bytes b at once is two 128-entry two-source permutes and a blend on b's top bit.
struct Plane {
  __m512i part[4];
  explicit Plane(const int8_t* plane) {
    for (int k = 0; k < 4; ++k) part[k] = _mm512_loadu_si512(plane + 64 * k);
  }
  COSET_LUT_INLINE __m512i Lookup(__m512i b, __mmask64 top_bit) const {
    const __m512i lo = _mm512_permutex2var_epi8(part[0], b, part[1]);
    const __m512i hi = _mm512_permutex2var_epi8(part[2], b, part[3]);
    return _mm512_mask_blend_epi8(top_bit, lo, hi);
  }
};

// Decodes a tile's quads in order. Points: the 2 rep bytes of the four groups, each coordinate's
// planes loaded once for the four. Weights: one group's chunk as floats times ramp[T]; a chunk
// with T > 3 gets its own ramp in its lane (the patches), the same product PatchCompactPanel
// writes. A quad's ramps are made once, patches included, into a small table that the weights
// read: looked up per chunk and group behind a branch on the quad's patches, they had cost 8 % of
// batch 8's time and 8 % of batch 1's. kLevels and kLog2Q > 0 fix the code at compile time (the
// common q = 4, M = 2); 0 reads them from the args. Two levels are summed with one byte add from
// args.top_planes.
template <int kLevels, int kLog2Q>
class TileDecoder {
 public:
  using Points = int8_t[kCompactGroups][4][64];  // [g][i][j * 16 + lane]

  explicit TileDecoder(const CompactTileArgs& a)
      : a_(a),
        // vpermps reads the low 4 bits of an index: ramp[k & 3] at every k ignores the next field.
        ramp_(_mm512_setr_ps(a.ramp[0], a.ramp[1], a.ramp[2], a.ramp[3], a.ramp[0], a.ramp[1], a.ramp[2], a.ramp[3],
                             a.ramp[0], a.ramp[1], a.ramp[2], a.ramp[3], a.ramp[0], a.ramp[1], a.ramp[2], a.ramp[3])),
        patch_(a.patches) {}

  // Decodes groups [first, first + kCount) of the quad (the others' points are left as they were).
  template <int kCount = kCompactGroups>
  COSET_LUT_INLINE void Decode(int64_t quad, Points& points, int first = 0) {
    constexpr int kMax = kLevels > 0 ? kLevels : kMaxLevels;
    const int levels = kLevels > 0 ? kLevels : a_.levels;
    const int log2_q = kLog2Q > 0 ? kLog2Q : a_.log2_q;
    __m512i b[kCount][kMax];
    __mmask64 top_bit[kCount][kMax];  // selects a plane's upper 128 entries
    for (int g = 0; g < kCount; ++g) {
      for (int m = 0; m < levels; ++m) {
        b[g][m] = _mm512_loadu_si512(a_.codes + (first + g) * a_.group_codes + (quad * levels + m) * 64);
        top_bit[g][m] = _mm512_movepi8_mask(b[g][m]);
      }
    }
    for (int i = 0; i < 4; ++i) {
      const Plane plane(a_.planes + i * 256);
      if (levels == 2) {
        const Plane top(a_.top_planes + i * 256);
        for (int g = 0; g < kCount; ++g) {
          const __m512i sum = _mm512_add_epi8(top.Lookup(b[g][1], top_bit[g][1]), plane.Lookup(b[g][0], top_bit[g][0]));
          _mm512_store_si512(points[first + g][i], sum);
        }
        continue;
      }
      for (int g = 0; g < kCount; ++g) {
        __m512i acc = plane.Lookup(b[g][levels - 1], top_bit[g][levels - 1]);
        for (int m = levels - 2; m >= 0; --m) {
          for (int s = 0; s < log2_q; ++s) acc = _mm512_add_epi8(acc, acc);
          acc = _mm512_add_epi8(acc, plane.Lookup(b[g][m], top_bit[g][m]));
        }
        _mm512_store_si512(points[first + g][i], acc);
      }
    }
    // Read the bytes back with load-and-widen instructions: left to itself the compiler keeps them
    // in registers and widens each 16-byte part after a lane extract, one more shuffle per 16 weights.
    asm volatile("" : : "r"(points) : "memory");
    // ramp[T] per row and chunk from the 2-bit T fields (vpermps reads an index's low 4 bits: see
    // ramp_), then the quad's patches over them.
    for (int g = first; g < first + kCount; ++g) {
      const __m512i t =
          _mm512_cvtepu8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(a_.t + g * a_.group_t + quad * 16)));
      for (int j = 0; j < 4; ++j)
        _mm512_store_ps(ramps_[g][j], _mm512_permutexvar_ps(_mm512_srli_epi32(t, 2 * j), ramp_));
    }
    for (; patch_ != a_.patches_end && patch_->chunk < 4 * (quad + 1); ++patch_) {
      const int g = patch_->row / kCompactLanes;
      if (g >= first && g < first + kCount) ramps_[g][patch_->chunk % 4][patch_->row % kCompactLanes] = patch_->ramp;
    }
  }

  // The weights of coordinate i of chunk j of group g in the decoded quad (r: Ramp(g, j)).
  static COSET_LUT_INLINE __m512 Weight(const Points& points, __m512 r, int g, int j, int i) {
    const __m512i v = _mm512_cvtepi8_epi32(_mm_load_si128(reinterpret_cast<const __m128i*>(points[g][i] + 16 * j)));
    return _mm512_mul_ps(_mm512_cvtepi32_ps(v), r);
  }

  // Chunk j of group g's ramp[T] per row in the decoded quad, the chunks with T > 3 patched in.
  COSET_LUT_INLINE __m512 Ramp(int g, int j) const { return _mm512_load_ps(ramps_[g][j]); }

  // w[i] = the weights of coordinate i of chunk j of group g in the decoded quad.
  COSET_LUT_INLINE void Weights(const Points& points, int g, int j, __m512 w[4]) const {
    const __m512 r = Ramp(g, j);
    for (int i = 0; i < 4; ++i) w[i] = Weight(points, r, g, j, i);
  }

  // Where the patches stand before the next Decode: a second pass over quads already decoded
  // returns there first.
  const LutMatrix::RampPatch* Position() const { return patch_; }
  void Seek(const LutMatrix::RampPatch* position) { patch_ = position; }

 private:
  const CompactTileArgs& a_;
  const __m512 ramp_;
  const LutMatrix::RampPatch* patch_;                          // the first patch past the decoded quad
  alignas(64) float ramps_[kCompactGroups][4][kCompactLanes];  // [g][j][lane] of the decoded quad
};

// The tile's quads [q_begin, q_end) into panel[((c - 4 q_begin) * 4 + i) * 4 + g][lane].
template <int kLevels, int kLog2Q>
void DecodePanel(TileDecoder<kLevels, kLog2Q>& decoder, int64_t q_begin, int64_t q_end, float* panel) {
  for (int64_t quad = q_begin; quad < q_end; ++quad) {
    alignas(64) typename TileDecoder<kLevels, kLog2Q>::Points points;
    decoder.Decode(quad, points);
    for (int g = 0; g < kCompactGroups; ++g) {
      float* w = panel + (quad - q_begin) * 16 * kCompactRows + g * kCompactLanes;
      for (int j = 0; j < 4; ++j) {
        __m512 weights[4];
        decoder.Weights(points, g, j, weights);
        for (int i = 0; i < 4; ++i) _mm512_store_ps(w + (j * 4 + i) * kCompactRows, weights[i]);
      }
    }
  }
}

// Accumulates kTile queries (x: the first one's entries of these steps) over `steps` (chunk,
// coordinate) steps of the panel.
template <int kTile>
COSET_LUT_INLINE void Accumulate(__m512 (&acc)[kTile][kCompactGroups], const float* x, int64_t stride, int64_t steps,
                                 const float* panel) {
  for (int64_t s = 0; s < steps; ++s) {
    __m512 w[kCompactGroups];
    for (int g = 0; g < kCompactGroups; ++g) w[g] = _mm512_load_ps(panel + s * kCompactRows + g * kCompactLanes);
    for (int b = 0; b < kTile; ++b) {
      const __m512 xs = _mm512_set1_ps(x[b * stride + s]);
      for (int g = 0; g < kCompactGroups; ++g) acc[b][g] = _mm512_fmadd_ps(xs, w[g], acc[b][g]);
    }
  }
}

// out += half_base * acc, per query and row, for kGroups groups from group `first` on.
template <int kTile, int kGroups = kCompactGroups>
COSET_LUT_INLINE void Finish(const __m512 (&acc)[kTile][kGroups], const float* half_base, float* out, int first = 0) {
  for (int g = 0; g < kGroups; ++g) {
    const __m512 hb = _mm512_loadu_ps(half_base + (first + g) * kCompactLanes);
    for (int b = 0; b < kTile; ++b) {
      float* o = out + b * kCompactRows + (first + g) * kCompactLanes;
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

// Batches of at most kQueryTile queries: no panel. Each decoded weight goes straight into the
// FMAs of every query while the block's accumulators stay in registers (the same operations in
// the same order per query and row as through a panel).
template <int kTile, int kLevels, int kLog2Q>
void SmallBatch(const CompactTileArgs& a, const float* xq, float* out) {
  TileDecoder<kLevels, kLog2Q> decoder(a);
  for (int64_t blk = 0; blk < a.blocks; ++blk) {
    const int64_t q_begin = blk * a.quads_per_block, q_end = std::min(a.quads, q_begin + a.quads_per_block);
    __m512 acc[kTile][kCompactGroups];
    for (int b = 0; b < kTile; ++b) {
      for (int g = 0; g < kCompactGroups; ++g) acc[b][g] = _mm512_setzero_ps();
    }
    for (int64_t quad = q_begin; quad < q_end; ++quad) {
      alignas(64) typename TileDecoder<kLevels, kLog2Q>::Points points;
      decoder.Decode(quad, points);
      const float* x = xq + 16 * quad;
      for (int g = 0; g < kCompactGroups; ++g) {
        for (int j = 0; j < 4; ++j) {
          __m512 w[4];
          decoder.Weights(points, g, j, w);
          for (int i = 0; i < 4; ++i) {
            for (int b = 0; b < kTile; ++b)
              acc[b][g] = _mm512_fmadd_ps(_mm512_set1_ps(x[b * a.query_stride + 4 * j + i]), w[i], acc[b][g]);
          }
        }
      }
    }
    Finish<kTile>(acc, a.half_base + blk * kCompactRows, out);
  }
}

// Batches of kQueryTile + 1 to kMidTile queries (7 and 8): accumulators for all four groups would
// not fit in registers, so each block is walked twice, two groups a pass (8 queries x 2 groups: 16
// accumulators in registers for the whole block). Per quad the two groups' weights go through a
// 2 KB panel in L1 (made in the FMA loop's registers, they spilled; two panels, see MidBatchPass),
// and the block's queries are first copied quad by quad into xb, so that every broadcast is an
// offset from one pointer (a pointer per query left too few general registers). The same
// operations in the same order per query and row as SmallBatch. 16384 x 8192, one thread: batch
// 8 took 34.9 ms through the block panel (query tiles of 6 + 2), about 31 here, 30.2-30.5
// pipelined (30.8-31.1 before, alternating builds; 23.8 with the weights' build left out: the FMA
// pipes' own limit), 27.6-28.4 with a quad's ramps made once (TileDecoder); batch 7 33.9, 28.5,
// then 25.2.
constexpr int kMidTile = 8;
constexpr int kMidGroups = 2;
// Floats per quad of xb: kTile queries of 16, padded to an odd number of 64-byte lines. At 8
// lines (512 bytes) batch 8 ran 42 ms instead of 32, most likely because its loads then shared
// the low 12 address bits with the stores of the decoded points and weights (4 KiB aliasing).
template <int kTile>
constexpr int kXbQuad = (kTile | 1) * 16;

// One pass over a block's quads for groups kFirst and kFirst + 1; xb: the block's queries.
// Software-pipelined: while the FMAs of one quad run, the next quad is decoded and its weights
// built, a quarter of them between each four steps, so that the out-of-order window always holds
// both (decoded first and then accumulated, the FMA pipes idled through each decode).
template <int kTile, int kFirst, int kLevels, int kLog2Q>
COSET_LUT_INLINE void MidBatchPass(const CompactTileArgs& a, TileDecoder<kLevels, kLog2Q>& decoder, int64_t blk,
                                   int64_t q_begin, int64_t q_end, const float* xb, float* out) {
  using Decoder = TileDecoder<kLevels, kLog2Q>;
  __m512 acc[kTile][kMidGroups];
  for (int b = 0; b < kTile; ++b) {
    for (int g = 0; g < kMidGroups; ++g) acc[b][g] = _mm512_setzero_ps();
  }
  // Two quads' weights of the two groups, [quad & 1][j][i][g] (4 KB, in L1).
  alignas(64) typename Decoder::Points points;
  alignas(64) float w[2][4][4][kMidGroups][kCompactLanes];
  // Chunk j's weights of the decoded quad into w[slot].
  auto build = [&](int slot, int j) COSET_LUT_LAMBDA_INLINE {
    for (int g = 0; g < kMidGroups; ++g) {
      const __m512 r = decoder.Ramp(kFirst + g, j);
      for (int i = 0; i < 4; ++i) _mm512_store_ps(w[slot][j][i][g], Decoder::Weight(points, r, kFirst + g, j, i));
    }
  };
  // Steps [s_begin, s_end) of a quad: the weights of w[slot], the queries x.
  auto accumulate = [&](int slot, const float* x, int s_begin, int s_end) COSET_LUT_LAMBDA_INLINE {
    for (int s = s_begin; s < s_end; ++s) {
      __m512 ws[kMidGroups];
      for (int g = 0; g < kMidGroups; ++g) ws[g] = _mm512_load_ps(w[slot][s / 4][s % 4][g]);
      for (int b = 0; b < kTile; ++b) {
        for (int g = 0; g < kMidGroups; ++g) FmaBroadcast(x + b * 16 + s, ws[g], acc[b][g]);
      }
    }
  };
  decoder.template Decode<kMidGroups>(q_begin, points, kFirst);
  for (int j = 0; j < 4; ++j) build(0, j);
  for (int64_t quad = q_begin; quad < q_end; ++quad) {
    const int slot = static_cast<int>(quad - q_begin) & 1;
    const float* x = xb + (quad - q_begin) * kXbQuad<kTile>;
    const bool more = quad + 1 < q_end;
    if (more) decoder.template Decode<kMidGroups>(quad + 1, points, kFirst);
    accumulate(slot, x, 0, 4);
    for (int j = 0; j < 4; ++j) {
      if (more) build(slot ^ 1, j);
      accumulate(slot, x, 4 + 3 * j, 4 + 3 * (j + 1));
    }
  }
  Finish<kTile, kMidGroups>(acc, a.half_base + blk * kCompactRows, out, kFirst);
}

template <int kTile, int kLevels, int kLog2Q>
void MidBatch(const CompactTileArgs& a, const float* xq, float* panel, float* out) {
  static_assert(kCompactGroups == 2 * kMidGroups, "two passes");
  TileDecoder<kLevels, kLog2Q> decoder(a);
  // The block's queries go where the large-batch kernel puts its panel (a block's weights, far more
  // than they need): 36 KB on the stack would be too much for threads with small stacks.
  static_assert(kXbQuad<kTile> <= 16 * kCompactRows, "the queries of a quad fit its share of the panel");
  float* const xb = panel;
  for (int64_t blk = 0; blk < a.blocks; ++blk) {
    const int64_t q_begin = blk * a.quads_per_block, q_end = std::min(a.quads, q_begin + a.quads_per_block);
    for (int64_t quad = q_begin; quad < q_end; ++quad) {
      for (int b = 0; b < kTile; ++b) {
        _mm512_store_ps(xb + (quad - q_begin) * kXbQuad<kTile> + b * 16,
                        _mm512_loadu_ps(xq + b * a.query_stride + 16 * quad));
      }
    }
    const LutMatrix::RampPatch* const block_patches = decoder.Position();
    MidBatchPass<kTile, 0>(a, decoder, blk, q_begin, q_end, xb, out);
    decoder.Seek(block_patches);
    MidBatchPass<kTile, kMidGroups>(a, decoder, blk, q_begin, q_end, xb, out);
  }
}

// MidBatch for batches of 7 and 8 (6 and fewer take SmallBatch, faster there: batch 6 24.4 ms
// against 25.6, batch 4 19.1 against 21.5).
static_assert(kMidTile == kQueryTile + 2, "one MidBatch per batch above kQueryTile");
template <int kLevels, int kLog2Q>
constexpr void (*kMidBatch[2])(const CompactTileArgs&, const float*, float*, float*) = {
    &MidBatch<kQueryTile + 1, kLevels, kLog2Q>, &MidBatch<kMidTile, kLevels, kLog2Q>};

using SmallBatchFn = void (*)(const CompactTileArgs&, const float*, float*);
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

// Batches above kQueryTile queries: each block decoded once into the panel, then read by tiles of
// kQueryTile queries.
template <int kLevels, int kLog2Q>
void LargeBatch(const CompactTileArgs& a, const float* xq, int64_t batch, float* panel, float* out) {
  TileDecoder<kLevels, kLog2Q> decoder(a);
  auto decode = [&](int64_t q_begin, int64_t q_end, float* p) { DecodePanel(decoder, q_begin, q_end, p); };
  ForEachCompactBlock(a, panel, decode, [&](int64_t blk, int64_t q_begin, int64_t q_end) {
    for (int64_t first = 0; first < batch; first += kQueryTile) {
      kTiles[std::min<int64_t>(kQueryTile, batch - first)](
          xq + first * a.query_stride + 16 * q_begin, a.query_stride, 16 * (q_end - q_begin), panel,
          a.half_base + blk * kCompactRows, out + first * kCompactRows);
    }
  });
}

// int8-lanes, two groups of 8 rows at once (lanes 0-7: a0's rows, 8-15: a1's), kTile queries
// whose accumulators stay in registers. The arithmetic of LutGroupGemmPortable per query and row,
// in the same order: a chunk's dot product x_0 p_0, then FMAs coordinate by coordinate, into
// partial (c - first) % 4 through an FMA by its ramp; per block (a_0 + a_1) + (a_2 + a_3) times
// half_base into the total. The partials are taken one after the other (chunks first + k,
// first + k + 4, ...: each partial sees its chunks in the same order as in one pass), so that a
// query holds one accumulator at a time instead of four.
template <int d, int kTile>
void LanePairTile(const LutGroupArgs& a0, const LutGroupArgs& a1, const float* xq, float* out) {
  const __m512 ramp = _mm512_castps256_ps512(_mm256_loadu_ps(a0.ramp));  // T <= 7 here (see LutHighT)
  // 8 bytes of each group side by side, widened to 16 int32 lanes.
  auto pair_bytes = [](const int8_t* lo, const int8_t* hi) COSET_LUT_LAMBDA_INLINE {
    const __m128i low = _mm_loadl_epi64(reinterpret_cast<const __m128i*>(lo));
    return _mm_castpd_si128(_mm_loadh_pd(_mm_castsi128_pd(low), reinterpret_cast<const double*>(hi)));
  };
  __m512 total[kTile];
  for (int b = 0; b < kTile; ++b) total[b] = _mm512_setzero_ps();
  for (int64_t blk = 0; blk < a0.blocks; ++blk) {
    const int64_t c_begin = blk * a0.chunks_per_block;
    const int64_t c_end = std::min(a0.chunks, c_begin + a0.chunks_per_block);
    __m512 partial[4][kTile];
    for (int k = 0; k < 4; ++k) {
      __m512 acc[kTile];
      for (int b = 0; b < kTile; ++b) acc[b] = _mm512_setzero_ps();
      for (int64_t c = c_begin + k; c < c_end; c += 4) {
        __m512 p[d];
        for (int i = 0; i < d; ++i) {
          const int64_t at = (c * d + i) * 8;
          p[i] = _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(pair_bytes(a0.points + at, a1.points + at)));
        }
        const __m512i t = _mm512_cvtepu8_epi32(
            pair_bytes(reinterpret_cast<const int8_t*>(a0.t + c * 8), reinterpret_cast<const int8_t*>(a1.t + c * 8)));
        const __m512 r = _mm512_permutexvar_ps(t, ramp);
        for (int b = 0; b < kTile; ++b) {
          const float* x = xq + b * a0.padded_cols + c * d;
          __m512 dot = MulBroadcast(x, p[0]);
          for (int i = 1; i < d; ++i) FmaBroadcast(x + i, p[i], dot);
          acc[b] = _mm512_fmadd_ps(r, dot, acc[b]);
        }
      }
      for (int b = 0; b < kTile; ++b) partial[k][b] = acc[b];
    }
    const __m512 hb = _mm512_insertf32x8(_mm512_castps256_ps512(_mm256_loadu_ps(a0.half_base + blk * 8)),
                                         _mm256_loadu_ps(a1.half_base + blk * 8), 1);
    for (int b = 0; b < kTile; ++b) {
      const __m512 sum =
          _mm512_add_ps(_mm512_add_ps(partial[0][b], partial[1][b]), _mm512_add_ps(partial[2][b], partial[3][b]));
      total[b] = _mm512_fmadd_ps(hb, sum, total[b]);
    }
  }
  for (int b = 0; b < kTile; ++b) _mm512_storeu_ps(out + b * 16, total[b]);
}

// Queries per tile: 8 accumulators, 8 dot products in flight, the chunk's points and ramp fit in
// the 32 registers for E8 (D4 was no faster with 12 or 16, E8 with 10 or 12).
constexpr int kLaneTile = 8;
using LanePairTileFn = void (*)(const LutGroupArgs&, const LutGroupArgs&, const float*, float*);
template <int d>
constexpr LanePairTileFn kLanePairTiles[kLaneTile + 1] = {nullptr,
                                                          &LanePairTile<d, 1>,
                                                          &LanePairTile<d, 2>,
                                                          &LanePairTile<d, 3>,
                                                          &LanePairTile<d, 4>,
                                                          &LanePairTile<d, 5>,
                                                          &LanePairTile<d, 6>,
                                                          &LanePairTile<d, 7>,
                                                          &LanePairTile<d, 8>};

template <int d>
void LanePairGemm(const LutGroupArgs& a0, const LutGroupArgs& a1, const float* xq, int64_t batch, float* out) {
  for (int64_t first = 0; first < batch; first += kLaneTile) {
    kLanePairTiles<d>[std::min<int64_t>(kLaneTile, batch - first)](a0, a1, xq + first * a0.padded_cols,
                                                                   out + first * 16);
  }
}

#undef COSET_LUT_INLINE
#undef COSET_LUT_LAMBDA_INLINE

}  // namespace

void LutGroupPairGemmAvx512(const LutGroupArgs& a0, const LutGroupArgs& a1, const float* xq, int64_t batch,
                            float* out) {
  if (a0.dim == 4) return LanePairGemm<4>(a0, a1, xq, batch, out);
  LanePairGemm<8>(a0, a1, xq, batch, out);
}

void CompactTileGemmAvx512(const CompactTileArgs& a, const float* xq, int64_t batch, float* panel, float* out) {
  const bool q4m2 = a.levels == 2 && a.log2_q == 2;
  std::fill(out, out + batch * kCompactRows, 0.0f);
  if (batch <= kQueryTile) return (q4m2 ? kSmallBatch<2, 2> : kSmallBatch<0, 0>)[batch](a, xq, out);
  if (batch <= kMidTile) return (q4m2 ? kMidBatch<2, 2> : kMidBatch<0, 0>)[batch - kQueryTile - 1](a, xq, panel, out);
  (q4m2 ? &LargeBatch<2, 2> : &LargeBatch<0, 0>)(a, xq, batch, panel, out);
}

}  // namespace coset
