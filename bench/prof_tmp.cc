#include <chrono>
#include <cstdio>
#include <cstdlib>
#include "core/evaluation.h"
#include "core/tensor_codec.h"
using namespace coset;
int main(int argc, char** argv) {
  CodecParams p; p.lattice = argc > 1 ? argv[1] : "D4";
  if (argc > 2) p.scale = *ParseScaleMode(argv[2]);
  if (argc > 3) { p.t_max = atoi(argv[3]); p.on_cap = CapPolicy::kZero; }
  auto codec = *TensorCodec::Create(p);
  int64_t n = 16 << 20;
  auto x = GaussianSamples(n, 1);
  CompressedTensor t;
  for (int r = 0; r < 15; ++r) {
    auto t0 = std::chrono::steady_clock::now();
    EncodeStats st;
    (void)codec.EncodeInto(x.data(), {n / 4096, 4096}, DType::kFloat32, nullptr, &st, &t);
    double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    printf("encode %.3f GB/s overload %.3f\n", n * 4 / s / 1e9, st.first_try_overload_rate());
  }
}
