// One limits header: the largest tensor the encoder accepts is accepted by the blob reader, and
// one element more is refused by both. Checked on the size arithmetic, without allocating it.
#include "core/limits.h"

#include <cstring>

#include "core/crc32c.h"
#include "core/format.h"
#include "gtest/gtest.h"

namespace coset {
namespace {

// A blob header (magic, version, D4 q=4 M=2 rms, float32, shape) with a valid checksum and empty
// sections: enough for the reader's size checks.
std::vector<uint8_t> HeaderOnlyBlob(const std::vector<int64_t>& shape) {
  CodecParams p;
  p.beta = 0.2f;
  p.block = 256;
  CompressedTensor t;
  t.params = p;
  t.shape = {4};
  t.layout = *Layout::Make(p, t.shape);
  t.row_bytes = 0;
  t.scales.assign(1, 0);
  t.t.assign(1, 0);
  std::vector<uint8_t> blob = Serialize(t);
  // Rewrite the shape in place (rank 1 -> the asked rank needs the same byte count: one dim).
  EXPECT_EQ(shape.size(), 1u);
  std::memcpy(blob.data() + 40, &shape[0], 8);
  const uint32_t crc = Crc32c(blob.data(), blob.size() - 4);
  std::memcpy(blob.data() + blob.size() - 4, &crc, 4);
  return blob;
}

TEST(LimitsTest, EncoderAndReaderAgreeOnTheLargestTensor) {
  CodecParams p;
  p.block = 256;
  // The encoder's layout accepts exactly kMaxElements.
  EXPECT_TRUE(Layout::Make(p, {kMaxElements}).ok());
  EXPECT_TRUE(Layout::Make(p, {kMaxElements / 4096, 4096}).ok());
  EXPECT_FALSE(Layout::Make(p, {kMaxElements + 1}).ok());
  // The reader's header check accepts the same tensor and refuses one element more.
  const std::vector<uint8_t> largest = HeaderOnlyBlob({kMaxElements});
  const auto header = PeekHeader(largest.data(), largest.size());
  ASSERT_TRUE(header.ok()) << header.status();
  EXPECT_EQ(header->numel, kMaxElements);
  const std::vector<uint8_t> too_large = HeaderOnlyBlob({kMaxElements + 1});
  EXPECT_FALSE(PeekHeader(too_large.data(), too_large.size()).ok());
  // Parse gets past every size limit for the largest tensor (it then finds the sections missing),
  // and stops at the limit for the next one.
  const auto parsed = Parse(largest.data(), largest.size());
  ASSERT_FALSE(parsed.ok());
  EXPECT_NE(parsed.status().message().find("section sizes"), std::string::npos) << parsed.status();
  const auto refused = Parse(too_large.data(), too_large.size());
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().message().find("section sizes"), std::string::npos) << refused.status();
}

}  // namespace
}  // namespace coset
