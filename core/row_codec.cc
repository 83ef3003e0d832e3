#include "core/row_codec.h"

#include <atomic>

namespace coset {
namespace {

bool CpuHasAvx2() {
#if defined(__x86_64__)
  return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
#else
  return false;
#endif
}

std::atomic<int>& LevelOverride() {
  static std::atomic<int> level{CpuHasAvx2() ? static_cast<int>(SimdLevel::kAvx2)
                                             : static_cast<int>(SimdLevel::kPortable)};
  return level;
}

}  // namespace

SimdLevel ActiveSimdLevel() { return static_cast<SimdLevel>(LevelOverride().load()); }

SimdLevel SetSimdLevel(SimdLevel level) {
  if (level == SimdLevel::kAvx2 && !CpuHasAvx2()) level = SimdLevel::kPortable;
  return static_cast<SimdLevel>(LevelOverride().exchange(static_cast<int>(level)));
}

RowKernels GetRowKernels(SimdLevel level, LatticeKind kind, int dim, bool q_pow2, int symbol_bits) {
  if (level == SimdLevel::kAvx2 && CpuHasAvx2()) return avx2::Kernels(kind, dim, q_pow2, symbol_bits);
  return portable::Kernels(kind, dim, q_pow2, symbol_bits);
}

}  // namespace coset
