#include <chrono>
#include <cstdio>
#include "core/evaluation.h"
#include "core/simd/hnlq_avx2.h"
using namespace coset;
int main() {
  auto cb = *Codebook::Create(*Lattice::Parse("D4"), 4);
  int64_t n = 16 << 20;
  auto x = GaussianSamples(n, 1);
  for (auto& v : x) v *= 5.0f;
  std::vector<uint8_t> sym(n / 4 * 2), masks(n / 32);
  for (int r = 0; r < 3; ++r) {
    auto t0 = std::chrono::steady_clock::now();
    simd_avx2::EncodeAtStep<simd_avx2::D4Batch>(*cb, 2, x.data(), n / 4, 1.0f, nullptr, sym.data(), masks.data());
    double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    printf("EncodeAtStep %.3f GB/s, %.1f ns per batch\n", n * 4 / s / 1e9, s / (n / 32) * 1e9);
  }
}
