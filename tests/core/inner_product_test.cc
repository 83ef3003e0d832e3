#include "core/inner_product.h"

#include <cmath>
#include <iostream>
#include <random>
#include <string>

#include "core/hnlq_ref.h"
#include "core/row_codec.h"
#include "gtest/gtest.h"
#include "tests/core/test_util.h"

namespace coset {
namespace {

using testing_util::Gaussian;

CompressedTensor Encode(const CodecParams& p, const std::vector<float>& x, std::vector<int64_t> shape) {
  return *TensorCodec::Create(p)->Encode(x.data(), shape);
}

const auto Decode = testing_util::DecodeAll;

TEST(LutTest, IntegerTypesAndRangesMatchTheReferenceNote) {
  const auto d4q4 = *Codebook::Get(*Lattice::Parse("D4"), 4);
  const TwoSidedLut lut = *TwoSidedLut::Build(*d4q4);
  EXPECT_EQ(lut.value_type(), LutValueType::kInt8);
  EXPECT_EQ(lut.num_symbols() * lut.num_symbols(), 65536);
  int lo = 1 << 30, hi = -(1 << 30);
  for (uint32_t a = 0; a < 256; ++a) {
    for (uint32_t b = 0; b < 256; ++b) {
      lo = std::min(lo, lut.Int(a, b));
      hi = std::max(hi, lut.Int(a, b));
    }
  }
  EXPECT_EQ(lo, -9);
  EXPECT_EQ(hi, 16);
  const auto d4q3 = *Codebook::Get(*Lattice::Parse("D4"), 3);
  const TwoSidedLut lut3 = *TwoSidedLut::Build(*d4q3);
  EXPECT_EQ(lut3.num_symbols(), 81);
  const auto a2 = *Codebook::Get(*Lattice::Parse("A2"), 4);
  EXPECT_EQ(TwoSidedLut::Build(*a2)->value_type(), LutValueType::kFloat32);
}

TEST(LutTest, OversizeTablesAreRefusedNamingTheSize) {
  const auto e8 = *Codebook::Get(*Lattice::Parse("E8"), 4);
  const auto r = TwoSidedLut::Build(*e8);
  ASSERT_EQ(r.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_NE(r.status().message().find("4294967296 entries"), std::string::npos) << r.status();
  EXPECT_EQ(OneSidedLutBytes(*e8, 1000).status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(*OneSidedLutBytes(*e8, 1 << 20), 65536 * 4);
}

// The integer two-sided sum of a chunk pair equals the inner product of Algorithm 2's decoded
// points (paper-literal reference), bit for bit.
TEST(LutTest, ChunkPairSumIsTheExactIntegerInnerProduct) {
  struct Config {
    const char* lattice;
    int q, levels;
  };
  for (const Config& c : {Config{"D4", 4, 2}, Config{"D4", 3, 3}, Config{"Z4", 4, 2}, Config{"D4", 5, 1}}) {
    CodecParams p;
    p.lattice = *Lattice::Parse(c.lattice);
    p.q = c.q;
    p.M = c.levels;
    const TensorCodec codec = *TensorCodec::Create(p);
    const Lattice lattice = *Lattice::Parse(c.lattice);
    const TwoSidedLut lut = *TwoSidedLut::Build(codec.codebook());
    const CompressedTensor a = Encode(p, Gaussian(8 * 64, 1), {8, 64});
    const CompressedTensor b = Encode(p, Gaussian(8 * 64, 2), {8, 64});
    std::vector<uint32_t> sa(a.layout.symbols_per_row), sb(a.layout.symbols_per_row);
    for (int64_t r = 0; r < 8; ++r) {
      ASSERT_TRUE(UnpackRowSymbols(a, r, sa.data()) && UnpackRowSymbols(b, r, sb.data()));
      for (int64_t ch = 0; ch < a.layout.chunks_per_row; ++ch) {
        auto digits = [&](const std::vector<uint32_t>& s) {
          std::vector<int32_t> out;
          for (int64_t k = 0; k < a.layout.symbols_per_chunk; ++k) {
            uint32_t v = s[ch * a.layout.symbols_per_chunk + k];
            for (int i = 0; i < lattice.symbol_dim(); ++i, v /= c.q) out.push_back(static_cast<int32_t>(v % c.q));
          }
          return out;
        };
        const std::vector<double> pa = DecodeChunkRef(lattice, c.q, c.levels, digits(sa).data());
        const std::vector<double> pb = DecodeChunkRef(lattice, c.q, c.levels, digits(sb).data());
        double want = 0;
        for (int i = 0; i < lattice.dim(); ++i) want += pa[i] * pb[i];
        const int64_t got = ChunkPairLutSum(codec.codebook(), lut, c.levels, &sa[ch * a.layout.symbols_per_chunk],
                                            &sb[ch * a.layout.symbols_per_chunk]);
        ASSERT_EQ(static_cast<double>(got), want) << c.lattice << " row " << r << " chunk " << ch;
      }
    }
  }
}

double Dot(const float* a, const float* b, int64_t n) {
  double s = 0;
  for (int64_t i = 0; i < n; ++i) s += static_cast<double>(a[i]) * b[i];
  return s;
}

double Norm(const float* a, int64_t n) { return std::sqrt(Dot(a, a, n)); }

TEST(DotRowsTest, MatchesDecodeThenDotAcrossConfigurations) {
  struct Config {
    const char* lattice;
    int q, levels;
    bool rotate;
    ScaleMode scale;
  };
  for (const Config& c : {Config{"D4", 4, 2, false, ScaleMode::kRms}, Config{"D4", 3, 2, true, ScaleMode::kRms},
                          Config{"D4", 4, 3, false, ScaleMode::kNone}, Config{"Z4", 4, 2, false, ScaleMode::kAbsMax},
                          Config{"A2", 4, 2, false, ScaleMode::kRms}, Config{"Z1", 3, 2, true, ScaleMode::kRms}}) {
    CodecParams p;
    p.lattice = *Lattice::Parse(c.lattice);
    p.q = c.q;
    p.M = c.levels;
    p.rotate = c.rotate;
    p.scale = c.scale;
    CodecParams pb = p;
    pb.beta = p.scale == ScaleMode::kNone ? 0.05f : 0.0f;  // different betas are fine
    std::vector<float> xa = Gaussian(6 * 203, 3), xb = Gaussian(6 * 203, 4);
    for (float& v : xa) v *= 3.0f;
    const CompressedTensor a = Encode(p, xa, {2, 3, 203}), b = Encode(pb, xb, {2, 3, 203});
    const std::vector<double> dots = *DotRows(a, b);
    const std::vector<float> da = Decode(a), db = Decode(b);
    ASSERT_EQ(dots.size(), 6u);
    for (int r = 0; r < 6; ++r) {
      const double want = Dot(&da[r * 203], &db[r * 203], 203);
      const double scale = Norm(&da[r * 203], 203) * Norm(&db[r * 203], 203);
      EXPECT_NEAR(dots[r], want, 1e-5 * scale) << c.lattice << " q=" << c.q << " row " << r;
    }
  }
}

TEST(DotRowsTest, RefusesMismatchesAndOversizeLuts) {
  CodecParams p;
  const CompressedTensor a = Encode(p, Gaussian(64, 1), {64});
  CodecParams rotated = p;
  rotated.rotate = true;
  EXPECT_EQ(DotRows(a, Encode(rotated, Gaussian(64, 2), {64})).status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(DotRows(a, Encode(p, Gaussian(32, 2), {32})).status().code(), absl::StatusCode::kInvalidArgument);
  CodecParams q3 = p;
  q3.q = 3;
  EXPECT_FALSE(DotRows(a, Encode(q3, Gaussian(64, 2), {64})).ok());
  CodecParams e8 = p;
  e8.lattice = *Lattice::Parse("E8");
  const CompressedTensor e = Encode(e8, Gaussian(64, 1), {64});
  EXPECT_EQ(DotRows(e, e).status().code(), absl::StatusCode::kResourceExhausted);
}

struct GemmConfig {
  const char* lattice;
  int q, levels;
  bool rotate;
  LutMatrix::Path expect;
  int block = 0;
};
constexpr LutMatrix::Path kCompact = LutMatrix::Path::kCompactCodes, kInt8 = LutMatrix::Path::kInt8Lanes,
                          kLut = LutMatrix::Path::kOneSidedLut;

TEST(LutMatrixTest, GemmMatchesDecodeThenGemm) {
  for (const GemmConfig& c :
       {GemmConfig{"D4", 4, 2, false, kCompact}, GemmConfig{"E8", 4, 2, false, kInt8},
        GemmConfig{"D4", 4, 2, true, kCompact}, GemmConfig{"D4", 4, 2, false, kCompact, 32},
        GemmConfig{"D4", 4, 2, false, kInt8, 8}, GemmConfig{"D4", 4, 1, false, kCompact},
        GemmConfig{"D4", 8, 2, false, kInt8}, GemmConfig{"D4", 3, 2, false, kLut}, GemmConfig{"A2", 4, 2, false, kLut},
        GemmConfig{"Z4", 4, 2, true, kLut}, GemmConfig{"E8", 3, 1, false, kLut}}) {
    CodecParams p;
    p.lattice = *Lattice::Parse(c.lattice);
    p.q = c.q;
    p.M = c.levels;
    p.rotate = c.rotate;
    p.block = c.block;
    const int64_t n = 21, k = 300;  // 21 rows: not a multiple of 8; 300: not a multiple of the block
    const CompressedTensor w = Encode(p, Gaussian(n * k, 5), {n, k});
    // Asked for explicitly: the compact layout runs on every CPU (the default takes it on AVX-512 only).
    const LutMatrix m = *LutMatrix::Create(w, kDefaultLutBudgetBytes, kCompact);
    EXPECT_EQ(m.path(), c.expect) << c.lattice << " q=" << c.q << " M=" << c.levels << " block " << c.block << ": "
                                  << m.path_name();
    const std::vector<float> wd = Decode(w);
    for (int64_t batch : {1, 3, 7, 40}) {
      const std::vector<float> x = Gaussian(batch * k, 6);
      std::vector<float> out(batch * n);
      ASSERT_TRUE(m.Gemm(x.data(), batch, out.data()).ok());
      for (int64_t b = 0; b < batch; ++b) {
        for (int64_t r = 0; r < n; ++r) {
          const double want = Dot(&x[b * k], &wd[r * k], k);
          const double scale = Norm(&x[b * k], k) * Norm(&wd[r * k], k);
          ASSERT_NEAR(out[b * n + r], want, 1e-5 * scale) << c.lattice << " q=" << c.q << " batch " << batch;
        }
      }
    }
  }
}

// Every kernel level of both fast paths against the portable one, bit for bit: 37 rows (two and a
// bit compact groups; five int8-lanes groups, the last one without a partner for the AVX-512 pair
// kernel), 520 columns (a partial last block and a padded last quad), batches that leave partial
// query tiles, and T large enough to take the corrections of both layouts.
TEST(LutMatrixTest, EveryKernelLevelIsBitIdenticalToPortable) {
  struct Case {
    const char* lattice;
    LutMatrix::Path path;
  };
  // E8 has no compact layout; D4 takes either when asked.
  for (const Case& c : {Case{"D4", kCompact}, Case{"D4", kInt8}, Case{"E8", kInt8}}) {
    const char* lattice = c.lattice;
    CodecParams p;
    p.lattice = *Lattice::Parse(lattice);
    p.beta = 0.08f;  // overloads often: T up to t_max, beyond what either layout holds
    const int64_t n = 37, k = 520;
    const CompressedTensor w = Encode(p, Gaussian(n * k, 7), {n, k});
    const int held = c.path == kCompact ? 3 : 7;  // the largest T each layout holds
    int64_t high_t = 0;
    for (uint8_t t : w.t) high_t += t > held;
    EXPECT_GT(high_t, 0) << lattice;
    const LutMatrix m = *LutMatrix::Create(w, kDefaultLutBudgetBytes, c.path);
    EXPECT_EQ(m.path(), c.path) << lattice;
    // Batches 1-2 take the AVX2 int8-lanes kernel at every level above it, 3 and more the AVX-512
    // pair kernel (query tiles of 8: 13 and 21 leave partial tiles).
    for (int64_t batch : {1, 2, 3, 5, 7, 8, 13, 21}) {
      const std::vector<float> x = Gaussian(batch * k, 8);
      std::vector<float> want(batch * n);
      {
        ScopedSimdLevel portable(SimdLevel::kPortable);
        ASSERT_TRUE(portable.ok());
        ASSERT_TRUE(m.Gemm(x.data(), batch, want.data()).ok());
      }
      // The reference itself, high-T chunks included, is decode-then-dot up to float rounding.
      const std::vector<float> wd = Decode(w);
      for (int64_t b = 0; b < batch; ++b) {
        for (int64_t r = 0; r < n; ++r) {
          const double scale = Norm(&x[b * k], k) * Norm(&wd[r * k], k);
          ASSERT_NEAR(want[b * n + r], Dot(&x[b * k], &wd[r * k], k), 1e-5 * scale) << lattice << " row " << r;
        }
      }
      for (SimdLevel level : kAllSimdLevels) {
        ScopedSimdLevel scoped(level);
        if (!scoped.ok()) {
          std::cerr << "skipping " << SimdLevelName(level) << ": this CPU lacks it\n";
          continue;
        }
        std::vector<float> got(batch * n);
        ASSERT_TRUE(m.Gemm(x.data(), batch, got.data()).ok());
        EXPECT_EQ(got, want) << lattice << " " << SimdLevelName(level) << " batch " << batch;
        // A query's result does not depend on the batch (or the query tile) it comes in.
        std::vector<float> alone(n);
        ASSERT_TRUE(m.Gemm(&x[(batch - 1) * k], 1, alone.data()).ok());
        EXPECT_EQ(alone, std::vector<float>(got.end() - n, got.end())) << lattice << " " << SimdLevelName(level);
      }
    }
  }
}

TEST(LutMatrixTest, DefaultLayoutFollowsTheSimdLevel) {
  const CompressedTensor w = Encode(CodecParams{}, Gaussian(64 * 256, 3), {64, 256});  // D4 q=4 M=2
  {
    ScopedSimdLevel avx2(SimdLevel::kAvx2);
    if (avx2.ok()) {
      EXPECT_EQ(LutMatrix::Create(w)->path(), kInt8);
    }
  }
  {
    ScopedSimdLevel portable(SimdLevel::kPortable);
    EXPECT_EQ(LutMatrix::Create(w)->path(), kInt8);
  }
  ScopedSimdLevel avx512(SimdLevel::kAvx512);
  if (!avx512.ok()) GTEST_SKIP() << "this CPU has no AVX-512 VBMI: the compact default is not taken here";
  EXPECT_EQ(LutMatrix::Create(w)->path(), kCompact);
  EXPECT_EQ(LutMatrix::Create(w, kDefaultLutBudgetBytes, kInt8)->path(), kInt8);
  EXPECT_EQ(LutMatrix::Create(w, kDefaultLutBudgetBytes, kLut)->path(), kLut);
}

// What a server reserves before building covers what the build keeps, row padding included (a
// one-row tensor pads to a whole tile of 64 rows in compact-codes, 8 in int8-lanes).
TEST(LutMatrixTest, BuildBytesCoverTheBuild) {
  for (const char* lattice : {"D4", "E8", "A2"}) {
    CodecParams p;
    p.lattice = *Lattice::Parse(lattice);
    p.beta = 0.08f;  // high T: the correction and patch lists are counted too
    for (const std::vector<int64_t>& shape : {std::vector<int64_t>{1, 4096}, {37, 520}, {130, 256}}) {
      const CompressedTensor w = Encode(p, Gaussian(shape[0] * shape[1], 9), shape);
      for (LutMatrix::Path first : {kCompact, kInt8, kLut}) {
        const LutMatrix m = *LutMatrix::Create(w, kDefaultLutBudgetBytes, first);
        EXPECT_GE(LutMatrix::BuildBytes(w, first), m.packed_bytes())
            << lattice << " " << shape[0] << "x" << shape[1] << " " << m.path_name();
      }
    }
  }
  const CompressedTensor one_row = Encode(CodecParams{}, Gaussian(4096, 2), {1, 4096});
  EXPECT_GE(LutMatrix::BuildBytes(one_row, kCompact), 64 * 4096 / 2);  // 64 padded rows x 4 bits per entry
}

TEST(LutMatrixTest, RefusesBadQueries) {
  const CompressedTensor w = Encode(CodecParams{}, Gaussian(8 * 16, 1), {8, 16});
  const LutMatrix m = *LutMatrix::Create(w);
  std::vector<float> x(16, 1.0f), out(8);
  x[3] = NAN;
  EXPECT_EQ(m.Gemm(x.data(), 1, out.data()).code(), absl::StatusCode::kInvalidArgument);
  x[3] = 0;
  EXPECT_FALSE(m.Gemm(x.data(), 0, out.data()).ok());
  EXPECT_FALSE(m.Gemm(nullptr, 1, out.data()).ok());
}

}  // namespace
}  // namespace coset
