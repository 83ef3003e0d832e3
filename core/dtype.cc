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

float HalfToFloat(uint16_t bits) { return HalfBitsToFloat(bits); }

uint16_t FloatToHalf(float value) { return FloatToHalfBits(value); }

float Bfloat16ToFloat(uint16_t bits) { return Bf16ToFloat(bits); }

uint16_t FloatToBfloat16(float value) { return FloatToBfloat16Bits(value); }

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
