// Template bodies of the row kernels. Included by row_codec_portable.cc and row_codec_avx2.cc
// with COSET_ISA set to the namespace to define; nothing else includes it.
//
// Notation: d = lattice dimension, s = symbol dimension (d, or 1 for Z^n), q = nesting ratio,
// M = levels, z = integer coordinates of a lattice point in the generator basis.
//
// Symbols go straight into the packed row when they are whole bytes (8 or 16 bits: D4 q=4 and
// q=16, E8 q=4, A2 q=16, ...); otherwise through a uint32 scratch row and SymbolPacking.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <type_traits>

#include "core/block_transform.h"
#include "core/row_codec.h"

#if defined(__AVX512F__) && defined(__AVX512BW__) && defined(__AVX512DQ__) && defined(__AVX512VBMI__)
#include "core/simd/hnlq_avx512.h"
#elif defined(__AVX2__)
#include "core/simd/hnlq_avx2.h"
#endif

#ifndef COSET_ISA
#error "define COSET_ISA before including row_codec_impl.h"
#endif

namespace coset {
namespace COSET_ISA {
namespace {

inline float BlockScale(ScaleMode mode, const float* x, int64_t n) {
  switch (mode) {
    case ScaleMode::kNone:
      return 1.0f;
    case ScaleMode::kRms:
      return BlockRms(x, n);  // non-finite when the block holds NaN/Inf: the caller relies on it
    case ScaleMode::kAbsMax:
      return BlockAbsMax(x, n);  // the caller has refused NaN and Inf
  }
  return 1.0f;
}

#if defined(__AVX512F__) && defined(__AVX512BW__) && defined(__AVX512DQ__) && defined(__AVX512VBMI__)
namespace simd = simd_avx512;  // 16 chunks per batch
#elif defined(__AVX2__)
namespace simd = simd_avx2;  // 8 chunks per batch
#endif

// Whether the batch encoder covers this kernel (D4 and E8 with q a power of two).
template <class Kernel, bool kPow2, int kDim>
constexpr bool kHasBatchEncoder = kPow2 && ((std::is_same<Kernel, DnKernel>::value && kDim == 4) ||
                                            std::is_same<Kernel, E8Kernel>::value);

#if defined(__AVX2__)
// The stored (bf16) RMS scale of n floats, or -1 where a float sum of squares cannot decide it and
// the caller takes BlockRms's. BlockRms adds the squares in double to fix its float to the last
// bit (a sixth of D4's encode with AVX-512: its conversions to double and double additions share
// one pipe pair at one 8-lane op per cycle), yet only its bf16 rounding is kept. Here float FMAs in
// two accumulators of L lanes give the sum S~ with a relative error of at most k u, u = 2^-24,
// k = n / 2L + log2(L) + 2 (the roundings any square goes through: n / 2L in its lane, one to join
// the accumulators, log2(L) across lanes, one spare), so A = sqrt(S~ / n) is within k u / 2 of the
// true RMS, and BlockRms's float within u more. Rounding to float and float -> bf16 are monotone,
// so when both ends of [A (1 - 2 k u), A (1 + 2 k u)] round to the same bf16, so does BlockRms's
// float: the scale is the same bits. Otherwise (under 0.1 % of blocks at n = 256: those near a bf16
// rounding midpoint), and for sums below 2^-90 (float squares under 2^-126 lose bits),
// non-finite ones (NaN, Inf, or past FLT_MAX) and blocks over 4096 entries, -1.
inline int32_t RmsBf16FromFloatSums(const float* x, int64_t n) {
#if defined(__AVX512F__)
  constexpr int kLanes = 16, kLog2Lanes = 4;
  using Vec = __m512;
  auto load = [](const float* p) { return _mm512_loadu_ps(p); };
  auto square_add = [](Vec v, Vec acc) { return _mm512_fmadd_ps(v, v, acc); };
  auto total = [](Vec a, Vec b) { return _mm512_reduce_add_ps(_mm512_add_ps(a, b)); };
  Vec even = _mm512_setzero_ps(), odd = _mm512_setzero_ps();
#else
  constexpr int kLanes = 8, kLog2Lanes = 3;
  using Vec = __m256;
  auto load = [](const float* p) { return _mm256_loadu_ps(p); };
  auto square_add = [](Vec v, Vec acc) { return _mm256_fmadd_ps(v, v, acc); };
  auto total = [](Vec a, Vec b) {
    const __m256 s8 = _mm256_add_ps(a, b);
    const __m128 s4 = _mm_add_ps(_mm256_castps256_ps128(s8), _mm256_extractf128_ps(s8, 1));
    const __m128 s2 = _mm_add_ps(s4, _mm_movehl_ps(s4, s4));
    return _mm_cvtss_f32(_mm_add_ss(s2, _mm_movehdup_ps(s2)));
  };
  Vec even = _mm256_setzero_ps(), odd = _mm256_setzero_ps();
#endif
  if (n % (2 * kLanes) != 0 || n > 4096 || n == 0) return -1;
  for (int64_t i = 0; i < n; i += 2 * kLanes) {
    even = square_add(load(x + i), even);
    odd = square_add(load(x + i + kLanes), odd);
  }
  const float sum = total(even, odd);
  if (!(sum >= 0x1p-90f && sum <= std::numeric_limits<float>::max())) return -1;
  const double rms = std::sqrt(static_cast<double>(sum) / static_cast<double>(n));
  const double margin = 2.0 * static_cast<double>(n / (2 * kLanes) + kLog2Lanes + 2) * 0x1p-24;
  const uint16_t low = FloatToBf16(static_cast<float>(rms * (1.0 - margin)));
  const uint16_t high = FloatToBf16(static_cast<float>(rms * (1.0 + margin)));
  return low == high ? low : -1;
}
#endif

#if defined(__AVX2__)
// kMaskLanes[mask] lists the set bits of an 8-bit mask in increasing order (unused slots 0).
struct MaskLaneTable {
  uint8_t lanes[256][8];
  constexpr MaskLaneTable() : lanes() {
    for (int mask = 0; mask < 256; ++mask) {
      int n = 0;
      for (int bit = 0; bit < 8; ++bit) {
        if (mask & (1 << bit)) lanes[mask][n++] = static_cast<uint8_t>(bit);
      }
    }
  }
};
constexpr MaskLaneTable kMaskLaneTable;
constexpr const uint8_t (&kMaskLanes)[256][8] = kMaskLaneTable.lanes;

// The overload ramp of one row with the batch encoder. Every chunk is first encoded at T = 0 with
// its block's step (block_base[b] * ramp[0]); then the overloaded chunks of the whole row are
// listed and retried at T = 1, 2, ... in full batches, read and written in place. Each chunk ends
// with the smallest T that does not overload, as in the scalar loop; chunks still overloaded at
// t_max are zeroed. Requires every block to hold a multiple of Batch::kLanes chunks.
// next_row: where the next row of the tensor starts (rows are contiguous); the first try brings it
// into L1 while this row is encoded (a prefetch past the end of the tensor never faults).
template <int kDim, bool kClamp, typename SymbolT>
void EncodeRowBatched(const RowCodecContext& ctx, const float* work, const float* next_row, SymbolT* symbols,
                      uint8_t* t, RowScratch& scratch, RowEncodeCounts& counts) {
  using Batch = std::conditional_t<kDim == 8, simd::E8Batch, simd::D4Batch>;
  constexpr int kLanes = Batch::kLanes;
  const Layout& l = ctx.layout;
  const Codebook& cb = *ctx.codebook;
  const int levels = ctx.levels;
  const int64_t chunks_per_block = ctx.block / kDim;
  const float* block_base = scratch.block_base.data();
  uint8_t* masks = scratch.over_masks.data();  // bit c % 8 of byte c / 8: chunk c overloaded
  for (int64_t b = 0; b < l.blocks_per_row; ++b) {
    const int64_t c_begin = b * chunks_per_block;
    const int64_t n = std::min(l.chunks_per_row, c_begin + chunks_per_block) - c_begin;
    if (block_base[b] > 0.0f) {
      simd::EncodeAtStep<Batch, kClamp>(cb, levels, work + c_begin * kDim, n, 1.0f / (block_base[b] * ctx.ramp[0]),
                                        symbols + c_begin * levels, masks + c_begin / 8, next_row + c_begin * kDim);
    } else {
      std::fill(symbols + c_begin * levels, symbols + (c_begin + n) * levels, SymbolT{0});
      std::memset(masks + c_begin / 8, 0, n / 8);
    }
  }
  std::memset(t, 0, l.chunks_per_row);
  // Branch-free compaction of the overloaded chunks (overloads are random, so a loop over set bits
  // would mispredict on most batches): AVX-512 compresses 16 lanes in a register, AVX2 takes the 8
  // lanes of each mask from a table; all slots are written and the count advances by the popcount.
  // Each listed chunk's block base goes along (a batch never straddles a block).
  int32_t* list = scratch.retry_list.data();
  float* pending_base = scratch.pending_base.data();
  int64_t pending = 0;
  // Block by block, then its batches (a division per batch for its block was a fifth of this
  // function's time).
  for (int64_t b = 0, batch = 0; b < l.blocks_per_row; ++b) {
#if defined(__AVX512F__)
    const __m512 base = _mm512_set1_ps(block_base[b]);
    for (const int64_t stop = std::min(l.chunks_per_row, (b + 1) * chunks_per_block) / 16; batch < stop; ++batch) {
      uint16_t over;
      std::memcpy(&over, masks + 2 * batch, 2);
      const __m512i chunks = _mm512_add_epi32(_mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15),
                                              _mm512_set1_epi32(static_cast<int32_t>(batch * 16)));
      _mm512_storeu_si512(list + pending, _mm512_maskz_compress_epi32(over, chunks));
      _mm512_storeu_ps(pending_base + pending, base);
      pending += __builtin_popcount(over);
    }
#else
    const __m256 base = _mm256_set1_ps(block_base[b]);
    for (const int64_t stop = std::min(l.chunks_per_row, (b + 1) * chunks_per_block) / 8; batch < stop; ++batch) {
      const __m256i lanes =
          _mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(kMaskLanes[masks[batch]])));
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(list + pending),
                          _mm256_add_epi32(lanes, _mm256_set1_epi32(static_cast<int32_t>(batch * 8))));
      _mm256_storeu_ps(pending_base + pending, base);
      pending += __builtin_popcount(masks[batch]);
    }
#endif
  }
  counts.first_try_overloads += pending;
  for (int tc = 1; tc <= ctx.t_max && pending > 0; ++tc) {
    // Pad to whole batches with copies of the last chunk: they write what it writes.
    const int64_t padded = (pending + kLanes - 1) / kLanes * kLanes;
    std::fill(list + pending, list + padded, list[pending - 1]);
    std::fill(pending_base + pending, pending_base + padded, pending_base[pending - 1]);
    simd::EncodeRetries<Batch, kClamp>(cb, levels, work, list, pending_base, padded, ctx.ramp[tc],
                                       static_cast<uint8_t>(tc), symbols, t, masks);
    // Every retried chunk took this round's symbols and T; the ones still overloaded stay in the
    // list and are overwritten by a later round (or zeroed at the cap).
    int64_t still = 0;
#if defined(__AVX512F__)
    // 16 at a time: a register compress keeps the overloaded ones (a full 16-lane store at
    // `still` <= k only overwrites entries already read).
    for (int64_t k = 0; k < pending; k += 16) {
      uint16_t over;
      std::memcpy(&over, masks + k / 8, 2);
      const __mmask16 valid = pending - k >= 16 ? 0xFFFF : static_cast<__mmask16>((1u << (pending - k)) - 1);
      const __m512i chunks = _mm512_loadu_si512(list + k);
      const __m512 bases = _mm512_loadu_ps(pending_base + k);
      const __mmask16 keep = over & valid;
      _mm512_storeu_si512(list + still, _mm512_maskz_compress_epi32(keep, chunks));
      _mm512_storeu_ps(pending_base + still, _mm512_maskz_compress_ps(keep, bases));
      still += __builtin_popcount(keep);
    }
#else
    for (int64_t k = 0; k < pending; ++k) {
      const int32_t c = list[k];
      const int over = (masks[k / 8] >> (k % 8)) & 1;
      list[still] = c;
      pending_base[still] = pending_base[k];
      still += over;
    }
#endif
    pending = still;
  }
  for (int64_t k = 0; k < pending; ++k) {  // still overloaded at t_max
    const int32_t c = list[k];
    std::fill(symbols + c * levels, symbols + (c + 1) * levels, SymbolT{0});
    t[c] = static_cast<uint8_t>(ctx.t_max);
    ++counts.capped;
    if (counts.first_capped_chunk < 0) counts.first_capped_chunk = c;
  }
}
#endif

