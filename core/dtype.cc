#include "core/dtype.h"

#include <cstring>

#include "core/chunk_math.h"
#include "core/simd/dispatch.h"
#include "core/simd/dtype_kernels.h"

namespace coset {

const char* DTypeName(DType dtype) {
  switch (dtype) {
    case DType::kFloat32:
      return "float32";
    case DType::kFloat64:
      return "float64";
    case DType::kBfloat16:
      return "bfloat16";
    case DType::kFloat16:
      return "float16";
  }
  return "unknown";
}

int DTypeBytes(DType dtype) {
  switch (dtype) {
    case DType::kFloat64:
      return 8;
    case DType::kBfloat16:
    case DType::kFloat16:
      return 2;
    case DType::kFloat32:
      break;
  }
  return 4;
}

bool IsKnownDType(int64_t value) { return value >= 0 && value <= static_cast<int64_t>(DType::kFloat16); }

float HalfToFloat(uint16_t bits) {
  const uint32_t sign = static_cast<uint32_t>(bits & 0x8000u) << 16;
  const uint32_t exponent = (bits >> 10) & 0x1Fu, mantissa = bits & 0x3FFu;
  if (exponent == 0) {
    // Zero or subnormal: mantissa x 2^-24, exact in float32 (2^-24 is a power of two).
    const float magnitude = static_cast<float>(mantissa) * 5.9604644775390625e-8f;
    return sign != 0 ? -magnitude : magnitude;
  }
  // Inf; a NaN keeps its payload and is quieted, as the CPU's conversion (vcvtph2ps) does.
  if (exponent == 0x1F) return BitsToFloat(sign | 0x7F800000u | (mantissa << 13) | (mantissa != 0 ? 0x400000u : 0));
  return BitsToFloat(sign | ((exponent + 112) << 23) | (mantissa << 13));  // rebias 15 -> 127
}

uint16_t FloatToHalf(float value) {
  const uint32_t bits = FloatBits(value);
  const uint16_t sign = static_cast<uint16_t>((bits >> 16) & 0x8000u);
  const uint32_t magnitude = bits & 0x7FFFFFFFu;
  if (magnitude > 0x7F800000u) return sign | 0x7E00u | static_cast<uint16_t>((magnitude >> 13) & 0x1FFu);  // quiet NaN
  // 65520 = 65504 + half its ulp: the tie rounds to the even neighbour, 2^16, which is Inf.
  if (magnitude >= 0x477FF000u) return sign | 0x7C00u;
  if (magnitude >= 0x38800000u) {  // normal in binary16 (>= 2^-14)
    uint32_t half = (magnitude >> 13) - (112u << 10);
    const uint32_t rest = magnitude & 0x1FFFu;
    if (rest > 0x1000u || (rest == 0x1000u && (half & 1u) != 0)) ++half;  // a carry moves into the exponent
    return sign | static_cast<uint16_t>(half);
  }
  // Subnormal in binary16: the value in units of 2^-24, rounded. At or below 2^-25 (the tie
  // between 0 and the smallest subnormal) it is 0.
  if (magnitude <= 0x33000000u) return sign;
  const uint32_t exponent = magnitude >> 23, mantissa = (magnitude & 0x7FFFFFu) | 0x800000u;
  const int shift = 126 - static_cast<int>(exponent);  // 14..24 here
  uint32_t half = mantissa >> shift;
  const uint32_t rest = mantissa & ((1u << shift) - 1u), tie = 1u << (shift - 1);
  if (rest > tie || (rest == tie && (half & 1u) != 0)) ++half;  // may become the smallest normal, 0x400
  return sign | static_cast<uint16_t>(half);
}

float Bfloat16ToFloat(uint16_t bits) { return Bf16ToFloat(bits); }

uint16_t FloatToBfloat16(float value) {
  const uint32_t bits = FloatBits(value);
  if ((bits & 0x7FFFFFFFu) > 0x7F800000u) return static_cast<uint16_t>((bits >> 16) | 0x0040u);  // quiet NaN
  return static_cast<uint16_t>((bits + 0x7FFFu + ((bits >> 16) & 1u)) >> 16);  // nearest, ties to even; may be Inf
}

namespace {

template <typename T, typename Fn>
void Widen(const void* src, int64_t n, float* dst, Fn fn) {
  const unsigned char* p = static_cast<const unsigned char*>(src);
  for (int64_t i = 0; i < n; ++i) {
    T v;
    std::memcpy(&v, p + i * sizeof(T), sizeof(T));
    dst[i] = fn(v);
  }
}

template <typename T, typename Fn>
void Narrow(const float* src, int64_t n, void* dst, Fn fn) {
  unsigned char* p = static_cast<unsigned char*>(dst);
  for (int64_t i = 0; i < n; ++i) {
    const T v = fn(src[i]);
    std::memcpy(p + i * sizeof(T), &v, sizeof(T));
  }
}

}  // namespace

void ToFloat(const void* src, DType dtype, int64_t n, float* dst) {
  const bool avx512 = ActiveSimdLevel() >= SimdLevel::kAvx512;
  if (avx512 && dtype == DType::kFloat16) return avx512::HalfToFloat(static_cast<const uint16_t*>(src), n, dst);
  if (avx512 && dtype == DType::kBfloat16) return avx512::Bfloat16ToFloat(static_cast<const uint16_t*>(src), n, dst);
  switch (dtype) {
    case DType::kFloat32:
      if (n > 0) std::memmove(dst, src, n * sizeof(float));
      return;
    case DType::kFloat64:
      return Widen<double>(src, n, dst, [](double v) { return static_cast<float>(v); });
    case DType::kBfloat16:
      return Widen<uint16_t>(src, n, dst, Bfloat16ToFloat);
    case DType::kFloat16:
      return Widen<uint16_t>(src, n, dst, HalfToFloat);
  }
}

void FromFloat(const float* src, int64_t n, DType dtype, void* dst) {
  const bool avx512 = ActiveSimdLevel() >= SimdLevel::kAvx512;
  if (avx512 && dtype == DType::kFloat16) return avx512::FloatToHalf(src, n, static_cast<uint16_t*>(dst));
  if (avx512 && dtype == DType::kBfloat16) return avx512::FloatToBfloat16(src, n, static_cast<uint16_t*>(dst));
  switch (dtype) {
    case DType::kFloat32:
      if (n > 0) std::memmove(dst, src, n * sizeof(float));
      return;
    case DType::kFloat64:
      return Narrow<double>(src, n, dst, [](float v) { return static_cast<double>(v); });
    case DType::kBfloat16:
      return Narrow<uint16_t>(src, n, dst, FloatToBfloat16);
    case DType::kFloat16:
      return Narrow<uint16_t>(src, n, dst, FloatToHalf);
  }
}

}  // namespace coset
