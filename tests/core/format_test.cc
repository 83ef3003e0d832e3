#include "core/format.h"

#include <random>

#include "core/crc32c.h"
#include "core/range_coder.h"
#include "core/symbol_packing.h"
#include "gtest/gtest.h"
#include "tests/core/test_util.h"

namespace coset {
namespace {

using testing_util::Gaussian;

TEST(RangeCoderTest, RoundTripsAndDetectsTruncation) {
  std::mt19937 rng(1);
  for (int t_max : {0, 1, 5, 31, 63}) {
    std::geometric_distribution<int> geo(0.7);
    std::vector<uint8_t> t(5000);
    for (auto& v : t) v = static_cast<uint8_t>(std::min(geo(rng), t_max));
    const std::vector<uint8_t> coded = EncodeOverloadCounts(t.data(), t.size(), t_max);
    std::vector<uint8_t> back(t.size());
    ASSERT_TRUE(DecodeOverloadCounts(coded.data(), coded.size(), t.size(), t_max, back.data()).ok());
    EXPECT_EQ(back, t);
    if (t_max > 0 && coded.size() > 8) {
      EXPECT_FALSE(DecodeOverloadCounts(coded.data(), coded.size() / 2, t.size(), t_max, back.data()).ok());
    }
  }
}

TEST(RangeCoderTest, CostsCloseToTheEntropy) {
  std::mt19937 rng(2);
  std::bernoulli_distribution overload(0.1);
  std::vector<uint8_t> t(100000);
  for (auto& v : t) v = overload(rng) ? 1 : 0;
  const std::vector<uint8_t> coded = EncodeOverloadCounts(t.data(), t.size(), 31);
  const double h = -(0.9 * std::log2(0.9) + 0.1 * std::log2(0.1));  // T=1 then a certain 0: ~H
  EXPECT_LT(8.0 * coded.size() / t.size(), h * 1.05 + 0.01);
}

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

TEST(Crc32cTest, HardwareAndTableAgreeOnKnownVector) {
  const std::string s = "123456789";
  EXPECT_EQ(Crc32cRef(reinterpret_cast<const uint8_t*>(s.data()), s.size()), 0xE3069283u);
  EXPECT_EQ(Crc32c(reinterpret_cast<const uint8_t*>(s.data()), s.size()), 0xE3069283u);
  std::vector<uint8_t> big(1000);
  for (size_t i = 0; i < big.size(); ++i) big[i] = static_cast<uint8_t>(i * 7);
  EXPECT_EQ(Crc32c(big.data(), big.size()), Crc32cRef(big.data(), big.size()));
}

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
  bad[4] = 2;
  auto r = Parse(bad.data(), bad.size());
  EXPECT_EQ(r.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(r.status().message().find("version 2"), std::string::npos);
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

TEST(FormatBitsTest, D4Q4M2DefaultStaysUnder4Point4BitsPerEntry) {
  const TensorCodec codec = *TensorCodec::Create(CodecParams{});
  const std::vector<float> x = Gaussian(256 * 1024, 6);
  const CompressedTensor t = *codec.Encode(x.data(), {256, 1024});
  const std::vector<uint8_t> blob = Serialize(t);
  const double stored = StoredBitsPerEntry(t, blob.size());
  const OverloadSummary s = SummarizeOverloads(t);
  const double nominal = 2 * 2.0 + s.entropy_bits / 4 + 16.0 / 256;
  EXPECT_LE(stored, 4.40);
  EXPECT_LE(stored, nominal + 0.1);
  EXPECT_GE(stored, nominal - 0.01);
}

}  // namespace
}  // namespace coset