template <class Kernel, bool kPow2, int kDim, typename SymbolT>
RowEncodeCounts EncodeRowImpl(const RowCodecContext& ctx, const float* x, uint16_t* scales, uint8_t* t, uint8_t* packed,
                              RowScratch& scratch) {
  const Layout& l = ctx.layout;
  const Codebook& cb = *ctx.codebook;
  const int d = kDim > 0 ? kDim : l.dim;
  constexpr bool kDirect = !std::is_same<SymbolT, uint32_t>::value;
  SymbolT* symbols = kDirect ? reinterpret_cast<SymbolT*>(packed) : reinterpret_cast<SymbolT*>(scratch.symbols.data());
  RowEncodeCounts counts;
  // NaN and Inf have no lattice point; refuse the row (the caller reports the index). With RMS
  // scaling the block sums detect them (below), so the separate scan is needed only otherwise.
  if (ctx.scale != ScaleMode::kRms) {
    counts.nonfinite_index = FirstNonFinite(x, l.cols);
    if (counts.nonfinite_index >= 0) return counts;
  }
  // Rows that need neither padding nor rotation are read in place.
  const float* work = x;
  if (!ctx.rotation_signs.empty() || l.cols != l.padded_cols) {
    float* copy = scratch.work.data();
    if (l.cols > 0) std::memcpy(copy, x, sizeof(float) * l.cols);  // x may be null for an empty row
    std::fill(copy + l.cols, copy + l.padded_cols, 0.0f);
    work = copy;
  }
  // Phase 1: rotate and scale each block; block_base[b] = scale * beta, or 0 for blocks whose
  // step underflows (all zeros, or RMS below kMinStep), which are coded as zero.
  float* block_base = scratch.block_base.data();
  for (int64_t b = 0; b < l.blocks_per_row; ++b) {
    const int64_t begin = b * ctx.block;
    const int64_t end = std::min(l.padded_cols, begin + ctx.block);
    if (!ctx.rotation_signs.empty()) {
      RotateForward(ctx.rotation_signs.data(), end - begin, scratch.work.data() + begin);
      // Finite inputs near FLT_MAX can overflow the transform's sums: refuse the row, naming its
      // largest entry of the block (the caller says why a finite entry is refused), or the block's
      // first NaN or Inf, which no other check has seen yet under RMS scaling.
      if (FirstNonFinite(scratch.work.data() + begin, end - begin) >= 0) {
        const int64_t stop = std::min(end, l.cols);
        const int64_t nonfinite = FirstNonFinite(x + begin, stop - begin);
        counts.nonfinite_index = nonfinite >= 0 ? begin + nonfinite : begin;
        for (int64_t i = begin; nonfinite < 0 && i < stop; ++i) {
          if (std::fabs(x[i]) > std::fabs(x[counts.nonfinite_index])) counts.nonfinite_index = i;
        }
        return counts;
      }
    }
    float scale = 1.0f;
    if (ctx.scale != ScaleMode::kNone) {
      int32_t stored = -1;
#if defined(__AVX2__)
      if (ctx.scale == ScaleMode::kRms) stored = RmsBf16FromFloatSums(work + begin, end - begin);
#endif
      if (stored < 0) {
        const float raw = BlockScale(ctx.scale, work + begin, end - begin);
        if (!std::isfinite(raw)) {  // only RMS gets here: a NaN/Inf in the row
          counts.nonfinite_index = FirstNonFinite(x, l.cols);
          return counts;
        }
        stored = FloatToBf16(raw);
      }
      // Quantize against the scale as stored, so the decoder multiplies by exactly the same value.
      scales[b] = static_cast<uint16_t>(stored);
      scale = Bf16ToFloat(scales[b]);
    }
    const float base = scale * ctx.beta;
    block_base[b] = base >= kMinStep ? base : 0.0f;
  }
  // Phase 2: Algorithm 1 with the overload ramp on every chunk.
#if defined(__AVX2__)
  if constexpr (kHasBatchEncoder<Kernel, kPow2, kDim>) {
    constexpr int kLanes = simd::D4Batch::kLanes;
    const bool whole_batches = (ctx.block / d) % kLanes == 0 && l.chunks_per_row % kLanes == 0 &&
                               ((l.padded_cols % ctx.block) / d) % kLanes == 0;
    if (whole_batches && !cb.rep_coords_int8x4().empty()) {
      if (ctx.clamp_chunk_coordinates) {
        EncodeRowBatched<kDim, true>(ctx, work, x + l.cols, symbols, t, scratch, counts);
      } else {
        EncodeRowBatched<kDim, false>(ctx, work, x + l.cols, symbols, t, scratch, counts);
      }
      if constexpr (!kDirect) ctx.packing.PackRow(scratch.symbols.data(), packed);
      return counts;
    }
  }
#endif
  const ChunkCodebook chunk_cb = cb.view();
  for (int64_t c = 0; c < l.chunks_per_row; ++c) {
    const float base = block_base[c * d / ctx.block];
    const float* xc = work + c * d;
    SymbolT* sc = symbols + c * l.symbols_per_chunk;
    if (base == 0.0f) {
      std::fill(sc, sc + l.symbols_per_chunk, SymbolT{0});
      t[c] = 0;
      continue;
    }
    int tc = EncodeChunkOnRamp<Kernel, kPow2, kDim>(chunk_cb, d, ctx.levels, xc, base, ctx.ramp.data(), ctx.t_max, sc);
    if (tc < 0) {  // still overloaded at t_max
      tc = ctx.t_max;
      ++counts.capped;
      if (counts.first_capped_chunk < 0) counts.first_capped_chunk = c;
      std::fill(sc, sc + l.symbols_per_chunk, SymbolT{0});  // kZero; kFail is reported by the caller
    }
    if (tc > 0) ++counts.first_try_overloads;
    t[c] = static_cast<uint8_t>(tc);
  }
  if constexpr (!kDirect) ctx.packing.PackRow(scratch.symbols.data(), packed);
  return counts;
}

