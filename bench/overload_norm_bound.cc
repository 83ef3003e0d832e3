// Could a chunk's norm tell the encoder which T to start at? Issue #11 suggested computing "the
// smallest T that cannot overload from the chunk's norm before the first try", so that retries
// bound to overload are skipped (bit-identical codes: only tries that must fail are left out).
// This measures how much such a bound could save, with the best bound the data allows: it encodes
// N(0,1) rows with the default codec, takes each chunk's final T, and finds
//   ok_max   = the largest ||x / step(T)|| of a chunk that did not overload at its T, and
//   over_min = the smallest ||x / step(T - 1)|| of a chunk that overloaded at T - 1.
// Any valid norm bound B is at least ok_max (a chunk at or below it may not overload), so starting
// a chunk at the smallest T with ||x / step(T)|| <= B skips at most what B = ok_max skips; the
// same for the largest coordinate. Printed: the retries per chunk the code needs, those the bound
// would skip, and those an oracle that knew each chunk's T would still need to prove it smallest
// (a try at T and, for T >= 2, one at T - 1: min(T, 2) retries).
//
//   bazel run -c opt //bench:overload_norm_bound [-- E8|D4 ...]
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

#include "bench/normal_codes.h"

namespace coset {
namespace {

constexpr int64_t kRows = 256, kCols = 4096;

int Run(const std::string& lattice_name) {
  const absl::StatusOr<NormalRows> rows = EncodeNormalRows(lattice_name, kRows, kCols);
  if (!rows.ok()) {
    std::fprintf(stderr, "%s\n", std::string(rows.status().message()).c_str());
    return 1;
  }
  const std::vector<float>& x = rows->x;
  const CompressedTensor& t = rows->codes;
  const int d = t.params.lattice.dim();
  const int64_t chunks_per_row = t.layout.chunks_per_row, chunks = kRows * chunks_per_row;
  // Per chunk: its T, and its L2 and L-infinity norms in units of its block's base step.
  std::vector<int> final_t(chunks);
  std::vector<double> l2(chunks), linf(chunks);
  int64_t retries = 0, oracle_retries = 0;
  for (int64_t row = 0; row < kRows; ++row) {
    for (int64_t c = 0; c < chunks_per_row; ++c) {
      const int64_t k = row * chunks_per_row + c;
      final_t[k] = t.t[k];
      retries += final_t[k];
      oracle_retries += std::min(final_t[k], 2);
      const float base = BlockBase(t, row, c * d / t.params.block);
      double sum = 0, largest = 0;
      for (int i = 0; i < d; ++i) {
        const double v = x[row * kCols + c * d + i] / base;
        sum += v * v;
        largest = std::max(largest, std::fabs(v));
      }
      l2[k] = std::sqrt(sum);
      linf[k] = largest;
    }
  }
  std::printf("%s q=%d M=%d, beta %.6g, %lld chunks of N(0,1): %.4f retries per chunk (an oracle: %.4f)\n",
              t.params.lattice.name().c_str(), t.params.q, t.params.M, t.params.beta, static_cast<long long>(chunks),
              static_cast<double>(retries) / chunks, static_cast<double>(oracle_retries) / chunks);
  for (const auto& [name, norm] : {std::make_pair("L2", &l2), std::make_pair("Linf", &linf)}) {
    double ok_max = 0, over_min = 1e300;
    for (int64_t k = 0; k < chunks; ++k) {
      ok_max = std::max(ok_max, (*norm)[k] / RampFactor(t.params, final_t[k]));
      if (final_t[k] > 0) over_min = std::min(over_min, (*norm)[k] / RampFactor(t.params, final_t[k] - 1));
    }
    // Retries a start at the bound's T would skip: T = 1 .. start - 1 (T = 0 is the first try, run
    // for whole batches anyway).
    int64_t skipped = 0;
    for (int64_t k = 0; k < chunks; ++k) {
      int start = 0;
      while ((*norm)[k] / RampFactor(t.params, start) > ok_max) ++start;
      skipped += std::max(0, start - 1);
    }
    std::printf("  %-4s norm / step: overloaded from %.3f, not overloaded up to %.3f; skips %.5f retries per chunk\n",
                name, over_min, ok_max, static_cast<double>(skipped) / chunks);
  }
  return 0;
}

}  // namespace
}  // namespace coset

int main(int argc, char** argv) {
  int status = 0;
  if (argc < 2) {
    for (const char* name : {"D4", "E8"}) status |= coset::Run(name);
  } else {
    for (int i = 1; i < argc; ++i) status |= coset::Run(argv[i]);
  }
  return status;
}
