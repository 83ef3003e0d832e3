// Coset codebook of one (lattice, q): the table behind Algorithms 1 and 2.
//
// A codebook symbol b (digits b_i in [0, q-1], index = sum_i b_i q^i) names the coset G b + qL.
// Its representative rep(b) = G b - q Q_L(G b / q) lies in the closed cell qV (Algorithm 2's term).
//
// Why a table: Algorithm 1 evaluates Q_L(g / q) on lattice points g, which land on Voronoi
// boundaries often; Algorithm 2 inverts Algorithm 1 only if those evaluations are
// translation-equivariant. Writing g = rep(b(g)) + q λ, we define Q_L(g / q) := λ = (g - rep(b)) / q
// for every g in the same coset. This is equivariant by construction, is exact integer arithmetic
// in basis coordinates, and is shared by encoder, decoder and LUT builder. The table itself is built
// once with the perturbed nearest point Q_L(y + ε c), c_i = sqrt(prime_i), ε = 1e-9, on the exact
// small rationals G b / q in double precision (ties there are broken by ε, rounding error is ~1e-16).
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "absl/status/statusor.h"
#include "core/chunk_math.h"
#include "core/lattice.h"
#include "core/limits.h"

namespace coset {

class Codebook {
 public:
  // The codebook of (lattice, q) from the process-wide cache, built on first use. Every codec,
  // LUT, inner product and code-arithmetic call asks here, so one (lattice, q) is built once and
  // held once per process (the daemon accounts it once, CodebookCacheStats). The cache keeps at
  // most kCodebookCacheEntries codebooks and kCodebookCacheBytes, evicting the least recently
  // used; an evicted codebook lives on while someone holds it.
  // Fails for q below the lattice's minimum, q > kMaxQ, or q^symbol_dim > kMaxCodebookSymbols.
  static absl::StatusOr<std::shared_ptr<const Codebook>> Get(const Lattice& lattice, int q);
  // A new codebook outside the cache (tests and measurements of the build itself).
  static absl::StatusOr<std::shared_ptr<const Codebook>> Build(const Lattice& lattice, int q);

  const Lattice& lattice() const { return lattice_; }
  int q() const { return q_; }
  int symbol_dim() const { return symbol_dim_; }
  int64_t num_symbols() const { return num_symbols_; }
  bool q_is_power_of_two() const { return (q_ & (q_ - 1)) == 0; }
  int log2_q() const { return log2_q_; }

  // rep(b) in basis coordinates: symbol_dim int32 per symbol.
  const int32_t* rep_coords(uint32_t symbol) const {
    return rep_coords_.data() + static_cast<size_t>(symbol) * symbol_dim_;
  }
  // rep(b) in ambient coordinates: symbol_dim floats per symbol (exact for Z, D_n, E8).
  const float* rep_point(uint32_t symbol) const {
    return rep_point_.data() + static_cast<size_t>(symbol) * symbol_dim_;
  }
  const std::vector<float>& rep_points() const { return rep_point_; }
  // max |ambient coordinate| over every rep(b) (bounds on decoded values).
  float max_abs_rep_point() const { return max_abs_rep_point_; }
  // The tables Algorithms 1 and 2 read (chunk_math.h), pointing into this codebook.
  ChunkCodebook view() const { return ChunkCodebook{rep_coords_.data(), rep_point_.data(), q_, log2_q_, symbol_dim_}; }
  // Memory held by the tables (for cache accounting).
  int64_t bytes() const {
    return static_cast<int64_t>(rep_coords_.size() * 4 + rep_point_.size() * 4 + rep_coords_int8x4_.size() * 4 +
                                rep_coords_planar_int8_.size() + rep_point_x2_int8_.size() +
                                rep_point_x2_planar_int8_.size());
  }
  // 2 * rep(b) in ambient coordinates as int8 (s per symbol), for lattices whose points are
  // half-integers (Z^n, D_n, E8) when they fit; empty otherwise. 8x smaller than rep_point.
  const std::vector<int8_t>& rep_point_x2_int8() const { return rep_point_x2_int8_; }
  // rep(b) coordinates as int8, four per int32 word (ceil(s/4) words per symbol), for SIMD gathers;
  // empty when a coordinate does not fit in int8.
  const std::vector<int32_t>& rep_coords_int8x4() const { return rep_coords_int8x4_; }
  // The same coordinates plane by plane: symbol_dim tables of 256 int8 (entry b of table i is
  // coordinate i of rep(b)), for byte-permute lookups (AVX-512 VBMI); only when there are at most
  // 256 symbols and rep_coords_int8x4 exists, empty otherwise.
  static constexpr int kPlanarTableSize = 256;
  const std::vector<int8_t>& rep_coords_planar_int8() const { return rep_coords_planar_int8_; }
  // max |coordinate| over every rep(b) in basis coordinates (bounds for the byte-wide encoder).
  int32_t max_abs_rep_coord() const { return max_abs_rep_coord_; }
  // rep_point_x2_int8 plane by plane (the decoder's twin of rep_coords_planar_int8), under the same
  // conditions, and max |2 rep(b)| over its entries.
  const std::vector<int8_t>& rep_point_x2_planar_int8() const { return rep_point_x2_planar_int8_; }
  int32_t max_abs_rep_point_x2() const { return max_abs_rep_point_x2_; }

 private:
  Codebook(const Lattice& lattice, int q);
  Lattice lattice_;
  int q_;
  int log2_q_ = 0;
  int symbol_dim_;
  int64_t num_symbols_;
  std::vector<int32_t> rep_coords_;
  std::vector<float> rep_point_;
  std::vector<int32_t> rep_coords_int8x4_;
  std::vector<int8_t> rep_coords_planar_int8_;
  int32_t max_abs_rep_coord_ = 0;
  float max_abs_rep_point_ = 0.0f;
  std::vector<int8_t> rep_point_x2_planar_int8_;
  int32_t max_abs_rep_point_x2_ = 0;
  std::vector<int8_t> rep_point_x2_int8_;
};

struct CodebookCacheStats {
  int64_t entries = 0;
  int64_t bytes = 0;
  int64_t builds = 0;  // codebooks built by Get since the process started
};
CodebookCacheStats GetCodebookCacheStats();

// The perturbed nearest point used to build codebooks and LUTs: nearest point of y + ε c.
void NearestWithTieRule(const Lattice& lattice, const double* y, int32_t* z);

}  // namespace coset
