// Prints the LUT memory footprint of every supported (lattice, q) as a Markdown table (README).
//   bazel run //bench:lut_footprint
#include <cstdio>

#include "core/lut.h"

int main() {
  using namespace coset;
  std::printf(
      "| lattice | q | symbols q^s | two-sided entries | two-sided type | two-sided bytes | one-sided bytes per query "
      "chunk |\n");
  std::printf("|---|---|---|---|---|---|---|\n");
  struct Family {
    const char* lattice;
    int q_min, q_max;
  };
  for (const Family& f : {Family{"Z1", 2, 16}, Family{"A2", 3, 16}, Family{"D4", 3, 16}, Family{"E8", 3, 5}}) {
    for (int q = f.q_min; q <= f.q_max; ++q) {
      if (q > 8 && q != 16) continue;
      const auto cb = Codebook::Get(*Lattice::Parse(f.lattice), q);
      if (!cb.ok()) continue;
      const auto two = TwoSidedLutFootprint(**cb);
      const bool fits = two->bytes <= kDefaultLutBudgetBytes;
      std::printf("| %s | %d | %lld | %lld | %s | %lld%s | %lld |\n", f.lattice, q,
                  static_cast<long long>((*cb)->num_symbols()), static_cast<long long>(two->entries),
                  LutValueTypeName(two->type), static_cast<long long>(two->bytes), fits ? "" : " (over budget)",
                  static_cast<long long>((*cb)->num_symbols() * 4));
    }
  }
  return 0;
}
