// AVX-512 kernels of core/dtype.h's buffer conversions (simd/dtype_avx512.cc), picked at run time
// through simd/dispatch.h; each gives exactly the portable functions' bits. Pointers may have any
// alignment.
#pragma once

#include <cstdint>

namespace coset {
namespace avx512 {

void HalfToFloat(const uint16_t* src, int64_t n, float* dst);
void FloatToHalf(const float* src, int64_t n, uint16_t* dst);
void Bfloat16ToFloat(const uint16_t* src, int64_t n, float* dst);
void FloatToBfloat16(const float* src, int64_t n, uint16_t* dst);

}  // namespace avx512
}  // namespace coset