void ScaleAddImpl(float* out, const float* base, float scale, const float* v, int64_t n) {
  // One loop per case, each with pointers the vectorizer can check (out == base is an in-place
  // accumulation: through two pointers it would count as overlapping and stay scalar).
  if (base == nullptr) {
    for (int64_t i = 0; i < n; ++i) out[i] = 0.0f + scale * v[i];
  } else if (base == out) {
    for (int64_t i = 0; i < n; ++i) out[i] += scale * v[i];
  } else {
    for (int64_t i = 0; i < n; ++i) out[i] = base[i] + scale * v[i];
  }
}

// A decode's epilogue on a whole row: out = base + scale * v (see DecodeScaleAddFn).
struct RowEpilogue {
  const float* base;
  float scale;
};

// Decodes one row into out, or, with an epilogue (only for rows without rotation or padding),
// applies it on the way: blocks on the D4 byte path get it inside the kernel, the others are
// decoded into scratch.work and then scaled and added.
template <int kDim, typename SymbolT>
bool DecodeRowInto(const RowCodecContext& ctx, const uint16_t* scales, const uint8_t* t, const uint8_t* packed,
                   float* out, const RowEpilogue* epilogue, RowScratch& scratch) {
  const Layout& l = ctx.layout;
  const Codebook& cb = *ctx.codebook;
  const ChunkCodebook chunk_cb = cb.view();
  const int d = kDim > 0 ? kDim : l.dim;
  constexpr bool kDirect = !std::is_same<SymbolT, uint32_t>::value;
  const SymbolT* symbols;
  if constexpr (kDirect) {
    symbols = reinterpret_cast<const SymbolT*>(packed);  // every value is a valid symbol
  } else {
    if (!ctx.packing.UnpackRow(packed, scratch.symbols.data())) return false;
    symbols = scratch.symbols.data();
  }
  // Without rotation or padding, decode straight into the caller's row (with an epilogue, only
  // the blocks the kernel fuses it into).
  const bool in_place = ctx.rotation_signs.empty() && l.cols == l.padded_cols && epilogue == nullptr;
  float* work = in_place ? out : scratch.work.data();
  // The epilogue's base from entry `at` on (null for 0), and its epilogue of entries [from, to) of
  // work, decoded there.
  auto base_at = [&](int64_t at) { return epilogue->base == nullptr ? nullptr : epilogue->base + at; };
  auto finish = [&](int64_t from, int64_t to) {
    if (epilogue != nullptr && to > from)
      ScaleAddImpl(out + from, base_at(from), epilogue->scale, work + from, to - from);
  };
  [[maybe_unused]] bool streamed = false;  // non-temporal stores were used (AVX-512 build)
#if defined(__AVX512F__)
  // ramp[0, 32) in two registers, zeros past t_max (masked loads: copying it into a padded array
  // per block, a call to memcpy, was a sixth of a real gradient's decode).
  const int64_t ramp_size = std::min<int64_t>(static_cast<int64_t>(ctx.ramp.size()), 32);
  const __m512 ramp_lo =
      _mm512_maskz_loadu_ps(static_cast<__mmask16>((1u << std::min<int64_t>(ramp_size, 16)) - 1), ctx.ramp.data());
  const __m512 ramp_hi = _mm512_maskz_loadu_ps(static_cast<__mmask16>((1u << std::max<int64_t>(ramp_size - 16, 0)) - 1),
                                               ctx.ramp.data() + std::min<int64_t>(ramp_size, 16));
#endif
  for (int64_t b = 0; b < l.blocks_per_row; ++b) {
    const int64_t begin = b * ctx.block;
    const int64_t end = std::min(l.padded_cols, begin + ctx.block);
    const float scale = ctx.scale == ScaleMode::kNone ? 1.0f : Bf16ToFloat(scales[b]);
    // A block whose step would underflow decodes with step 0 (as its encoder wrote it).
    const bool zero_block = !(scale * ctx.beta >= kMinStep);
    const float base = zero_block ? 0.0f : scale * ctx.beta;
    const int64_t c_begin = begin / d, c_end = end / d;
#if defined(__AVX2__)
    if constexpr ((kDim == 8 || kDim == 4) && kDirect) {
      const bool whole_chunks = cb.symbol_dim() == kDim && (c_end - c_begin) % 2 == 0;
      // Zero blocks take this path too, with steps of 0: the scalar loop below cost a real gradient
      // (3 % of its blocks all zeros) a tenth of its decode time.
      if (whole_chunks && !cb.rep_point_x2_int8().empty() && cb.q_is_power_of_two()) {
        float* steps = scratch.chunk_steps.data();
        int64_t done = 0;
#if defined(__AVX512F__)
        // steps = base * ramp[T], 16 at a time: a two-register permute looks T up (t_max <= 31).
        if (ctx.ramp.size() <= 32) {
          const __m512 base_v = _mm512_set1_ps(base);
          for (; done + 16 <= c_end - c_begin; done += 16) {
            const __m512i tt =
                _mm512_cvtepu8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(t + c_begin + done)));
            _mm512_storeu_ps(steps + done, _mm512_mul_ps(base_v, _mm512_permutex2var_ps(ramp_lo, tt, ramp_hi)));
          }
        }
#endif
        for (int64_t c = c_begin + done; c < c_end; ++c) steps[c - c_begin] = base * ctx.ramp[t[c]];
        done = 0;
#if defined(__AVX512F__)
        // The fused byte decoders, kChunks chunks a call: the epilogue applied in the kernel, or
        // non-temporal stores into a large output.
        auto run_fused = [&](const auto& decoder) {
          constexpr int64_t kChunks = std::decay_t<decltype(decoder)>::kChunks;
          for (; done + kChunks <= c_end - c_begin; done += kChunks) {
            const int64_t at = (c_begin + done) * d;
            const SymbolT* pairs = symbols + (c_begin + done) * 2;
            if (epilogue != nullptr) {
              decoder.Decode(pairs, steps + done, out + at, false, true, base_at(at), epilogue->scale);
              continue;
            }
            float* o = work + at;
            const bool stream = in_place && ctx.stream_output && reinterpret_cast<uintptr_t>(o) % 16 == 0;
            streamed |= stream;
            decoder.Decode(pairs, steps + done, o, stream);
          }
        };
        if constexpr (kDim == 4 && sizeof(SymbolT) == 1) {
          if (c_end - c_begin >= 64 && simd::D4ByteDecoder::Applies(cb, ctx.levels)) run_fused(simd::D4ByteDecoder(cb));
        }
        if constexpr (kDim == 8 && sizeof(SymbolT) == 2) {
          if (simd::E8ByteDecoder::Applies(cb, ctx.levels)) run_fused(simd::E8ByteDecoder(cb));
        }
#endif
        simd::DecodeChunksInt8<kDim>(cb, ctx.levels, symbols + (c_begin + done) * l.symbols_per_chunk,
                                     c_end - c_begin - done, steps + done, work + (c_begin + done) * d);
        if (!ctx.rotation_signs.empty()) RotateInverse(ctx.rotation_signs.data(), end - begin, work + begin);
        finish((c_begin + done) * d, end);
        continue;
      }
    }
