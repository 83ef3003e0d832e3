// Lattices for HNLQ: Z^n, A2, D_n (D4 is the usual one) and E8, with their generator matrices and
// nearest-point maps (Conway & Sloane, "Fast quantizing and decoding algorithms for lattice
// quantizers and codes", IEEE T-IT 1982).
//
// This file is the one registry of lattices: every other file asks a `Lattice` for its generator,
// second moment or nearest point; nothing else hard-codes them. The nearest-point kernels
// themselves (ZKernel, DnKernel, E8Kernel, A2Kernel) live in chunk_math.h, which nvcc compiles too.
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
#include "core/chunk_math.h"
#include "core/limits.h"

namespace coset {

enum class LatticeKind : uint8_t { kZ = 0, kA2 = 1, kD = 2, kE8 = 3 };

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
