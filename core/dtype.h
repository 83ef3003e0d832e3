// Element types of the tensors coset codes: the original dtype a blob records (core/FORMAT.md,
// byte 11), what decode can give back, and the exact conversions between them and float32, the
// one type the codec computes in. Pure math, no I/O: the codec's row-by-row typed encode and decode,
// the .npy reader and writer and the daemon's wire tensors convert through here.
//
// Widening (bfloat16, float16 -> float32) is exact. Narrowing rounds to nearest, ties to even, as
// IEEE 754 and PyTorch's .to() do: float16 overflows to +-Inf past 65504 and keeps subnormals,
// NaN stays NaN, quieted as the CPU's conversions do (the AVX-512 level uses them: simd/dispatch.h);
// float32 -> float64 is exact and float64 -> float32 is C++'s cast.
#pragma once

#include <cstdint>

#include "core/params.h"

namespace coset {

// "float32", "float64", "bfloat16", "float16" (the names the CLI's JSON, numpy and torch use).
const char* DTypeName(DType dtype);
// Bytes per element.
int DTypeBytes(DType dtype);
// Whether a number (a blob's dtype byte, a wire enum) names a dtype this build knows; callers
// refuse the others before casting to DType.
bool IsKnownDType(int64_t value);

// IEEE 754 binary16 <-> float32.
float HalfToFloat(uint16_t bits);
uint16_t FloatToHalf(float value);
// bfloat16 (float32's top 16 bits) <-> float32. Unlike FloatToBf16 (chunk_math.h: block scales,
// which clamp to the largest finite value), data keeps Inf and NaN.
float Bfloat16ToFloat(uint16_t bits);
uint16_t FloatToBfloat16(float value);

// n elements of `dtype` at src (little-endian, any alignment) -> n floats.
void ToFloat(const void* src, DType dtype, int64_t n, float* dst);
// n floats -> n elements of `dtype` at dst (any alignment).
void FromFloat(const float* src, int64_t n, DType dtype, void* dst);

}  // namespace coset
