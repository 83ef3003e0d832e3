// The per-chunk math of the codec, written once for the CPU and for CUDA: every function here is
// `__host__ __device__` under nvcc and an always-inlined host function otherwise. The CPU row
// kernels (simd/row_codec_impl.h, at every ISA level) and the CUDA kernels (kernels/) call these
// same functions, so the nearest points, digits, coset representatives, the T ladder, block scales
// and the rotation cannot drift apart; the CPU build runs them in every test.
//
// Why always inline on the host: the row kernels are compiled three times with different ISA flags
// (portable, AVX2, AVX-512). An out-of-line copy of an inline function would be merged by the
// linker across those units, and the portable path could end up calling an AVX-512 copy. Inlined
// into each caller, every unit keeps its own code.
//
// Bit-exactness across CPU and GPU also needs the same floating-point contraction: the CPU build
// uses -ffp-contract=off, the CUDA build -fmad=false (no fused multiply-add in either).
//
// No absl, no allocation, no I/O: nvcc compiles this header into device code.
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>

#include "core/limits.h"

#if defined(__CUDACC__)
#define COSET_HD __host__ __device__ __forceinline__
#else
#define COSET_HD inline __attribute__((always_inline))
#endif

namespace coset {

// --- Bits and bfloat16 ---------------------------------------------------------------------------
COSET_HD uint32_t FloatBits(float value) {
  uint32_t bits;
  std::memcpy(&bits, &value, 4);
  return bits;
}

COSET_HD float BitsToFloat(uint32_t bits) {
  float value;
  std::memcpy(&value, &bits, 4);
  return value;
}

// bfloat16: scales are stored in 16 bits with float32's range (gradients can be far below fp16's).
COSET_HD uint16_t FloatToBf16(float value) {
  uint32_t bits = FloatBits(value);
  bits += 0x7FFFu + ((bits >> 16) & 1u);  // round to nearest even
  uint16_t out = static_cast<uint16_t>(bits >> 16);
  if ((out & 0x7F80u) == 0x7F80u) out = static_cast<uint16_t>((out & 0x8000u) | 0x7F7Fu);  // no Inf
  return out;
}

COSET_HD float Bf16ToFloat(uint16_t value) { return BitsToFloat(static_cast<uint32_t>(value) << 16); }

// --- Nearest points (Conway & Sloane; lattice.h has the tie rule and the registry) ----------------
namespace lattice_internal {

// Inputs are clamped to +-2^26 before rounding: integer coordinates then stay far inside int32
// (D_n and E8 sum up to 16 of them), where a huge x / step would overflow (undefined behaviour).
// Any such chunk lies far outside every code region (q^M <= 2^24), so it overloads either way and
// the encoder's ramp handles it exactly as before.
constexpr double kMaxNearestInput = double(1 << 26);

template <typename T>
COSET_HD T ClampInput(T v) {
  const T limit = T(kMaxNearestInput);
  return v > limit ? limit : (v < -limit ? -limit : v);  // NaN never reaches here (refused earlier)
}

template <typename T>
COSET_HD T RoundHalfUp(T v) {
  return std::floor(ClampInput(v) + T(0.5));
}

// Nearest point of D_n in ambient coordinates: round, and fix the parity of the sum by re-rounding
// the coordinate that was rounded the farthest (the first one on equal gaps).
template <typename T>
COSET_HD void NearestDnPoint(const T* y, int n, T* p) {
  int64_t sum = 0;
  int worst = 0;
  T worst_gap = T(-1);
  for (int i = 0; i < n; ++i) {
    const T f = RoundHalfUp(y[i]);
    p[i] = f;
    sum += static_cast<int64_t>(f);
    const T gap = std::fabs(ClampInput(y[i]) - f);
    if (gap > worst_gap) {
      worst_gap = gap;
      worst = i;
    }
  }
  if (sum & 1) {
    p[worst] += (ClampInput(y[worst]) >= p[worst]) ? T(1) : T(-1);
  }
}

// Coordinates of a D_n point p in the basis g1 = (-1,-1,0..), g2 = (1,-1,0..), g_k = e_{k-1} - e_k.
template <typename T>
COSET_HD void DnCoordsFromPoint(const T* p, int n, int32_t* z) {
  int32_t next = static_cast<int32_t>(-p[n - 1]);
  z[n - 1] = next;
  for (int k = n - 2; k >= 2; --k) {
    next = next - static_cast<int32_t>(p[k]);
    z[k] = next;
  }
  const int32_t s = z[2] - static_cast<int32_t>(p[1]);  // z1 + z2
  const int32_t t = static_cast<int32_t>(p[0]);         // z2 - z1
  z[1] = (s + t) / 2;
  z[0] = (s - t) / 2;
}

}  // namespace lattice_internal

// Nearest-point kernels. `y`: d values; `z`: d integer coordinates of the nearest lattice point.
struct ZKernel {
  template <typename T>
  COSET_HD static void Nearest(const T* y, int d, int32_t* z) {
    for (int i = 0; i < d; ++i) z[i] = static_cast<int32_t>(lattice_internal::RoundHalfUp(y[i]));
  }
};

struct DnKernel {
  template <typename T>
  COSET_HD static void Nearest(const T* y, int d, int32_t* z) {
    T p[kMaxLatticeDim] = {};
    lattice_internal::NearestDnPoint(y, d, p);
    lattice_internal::DnCoordsFromPoint(p, d, z);
  }
};

// E8 = D8 ∪ (D8 + 1/2), basis (2,0..), (-1,1,0..), .., (0..,-1,1,0), (1/2,..,1/2).
struct E8Kernel {
  template <typename T>
  COSET_HD static void Nearest(const T* y, int /*d*/, int32_t* z) {
    T a[8], b[8], shifted[8];
    lattice_internal::NearestDnPoint(y, 8, a);
    for (int i = 0; i < 8; ++i) shifted[i] = y[i] - T(0.5);
    lattice_internal::NearestDnPoint(shifted, 8, b);
    T da = 0, db = 0;
    for (int i = 0; i < 8; ++i) {
      b[i] += T(0.5);
      da += (y[i] - a[i]) * (y[i] - a[i]);
      db += (y[i] - b[i]) * (y[i] - b[i]);
    }
    const T* p = (da <= db) ? a : b;
    // Work with 2p, which is integral: z8 = 2 p8, z_k = (2p_k - 2p8)/2 + z_{k+1}, z1 = (.. + z2)/2.
    int32_t twice[8];
    for (int i = 0; i < 8; ++i) twice[i] = static_cast<int32_t>(T(2) * p[i]);
    z[7] = twice[7];
    int32_t next = 0;
    for (int k = 6; k >= 1; --k) {
      next += (twice[k] - twice[7]) / 2;
      z[k] = next;
    }
    z[0] = ((twice[0] - twice[7]) / 2 + z[1]) / 2;
  }
};

// A2 = R ∪ (R + (1/2, √3/2)) with R = Z(1,0) ⊕ Z(0,√3); basis (1,0), (1/2, √3/2).
struct A2Kernel {
  template <typename T>
  COSET_HD static void Nearest(const T* y, int /*d*/, int32_t* z) {
    const T sqrt3 = T(1.7320508075688772935);
    const T a = lattice_internal::RoundHalfUp(y[0]);
    const T b = lattice_internal::RoundHalfUp(y[1] / sqrt3);
    const T a2 = lattice_internal::RoundHalfUp(y[0] - T(0.5));
    const T b2 = lattice_internal::RoundHalfUp((y[1] - sqrt3 / T(2)) / sqrt3);
    const T e0 = y[0] - a, e1 = y[1] - b * sqrt3;
    const T f0 = y[0] - (a2 + T(0.5)), f1 = y[1] - (b2 + T(0.5)) * sqrt3;
    if (e0 * e0 + e1 * e1 <= f0 * f0 + f1 * f1) {
      z[1] = static_cast<int32_t>(T(2) * b);
      z[0] = static_cast<int32_t>(a - b);
    } else {
      z[1] = static_cast<int32_t>(T(2) * b2 + T(1));
      z[0] = static_cast<int32_t>(a2 - b2);
    }
  }
};

// --- Algorithms 1 and 2 on one chunk --------------------------------------------------------------
// The codebook tables a chunk needs (Codebook::view() on the host; device copies on a GPU).
struct ChunkCodebook {
  const int32_t* rep_coords = nullptr;  // rep(b) in basis coordinates, symbol_dim per symbol
  const float* rep_point = nullptr;     // rep(b) in ambient coordinates, symbol_dim per symbol
  int q = 0;
  int log2_q = 0;  // when q is a power of two
  int symbol_dim = 0;
};

COSET_HD int32_t FloorMod(int32_t v, int32_t q) {
  const int32_t r = v % q;
  return r < 0 ? r + q : r;
}

// Algorithm 1 on one chunk y (already divided by its step). Writes M * d / s symbols, level-major.
// Returns true when the chunk overloads (the remainder after M levels is not the zero point).
// kDim > 0 fixes d at compile time (A2, D4, E8, Z1/Z4/Z8) so the loops unroll; 0 = runtime d.
template <class Kernel, bool kPow2, int kDim, typename SymbolT>
COSET_HD bool EncodeChunk(const ChunkCodebook& cb, int runtime_d, int levels, const float* y, SymbolT* symbols) {
  const int d = kDim > 0 ? kDim : runtime_d;
  int32_t z[kDim > 0 ? kDim : kMaxLatticeDim] = {};
  Kernel::Nearest(y, d, z);  // g_0 = Q_L(y)
  const int s = cb.symbol_dim;
  const int q = cb.q;
  const int shift = cb.log2_q;
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
      *symbols++ = static_cast<SymbolT>(symbol);
      // g_{m+1} = Q_L(g_m / q) = (g_m - rep(b_m)) / q, an exact division (see codebook.h).
      const int32_t* rep = cb.rep_coords + static_cast<size_t>(symbol) * s;
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

// Algorithm 1 with the overload ramp: the smallest T in [0, t_max] whose step base * ramp[T] does
// not overload. y = x * (1 / step), one division per step, clamped to kMaxChunkCoordinate (the
// batch encoders do the same). Returns T, or -1 when the chunk still overloads at t_max (its
// symbols are then those of the last try; the caller zeroes or refuses them).
template <class Kernel, bool kPow2, int kDim, typename SymbolT>
COSET_HD int EncodeChunkOnRamp(const ChunkCodebook& cb, int runtime_d, int levels, const float* x, float base,
                               const float* ramp, int t_max, SymbolT* symbols) {
  const int d = kDim > 0 ? kDim : runtime_d;
  float y[kDim > 0 ? kDim : kMaxLatticeDim];
  for (int t = 0; t <= t_max; ++t) {
    const float inv_step = 1.0f / (base * ramp[t]);
    for (int i = 0; i < d; ++i) {
      const float v = x[i] * inv_step;
      y[i] = v < -kMaxChunkCoordinate ? -kMaxChunkCoordinate : (v > kMaxChunkCoordinate ? kMaxChunkCoordinate : v);
    }
    if (!EncodeChunk<Kernel, kPow2, kDim>(cb, d, levels, y, symbols)) return t;
  }
  return -1;
}

// Algorithm 2 on one chunk: out = step * sum_m q^m rep(b_m), evaluated by Horner from the top
// level. The partial sums are lattice points with small half-integer coordinates: exact in float.
template <int kDim, typename SymbolT>
COSET_HD void DecodeChunk(const ChunkCodebook& cb, int runtime_d, int levels, const SymbolT* symbols, float step,
                          float* out) {
  const int d = kDim > 0 ? kDim : runtime_d;
  const int s = cb.symbol_dim;
  const float q = static_cast<float>(cb.q);
  const int per_level = d / s;
  float acc[kDim > 0 ? kDim : kMaxLatticeDim] = {};
  for (int m = levels - 1; m >= 0; --m) {
    const SymbolT* level_symbols = symbols + m * per_level;
    for (int j = 0; j < per_level; ++j) {
      const float* rep = cb.rep_point + static_cast<size_t>(level_symbols[j]) * s;
      for (int i = 0; i < s; ++i) acc[j * s + i] = acc[j * s + i] * q + rep[i];
    }
  }
  for (int i = 0; i < d; ++i) out[i] = acc[i] * step;
}

// Index of the first NaN/Inf among x[0, n), or -1. Integer test of the exponent bits (vectorizes).
COSET_HD int64_t FirstNonFinite(const float* x, int64_t n) {
  uint32_t any = 0;
  for (int64_t i = 0; i < n; ++i) {
    any |= static_cast<uint32_t>((FloatBits(x[i]) & 0x7F800000u) == 0x7F800000u);
  }
  if (any == 0) return -1;
  for (int64_t i = 0; i < n; ++i) {
    if (!std::isfinite(x[i])) return i;
  }
  return -1;
}

// --- Block scales ---------------------------------------------------------------------------------
// RMS of n floats: sixteen independent partial sums in double (vectorizes on the CPU without
// reassociation, so every ISA build and the GPU add in the same order), then a fixed pairwise tree.
// NaN or Inf anywhere makes it non-finite (squares of finite floats cannot overflow a double).
COSET_HD float BlockRms(const float* x, int64_t n) {
  double part[16] = {};
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    for (int k = 0; k < 16; ++k) part[k] += static_cast<double>(x[i + k]) * static_cast<double>(x[i + k]);
  }
  for (; i < n; ++i) part[0] += static_cast<double>(x[i]) * static_cast<double>(x[i]);
  // Pairwise, halving the width each step (written out so the partials stay in registers).
  double p8[8], p4[4];
  for (int k = 0; k < 8; ++k) p8[k] = part[k] + part[k + 8];
  for (int k = 0; k < 4; ++k) p4[k] = p8[k] + p8[k + 4];
  const double total = (p4[0] + p4[2]) + (p4[1] + p4[3]);
  return static_cast<float>(std::sqrt(total / static_cast<double>(n)));
}

// max |x| of n finite floats: |x| orders like its bit pattern as an unsigned integer, so an integer
// max (vectorizes; float max does not, for its NaN rules), exact.
COSET_HD float BlockAbsMax(const float* x, int64_t n) {
  uint32_t m = 0;
  for (int64_t i = 0; i < n; ++i) {
    const uint32_t bits = FloatBits(x[i]) & 0x7FFFFFFFu;
    m = m > bits ? m : bits;
  }
  return BitsToFloat(m);
}

// --- The block rotation (block_transform.h) -------------------------------------------------------
// Orthonormal Walsh-Hadamard transform of n = 2^k floats, in place.
COSET_HD void Fwht(float* x, int64_t n) {
  for (int64_t h = 1; h < n; h <<= 1) {
    for (int64_t i = 0; i < n; i += 2 * h) {
      for (int64_t j = i; j < i + h; ++j) {
        const float a = x[j], b = x[j + h];
        x[j] = a + b;
        x[j + h] = a - b;
      }
    }
  }
  const float norm = 1.0f / std::sqrt(static_cast<float>(n));
  for (int64_t i = 0; i < n; ++i) x[i] *= norm;
}

// Fwht on consecutive power-of-two segments (n = 2^a + 2^b + ..., largest first).
COSET_HD void FwhtSegments(float* x, int64_t n) {
  int64_t offset = 0;
  while (offset < n) {
    int64_t seg = 1;
    while (seg * 2 <= n - offset) seg *= 2;
    Fwht(x + offset, seg);
    offset += seg;
  }
}

}  // namespace coset
