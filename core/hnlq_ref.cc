#include "core/hnlq_ref.h"

#include <cmath>

#include "core/codebook.h"

namespace coset {

ChunkCodeRef EncodeChunkRef(const Lattice& lattice, int q, int levels, const double* x) {
  const int d = lattice.dim();
  ChunkCodeRef out;
  std::vector<double> g(x, x + d);
  int32_t z[kMaxLatticeDim];
  for (int m = 0; m < levels; ++m) {
    NearestWithTieRule(lattice, g.data(), z);
    lattice.Point(z, g.data());
    if (m == 0) out.first = g;
    for (int i = 0; i < d; ++i) out.digits.push_back(((z[i] % q) + q) % q);
    for (int i = 0; i < d; ++i) g[i] /= q;
  }
  NearestWithTieRule(lattice, g.data(), z);
  out.last.resize(d);
  lattice.Point(z, out.last.data());
  for (int i = 0; i < d; ++i) out.overload |= (z[i] != 0);
  return out;
}

std::vector<double> DecodeChunkRef(const Lattice& lattice, int q, int levels, const int32_t* digits) {
  const int d = lattice.dim();
  std::vector<double> x_hat(d, 0.0);
  double weight = 1.0;
  double gb[kMaxLatticeDim], coarse[kMaxLatticeDim];
  int32_t z[kMaxLatticeDim];
  for (int m = 0; m < levels; ++m) {
    lattice.Point(digits + m * d, gb);
    for (int i = 0; i < d; ++i) coarse[i] = gb[i] / q;
    NearestWithTieRule(lattice, coarse, z);
    lattice.Point(z, coarse);
    for (int i = 0; i < d; ++i) x_hat[i] += weight * (gb[i] - q * coarse[i]);
    weight *= q;
  }
  return x_hat;
}

}  // namespace coset
