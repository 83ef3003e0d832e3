#include "core/format.h"

#include <cstring>
#include <random>

#include "core/crc32c.h"
#include "core/dtype.h"
#include "gtest/gtest.h"
#include "tests/core/test_util.h"

namespace coset {
namespace {

using testing_util::Gaussian;

class FormatTest : public ::testing::Test {
 protected:
  void SetUp() override {
    CodecParams p;
    p.block = 64;
    codec_ = std::make_unique<TensorCodec>(*TensorCodec::Create(p));
    x_ = Gaussian(3 * 5 * 37, 4);
    tensor_ = *codec_->Encode(x_.data(), {3, 5, 37}, DType::kFloat64);
    blob_ = Serialize(tensor_);
  }
  std::unique_ptr<TensorCodec> codec_;
  std::vector<float> x_;
  CompressedTensor tensor_;
  std::vector<uint8_t> blob_;
};

TEST_F(FormatTest, RoundTripPreservesEverything) {
  const CompressedTensor back = *Parse(blob_.data(), blob_.size());
  EXPECT_EQ(back.shape, tensor_.shape);
  EXPECT_EQ(back.dtype, DType::kFloat64);
  EXPECT_EQ(back.params.lattice.name(), "D4");
  EXPECT_EQ(back.params.beta, tensor_.params.beta);
  EXPECT_EQ(back.params.block, 64);
  EXPECT_EQ(back.scales, tensor_.scales);
  EXPECT_EQ(back.t, tensor_.t);
  EXPECT_EQ(back.symbols, tensor_.symbols);
  std::vector<float> a(x_.size()), b(x_.size());
  ASSERT_TRUE(codec_->Decode(tensor_, a.data()).ok());
  ASSERT_TRUE(DecodeTensor(back, b.data()).ok());
  EXPECT_EQ(a, b);
  EXPECT_EQ(Serialize(back), blob_);
}

// cosetd parses request blobs into buffers an earlier request left (server/code_buffer_pool.h) and
// reserves what PeekHeader says the parse allocates.
TEST(FormatReuseTest, ParseIntoUsedBuffersEqualsParseAndPeekHeaderSaysItsSize) {
  for (const char* config : {"lattice=D4", "lattice=E8,scale=absmax,rotate=true", "lattice=Z1,q=3,M=3,scale=none",
                             "lattice=A2,q=5,block=10"}) {
    SCOPED_TRACE(config);
    const TensorCodec codec = *TensorCodec::Create(*ParamsFromText(config));
    const std::vector<float> x = Gaussian(7 * 1001, 5);
    const std::vector<uint8_t> blob = Serialize(*codec.Encode(x.data(), {7, 1001}));
    const CompressedTensor fresh = *Parse(blob.data(), blob.size());
    // Buffers of a larger tensor, every byte poisoned.
    CompressedTensor used = *codec.Encode(Gaussian(9 * 1500, 6).data(), {9, 1500});
    for (auto* bytes : {&used.symbols, &used.t}) std::fill(bytes->begin(), bytes->end(), uint8_t{0xA5});
    std::fill(used.scales.begin(), used.scales.end(), uint16_t{0xA5A5});
    ASSERT_TRUE(ParseInto(blob.data(), blob.size(), nullptr, &used).ok());
    EXPECT_EQ(used.symbols, fresh.symbols);
    EXPECT_EQ(used.t, fresh.t);
    EXPECT_EQ(used.scales, fresh.scales);
    EXPECT_EQ(used.shape, fresh.shape);
    EXPECT_EQ(Serialize(used), blob);
    EXPECT_EQ(PeekHeader(blob.data(), blob.size())->parsed_bytes,
              static_cast<int64_t>(2 * fresh.scales.size() + fresh.t.size() + fresh.symbols.size()));
    // A failed parse leaves no tensor behind.
    EXPECT_FALSE(ParseInto(blob.data(), blob.size() - 1, nullptr, &used).ok());
    EXPECT_TRUE(used.shape.empty() && used.symbols.empty() && used.t.empty());
  }
}

TEST_F(FormatTest, PeekHeaderRefusesSectionSizesPastTheElementLimit) {
  std::vector<uint8_t> bad = blob_;
  const size_t table = 40 + 8 * tensor_.shape.size();
  const uint64_t huge = uint64_t{1} << 62;
  std::memcpy(bad.data() + table + 16, &huge, 8);  // the symbols section's size
  EXPECT_EQ(PeekHeader(bad.data(), bad.size()).status().code(), absl::StatusCode::kDataLoss);
  EXPECT_FALSE(Parse(bad.data(), bad.size()).ok());
}

TEST_F(FormatTest, EveryTruncationIsAnError) {
  for (size_t n = 0; n < blob_.size(); ++n) {
    const auto r = Parse(blob_.data(), n);
    ASSERT_FALSE(r.ok()) << "length " << n;
  }
}

TEST_F(FormatTest, EveryBitFlipIsAnError) {
  for (size_t i = 0; i < blob_.size(); ++i) {
    for (int bit : {0, 3, 7}) {
      std::vector<uint8_t> bad = blob_;
      bad[i] ^= static_cast<uint8_t>(1u << bit);
      ASSERT_FALSE(Parse(bad.data(), bad.size()).ok()) << "byte " << i << " bit " << bit;
    }
  }
}

TEST_F(FormatTest, WrongVersionAndMagicAreNamed) {
  std::vector<uint8_t> bad = blob_;
  bad[4] = 1;  // version 1 coded T otherwise: its blobs are refused by name, not misread
  auto r = Parse(bad.data(), bad.size());
  EXPECT_EQ(r.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(r.status().message().find("version 1 (this build reads version 2)"), std::string::npos);
  bad = blob_;
  bad[0] = 'X';
  EXPECT_NE(Parse(bad.data(), bad.size()).status().message().find("magic"), std::string::npos);
  EXPECT_FALSE(Parse(nullptr, 0).ok());
}

TEST_F(FormatTest, ForgedChecksumWithBadFieldsIsStillRefused) {
  // Valid CRC over invalid content: the field checks must catch it.
  std::vector<uint8_t> bad = blob_;
  bad[8] = 2;  // q = 2 for D4
  const uint32_t crc = Crc32c(bad.data(), bad.size() - 4);
  std::memcpy(bad.data() + bad.size() - 4, &crc, 4);
  EXPECT_FALSE(Parse(bad.data(), bad.size()).ok());
  bad = blob_;
  bad[40] = 0xFF;  // shape[0] huge
  bad[47] = 0x7F;
  const uint32_t crc2 = Crc32c(bad.data(), bad.size() - 4);
  std::memcpy(bad.data() + bad.size() - 4, &crc2, 4);
  EXPECT_FALSE(Parse(bad.data(), bad.size()).ok());
}

TEST_F(FormatTest, EveryDTypeRoundTripsAndAnUnknownOneIsRefused) {
  for (DType dtype : {DType::kFloat32, DType::kFloat64, DType::kBfloat16, DType::kFloat16}) {
    CompressedTensor t = tensor_;
    t.dtype = dtype;
    const std::vector<uint8_t> blob = Serialize(t);
    EXPECT_EQ(Parse(blob.data(), blob.size())->dtype, dtype) << DTypeName(dtype);
    EXPECT_EQ(PeekHeader(blob.data(), blob.size())->dtype, dtype) << DTypeName(dtype);
  }
  // A later dtype under a valid checksum: refused by name, by the full parse and by the peek.
  std::vector<uint8_t> bad = blob_;
  bad[11] = 4;
  const uint32_t crc = Crc32c(bad.data(), bad.size() - 4);
  std::memcpy(bad.data() + bad.size() - 4, &crc, 4);
  EXPECT_EQ(Parse(bad.data(), bad.size()).status().message(), "unknown dtype 4");
  EXPECT_FALSE(PeekHeader(bad.data(), bad.size()).ok());
}

TEST(FormatBitsTest, D4Q4M2DefaultStaysUnder4Point4BitsPerEntry) {
  const TensorCodec codec = *TensorCodec::Create(CodecParams{});
  const std::vector<float> x = Gaussian(256 * 1024, 6);
  const CompressedTensor t = *codec.Encode(x.data(), {256, 1024});
  const std::vector<uint8_t> blob = Serialize(t);
  const double stored = StoredBitsPerEntry(t, blob.size());
  const OverloadSummary s = SummarizeOverloads(t);
  EXPECT_EQ(PlanSerialization(t).t_histogram, s.histogram);  // counted while coding the T stream
  const double nominal = 2 * 2.0 + s.entropy_bits / 4 + 16.0 / 256;
  EXPECT_LE(stored, 4.40);
  EXPECT_LE(stored, nominal + 0.1);
  EXPECT_GE(stored, nominal - 0.01);
}

}  // namespace
}  // namespace coset
