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

// NaN or Inf, from the exponent bits alone: an integer test, which vectorizes on the CPU.
COSET_HD bool IsNonFiniteBits(float value) { return (FloatBits(value) & 0x7F800000u) == 0x7F800000u; }

// The bits of |value|: finite floats' magnitudes order like these as unsigned integers, so a max
// of them is exact in any order and vectorizes (BlockAbsMax; a GPU's lanes each take a part).
COSET_HD uint32_t AbsBits(float value) { return FloatBits(value) & 0x7FFFFFFFu; }

// A four-byte value from its bits (float or int32), for wide loads.
template <typename V>
COSET_HD V BitsTo(uint32_t bits) {
  V value;
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

// Data in 16-bit floats (dtype.h: HalfToFloat, FloatToHalf, FloatToBfloat16; here so that a GPU's
// typed encode and decode convert exactly as the CPU does). Widening is exact; narrowing rounds to
// nearest, ties to even, keeps Inf and quiets NaN. bfloat16 widens with Bf16ToFloat.
COSET_HD float HalfBitsToFloat(uint16_t bits) {
  const uint32_t sign = static_cast<uint32_t>(bits & 0x8000u) << 16;
  const uint32_t exponent = (bits >> 10) & 0x1Fu, mantissa = bits & 0x3FFu;
  if (exponent == 0) {
    // Zero or subnormal: mantissa x 2^-24, exact in float32 (2^-24 is a power of two).
    const float magnitude = static_cast<float>(mantissa) * 5.9604644775390625e-8f;
    return sign != 0 ? -magnitude : magnitude;
  }
  // Inf; a NaN keeps its payload and is quieted, as the CPU's conversion (vcvtph2ps) does.
  if (exponent == 0x1F) return BitsToFloat(sign | 0x7F800000u | (mantissa << 13) | (mantissa != 0 ? 0x400000u : 0));
  return BitsToFloat(sign | ((exponent + 112) << 23) | (mantissa << 13));  // rebias 15 -> 127
}

COSET_HD uint16_t FloatToHalfBits(float value) {
  const uint32_t bits = FloatBits(value);
  const uint16_t sign = static_cast<uint16_t>((bits >> 16) & 0x8000u);
  const uint32_t magnitude = bits & 0x7FFFFFFFu;
  if (magnitude > 0x7F800000u) return sign | 0x7E00u | static_cast<uint16_t>((magnitude >> 13) & 0x1FFu);  // quiet NaN
  // 65520 = 65504 + half its ulp: the tie rounds to the even neighbour, 2^16, which is Inf.
  if (magnitude >= 0x477FF000u) return sign | 0x7C00u;
  if (magnitude >= 0x38800000u) {  // normal in binary16 (>= 2^-14)
    uint32_t half = (magnitude >> 13) - (112u << 10);
    const uint32_t rest = magnitude & 0x1FFFu;
    if (rest > 0x1000u || (rest == 0x1000u && (half & 1u) != 0)) ++half;  // a carry moves into the exponent
    return sign | static_cast<uint16_t>(half);
  }
  // Subnormal in binary16: the value in units of 2^-24, rounded. At or below 2^-25 (the tie
  // between 0 and the smallest subnormal) it is 0.
  if (magnitude <= 0x33000000u) return sign;
  const uint32_t exponent = magnitude >> 23, mantissa = (magnitude & 0x7FFFFFu) | 0x800000u;
  const int shift = 126 - static_cast<int>(exponent);  // 14..24 here
  uint32_t half = mantissa >> shift;
  const uint32_t rest = mantissa & ((1u << shift) - 1u), tie = 1u << (shift - 1);
  if (rest > tie || (rest == tie && (half & 1u) != 0)) ++half;  // may become the smallest normal, 0x400
  return sign | static_cast<uint16_t>(half);
}

COSET_HD uint16_t FloatToBfloat16Bits(float value) {
  const uint32_t bits = FloatBits(value);
  if ((bits & 0x7FFFFFFFu) > 0x7F800000u) return static_cast<uint16_t>((bits >> 16) | 0x0040u);  // quiet NaN
  return static_cast<uint16_t>((bits + 0x7FFFu + ((bits >> 16) & 1u)) >> 16);  // nearest, ties to even; may be Inf
}

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
  int32_t parity = 0;  // of the sum: the XOR of the low bits (|f| <= 2^26: int32 is exact, and cheap on a GPU)
  int worst = 0;
  T worst_gap = T(-1);
  for (int i = 0; i < n; ++i) {
    const T f = RoundHalfUp(y[i]);
    p[i] = f;
    parity ^= static_cast<int32_t>(f);
    const T gap = std::fabs(ClampInput(y[i]) - f);
    if (gap > worst_gap) {
      worst_gap = gap;
      worst = i;
    }
  }
  if (parity & 1) {
    // Written as an update of every coordinate (+-1 at `worst`, +0 elsewhere: exact), not as
    // p[worst]: with n known at compile time the arrays then stay in registers on a GPU (a runtime
    // index, or a branch the compiler turns back into one, puts them in local memory).
    for (int i = 0; i < n; ++i) {
      const T step = (ClampInput(y[i]) >= p[i]) ? T(1) : T(-1);
      p[i] += static_cast<T>(i == worst) * step;
    }
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
    // Work with 2p, which is integral: z8 = 2 p8, z_k = (2p_k - 2p8)/2 + z_{k+1}, z1 = (.. + z2)/2.
    // (p chosen per coordinate, not by pointer, so that a and b stay in registers on a GPU.)
    const bool nearer_a = da <= db;
    int32_t twice[8];
    for (int i = 0; i < 8; ++i) twice[i] = static_cast<int32_t>(T(2) * (nearer_a ? a[i] : b[i]));
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
  int log2_q = 0;      // when q is a power of two
  int symbol_dim = 0;  // 1 (Z^n: a symbol per coordinate) or d (a symbol per chunk): lattice.h
};

// out[0, d) = p[0, d) (float or int32): on a GPU, four values per load where kDim is a multiple of
// 4 and p is 16-byte aligned (one wide load instead of four, and fewer shared-memory bank
// conflicts on codebook rows); elsewhere, and on the CPU, one by one.
template <int kDim, typename V>
COSET_HD void LoadChunk(const V* p, int d, V* out) {
  static_assert(sizeof(V) == 4, "four-byte values");
#if defined(__CUDA_ARCH__)
  if constexpr (kDim > 0 && kDim % 4 == 0) {
    if ((reinterpret_cast<uintptr_t>(p) & 15) == 0) {
      for (int i = 0; i < kDim; i += 4) {
        const uint4 v = *reinterpret_cast<const uint4*>(p + i);
        out[i] = BitsTo<V>(v.x), out[i + 1] = BitsTo<V>(v.y), out[i + 2] = BitsTo<V>(v.z), out[i + 3] = BitsTo<V>(v.w);
      }
      return;
    }
  }
#endif
  const int n = kDim > 0 ? kDim : d;  // a constant where it can be: out stays in registers
  for (int i = 0; i < n; ++i) out[i] = p[i];
}

// p[0, d) = v[0, d) (floats), four per store on a GPU as LoadChunk loads them.
template <int kDim>
COSET_HD void StoreChunk(const float* v, int d, float* p) {
#if defined(__CUDA_ARCH__)
  if constexpr (kDim > 0 && kDim % 4 == 0) {
    if ((reinterpret_cast<uintptr_t>(p) & 15) == 0) {
      for (int i = 0; i < kDim; i += 4)
        *reinterpret_cast<float4*>(p + i) = make_float4(v[i], v[i + 1], v[i + 2], v[i + 3]);
      return;
    }
  }
#endif
  const int n = kDim > 0 ? kDim : d;
  for (int i = 0; i < n; ++i) p[i] = v[i];
}

COSET_HD int32_t FloorMod(int32_t v, int32_t q) {
  const int32_t r = v % q;
  return r < 0 ? r + q : r;
}

// Algorithm 1 on one chunk y (already divided by its step). Writes M * d / s symbols, level-major.
// Returns true when the chunk overloads (the remainder after M levels is not the zero point).
// kDim > 0 fixes d at compile time (A2, D4, E8, Z1/Z4/Z8) so the loops unroll; 0 = runtime d.
// kLevels > 0 fixes M (= levels) the same way, so that symbols may be an array in a GPU's registers.
template <class Kernel, bool kPow2, int kDim, typename SymbolT, int kLevels = 0>
COSET_HD bool EncodeChunk(const ChunkCodebook& cb, int runtime_d, int runtime_levels, const float* y,
                          SymbolT* symbols) {
  const int d = kDim > 0 ? kDim : runtime_d;
  const int levels = kLevels > 0 ? kLevels : runtime_levels;
  int32_t z[kDim > 0 ? kDim : kMaxLatticeDim] = {};
  Kernel::Nearest(y, d, z);  // g_0 = Q_L(y)
  const int q = cb.q;
  const int shift = cb.log2_q;
  // b_m = z mod q (round first, then mod: digits in [0, q-1]); then
  // g_{m+1} = Q_L(g_m / q) = (g_m - rep(b_m)) / q, an exact division (see codebook.h).
  // A symbol holds one coordinate (symbol_dim 1, Z^n) or the whole chunk (symbol_dim d): the two
  // cases are written apart so that every index into z, and into symbols, is made of loop counters
  // (registers on a GPU: a pointer moved by d or by 1 per level would index symbols at run time).
  for (int m = 0; m < levels; ++m) {
    if (cb.symbol_dim == 1) {
      for (int i = 0; i < d; ++i) {
        const int32_t digit = kPow2 ? (z[i] & (q - 1)) : FloorMod(z[i], q);
        symbols[m * d + i] = static_cast<SymbolT>(digit);
        const int32_t diff = z[i] - cb.rep_coords[digit];
        z[i] = kPow2 ? (diff >> shift) : diff / q;
      }
    } else {
      uint32_t symbol = 0;
      uint32_t weight = 1;
      for (int i = 0; i < d; ++i) {
        const int32_t digit = kPow2 ? (z[i] & (q - 1)) : FloorMod(z[i], q);
        symbol += static_cast<uint32_t>(digit) * weight;
        weight *= static_cast<uint32_t>(q);
      }
      symbols[m] = static_cast<SymbolT>(symbol);
      int32_t rep[kDim > 0 ? kDim : kMaxLatticeDim];
      LoadChunk<kDim>(cb.rep_coords + static_cast<size_t>(symbol) * d, d, rep);
      for (int i = 0; i < d; ++i) {
        const int32_t diff = z[i] - rep[i];
        z[i] = kPow2 ? (diff >> shift) : diff / q;
      }
    }
  }
  int32_t any = 0;
  for (int i = 0; i < d; ++i) any |= z[i];
  return any != 0;
}

// One step of the overload ramp: Algorithm 1 on the chunk x (d values, LoadChunk) at step
// base * ramp[t]. y = x * (1 / step), one division per step, clamped to kMaxChunkCoordinate (the
// batch encoders do the same). Writes the symbols; returns true when the chunk overloads. kLevels as
// for EncodeChunk.
template <class Kernel, bool kPow2, int kDim, typename SymbolT, int kLevels = 0>
COSET_HD bool EncodeChunkAtStep(const ChunkCodebook& cb, int runtime_d, int levels, const float* x, float base,
                                const float* ramp, int t, SymbolT* symbols) {
  const int d = kDim > 0 ? kDim : runtime_d;
  float y[kDim > 0 ? kDim : kMaxLatticeDim];
  const float inv_step = 1.0f / (base * ramp[t]);
  for (int i = 0; i < d; ++i) {
    const float v = x[i] * inv_step;
    y[i] = v < -kMaxChunkCoordinate ? -kMaxChunkCoordinate : (v > kMaxChunkCoordinate ? kMaxChunkCoordinate : v);
  }
  return EncodeChunk<Kernel, kPow2, kDim, SymbolT, kLevels>(cb, d, levels, y, symbols);
}

// Algorithm 1 with the overload ramp: the smallest T in [0, t_max] whose step base * ramp[T] does
// not overload. Returns T, or -1 when the chunk still overloads at t_max (its symbols are then
// those of the last try; the caller zeroes or refuses them).
template <class Kernel, bool kPow2, int kDim, typename SymbolT>
COSET_HD int EncodeChunkOnRamp(const ChunkCodebook& cb, int runtime_d, int levels, const float* x, float base,
                               const float* ramp, int t_max, SymbolT* symbols) {
  const int d = kDim > 0 ? kDim : runtime_d;
  float chunk[kDim > 0 ? kDim : kMaxLatticeDim];
  LoadChunk<kDim>(x, d, chunk);
  for (int t = 0; t <= t_max; ++t) {
    if (!EncodeChunkAtStep<Kernel, kPow2, kDim>(cb, d, levels, chunk, base, ramp, t, symbols)) return t;
  }
  return -1;
}

// Algorithm 2 on one chunk: v = step * sum_m q^m rep(b_m), evaluated by Horner from the top
// level. The partial sums are lattice points with small half-integer coordinates: exact in float.
// kLevels as for EncodeChunk. DecodeChunk stores them; a caller that stores them otherwise (in
// another dtype) takes them in registers (kDim > 0).
template <int kDim, int kLevels = 0, typename SymbolT>
COSET_HD void DecodeChunkValues(const ChunkCodebook& cb, int runtime_d, int runtime_levels, const SymbolT* symbols,
                                float step, float* v) {
  const int d = kDim > 0 ? kDim : runtime_d;
  const int levels = kLevels > 0 ? kLevels : runtime_levels;
  const float q = static_cast<float>(cb.q);
  float acc[kDim > 0 ? kDim : kMaxLatticeDim] = {};
  // symbol_dim 1 (Z^n: d symbols per level) or d (one per level), written apart as in EncodeChunk.
  for (int m = levels - 1; m >= 0; --m) {
    if (cb.symbol_dim == 1) {
      const SymbolT* level_symbols = symbols + m * d;
      for (int i = 0; i < d; ++i) acc[i] = acc[i] * q + cb.rep_point[level_symbols[i]];
    } else if constexpr (kDim > 0) {
      float rep[kDim];
      LoadChunk<kDim>(cb.rep_point + static_cast<size_t>(symbols[m]) * d, d, rep);
      for (int i = 0; i < d; ++i) acc[i] = acc[i] * q + rep[i];
    } else {  // d known at run time only: read in place (a copy costs more than it saves here)
      const float* rep = cb.rep_point + static_cast<size_t>(symbols[m]) * d;
      for (int i = 0; i < d; ++i) acc[i] = acc[i] * q + rep[i];
    }
  }
  for (int i = 0; i < d; ++i) v[i] = acc[i] * step;
}

// DecodeChunkValues into out[0, d) (four floats per store on a GPU where kDim allows, StoreChunk).
template <int kDim, int kLevels = 0, typename SymbolT>
COSET_HD void DecodeChunk(const ChunkCodebook& cb, int runtime_d, int runtime_levels, const SymbolT* symbols,
                          float step, float* out) {
  if constexpr (kDim > 0) {
    float v[kDim];
    DecodeChunkValues<kDim, kLevels>(cb, runtime_d, runtime_levels, symbols, step, v);
    StoreChunk<kDim>(v, kDim, out);
  } else {
    DecodeChunkValues<kDim, kLevels>(cb, runtime_d, runtime_levels, symbols, step, out);
  }
}

// Index of the first NaN/Inf among x[0, n), or -1. Integer test of the exponent bits (vectorizes).
COSET_HD int64_t FirstNonFinite(const float* x, int64_t n) {
  uint32_t any = 0;
  for (int64_t i = 0; i < n; ++i) {
    any |= static_cast<uint32_t>(IsNonFiniteBits(x[i]));
  }
  if (any == 0) return -1;
  for (int64_t i = 0; i < n; ++i) {
    if (!std::isfinite(x[i])) return i;
  }
  return -1;
}

// --- Code arithmetic on one chunk (code_arith.h; the GPU's add_codes) -------------------------------

// v mod m in [0, m) for m > 0, in 64 bits: sums of many codes' coordinates.
COSET_HD int64_t FloorMod(int64_t v, int64_t m) {
  const int64_t r = v % m;
  return r < 0 ? r + m : r;
}

// The integer coordinates z (d values) of a chunk's decoded lattice point, x_hat / step = G z:
// Horner over its levels of rep(b) in basis coordinates. symbols: the chunk's levels groups of
// d / symbol_dim symbols. kDim as for DecodeChunk (0: d at run time).
template <int kDim, typename SymbolT>
COSET_HD void ChunkPointCoords(const ChunkCodebook& cb, int runtime_d, int levels, const SymbolT* symbols, int64_t* z) {
  const int d = kDim > 0 ? kDim : runtime_d;
  const int s = cb.symbol_dim, per_level = d / s;
  for (int i = 0; i < d; ++i) z[i] = 0;
  for (int m = levels - 1; m >= 0; --m) {
    for (int j = 0; j < per_level; ++j) {
      const int32_t* rep = cb.rep_coords + static_cast<int64_t>(symbols[m * per_level + j]) * s;
      for (int i = 0; i < s; ++i) z[j * s + i] = z[j * s + i] * cb.q + rep[i];
    }
  }
}

// Algorithm 1 on a lattice point given by its coordinates z (no rounding needed), which it
// consumes: writes the chunk's symbols (unless symbols is null) and returns whether the point
// overloads, i.e. is not in the decodable set.
//
// rep(b)'s coordinates are congruent to b's digits mod q, so z - rep divides exactly by q: for a
// power-of-two q the digits are masks and the divisions shifts (64-bit divisions had taken most of
// AddCodes' time), the same values.
template <int kDim, typename SymbolT>
COSET_HD bool EncodePointCoords(const ChunkCodebook& cb, int runtime_d, int levels, int64_t* z, SymbolT* symbols) {
  const int d = kDim > 0 ? kDim : runtime_d;
  const int s = cb.symbol_dim, q = cb.q;
  const bool pow2 = (1 << cb.log2_q) == q;
  for (int m = 0; m < levels; ++m) {
    for (int j = 0; j < d; j += s) {
      uint32_t symbol = 0, weight = 1;
      for (int i = 0; i < s; ++i) {
        const int64_t digit = pow2 ? (z[j + i] & (q - 1)) : FloorMod(z[j + i], int64_t{q});
        symbol += static_cast<uint32_t>(digit) * weight;
        weight *= static_cast<uint32_t>(q);
      }
      if (symbols != nullptr) *symbols++ = static_cast<SymbolT>(symbol);
      const int32_t* rep = cb.rep_coords + static_cast<int64_t>(symbol) * s;
      for (int i = 0; i < s; ++i) z[j + i] = pow2 ? (z[j + i] - rep[i]) >> cb.log2_q : (z[j + i] - rep[i]) / q;
    }
  }
  int64_t any = 0;
  for (int i = 0; i < d; ++i) any |= z[i];
  return any != 0;
}

// The end of AddCodes on one chunk (code_arith.h; the GPU's per-chunk step too): sum holds the
// exact sum of the inputs' points in coordinates (d values, consumed). Its wrap mod modulus = q^M is
// the integer coset-vector sum, and Algorithm 1 from there lands on the representative in C, whose
// symbols go to `symbols`; that equals the exact sum precisely where the exact sum does not
// overload. Returns, when validate, whether it overloads (Algorithm 1 on the unwrapped sum), else
// false.
template <int kDim, typename SymbolT>
COSET_HD bool EncodeChunkSum(const ChunkCodebook& cb, int runtime_d, int levels, int64_t modulus, int64_t* sum,
                             SymbolT* symbols, bool validate) {
  const int d = kDim > 0 ? kDim : runtime_d;
  const bool pow2 = (modulus & (modulus - 1)) == 0;
  int64_t wrapped[kDim > 0 ? kDim : kMaxLatticeDim];
  for (int i = 0; i < d; ++i) wrapped[i] = pow2 ? sum[i] & (modulus - 1) : FloorMod(sum[i], modulus);
  EncodePointCoords<kDim>(cb, d, levels, wrapped, symbols);
  return validate && EncodePointCoords<kDim>(cb, d, levels, sum, static_cast<SymbolT*>(nullptr));
}

// --- Two-sided LUT sums (inner_product.h's DotRows; the GPU's) --------------------------------------

// The LUT term of one chunk pair, sum_{m, m'} q^(m + m') sum_j LUT[a_{m,j}, b_{m',j}]: a and b hold
// `levels` groups of per_level symbols each (level-major; per_level = d / symbol_dim, so Z^n pairs
// coordinate j with coordinate j), lut the symbols x symbols table, row-major. Acc: int64_t for an
// integral LUT (the sum is then exact), double for a float one (A2).
template <typename Acc, typename V, typename SymbolT>
COSET_HD Acc ChunkPairLutSum(const V* lut, int64_t symbols, int q, int levels, int per_level, const SymbolT* a,
                             const SymbolT* b) {
  Acc sum = 0, qa = 1;
  for (int m = 0; m < levels; ++m) {
    Acc qb = 1;
    for (int mp = 0; mp < levels; ++mp) {
      Acc level_sum = 0;
      for (int j = 0; j < per_level; ++j) {
        level_sum +=
            static_cast<Acc>(lut[static_cast<int64_t>(a[m * per_level + j]) * symbols + b[mp * per_level + j]]);
      }
      sum += qa * qb * level_sum;
      qb *= q;
    }
    qa *= q;
  }
  return sum;
}

// --- Block scales ---------------------------------------------------------------------------------
// RMS of n floats: sixteen independent partial sums in double (vectorizes on the CPU without
// reassociation, so every ISA build and the GPU add in the same order), then a fixed pairwise tree.
// NaN or Inf anywhere makes it non-finite (squares of finite floats cannot overflow a double).
constexpr int kRmsParts = 16;

// The fixed pairwise tree over the sixteen partial sums, and the root of the mean.
COSET_HD float BlockRmsFromParts(const double* part, int64_t n) {
  // Pairwise, halving the width each step (written out so the partials stay in registers).
  double p8[8], p4[4];
  for (int k = 0; k < 8; ++k) p8[k] = part[k] + part[k + 8];
  for (int k = 0; k < 4; ++k) p4[k] = p8[k] + p8[k + 4];
  const double total = (p4[0] + p4[2]) + (p4[1] + p4[3]);
  return static_cast<float>(std::sqrt(total / static_cast<double>(n)));
}

COSET_HD float BlockRms(const float* x, int64_t n) {
  double part[kRmsParts] = {};
  int64_t i = 0;
  for (; i + kRmsParts <= n; i += kRmsParts) {
    for (int k = 0; k < kRmsParts; ++k) part[k] += static_cast<double>(x[i + k]) * static_cast<double>(x[i + k]);
  }
  for (; i < n; ++i) part[0] += static_cast<double>(x[i]) * static_cast<double>(x[i]);
  return BlockRmsFromParts(part, n);
}

// Partial sum k of BlockRms alone, added in the same order: x[i]^2 over i = k, k + 16, ... below n
// rounded down to 16, then for k = 0 the tail. Sixteen GPU lanes compute the sixteen (coalesced
// reads) where BlockRms interleaves them; BlockRmsFromParts then gives the same float.
COSET_HD double BlockRmsPart(const float* x, int64_t n, int k) {
  const int64_t whole = n - n % kRmsParts;
  double sum = 0.0;
  for (int64_t i = k; i < whole; i += kRmsParts) sum += static_cast<double>(x[i]) * static_cast<double>(x[i]);
  if (k == 0) {
    for (int64_t i = whole; i < n; ++i) sum += static_cast<double>(x[i]) * static_cast<double>(x[i]);
  }
  return sum;
}

// max |x| of n finite floats: |x| orders like its bit pattern as an unsigned integer, so an integer
// max (vectorizes; float max does not, for its NaN rules), exact.
COSET_HD float BlockAbsMax(const float* x, int64_t n) {
  uint32_t m = 0;
  for (int64_t i = 0; i < n; ++i) {
    const uint32_t bits = AbsBits(x[i]);
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
