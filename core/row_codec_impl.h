// Template bodies of the row kernels. Included by row_codec_portable.cc and row_codec_avx2.cc
// with COSET_ISA set to the namespace to define; nothing else includes it.
//
// Notation: d = lattice dimension, s = symbol dimension (d, or 1 for Z^n), q = nesting ratio,
// M = levels, z = integer coordinates of a lattice point in the generator basis.
#include <algorithm>
#include <cmath>
#include <cstring>

#include "core/block_transform.h"
#include "core/row_codec.h"

#ifndef COSET_ISA
#error "define COSET_ISA before including row_codec_impl.h"
#endif

namespace coset {
namespace COSET_ISA {
namespace {

inline int32_t FloorMod(int32_t v, int32_t q) {
  const int32_t r = v % q;
  return r < 0 ? r + q : r;
}

// Algorithm 1 on one chunk y (already divided by its step). Writes M * d / s symbols, level-major.
// Returns true when the chunk overloads (the remainder after M levels is not the zero point).
// kDim > 0 fixes d at compile time (A2, D4, E8, Z1/Z4/Z8) so the loops unroll; 0 = runtime d.
template <class Kernel, bool kPow2, int kDim>
inline bool EncodeChunk(const Codebook& cb, int runtime_d, int levels, const float* y, uint32_t* symbols) {
  const int d = kDim > 0 ? kDim : runtime_d;
  int32_t z[kDim > 0 ? kDim : kMaxLatticeDim] = {};
  Kernel::Nearest(y, d, z);  // g_0 = Q_L(y)
  const int s = cb.symbol_dim();
  const int q = cb.q();
  const int shift = cb.log2_q();
  for (int m = 0; m < levels; ++m) {
    for (int j = 0; j < d; j += s) {
      // b_m = z mod q (round first, then mod: digits in [0, q-1]), as one symbol.
      uint32_t symbol = 0;
      uint32_t weight = 1;
      for (int i = 0; i < s; ++i) {
        const int32_t digit = kPow2 ? (z[j + i] & (q - 1)) : FloorMod(z[j + i], q);
        symbol += static_cast<uint32_t>(digit) * weight;
        weight *= static_cast<uint32_t>(q);
      }
      *symbols++ = symbol;
      // g_{m+1} = Q_L(g_m / q) = (g_m - rep(b_m)) / q, an exact division (see codebook.h).
      const int32_t* rep = cb.rep_coords(symbol);
      for (int i = 0; i < s; ++i) {
        const int32_t diff = z[j + i] - rep[i];
        z[j + i] = kPow2 ? (diff >> shift) : diff / q;
      }
    }
  }
  int32_t any = 0;
  for (int i = 0; i < d; ++i) any |= z[i];
  return any != 0;
}

// Algorithm 2 on one chunk: out = step * sum_m q^m rep(b_m), evaluated by Horner from the top
// level. The partial sums are lattice points with small half-integer coordinates: exact in float.
inline void DecodeChunk(const Codebook& cb, int d, int levels, const uint32_t* symbols, float step,
                        float* out) {
  const int s = cb.symbol_dim();
  const float q = static_cast<float>(cb.q());
  const int per_level = d / s;
  float acc[kMaxLatticeDim] = {};
  for (int m = levels - 1; m >= 0; --m) {
    const uint32_t* level_symbols = symbols + m * per_level;
    for (int j = 0; j < per_level; ++j) {
      const float* rep = cb.rep_point(level_symbols[j]);
      for (int i = 0; i < s; ++i) acc[j * s + i] = acc[j * s + i] * q + rep[i];
    }
  }
  for (int i = 0; i < d; ++i) out[i] = acc[i] * step;
}

inline float BlockScale(ScaleMode mode, const float* x, int64_t n) {
  switch (mode) {
    case ScaleMode::kNone:
      return 1.0f;
    case ScaleMode::kRms: {
      double sum = 0.0;
      for (int64_t i = 0; i < n; ++i) sum += static_cast<double>(x[i]) * x[i];
      return static_cast<float>(std::sqrt(sum / static_cast<double>(n)));
    }
    case ScaleMode::kAbsMax: {
      float m = 0.0f;
      for (int64_t i = 0; i < n; ++i) m = std::max(m, std::fabs(x[i]));
      return m;
    }
  }
  return 1.0f;
}

template <class Kernel, bool kPow2, int kDim>
RowEncodeCounts EncodeRowImpl(const RowCodecContext& ctx, const float* x, uint16_t* scales,
                              uint8_t* t, uint8_t* packed, RowScratch& scratch) {
  const Layout& l = ctx.layout;
  const Codebook& cb = *ctx.codebook;
  const int d = l.dim;
  float* work = scratch.work.data();
  uint32_t* symbols = scratch.symbols.data();
  std::memcpy(work, x, sizeof(float) * l.cols);
  std::fill(work + l.cols, work + l.padded_cols, 0.0f);
  RowEncodeCounts counts;
  float y[kMaxLatticeDim];
  for (int64_t b = 0; b < l.blocks_per_row; ++b) {
    const int64_t begin = b * ctx.block;
    const int64_t end = std::min(l.padded_cols, begin + ctx.block);
    if (!ctx.rotation_signs.empty()) RotateForward(ctx.rotation_signs.data(), end - begin, work + begin);
    float scale = 1.0f;
    if (ctx.scale != ScaleMode::kNone) {
      // Quantize against the scale as stored, so the decoder multiplies by exactly the same value.
      scales[b] = FloatToBf16(BlockScale(ctx.scale, work + begin, end - begin));
      scale = Bf16ToFloat(scales[b]);
    }
    const float base = scale * ctx.beta;
    // Blocks whose step underflows (all zeros, or RMS below ~1e-30) are coded as zero.
    const bool zero_block = !(base >= 1e-30f);
    for (int64_t c = begin / d; c < end / d; ++c) {
      const float* xc = work + c * d;
      uint32_t* sc = symbols + c * l.symbols_per_chunk;
      if (zero_block) {
        std::fill(sc, sc + l.symbols_per_chunk, 0u);
        t[c] = 0;
        continue;
      }
      int tc = 0;
      while (true) {
        const float step = base * ctx.ramp[tc];
        for (int i = 0; i < d; ++i) y[i] = xc[i] / step;
        if (!EncodeChunk<Kernel, kPow2, kDim>(cb, d, ctx.levels, y, sc)) break;
        if (tc == ctx.t_max) {
          ++counts.capped;
          if (counts.first_capped_chunk < 0) counts.first_capped_chunk = c;
          std::fill(sc, sc + l.symbols_per_chunk, 0u);  // CapPolicy::kZero; kFail is reported by the caller
          break;
        }
        ++tc;
      }
      if (tc > 0) ++counts.first_try_overloads;
      t[c] = static_cast<uint8_t>(tc);
    }
  }
  ctx.packing.PackRow(symbols, packed);
  return counts;
}

bool DecodeRowImpl(const RowCodecContext& ctx, const uint16_t* scales, const uint8_t* t,
                   const uint8_t* packed, float* out, RowScratch& scratch) {
  const Layout& l = ctx.layout;
  const Codebook& cb = *ctx.codebook;
  const int d = l.dim;
  uint32_t* symbols = scratch.symbols.data();
  if (!ctx.packing.UnpackRow(packed, symbols)) return false;
  float* work = scratch.work.data();
  for (int64_t b = 0; b < l.blocks_per_row; ++b) {
    const int64_t begin = b * ctx.block;
    const int64_t end = std::min(l.padded_cols, begin + ctx.block);
    const float scale = ctx.scale == ScaleMode::kNone ? 1.0f : Bf16ToFloat(scales[b]);
    const float base = scale * ctx.beta;
    const bool zero_block = !(base >= 1e-30f);
    for (int64_t c = begin / d; c < end / d; ++c) {
      const float step = zero_block ? 0.0f : base * ctx.ramp[t[c]];
      DecodeChunk(cb, d, ctx.levels, symbols + c * l.symbols_per_chunk, step, work + c * d);
    }
    if (!ctx.rotation_signs.empty()) RotateInverse(ctx.rotation_signs.data(), end - begin, work + begin);
  }
  std::memcpy(out, work, sizeof(float) * l.cols);
  return true;
}

template <class Kernel, int kDim>
RowKernels KernelsFor(bool q_pow2) {
  return RowKernels{q_pow2 ? &EncodeRowImpl<Kernel, true, kDim> : &EncodeRowImpl<Kernel, false, kDim>,
                    &DecodeRowImpl};
}

}  // namespace

RowKernels Kernels(LatticeKind kind, int dim, bool q_pow2) {
  switch (kind) {
    case LatticeKind::kZ:
      if (dim == 1) return KernelsFor<ZKernel, 1>(q_pow2);
      if (dim == 4) return KernelsFor<ZKernel, 4>(q_pow2);
      if (dim == 8) return KernelsFor<ZKernel, 8>(q_pow2);
      return KernelsFor<ZKernel, 0>(q_pow2);
    case LatticeKind::kA2:
      return KernelsFor<A2Kernel, 2>(q_pow2);
    case LatticeKind::kD:
      if (dim == 4) return KernelsFor<DnKernel, 4>(q_pow2);
      return KernelsFor<DnKernel, 0>(q_pow2);
    case LatticeKind::kE8:
      return KernelsFor<E8Kernel, 8>(q_pow2);
  }
  return KernelsFor<ZKernel, 0>(q_pow2);
}

}  // namespace COSET_ISA
}  // namespace coset
