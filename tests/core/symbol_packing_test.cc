#include "core/symbol_packing.h"

#include <cmath>
#include <random>
#include <vector>

#include "gtest/gtest.h"

namespace coset {
namespace {

TEST(SymbolPackingTest, RoundTripsEveryAlphabetAndLength) {
  std::mt19937 rng(3);
  for (uint64_t alphabet : {2ull, 3ull, 5ull, 16ull, 81ull, 256ull, 6561ull, 65536ull, 390625ull}) {
    for (int64_t n : {0, 1, 7, 40, 41, 100}) {
      std::uniform_int_distribution<uint32_t> sym(0, static_cast<uint32_t>(alphabet - 1));
      std::vector<uint32_t> s(n);
      for (auto& v : s) v = sym(rng);
      const SymbolPacking packing(alphabet, n);
      std::vector<uint8_t> bytes(packing.row_bytes() + 1, 0xAB);
      packing.PackRow(s.data(), bytes.data());
      EXPECT_EQ(bytes.back(), 0xAB) << "wrote past the row";
      std::vector<uint32_t> back(n);
      ASSERT_TRUE(packing.UnpackRow(bytes.data(), back.data()));
      EXPECT_EQ(back, s) << alphabet << " " << n;
      // Within 1.5% of log2(alphabet) bits per symbol for full groups.
      if (n >= 100) {
        EXPECT_LE(packing.row_bits(), std::ceil(n * std::log2(double(alphabet)) * 1.015) + 64);
      }
    }
  }
}

TEST(SymbolPackingTest, RejectsGroupValuesOutsideTheAlphabet) {
  const SymbolPacking packing(3, 40);  // one 64-bit group, 3^40 < 2^64
  std::vector<uint8_t> bytes(packing.row_bytes(), 0xFF);
  std::vector<uint32_t> out(40);
  EXPECT_FALSE(packing.UnpackRow(bytes.data(), out.data()));
}

}  // namespace
}  // namespace coset
