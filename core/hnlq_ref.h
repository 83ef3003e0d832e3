// Paper-literal scalar reference of Algorithms 1 and 2 (Kaplan & Ordentlich 2025, §3), in double,
// one chunk at a time, with the perturbed tie rule of codebook.h. It is the test oracle for the
// fast row kernels (which work in integer coordinates through the coset table); never used in
// production paths.
#pragma once

#include <cstdint>
#include <vector>

#include "core/lattice.h"

namespace coset {

struct ChunkCodeRef {
  std::vector<int32_t> digits;  // M * d digits b_m[i] in [0, q-1], level-major
  std::vector<double> first;    // Q_L(x), the first-level lattice point
  std::vector<double> last;     // g_M: Q_L(g) after the last level (zero iff no overload)
  bool overload = false;
};

// Algorithm 1: g = x; for m < M: g = Q_L(g); b_m = round(G^-1 g) mod q; g = g / q.
// overload = Q_L(g) != 0.
ChunkCodeRef EncodeChunkRef(const Lattice& lattice, int q, int levels, const double* x);

// Algorithm 2: x_hat = sum_m q^m (G b_m - q Q_L(G b_m / q)).
std::vector<double> DecodeChunkRef(const Lattice& lattice, int q, int levels, const int32_t* digits);

}  // namespace coset
