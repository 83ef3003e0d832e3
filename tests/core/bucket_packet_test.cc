#include "core/bucket_packet.h"

#include <cstring>
#include <vector>

#include "core/format.h"
#include "core/simd/dispatch.h"
#include "gtest/gtest.h"
#include "tests/core/test_util.h"

namespace coset {
namespace {

CodecParams Resolved(CodecParams p) { return TensorCodec::Create(p).value().params(); }

TEST(BucketLayoutTest, SizesFollowFromNumelPartsAndParams) {
  CodecParams p = Resolved(CodecParams{});  // D4 q=4 M=2, block 256, t_max 31 (5 bits)
  const BucketLayout one = BucketLayout::Make(p, 1000, 1).value();
  EXPECT_EQ(one.row_len, 1024);
  EXPECT_EQ(one.shard_len, 1024);
  EXPECT_EQ(one.t_bits, 5);
  EXPECT_EQ(one.scale_bytes, 2 * 4);
  EXPECT_EQ(one.t_bytes, (256 * 5 + 7) / 8);
  EXPECT_EQ(one.symbol_bytes, 256 * 2);  // one byte per chunk and level
  EXPECT_EQ(one.packet_bytes, one.scale_bytes + one.t_bytes + one.symbol_bytes);

  const BucketLayout four = BucketLayout::Make(p, 400000, 4).value();
  EXPECT_EQ(four.row_len, 1024);
  EXPECT_EQ(four.shard_len % 1024, 0);
  EXPECT_GE(four.shard_len * 4, 400000);
  EXPECT_LT(four.shard_len * 4, 400000 + 4 * 1024);
  // A shard of a W-part layout has the packet of a one-part layout of shard_len entries (the
  // reduce-scatter mode re-encodes a shard with the latter).
  EXPECT_EQ(BucketLayout::Make(p, four.shard_len, 1).value().packet_bytes, four.packet_bytes);

  p.t_max = 3;
  EXPECT_EQ(BucketLayout::Make(p, 1000, 1).value().t_bits, 2);
  p.t_max = 0;
  EXPECT_EQ(BucketLayout::Make(p, 1000, 1).value().t_bytes, 0);
}

// Shards past 32 long rows (131,072 entries at D4's block) take long rows of 4096 entries; at and
// below it the 1024-entry rows. Around the threshold, and at blocks that do not divide 1024, a shard
// re-encoded as a bucket of its own (reduce_scatter's middle step) keeps the same rows and packet.
TEST(BucketLayoutTest, LargeShardsTakeLongRows) {
  const CodecParams d4 = Resolved(CodecParams{});
  const int64_t threshold = kLongRowsMin * kLongRowFactor * 1024;
  ASSERT_EQ(threshold, 131072);
  EXPECT_EQ(BucketLayout::Make(d4, threshold, 1).value().row_len, 1024);
  EXPECT_EQ(BucketLayout::Make(d4, threshold + 1, 1).value().row_len, 4096);
  const BucketLayout big = BucketLayout::Make(d4, 11500000, 4).value();
  EXPECT_EQ(big.row_len, 4096);
  EXPECT_EQ(big.shard_len % 4096, 0);
  EXPECT_LT(big.shard_len * 4, 11500000 + 4 * 4096);
  EXPECT_LE(big.shard_len - (11500000 + 3) / 4, big.shard_len / 32);  // padding under 1/32
  for (const int block : {256, 24, 1000, 8}) {
    CodecParams p;
    p.block = block;
    p = Resolved(p);
    const int64_t short_row = (1024 + block - 1) / block * block;
    const int64_t limit = kLongRowsMin * kLongRowFactor * short_row;
    for (const int parts : {1, 2, 8}) {
      for (const int64_t per_part : {limit - short_row - 1, limit - 1, limit, limit + 1, limit + short_row + 3}) {
        const BucketLayout l = BucketLayout::Make(p, per_part * parts, parts).value();
        EXPECT_EQ(l.row_len, per_part > limit ? kLongRowFactor * short_row : short_row) << block << " " << per_part;
        EXPECT_EQ(l.shard_len % l.row_len, 0);
        EXPECT_LE(l.shard_len - per_part, l.shard_len / 32);
        const BucketLayout alone = BucketLayout::Make(p, l.shard_len, 1).value();
        EXPECT_EQ(alone.row_len, l.row_len) << block << " " << per_part << " " << parts;
        EXPECT_EQ(alone.shard_len, l.shard_len);
        EXPECT_EQ(alone.packet_bytes, l.packet_bytes);
      }
    }
  }
}

TEST(BucketLayoutTest, BadArgumentsAreRefused) {
  const CodecParams p = Resolved(CodecParams{});
  EXPECT_FALSE(BucketLayout::Make(p, 100, 0).ok());
  EXPECT_FALSE(BucketLayout::Make(p, -1, 1).ok());
  CodecParams unresolved;
  EXPECT_FALSE(BucketLayout::Make(unresolved, 100, 1).ok());
}

// A packet carries exactly what the blob carries: decoding either gives the same floats.
TEST(BucketPacketTest, RoundTripMatchesTheBlob) {
  for (const int t_max : {0, 3, 7, 31}) {
    CodecParams p;
    p.t_max = t_max;
    p.on_cap = CapPolicy::kZero;
    const TensorCodec codec = TensorCodec::Create(p).value();
    const BucketLayout layout = BucketLayout::Make(codec.params(), 5000, 2).value();
    const std::vector<float> x = testing_util::Gaussian(layout.shard_len, 7 + t_max);
    CompressedTensor shard = ShardTensor(layout, codec.params()).value();
    ASSERT_TRUE(codec.EncodeInto(x.data(), layout.shard_shape(), DType::kFloat32, nullptr, nullptr, &shard).ok());
    std::vector<uint8_t> packet(layout.packet_bytes);
    {
      ScopedSimdLevel portable(SimdLevel::kPortable);
      WritePacket(layout, shard, packet.data());
    }
    for (SimdLevel level : kAllSimdLevels) {  // the counters are packed and unpacked per ISA level
      if (level > DetectedSimdLevel()) continue;
      ScopedSimdLevel scoped(level);
      std::vector<uint8_t> written(layout.packet_bytes);
      WritePacket(layout, shard, written.data());
      EXPECT_EQ(written, packet) << "t_max " << t_max << " at " << SimdLevelName(level);
      CompressedTensor read = ShardTensor(layout, codec.params()).value();
      ASSERT_TRUE(ReadPacket(layout, packet.data(), packet.size(), &read).ok());
      EXPECT_EQ(read.t, shard.t) << "t_max " << t_max << " at " << SimdLevelName(level);
      EXPECT_EQ(read.scales, shard.scales);
      EXPECT_EQ(read.symbols, shard.symbols);
      EXPECT_EQ(testing_util::DecodeAll(read), testing_util::DecodeAll(shard));
    }
    if (t_max == 31) {
      // The default ramp needs T > 0 somewhere, or this test would not exercise the T section.
      int64_t nonzero = 0;
      for (uint8_t t : shard.t) nonzero += t > 0;
      EXPECT_GT(nonzero, 0);
    }
  }
}

// Read in place, a packet's symbols are decoded where they lie (no copy), except 16-bit symbols at
// an odd address, which are copied (decoders read them as words); either way the floats are those
// of the shard itself, at every ISA level.
TEST(BucketPacketTest, ReadInPlaceDecodesThePacketsOwnSymbols) {
  for (const char* lattice : {"D4", "E8"}) {
    CodecParams p;
    p.lattice = Lattice::Parse(lattice).value();
    p.t_max = 7;
    p.on_cap = CapPolicy::kZero;
    const TensorCodec codec = TensorCodec::Create(p).value();
    const BucketLayout layout = BucketLayout::Make(codec.params(), 3000, 1).value();
    const std::vector<float> x = testing_util::Gaussian(layout.shard_len, 11);
    CompressedTensor shard = ShardTensor(layout, codec.params()).value();
    ASSERT_TRUE(codec.EncodeInto(x.data(), layout.shard_shape(), DType::kFloat32, nullptr, nullptr, &shard).ok());
    const int bits = PackingOf(shard.params, shard.layout).bits_per_symbol_if_pow2();
    ASSERT_EQ(bits, p.lattice.dim() == 4 ? 8 : 16);
    const TensorCodec::Epilogue all{nullptr, 1.0f, -1};
    std::vector<float> want(layout.shard_len);
    const CompressedTensorView whole(shard);
    ASSERT_TRUE(codec.DecodeSum(&whole, 1, want.data(), nullptr, all).ok());
    for (const int64_t offset : {0, 1}) {
      std::vector<uint8_t> buffer(layout.packet_bytes + 2);
      uint8_t* packet = buffer.data() + (reinterpret_cast<uintptr_t>(buffer.data()) + offset) % 2;
      WritePacket(layout, shard, packet);
      const uint8_t* symbols = packet + layout.scale_bytes + layout.t_bytes;
      for (SimdLevel level : kAllSimdLevels) {
        if (level > DetectedSimdLevel()) continue;
        ScopedSimdLevel scoped(level);
        CompressedTensor read = ShardTensor(layout, codec.params()).value();
        const CompressedTensorView view = ReadPacketInPlace(layout, packet, layout.packet_bytes, &read).value();
        const bool copied = bits == 16 && reinterpret_cast<uintptr_t>(symbols) % 2 != 0;
        EXPECT_EQ(view.symbols.data(), copied ? read.symbols.data() : symbols) << lattice << " " << offset;
        EXPECT_EQ(view.symbols.size(), static_cast<size_t>(layout.symbol_bytes));
        EXPECT_TRUE(view.t_checked);
        EXPECT_EQ(read.t, shard.t);
        std::vector<float> got(layout.shard_len);
        ASSERT_TRUE(codec.DecodeSum(&view, 1, got.data(), nullptr, all).ok());
        EXPECT_EQ(0, std::memcmp(got.data(), want.data(), got.size() * 4))
            << lattice << " offset " << offset << " at " << SimdLevelName(level);
      }
    }
  }
}

TEST(BucketPacketTest, CorruptPacketsAreRefused) {
  CodecParams p;
  p.t_max = 2;  // 2 bits per counter: the value 3 is out of range
  const TensorCodec codec = TensorCodec::Create(p).value();
  const BucketLayout layout = BucketLayout::Make(codec.params(), 1024, 1).value();
  std::vector<uint8_t> packet(layout.packet_bytes, 0);
  CompressedTensor read = ShardTensor(layout, codec.params()).value();
  EXPECT_EQ(ReadPacket(layout, packet.data(), packet.size() - 1, &read).code(), absl::StatusCode::kInvalidArgument);
  packet[layout.scale_bytes] = 0x3;  // first counter = 3 > t_max
  EXPECT_EQ(ReadPacket(layout, packet.data(), packet.size(), &read).code(), absl::StatusCode::kDataLoss);
}

// Counters are read 64 at a time (AVX-512), eight at a time (3 bits: the hook's t_max = 7 layout)
// and one by one past the last whole group; an out-of-range counter anywhere is refused and named,
// at every ISA level.
TEST(BucketPacketTest, OutOfRangeCountersAreFoundInEveryPosition) {
  CodecParams p;
  p.t_max = 6;  // 3 bits per counter: 7 is out of range
  p.block = 8;  // rows of 1000 entries: 250 counters, not a multiple of 64 or of 8
  const TensorCodec codec = TensorCodec::Create(p).value();
  const BucketLayout layout = BucketLayout::Make(codec.params(), 1000, 1).value();
  CompressedTensor read = ShardTensor(layout, codec.params()).value();
  const int64_t counters = static_cast<int64_t>(read.t.size());
  ASSERT_EQ(counters, 250);
  for (SimdLevel level : kAllSimdLevels) {
    if (level > DetectedSimdLevel()) continue;
    ScopedSimdLevel scoped(level);
    for (int64_t k : {int64_t{0}, int64_t{5}, int64_t{8}, int64_t{13}, int64_t{63}, int64_t{64}, int64_t{100},
                      counters - 9, counters - 1}) {
      std::vector<uint8_t> packet(layout.packet_bytes, 0);
      for (int bit = 0; bit < 3; ++bit) {
        const int64_t at = k * 3 + bit;
        packet[layout.scale_bytes + at / 8] |= static_cast<uint8_t>(1u << (at % 8));
      }
      const absl::Status status = ReadPacket(layout, packet.data(), packet.size(), &read);
      EXPECT_EQ(status.code(), absl::StatusCode::kDataLoss) << "counter " << k;
      EXPECT_NE(status.message().find("overload counter 7 exceeds t_max 6"), std::string::npos)
          << status.message() << " at " << SimdLevelName(level);
    }
  }
}

}  // namespace
}  // namespace coset
