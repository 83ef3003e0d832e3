#include "core/range_coder.h"

#include <algorithm>
#include <cmath>
#include <random>
#include <tuple>
#include <vector>

#include "core/crc32c.h"
#include "core/thread_pool.h"
#include "gtest/gtest.h"

namespace coset {
namespace {

std::vector<uint8_t> Geometric(int64_t n, double p, int t_max, uint32_t seed) {
  std::mt19937 rng(seed);
  std::geometric_distribution<int> geo(p);
  std::vector<uint8_t> t(n);
  for (auto& v : t) v = static_cast<uint8_t>(std::min(geo(rng), t_max));
  return t;
}

TEST(RangeCoderTest, RoundTripsAndDetectsTruncation) {
  // Counts around the lanes (4) and the segments, every t_max's extremes.
  for (int t_max : {0, 1, 5, 31, 63}) {
    for (int64_t n : {int64_t{0}, int64_t{1}, int64_t{3}, int64_t{4}, int64_t{5}, int64_t{4999}, kOverloadSegment,
                      kOverloadSegment + 1, 2 * kOverloadSegment + 7}) {
      const std::vector<uint8_t> t = Geometric(n, 0.7, t_max, static_cast<uint32_t>(n + t_max));
      std::vector<int64_t> histogram;
      const std::vector<uint8_t> coded = EncodeOverloadCounts(t.data(), n, t_max, nullptr, &histogram);
      std::vector<int64_t> expected(t_max + 1, 0);
      for (uint8_t v : t) ++expected[v];
      EXPECT_EQ(histogram, expected) << n << " " << t_max;
      std::vector<uint8_t> back(n);
      ASSERT_TRUE(DecodeOverloadCounts(coded.data(), coded.size(), n, t_max, back.data()).ok()) << n << " " << t_max;
      EXPECT_EQ(back, t) << n << " " << t_max;
      for (size_t cut : {coded.size() / 2, coded.size() - 1}) {
        if (cut >= coded.size()) continue;
        EXPECT_FALSE(DecodeOverloadCounts(coded.data(), cut, n, t_max, back.data()).ok()) << n << " " << t_max;
      }
    }
  }
}

// A segment whose counters are all equal is its table alone: 1 + 2 (value + 1) bytes.
TEST(RangeCoderTest, ASegmentOfOneValueIsItsTable) {
  for (uint8_t value : {0, 1, 7, 63}) {
    const std::vector<uint8_t> t(kOverloadSegment + 10, value);
    const std::vector<uint8_t> coded = EncodeOverloadCounts(t.data(), t.size(), 63);
    EXPECT_EQ(coded.size(), 2 * (4 + 1 + 2 * (value + 1u))) << int{value};
    std::vector<uint8_t> back(t.size());
    ASSERT_TRUE(DecodeOverloadCounts(coded.data(), coded.size(), t.size(), 63, back.data()).ok());
    EXPECT_EQ(back, t);
    // One more byte after such a table is not a stream an encoder writes.
    std::vector<uint8_t> longer(coded.begin(), coded.begin() + coded.size() / 2);
    longer[0] += 1;
    longer.push_back(0);
    EXPECT_FALSE(DecodeOverloadCounts(longer.data(), longer.size(), kOverloadSegment, 63, back.data()).ok());
  }
}

// A stream from a hostile client (the blob's CRC is the client's to compute): every single-bit flip
// of a coded stream decodes to values within t_max or is refused, and nearly all are refused (a
// lane must end in the state its encoder began with, after reading all of its words).
TEST(RangeCoderTest, FlippedBitsAreRefusedOrStayInRange) {
  for (int64_t n : {1, 3, 7, 100, 5000}) {
    const std::vector<uint8_t> t = Geometric(n, 0.6, 31, 3);
    const std::vector<uint8_t> coded = EncodeOverloadCounts(t.data(), n, 31);
    int refused = 0, flips = 0;
    for (size_t byte = 0; byte < coded.size(); ++byte) {
      for (int bit = 0; bit < 8; ++bit, ++flips) {
        std::vector<uint8_t> bad = coded;
        bad[byte] ^= static_cast<uint8_t>(1 << bit);
        std::vector<uint8_t> back(n);
        if (!DecodeOverloadCounts(bad.data(), bad.size(), n, 31, back.data()).ok()) {
          ++refused;
        } else {
          EXPECT_LE(*std::max_element(back.begin(), back.end()), 31);
        }
      }
    }
    EXPECT_GE(refused, flips * 99 / 100) << n;
  }
}

TEST(RangeCoderTest, RefusesSegmentsNoEncoderWrites) {
  const std::vector<uint8_t> t = Geometric(1000, 0.5, 5, 4);
  const std::vector<uint8_t> good = EncodeOverloadCounts(t.data(), t.size(), 5);
  const int top = good[4];
  ASSERT_GT(top, 0);
  std::vector<uint8_t> back(t.size());
  auto refused = [&](std::vector<uint8_t> bytes, int t_max = 5) {
    return !DecodeOverloadCounts(bytes.data(), bytes.size(), t.size(), t_max, back.data()).ok();
  };
  EXPECT_FALSE(refused(good));
  EXPECT_TRUE(refused(good, top - 1));  // a value above t_max
  std::vector<uint8_t> b = good;
  b[5] += 1;  // frequencies that sum past the scale
  EXPECT_TRUE(refused(b));
  b = good;
  b[5] -= 1;  // or short of it
  EXPECT_TRUE(refused(b));
  b = good;
  const size_t lanes = 5 + 2 * (top + 1);  // the first lane's word count (u16)
  b[lanes] = 0, b[lanes + 1] = 0;
  EXPECT_TRUE(refused(b));
  b = good;
  b[lanes] = 0xFF, b[lanes + 1] = 0xFF;
  EXPECT_TRUE(refused(b));
  b = good;
  const size_t first_state = lanes + 6;
  b[first_state + 2] = 0, b[first_state + 3] = 0;  // a state below 2^16
  EXPECT_TRUE(refused(b));
  b = good;
  b.push_back(0);  // trailing bytes in the section
  EXPECT_TRUE(refused(b));
  b = good;
  b[0] += 1;  // a segment longer than its section
  EXPECT_TRUE(refused(b));
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

// The T stream is part of the blob format (FORMAT.md, version 2): its bytes for a fixed input must
// never change, whatever the coder's implementation. Pinned by their CRC-32C and length, for
// every t_max's cap and several segments.
TEST(RangeCoderTest, BytesOfTheFormatAreStable) {
  uint32_t state = 12345;
  std::vector<uint8_t> t(3 * kOverloadSegment + 777);
  ThreadPool pool(2);
  for (auto& v : t) {
    state = state * 1664525u + 1013904223u;  // a fixed LCG: the same values on every platform
    const uint32_t r = state >> 8;
    v = static_cast<uint8_t>(r % 3 != 0 ? 0 : 1 + (r >> 4) % 5 + ((r >> 12) % 97 == 0 ? 40 : 0));
  }
  for (const auto& [t_max, size, crc] : std::vector<std::tuple<int, size_t, uint32_t>>{{0, 28, 2110734203u},
                                                                                       {1, 22780, 605599374u},
                                                                                       {5, 41946, 1317031333u},
                                                                                       {31, 42634, 931710018u},
                                                                                       {63, 42936, 1124291980u}}) {
    std::vector<uint8_t> capped(t);
    for (auto& v : capped) v = static_cast<uint8_t>(std::min<int>(v, t_max));
    const std::vector<uint8_t> coded = EncodeOverloadCounts(capped.data(), capped.size(), t_max);
    EXPECT_EQ(coded.size(), size) << "t_max " << t_max;
    EXPECT_EQ(Crc32c(coded.data(), coded.size()), crc) << "t_max " << t_max;
    std::vector<uint8_t> back(t.size());
    ASSERT_TRUE(DecodeOverloadCounts(coded.data(), coded.size(), t.size(), t_max, back.data()).ok());
    EXPECT_EQ(back, capped);
    // Segments coded and decoded on two threads: the same bytes and values.
    EXPECT_EQ(EncodeOverloadCounts(capped.data(), capped.size(), t_max, &pool), coded) << "t_max " << t_max;
    std::vector<uint8_t> back_parallel(t.size());
    ASSERT_TRUE(DecodeOverloadCounts(coded.data(), coded.size(), t.size(), t_max, back_parallel.data(), &pool).ok());
    EXPECT_EQ(back_parallel, capped);
  }
}

}  // namespace
}  // namespace coset