#endif
    for (int64_t c = c_begin; c < c_end; ++c) {
      const float step = base * ctx.ramp[t[c]];
      DecodeChunk<kDim>(chunk_cb, d, ctx.levels, symbols + c * l.symbols_per_chunk, step, work + c * d);
    }
    if (!ctx.rotation_signs.empty()) RotateInverse(ctx.rotation_signs.data(), end - begin, work + begin);
    finish(begin, end);
  }
  // out may be null when empty.
  if (!in_place && epilogue == nullptr && l.cols > 0) std::memcpy(out, work, sizeof(float) * l.cols);
#if defined(__AVX512F__)
  if (streamed) _mm_sfence();  // non-temporal stores are ordered before anything the caller does next
#endif
  return true;
}

template <int kDim, typename SymbolT>
bool DecodeRowImpl(const RowCodecContext& ctx, const uint16_t* scales, const uint8_t* t, const uint8_t* packed,
                   float* out, RowScratch& scratch) {
  return DecodeRowInto<kDim, SymbolT>(ctx, scales, t, packed, out, nullptr, scratch);
}

template <int kDim, typename SymbolT>
bool DecodeScaleAddImpl(const RowCodecContext& ctx, const uint16_t* scales, const uint8_t* t, const uint8_t* packed,
                        float* out, const float* base, float scale, int64_t n, RowScratch& scratch) {
  const Layout& l = ctx.layout;
  if (ctx.rotation_signs.empty() && l.cols == l.padded_cols && n == l.cols) {
    const RowEpilogue epilogue{base, scale};
    return DecodeRowInto<kDim, SymbolT>(ctx, scales, t, packed, out, &epilogue, scratch);
  }
  // A rotated, padded or cut row: decoded whole into a row buffer first.
  float* row = scratch.decoded.data();
  if (!DecodeRowInto<kDim, SymbolT>(ctx, scales, t, packed, row, nullptr, scratch)) return false;
  ScaleAddImpl(out, base, scale, row, n);
  return true;
}

