#include "core/crc32c.h"

#include <string>
#include <vector>

#include "gtest/gtest.h"

namespace coset {
namespace {

TEST(Crc32cTest, HardwareAndTableAgreeOnKnownVector) {
  const std::string s = "123456789";
  EXPECT_EQ(Crc32cRef(reinterpret_cast<const uint8_t*>(s.data()), s.size()), 0xE3069283u);
  EXPECT_EQ(Crc32c(reinterpret_cast<const uint8_t*>(s.data()), s.size()), 0xE3069283u);
  std::vector<uint8_t> big(1000);
  for (size_t i = 0; i < big.size(); ++i) big[i] = static_cast<uint8_t>(i * 7);
  EXPECT_EQ(Crc32c(big.data(), big.size()), Crc32cRef(big.data(), big.size()));
}

// Inputs of three 8 KiB stretches and more run three chains that are joined (crc32c.cc): the same
// value as the table at every size around those stretches, every alignment and a running CRC.
TEST(Crc32cTest, JoinedChainsAgreeWithTheTable) {
  std::vector<uint8_t> bytes(7 * 8192 + 64);
  uint32_t s = 99;
  for (uint8_t& b : bytes) b = static_cast<uint8_t>((s = s * 1664525u + 1013904223u) >> 24);
  for (size_t size : {size_t{3 * 8192 - 1}, size_t{3 * 8192}, size_t{3 * 8192 + 1}, size_t{3 * 8192 + 13},
                      size_t{6 * 8192}, size_t{6 * 8192 + 9}, size_t{7 * 8192 + 3}}) {
    for (size_t offset : {0, 1, 5}) {
      for (uint32_t running : {0u, 0xDEADBEEFu}) {
        EXPECT_EQ(Crc32c(bytes.data() + offset, size, running), Crc32cRef(bytes.data() + offset, size, running))
            << size << " " << offset << " " << running;
      }
    }
  }
  // A blob's CRC is taken over it in one call; the same value as two calls chained.
  EXPECT_EQ(Crc32c(bytes.data() + 7000, bytes.size() - 7000, Crc32c(bytes.data(), 7000)),
            Crc32c(bytes.data(), bytes.size()));
}

}  // namespace
}  // namespace coset
