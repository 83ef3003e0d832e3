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

}  // namespace
}  // namespace coset
