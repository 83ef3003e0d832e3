// Lattices for HNLQ: Z^n, A2, D_n (D4 is the usual one) and E8, with their generator matrices and
// nearest-point maps (Conway & Sloane, "Fast quantizing and decoding algorithms for lattice
// quantizers and codes", IEEE T-IT 1982).
//
// This file is the one registry of lattices: every other file asks a `Lattice` for its generator,
// second moment or nearest point; nothing else hard-codes them.
//
// Notation: d = dimension, G = generator (columns are the basis), a lattice point is p = G z for an
// integer coordinate vector z. Nearest-point kernels return z, not p, because the codec works in
// integer coordinates after the first quantization (see codebook.h).
//
// Tie rule (documented in README "Tie-breaking"): coordinates round half up, floor(v + 1/2), which
// is equivariant under integer translations; D_n re-rounds the first coordinate with the largest
// rounding gap; E8 prefers the D8 candidate on equal distance. Only the first-level quantization of
// data uses these kernels directly; the points g/q of Algorithm 1 are resolved through the coset
// table, which makes them equivariant by construction.
#pragma once

#include <cmath>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "core/limits.h"

namespace coset {

enum class LatticeKind : uint8_t { kZ = 0, kA2 = 1, kD = 2, kE8 = 3 };

namespace lattice_internal {

// Inputs are clamped to +-2^26 before rounding: integer coordinates then stay far inside int32
// (D_n and E8 sum up to 16 of them), where a huge x / step would overflow (undefined behaviour).
// Any such chunk lies far outside every code region (q^M <= 2^24), so it overloads either way and
// the encoder's ramp handles it exactly as before.
inline constexpr double kMaxNearestInput = double(1 << 26);

template <typename T>
inline T ClampInput(T v) {
  const T limit = T(kMaxNearestInput);
  return v > limit ? limit : (v < -limit ? -limit : v);  // NaN never reaches here (refused earlier)
}

template <typename T>
inline T RoundHalfUp(T v) {
  return std::floor(ClampInput(v) + T(0.5));
}

// Nearest point of D_n in ambient coordinates: round, and fix the parity of the sum by re-rounding
// the coordinate that was rounded the farthest (the first one on equal gaps).
template <typename T>
inline void NearestDnPoint(const T* y, int n, T* p) {
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
inline void DnCoordsFromPoint(const T* p, int n, int32_t* z) {
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
  static void Nearest(const T* y, int d, int32_t* z) {
    for (int i = 0; i < d; ++i) z[i] = static_cast<int32_t>(lattice_internal::RoundHalfUp(y[i]));
  }
};

struct DnKernel {
  template <typename T>
  static void Nearest(const T* y, int d, int32_t* z) {
    T p[kMaxLatticeDim] = {};
    lattice_internal::NearestDnPoint(y, d, p);
    lattice_internal::DnCoordsFromPoint(p, d, z);
  }
};

// E8 = D8 ∪ (D8 + 1/2), basis (2,0..), (-1,1,0..), .., (0..,-1,1,0), (1/2,..,1/2).
struct E8Kernel {
  template <typename T>
  static void Nearest(const T* y, int /*d*/, int32_t* z) {
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
  static void Nearest(const T* y, int /*d*/, int32_t* z) {
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

// One lattice of the registry. Small to copy (a d x d generator). The codec carries it typed
// (CodecParams::lattice); names are parsed only at the edges (CLI, proto, torch, blob header).
class Lattice {
 public:
  // Parses "Z" (= Z1), "Zn" (n in 1..16), "A2", "Dn" (n in 3..16; D4 is the usual one), "E8".
  static absl::StatusOr<Lattice> Parse(std::string_view name);
  static absl::StatusOr<Lattice> Create(LatticeKind kind, int dim);
  // The codec's default lattice.
  static Lattice D4() { return Lattice(LatticeKind::kD, 4); }

  bool operator==(const Lattice& other) const { return kind_ == other.kind_ && dim_ == other.dim_; }
  bool operator!=(const Lattice& other) const { return !(*this == other); }

  LatticeKind kind() const { return kind_; }
  int dim() const { return dim_; }
  std::string name() const;
  // Per-dimension second moment of the Voronoi cell (for the beta grid of the reference).
  double second_moment() const;
  // Packing radius: half the minimal distance between lattice points (Z^n, A2: 1/2; D_n, E8: 1/sqrt(2)).
  // A point within this distance of a lattice point is inside its Voronoi cell.
  double packing_radius() const {
    return kind_ == LatticeKind::kZ || kind_ == LatticeKind::kA2 ? 0.5 : 0.7071067811865476;
  }
  // Smallest nesting ratio that works: q = 2 never clears overload for D_n, E8 and A2.
  int min_q() const { return kind_ == LatticeKind::kZ ? 2 : 3; }
  // Dimension of one codebook symbol: Z^n is a product of Z's, so its digits are coded per
  // coordinate (symbol_dim 1); other lattices code one symbol per d-dimensional chunk.
  int symbol_dim() const { return kind_ == LatticeKind::kZ ? 1 : dim_; }

  // Generator, column-major: g(row, col) = generator()[col * d + row].
  const std::vector<double>& generator() const { return generator_; }
  // p = G z.
  void Point(const int32_t* z, double* p) const;
  // Nearest-point coordinates, dispatching on kind (tables and tests; hot loops use the kernels).
  template <typename T>
  void Nearest(const T* y, int32_t* z) const;

 private:
  Lattice(LatticeKind kind, int dim);
  LatticeKind kind_;
  int dim_;
  std::vector<double> generator_;
};

template <typename T>
void Lattice::Nearest(const T* y, int32_t* z) const {
  switch (kind_) {
    case LatticeKind::kZ:
      return ZKernel::Nearest(y, dim_, z);
    case LatticeKind::kA2:
      return A2Kernel::Nearest(y, dim_, z);
    case LatticeKind::kD:
      return DnKernel::Nearest(y, dim_, z);
    case LatticeKind::kE8:
      return E8Kernel::Nearest(y, dim_, z);
  }
}

}  // namespace coset
