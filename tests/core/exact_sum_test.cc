#include "core/exact_sum.h"

#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

#include "core/simd/dispatch.h"
#include "gtest/gtest.h"
#include "tests/core/test_util.h"

namespace coset {
namespace {

CodecParams Resolved(const std::string& text) {
  return TensorCodec::Create(ParamsFromText(text).value()).value().params();
}

TEST(ExactSumSpecTest, TheDefaultBoundIsTheCodeRegionsSpan) {
  // shared/notes/hnlq-reference.md "Exact sums": D4 q=4 M=2 spans -15..15, q=3 -8..8; E8 q=4 M=2
  // 2p in -30..26.
  EXPECT_EQ(ExactSumSpec::Create(Resolved("lattice=D4,q=4,M=2"), 1).value().bound, 15);
  EXPECT_EQ(ExactSumSpec::Create(Resolved("lattice=D4,q=3,M=2"), 1).value().bound, 8);
  EXPECT_EQ(ExactSumSpec::Create(Resolved("lattice=E8,q=4,M=2"), 1).value().bound, 30);
  // Bits grow by log2(W): 2 W bound fits.
  for (const int w : {1, 2, 4, 8}) {
    const ExactSumSpec s = ExactSumSpec::Create(Resolved("lattice=D4,q=4,M=2"), w).value();
    EXPECT_LT(2 * w * 15, 1 << s.bits);
    EXPECT_GE(2 * w * 15, 1 << (s.bits - 1));
    EXPECT_EQ(s.fields_per_word, 63 / s.bits);
  }
  EXPECT_FALSE(ExactSumSpec::Create(Resolved("lattice=A2,q=4,M=2"), 2).ok());
  EXPECT_FALSE(ExactSumSpec::Create(Resolved("lattice=D4,q=4,M=2"), 0).ok());
  EXPECT_FALSE(ExactSumSpec::Create(Resolved("lattice=D4,q=4,M=2"), 4, 1 << 30).ok());
}

struct Ranks {
  ExactSumSpec spec;
  int64_t n;
  std::vector<std::vector<float>> x;
  std::vector<float> scales;
};

// W correlated gradients (a shared part plus each rank's own) and their shared block scales.
Ranks MakeRanks(const std::string& codec, int world, int64_t n) {
  Ranks r{ExactSumSpec::Create(Resolved(codec), world).value(), n, {}, {}};
  const std::vector<float> common = testing_util::Gaussian(n, 1);
  r.scales.assign(r.spec.Blocks(n), 0.0f);
  for (int w = 0; w < world; ++w) {
    std::vector<float> own = testing_util::Gaussian(n, 100 + w, 0.5f);
    for (int64_t i = 0; i < n; ++i) own[i] += common[i];
    std::vector<float> s(r.scales.size());
    BlockAbsMax(r.spec, own.data(), nullptr, n, 0, s.size(), s.data());
    for (size_t b = 0; b < s.size(); ++b) r.scales[b] = std::max(r.scales[b], s[b]);
    r.x.push_back(std::move(own));
  }
  return r;
}

// Field widths outside the unrolled 5..9 bits take the run-time packing loop: a large bound
// (2 x 2 x 1000 fits 12 bits) still round-trips each rank's values.
TEST(ExactSumTest, WideFieldsRoundTrip) {
  const ExactSumSpec spec = ExactSumSpec::Create(Resolved("lattice=D4,q=4,M=2"), 2, 1000).value();
  ASSERT_EQ(spec.bits, 12);
  const int64_t n = 3000;
  const std::vector<float> x = testing_util::Gaussian(n, 5);
  std::vector<float> scales(spec.Blocks(n));
  BlockAbsMax(spec, x.data(), nullptr, n, 0, scales.size(), scales.data());
  std::vector<int64_t> words(spec.Words(n));
  std::vector<float> residual(n, 0.0f), back(n);
  QuantizeToWords(spec, x.data(), residual.data(), n, scales.data(), 0, spec.Units(n), words.data());
  WordsToValues(spec, words.data(), n, scales.data(), 1, 1.0f, 0, spec.Units(n), back.data());
  for (int64_t i = 0; i < n; ++i) {
    ASSERT_NEAR(back[i], x[i] - residual[i], 1e-5f * scales[i / spec.block]) << i;
    ASSERT_LE(std::fabs(residual[i]), scales[i / spec.block] / spec.range * 1.01f) << i;
  }
}

// The integer sum of the ranks' words decodes to exactly the sum of what each rank's own words
// decode to: nothing is lost in the sum, at any W.
TEST(ExactSumTest, SummedWordsDecodeToTheSumOfTheRanksValues) {
  for (const std::string codec : {"lattice=D4,q=4,M=2", "lattice=E8,q=4,M=2", "lattice=Z4,q=4,M=2"}) {
    for (const int world : {1, 2, 4, 8}) {
      const int64_t n = 3000;  // not a multiple of the block, the unit or the word
      Ranks r = MakeRanks(codec, world, n);
      const ExactSumSpec& spec = r.spec;
      std::vector<int64_t> total(spec.Words(n), 0);
      std::vector<double> want(n, 0.0);
      for (int w = 0; w < world; ++w) {
        std::vector<int64_t> words(spec.Words(n));
        std::vector<float> residual(n, 0.0f);
        QuantizeToWords(spec, r.x[w].data(), residual.data(), n, r.scales.data(), 0, spec.Units(n), words.data());
        // Each rank alone: its words decode to x - residual (what error feedback keeps).
        std::vector<float> mine(n);
        WordsToValues(spec, words.data(), n, r.scales.data(), 1, 1.0f, 0, spec.Units(n), mine.data());
        for (int64_t i = 0; i < n; ++i) {
          ASSERT_NEAR(mine[i], r.x[w][i] - residual[i], 1e-5f * r.scales[i / spec.block]) << codec << " " << i;
          // The per-rank error is that of one rank's step, whatever W: at most a covering radius.
          ASSERT_LE(std::fabs(residual[i]), r.scales[i / spec.block] / spec.range * 1.01f) << codec;
          want[i] += mine[i];
        }
        for (size_t k = 0; k < words.size(); ++k) total[k] += words[k];
      }
      std::vector<float> sum(n);
      WordsToValues(spec, total.data(), n, r.scales.data(), world, 1.0f, 0, spec.Units(n), sum.data());
      for (int64_t i = 0; i < n; ++i) {
        ASSERT_NEAR(sum[i], want[i], 1e-4 * r.scales[i / spec.block] * world) << codec << " W=" << world << " " << i;
      }
    }
  }
}

// Work split into unit ranges (threads) gives the words of one call.
TEST(ExactSumTest, RangesComposeToTheWholeBucket) {
  Ranks r = MakeRanks("lattice=D4,q=4,M=2", 4, 10000);
  const ExactSumSpec& spec = r.spec;
  const int64_t units = spec.Units(r.n);
  std::vector<int64_t> whole(spec.Words(r.n)), split(spec.Words(r.n));
  QuantizeToWords(spec, r.x[0].data(), nullptr, r.n, r.scales.data(), 0, units, whole.data());
  for (int64_t u = 0; u < units; u += 7) {
    QuantizeToWords(spec, r.x[0].data(), nullptr, r.n, r.scales.data(), u, std::min(units, u + 7), split.data());
  }
  EXPECT_EQ(whole, split);
  std::vector<float> a(r.n), b(r.n);
  WordsToValues(spec, whole.data(), r.n, r.scales.data(), 1, 0.5f, 0, units, a.data());
  for (int64_t u = 0; u < units; u += 5) {
    WordsToValues(spec, whole.data(), r.n, r.scales.data(), 1, 0.5f, u, std::min(units, u + 5), b.data());
  }
  EXPECT_EQ(a, b);
}

// Each rank's point is the lattice's own nearest point (Lattice::Nearest, the codec's kernels) of
// x / s * range: the vectorized rounding and D4 parity fix change nothing.
TEST(ExactSumTest, PointsAreTheLatticesNearestPoints) {
  for (const std::string codec :
       {"lattice=D4,q=4,M=2", "lattice=D8,q=3,M=2", "lattice=E8,q=4,M=2", "lattice=Z4,q=4,M=2"}) {
    Ranks r = MakeRanks(codec, 1, 4096 + 40);
    const ExactSumSpec& spec = r.spec;
    std::vector<int64_t> words(spec.Words(r.n));
    std::vector<float> residual(r.n, 0.0f);
    QuantizeToWords(spec, r.x[0].data(), residual.data(), r.n, r.scales.data(), 0, spec.Units(r.n), words.data());
    const int d = spec.dim;
    int32_t z[kMaxLatticeDim];
    double want[kMaxLatticeDim];
    float y[kMaxLatticeDim];
    for (int64_t c = 0; c < r.n; c += d) {
      const float s = r.scales[c / spec.block];
      for (int j = 0; j < d; ++j) y[j] = r.x[0][c + j] * (spec.range / s);
      spec.lattice.Nearest(y, z);
      spec.lattice.Point(z, want);
      for (int j = 0; j < d; ++j) {
        const double got = (r.x[0][c + j] - residual[c + j]) * spec.range / s;
        ASSERT_NEAR(got, want[j], 1e-3) << codec << " chunk " << c / d;
      }
    }
  }
}

// Every SIMD level gives the portable loops' words, residuals and decoded values bit for bit (the
// AVX-512 D4 kernel and field unpacking), on an odd length (a partial last chunk), a zero block, a NaN and an Inf, with
// and without a residual, over unit ranges that start inside a block.
TEST(ExactSumTest, EverySimdLevelGivesThePortableWords) {
  for (const std::string codec : {"lattice=D4,q=4,M=2", "lattice=D4,q=3,M=2"}) {
    for (const int world : {1, 2, 4, 8}) {  // fields of 5, 6, 7 and 8 bits: 12, 10, 9 and 7 per word
      const int64_t n = 3001;
      Ranks r = MakeRanks(codec, world, n);
      const ExactSumSpec& spec = r.spec;
      std::vector<float> x = r.x[0];
      std::fill(x.begin() + spec.block, x.begin() + 2 * spec.block, 0.0f);
      x[700] = std::numeric_limits<float>::quiet_NaN();
      x[1501] = std::numeric_limits<float>::infinity();
      std::vector<float> scales(spec.Blocks(n));
      BlockAbsMax(spec, x.data(), nullptr, n, 0, scales.size(), scales.data());
      const std::vector<float> start = testing_util::Gaussian(n, 9, 0.01f);
      struct Result {
        std::vector<int64_t> words, plain_words;
        std::vector<float> residual, values;
      };
      auto run = [&] {
        Result out{std::vector<int64_t>(spec.Words(n)), std::vector<int64_t>(spec.Words(n)), start,
                   std::vector<float>(n)};
        for (int64_t u = 0; u < spec.Units(n); u += 5) {
          const int64_t end = std::min(spec.Units(n), u + 5);
          QuantizeToWords(spec, x.data(), out.residual.data(), n, scales.data(), u, end, out.words.data());
          QuantizeToWords(spec, x.data(), nullptr, n, scales.data(), u, end, out.plain_words.data());
        }
        // As if the world had sent these words: fields hold world times a rank's offset.
        std::vector<int64_t> summed(out.words);
        for (int w = 1; w < world; ++w) {
          for (size_t k = 0; k < summed.size(); ++k) summed[k] += out.words[k];
        }
        WordsToValues(spec, summed.data(), n, scales.data(), world, 1.0f / world, 0, spec.Units(n), out.values.data());
        return out;
      };
      Result want;
      {
        ScopedSimdLevel portable(SimdLevel::kPortable);
        want = run();
      }
      for (SimdLevel level : kAllSimdLevels) {
        if (level > DetectedSimdLevel()) continue;
        ScopedSimdLevel scoped(level);
        const Result got = run();
        EXPECT_EQ(got.words, want.words) << codec << " W=" << world << " at " << SimdLevelName(level);
        EXPECT_EQ(got.plain_words, want.plain_words) << codec << " W=" << world << " at " << SimdLevelName(level);
        ASSERT_EQ(got.residual.size(), want.residual.size());
        EXPECT_EQ(std::memcmp(got.residual.data(), want.residual.data(), sizeof(float) * n), 0)
            << codec << " W=" << world << " at " << SimdLevelName(level);
        EXPECT_EQ(std::memcmp(got.values.data(), want.values.data(), sizeof(float) * n), 0)
            << codec << " W=" << world << " at " << SimdLevelName(level);
      }
    }
  }
}

// The block scale is the largest |x + residual|, NaNs ignored, at least kMinStep.
TEST(ExactSumTest, BlockScalesAreTheLargestMagnitudes) {
  const ExactSumSpec spec = ExactSumSpec::Create(Resolved("lattice=D4,q=4,M=2"), 2).value();
  const int64_t n = 3 * spec.block;
  std::vector<float> x(n, 0.0f), residual(n, 0.0f);
  x[5] = -3.0f;
  residual[5] = 1.0f;  // |-3 + 1| = 2
  x[6] = 1.5f;
  x[spec.block + 1] = std::numeric_limits<float>::quiet_NaN();
  x[spec.block + 2] = -0.25f;
  x[2 * spec.block] = -std::numeric_limits<float>::infinity();
  std::vector<float> scales(3);
  BlockAbsMax(spec, x.data(), residual.data(), n, 0, 3, scales.data());
  EXPECT_EQ(scales[0], 2.0f);
  EXPECT_EQ(scales[1], 0.25f);
  EXPECT_EQ(scales[2], std::numeric_limits<float>::infinity());
  BlockAbsMax(spec, x.data(), nullptr, n, 0, 3, scales.data());
  EXPECT_EQ(scales[0], 3.0f);
  std::fill(x.begin(), x.end(), 0.0f);
  BlockAbsMax(spec, x.data(), nullptr, n, 0, 3, scales.data());
  EXPECT_EQ(scales[0], kMinStep);
}

TEST(ExactSumTest, ZeroBlocksStayZero) {
  const ExactSumSpec spec = ExactSumSpec::Create(Resolved("lattice=D4,q=4,M=2"), 2).value();
  const int64_t n = 512;
  std::vector<float> x(n, 0.0f), scales(spec.Blocks(n)), out(n, 1.0f);
  BlockAbsMax(spec, x.data(), nullptr, n, 0, scales.size(), scales.data());
  std::vector<int64_t> words(spec.Words(n));
  QuantizeToWords(spec, x.data(), nullptr, n, scales.data(), 0, spec.Units(n), words.data());
  WordsToValues(spec, words.data(), n, scales.data(), 1, 1.0f, 0, spec.Units(n), out.data());
  for (float v : out) EXPECT_EQ(v, 0.0f);
}

}  // namespace
}  // namespace coset