template <class Kernel, int kDim, typename SymbolT>
RowKernels KernelsWithSymbols(bool q_pow2) {
  return RowKernels{q_pow2 ? &EncodeRowImpl<Kernel, true, kDim, SymbolT> : &EncodeRowImpl<Kernel, false, kDim, SymbolT>,
                    &DecodeRowImpl<kDim, SymbolT>, &DecodeScaleAddImpl<kDim, SymbolT>};
}

template <class Kernel, int kDim>
RowKernels KernelsFor(bool q_pow2, int symbol_bits) {
  // Direct symbol I/O needs one symbol per chunk and level (s == d), i.e. not Z^n with d > 1.
  const bool whole_chunk = !std::is_same<Kernel, ZKernel>::value || kDim == 1;
  if (whole_chunk && symbol_bits == 8) return KernelsWithSymbols<Kernel, kDim, uint8_t>(q_pow2);
  if (whole_chunk && symbol_bits == 16) return KernelsWithSymbols<Kernel, kDim, uint16_t>(q_pow2);
  return KernelsWithSymbols<Kernel, kDim, uint32_t>(q_pow2);
}

}  // namespace

RowKernels Kernels(LatticeKind kind, int dim, bool q_pow2, int symbol_bits) {
  switch (kind) {
    case LatticeKind::kZ:
      if (dim == 1) return KernelsFor<ZKernel, 1>(q_pow2, symbol_bits);
      if (dim == 4) return KernelsFor<ZKernel, 4>(q_pow2, symbol_bits);
      if (dim == 8) return KernelsFor<ZKernel, 8>(q_pow2, symbol_bits);
      return KernelsFor<ZKernel, 0>(q_pow2, symbol_bits);
    case LatticeKind::kA2:
      return KernelsFor<A2Kernel, 2>(q_pow2, symbol_bits);
    case LatticeKind::kD:
      if (dim == 4) return KernelsFor<DnKernel, 4>(q_pow2, symbol_bits);
      return KernelsFor<DnKernel, 0>(q_pow2, symbol_bits);
    case LatticeKind::kE8:
      return KernelsFor<E8Kernel, 8>(q_pow2, symbol_bits);
  }
  return KernelsFor<ZKernel, 0>(q_pow2, symbol_bits);
}

}  // namespace COSET_ISA
}  // namespace coset
