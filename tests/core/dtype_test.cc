#include "core/dtype.h"

#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <vector>

#include "core/simd/dispatch.h"
#include "gtest/gtest.h"

#if defined(__x86_64__)
#include <immintrin.h>
#endif

namespace coset {
namespace {

uint32_t Bits(float v) {
  uint32_t b;
  std::memcpy(&b, &v, 4);
  return b;
}
float FromBits(uint32_t b) {
  float v;
  std::memcpy(&v, &b, 4);
  return v;
}

// binary16 by its definition: (-1)^s 2^(e - 15) (1 + m / 1024), subnormals 2^-14 (m / 1024).
double HalfByDefinition(uint16_t h) {
  const int e = (h >> 10) & 0x1F, m = h & 0x3FF;
  const double magnitude = e == 0 ? std::ldexp(m, -24) : std::ldexp(1024 + m, e - 25);
  return (h & 0x8000) ? -magnitude : magnitude;
}

TEST(DTypeTest, NamesAndSizes) {
  EXPECT_STREQ(DTypeName(DType::kFloat32), "float32");
  EXPECT_STREQ(DTypeName(DType::kFloat64), "float64");
  EXPECT_STREQ(DTypeName(DType::kBfloat16), "bfloat16");
  EXPECT_STREQ(DTypeName(DType::kFloat16), "float16");
  EXPECT_EQ(DTypeBytes(DType::kFloat32), 4);
  EXPECT_EQ(DTypeBytes(DType::kFloat64), 8);
  EXPECT_EQ(DTypeBytes(DType::kBfloat16), 2);
  EXPECT_EQ(DTypeBytes(DType::kFloat16), 2);
  EXPECT_TRUE(IsKnownDType(3));
  EXPECT_FALSE(IsKnownDType(4));
  EXPECT_FALSE(IsKnownDType(-1));
  EXPECT_FALSE(IsKnownDType(256));  // not 0 once narrowed: a wire enum is any int32
}

TEST(DTypeTest, EveryHalfWidensExactlyAndNarrowsBack) {
  for (uint32_t h = 0; h < 65536; ++h) {
    const float f = HalfToFloat(static_cast<uint16_t>(h));
    const bool nan = ((h >> 10) & 0x1F) == 0x1F && (h & 0x3FF) != 0;
    if (nan) {
      EXPECT_TRUE(std::isnan(f)) << h;
      const uint16_t back = FloatToHalf(f);
      EXPECT_EQ(back & 0xFE00, (h & 0x8000) | 0x7E00) << h;  // a quiet NaN of the same sign
      continue;
    }
    if (((h >> 10) & 0x1F) == 0x1F) {
      EXPECT_TRUE(std::isinf(f)) << h;
    } else {
      ASSERT_EQ(static_cast<double>(f), HalfByDefinition(static_cast<uint16_t>(h))) << h;
    }
    ASSERT_EQ(FloatToHalf(f), h) << h;
  }
}

TEST(DTypeTest, HalfNarrowingRoundsToNearestEven) {
  EXPECT_EQ(FloatToHalf(1.0f), 0x3C00);
  EXPECT_EQ(FloatToHalf(1.0f + std::ldexp(1.0f, -11)), 0x3C00);      // tie: to the even 1.0
  EXPECT_EQ(FloatToHalf(1.0f + 3 * std::ldexp(1.0f, -11)), 0x3C02);  // tie: to the even 1 + 2^-9
  EXPECT_EQ(FloatToHalf(65504.0f), 0x7BFF);                          // the largest finite
  EXPECT_EQ(FloatToHalf(65519.996f), 0x7BFF);
  EXPECT_EQ(FloatToHalf(65520.0f), 0x7C00);  // the tie past it goes to 2^16: Inf
  EXPECT_EQ(FloatToHalf(-1e30f), 0xFC00);
  EXPECT_EQ(FloatToHalf(std::ldexp(1.0f, -24)), 0x0001);  // the smallest subnormal
  EXPECT_EQ(FloatToHalf(std::ldexp(1.0f, -25)), 0x0000);  // the tie below it: to 0
  EXPECT_EQ(FloatToHalf(std::ldexp(1.5f, -25)), 0x0001);
  EXPECT_EQ(FloatToHalf(std::ldexp(3.0f, -25)), 0x0002);     // tie between 1 and 2 units: to 2
  EXPECT_EQ(FloatToHalf(std::ldexp(1023.5f, -24)), 0x0400);  // rounds up into the smallest normal
  EXPECT_EQ(FloatToHalf(-0.0f), 0x8000);
  EXPECT_EQ(FloatToHalf(1e-30f), 0x0000);

  // Random floats around binary16's range: the result is a nearest value, ties to an even mantissa.
  std::mt19937 rng(7);
  std::uniform_int_distribution<uint32_t> mantissa(0, 0x7FFFFF), exponent(127 - 26, 127 + 16), sign(0, 1);
  for (int i = 0; i < 200000; ++i) {
    const float x = FromBits(sign(rng) << 31 | exponent(rng) << 23 | mantissa(rng));
    const uint16_t h = FloatToHalf(x);
    const double err = std::fabs(HalfByDefinition(h) - x);
    if (((h >> 10) & 0x1F) == 0x1F) {  // Inf: only from at least 65520
      ASSERT_GE(std::fabs(x), 65520.0f) << x;
      continue;
    }
    for (int step : {-1, 1}) {
      const uint16_t other = static_cast<uint16_t>(h + step);
      if ((h & 0x7FFF) == 0 && step < 0) continue;  // no neighbour of smaller magnitude
      if (((other >> 10) & 0x1F) == 0x1F || (other & 0x8000) != (h & 0x8000)) continue;
      const double other_err = std::fabs(HalfByDefinition(other) - x);
      ASSERT_LE(err, other_err) << x;
      if (err == other_err) {
        ASSERT_EQ(h & 1, 0) << x;  // a tie goes to the even mantissa
      }
    }
  }
}

#if defined(__x86_64__)
__attribute__((target("f16c"))) uint16_t HardwareHalf(float x) {
  return static_cast<uint16_t>(_cvtss_sh(x, _MM_FROUND_TO_NEAREST_INT));
}
#endif

TEST(DTypeTest, HalfNarrowingMatchesTheCpusConversion) {
#if defined(__x86_64__)
  if (!__builtin_cpu_supports("f16c")) GTEST_SKIP() << "needs F16C, which this CPU lacks";
  std::mt19937 rng(11);
  for (int i = 0; i < 1000000; ++i) {
    const uint32_t bits = static_cast<uint32_t>(rng());
    const float x = FromBits(bits);
    if (std::isnan(x)) continue;  // NaN payloads may differ; the sign and quietness are tested above
    ASSERT_EQ(FloatToHalf(x), HardwareHalf(x)) << std::hex << bits;
  }
#else
  GTEST_SKIP() << "the reference is x86's F16C conversion";
#endif
}

TEST(DTypeTest, Bfloat16WidensExactlyAndNarrowsToNearestEven) {
  for (uint32_t h = 0; h < 65536; ++h) {
    const float f = Bfloat16ToFloat(static_cast<uint16_t>(h));
    ASSERT_EQ(Bits(f), h << 16);
    if (std::isnan(f)) {
      EXPECT_EQ(FloatToBfloat16(f), h | 0x40);  // quiet, same sign and payload
    } else {
      ASSERT_EQ(FloatToBfloat16(f), h);
    }
  }
  EXPECT_EQ(FloatToBfloat16(std::numeric_limits<float>::infinity()), 0x7F80);
  EXPECT_EQ(FloatToBfloat16(std::numeric_limits<float>::max()), 0x7F80);  // rounds past the largest: Inf
  std::mt19937 rng(3);
  for (int i = 0; i < 1000000; ++i) {
    const uint32_t bits = static_cast<uint32_t>(rng());
    const float x = FromBits(bits);
    if (std::isnan(x) || std::isinf(x)) continue;
    // The two bfloat16 neighbours of x, and the nearer one (ties: even), in double.
    const uint32_t low = bits & 0xFFFF0000u, high = low + 0x10000u;
    const double dl = std::fabs(static_cast<double>(x) - FromBits(low));
    // Past the largest finite bfloat16 the upper neighbour is Inf, which rounding treats as 2^128.
    const double high_value = std::isinf(FromBits(high)) ? std::copysign(std::ldexp(1.0, 128), x) : FromBits(high);
    const double dh = std::fabs(high_value - x);
    const uint32_t want = dl < dh || (dl == dh && ((low >> 16) & 1) == 0) ? low : high;
    ASSERT_EQ(FloatToBfloat16(x), want >> 16) << std::hex << bits;
  }
}

TEST(DTypeTest, EverySimdLevelConvertsBuffersBitForBit) {
  // Every 16-bit pattern, and floats of every kind (random bits: NaN, Inf, subnormals, ties), at
  // lengths that leave every tail size, from an odd address.
  std::vector<uint16_t> halves(65536 + 17);
  for (size_t i = 0; i < halves.size(); ++i) halves[i] = static_cast<uint16_t>(i * 40503u);
  std::mt19937 rng(5);
  std::vector<float> floats(100000);
  for (float& f : floats) f = FromBits(static_cast<uint32_t>(rng()));
  floats[0] = 65520.0f;
  floats[1] = std::ldexp(1.0f, -25);
  floats[2] = 1.0f + std::ldexp(1.0f, -8);  // a bfloat16 tie
  for (DType dtype : {DType::kBfloat16, DType::kFloat16}) {
    for (int64_t n : {int64_t{0}, int64_t{1}, int64_t{15}, int64_t{16}, int64_t{33}, int64_t{65536 + 17}}) {
      std::vector<unsigned char> src(2 * n + 1);
      std::memcpy(src.data() + 1, halves.data(), 2 * n);
      std::vector<float> want(n), got(n);
      std::vector<unsigned char> narrow_want(2 * n + 1), narrow_got(2 * n + 1);
      {
        ScopedSimdLevel portable(SimdLevel::kPortable);
        ToFloat(src.data() + 1, dtype, n, want.data());
        FromFloat(floats.data(), std::min<int64_t>(n, floats.size()), dtype, narrow_want.data() + 1);
      }
      for (SimdLevel level : kAllSimdLevels) {
        ScopedSimdLevel scoped(level);
        if (!scoped.ok()) continue;
        ToFloat(src.data() + 1, dtype, n, got.data());
        // Bits, not floats: NaN patterns must match too (and memcmp may not see a null pointer).
        ASSERT_TRUE(n == 0 || std::memcmp(got.data(), want.data(), 4 * n) == 0)
            << DTypeName(dtype) << " " << SimdLevelName(level);
        FromFloat(floats.data(), std::min<int64_t>(n, floats.size()), dtype, narrow_got.data() + 1);
        ASSERT_EQ(narrow_got, narrow_want) << DTypeName(dtype) << " " << SimdLevelName(level) << " n " << n;
      }
    }
  }
}

TEST(DTypeTest, BuffersConvertAtAnyAlignment) {
  const std::vector<float> x = {0.0f, -1.5f, 3.140625f, 65504.0f, 1e-6f, -2.75e3f, 0.333333343f};
  const int64_t n = static_cast<int64_t>(x.size());
  for (DType dtype : {DType::kFloat32, DType::kFloat64, DType::kBfloat16, DType::kFloat16}) {
    std::vector<unsigned char> storage(n * DTypeBytes(dtype) + 1);
    void* unaligned = storage.data() + 1;
    FromFloat(x.data(), n, dtype, unaligned);
    std::vector<float> back(n);
    ToFloat(unaligned, dtype, n, back.data());
    for (int64_t i = 0; i < n; ++i) {
      float want = x[i];
      if (dtype == DType::kBfloat16) want = Bfloat16ToFloat(FloatToBfloat16(x[i]));
      if (dtype == DType::kFloat16) want = HalfToFloat(FloatToHalf(x[i]));
      EXPECT_EQ(back[i], want) << DTypeName(dtype) << " " << i;
    }
  }
  // float64 in: rounded to the nearest float32.
  const double wide[2] = {0.1, -1e300};
  float narrow[2];
  ToFloat(wide, DType::kFloat64, 2, narrow);
  EXPECT_EQ(narrow[0], 0.1f);
  EXPECT_TRUE(std::isinf(narrow[1]) && narrow[1] < 0);
}

}  // namespace
}  // namespace coset
