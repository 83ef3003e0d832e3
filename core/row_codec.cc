#include "core/row_codec.h"

namespace coset {

RowKernels GetRowKernels(SimdLevel level, LatticeKind kind, int dim, bool q_pow2, int symbol_bits) {
  // The dispatch facility never reports a level above the detected one.
  if (level >= SimdLevel::kAvx512 && DetectedSimdLevel() >= SimdLevel::kAvx512) {
    return avx512::Kernels(kind, dim, q_pow2, symbol_bits);
  }
  if (level >= SimdLevel::kAvx2 && DetectedSimdLevel() >= SimdLevel::kAvx2) {
    return avx2::Kernels(kind, dim, q_pow2, symbol_bits);
  }
  return portable::Kernels(kind, dim, q_pow2, symbol_bits);
}

}  // namespace coset
