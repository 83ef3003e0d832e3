#include "core/code_arith.h"

#include <random>

#include "core/thread_pool.h"
#include "gtest/gtest.h"
#include "tests/core/test_util.h"

namespace coset {
namespace {

// Codes that share scales: no block scale, a power-of-two beta (so decoded values and their sums
// are exact floats), and t_max = 0 so every chunk has T = 0 (overloaded inputs are zeroed).
CodecParams SharedScaleParams(const char* lattice, int q, int levels) {
  CodecParams p;
  p.lattice = *Lattice::Parse(lattice);
  p.q = q;
  p.M = levels;
  p.scale = ScaleMode::kNone;
  p.beta = 0.25f;
  p.t_max = 0;
  p.on_cap = CapPolicy::kZero;
  return p;
}

CompressedTensor EncodeRandom(const CodecParams& p, std::vector<int64_t> shape, uint32_t seed, float sigma) {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  const std::vector<float> x = testing_util::Gaussian(n, seed, sigma);
  return *TensorCodec::Create(p)->Encode(x.data(), shape);
}

const auto Decode = testing_util::DecodeAll;

TEST(CodeArithTest, CosetVectorsRoundTrip) {
  for (const char* lattice : {"D4", "E8", "A2", "Z4"}) {
    const CodecParams p = SharedScaleParams(lattice, 4, 2);
    const CompressedTensor t = EncodeRandom(p, {3, 40}, 1, 0.6f);
    const std::vector<int32_t> c = *ToCosetVectors(t);
    for (int32_t v : c) ASSERT_TRUE(v >= 0 && v < 16);
    CompressedTensor back = t;
    std::fill(back.symbols.begin(), back.symbols.end(), 0);
    ASSERT_TRUE(FromCosetVectors(c.data(), &back).ok());
    EXPECT_EQ(back.symbols, t.symbols) << lattice;
    EXPECT_EQ(*ToCosetVectors(back), c);
  }
}

TEST(CodeArithTest, AddModQIsDigitwiseAndNotRealAddition) {
  const CodecParams p = SharedScaleParams("D4", 4, 2);
  const CompressedTensor a = EncodeRandom(p, {64}, 2, 0.8f), b = EncodeRandom(p, {64}, 3, 0.8f);
  const CompressedTensor s = *AddModQ(a, b);
  // D4 q=4 symbols are bytes: each of the four 2-bit digits adds mod 4.
  for (size_t i = 0; i < s.symbols.size(); ++i) {
    for (int k = 0; k < 4; ++k) {
      const int da = (a.symbols[i] >> (2 * k)) & 3, db = (b.symbols[i] >> (2 * k)) & 3;
      ASSERT_EQ((s.symbols[i] >> (2 * k)) & 3, (da + db) % 4);
    }
  }
  const std::vector<float> ya = Decode(a), yb = Decode(b), ys = Decode(s);
  int differ = 0;
  for (size_t i = 0; i < ys.size(); ++i) differ += ys[i] != ya[i] + yb[i];
  EXPECT_GT(differ, 0) << "carries between levels are lost, so some entries must differ";
}

// add_codes of W = 2..16 codes decodes to the exact sum wherever validation says so, and
// validation flags every chunk where it does not.
TEST(CodeArithTest, AddCodesIsExactExactlyWhereValidationSaysSo) {
  for (const char* lattice : {"D4", "E8", "Z1"}) {
    for (int w = 2; w <= 16; w += (w < 4 ? 1 : 4)) {
      const CodecParams p = SharedScaleParams(lattice, 4, 2);
      std::vector<CompressedTensor> codes;
      for (int i = 0; i < w; ++i) codes.push_back(EncodeRandom(p, {4, 64}, 100 + i, 1.2f / std::sqrt(float(w))));
      std::vector<const CompressedTensor*> ptrs;
      for (const auto& c : codes) ptrs.push_back(&c);
      SumValidation v;
      const CompressedTensor sum = *AddCodes(ptrs, &v);
      const std::vector<float> ys = Decode(sum);
      std::vector<float> exact(ys.size(), 0.0f);
      for (const auto& c : codes) {
        const std::vector<float> y = Decode(c);
        for (size_t i = 0; i < y.size(); ++i) exact[i] += y[i];  // exact: multiples of 1/8, small
      }
      const int d = sum.layout.dim;
      int64_t exact_chunks = 0;
      for (int64_t ch = 0; ch < v.chunks; ++ch) {
        bool same = true;
        for (int i = 0; i < d; ++i) same &= ys[ch * d + i] == exact[ch * d + i];
        ASSERT_EQ(same, v.inexact[ch] == 0) << lattice << " W=" << w << " chunk " << ch;
        exact_chunks += same;
      }
      EXPECT_EQ(v.inexact_chunks, v.chunks - exact_chunks);
      EXPECT_GT(exact_chunks, 0) << lattice << " W=" << w;
    }
  }
}

TEST(CodeArithTest, SumsOverflowAndAreFlagged) {
  const CodecParams p = SharedScaleParams("D4", 4, 2);
  const CompressedTensor a = EncodeRandom(p, {256}, 7, 1.3f);
  std::vector<const CompressedTensor*> many(16, &a);
  SumValidation v;
  ASSERT_TRUE(AddCodes(many, &v).ok());
  EXPECT_GT(v.inexact_chunks, 0);  // 16x a large tensor leaves the code region
}

// Rows are summed in parts on an executor: the same blob and validation as one thread, for row
// counts that do not split evenly.
TEST(CodeArithTest, AddCodesOnThreadsEqualsOneThread) {
  ThreadPool pool(2);
  for (const char* lattice : {"D4", "E8"}) {
    const CodecParams p = SharedScaleParams(lattice, 4, 2);
    for (int64_t rows : {1, 7, 33}) {
      std::vector<CompressedTensor> codes;
      for (int i = 0; i < 3; ++i) codes.push_back(EncodeRandom(p, {rows, 40}, 300 + i, 0.9f));
      const std::vector<const CompressedTensor*> ptrs = {&codes[0], &codes[1], &codes[2]};
      SumValidation serial, parallel;
      const CompressedTensor a = *AddCodes(ptrs, &serial), b = *AddCodes(ptrs, &parallel, &pool);
      EXPECT_EQ(a.symbols, b.symbols) << lattice << " rows " << rows;
      EXPECT_EQ(serial.inexact, parallel.inexact) << lattice << " rows " << rows;
      EXPECT_EQ(serial.inexact_chunks, parallel.inexact_chunks);
      EXPECT_GT(serial.inexact_chunks, 0) << "sigma 0.9 x 3 codes overloads some chunks";
    }
  }
}

// A row that does not unpack (a group value past q^s: D4 q=3's 81 symbols in 7-bit groups) is
// named, the smallest such row of any input, on any number of threads.
TEST(CodeArithTest, AddCodesNamesTheFirstCorruptRow) {
  const CodecParams p = SharedScaleParams("D4", 3, 1);
  const CompressedTensor a = EncodeRandom(p, {9, 16}, 5, 1.0f);
  CompressedTensor b = a;
  ASSERT_GT(b.row_bytes, 0);
  for (int64_t row : {6, 3}) std::fill_n(b.symbols.begin() + row * b.row_bytes, b.row_bytes, uint8_t{0xFF});
  ThreadPool pool(2);
  for (Executor* executor : {static_cast<Executor*>(nullptr), static_cast<Executor*>(&pool)}) {
    const absl::StatusOr<CompressedTensor> sum = AddCodes({&a, &b}, nullptr, executor);
    EXPECT_EQ(sum.status().code(), absl::StatusCode::kDataLoss);
    EXPECT_EQ(sum.status().message(), "row 3 is corrupt");
  }
}

TEST(CodeArithTest, RefusesCodesThatDoNotShareScales) {
  CodecParams p;  // rms scaling: every tensor has its own scales
  const CompressedTensor a = EncodeRandom(p, {64}, 1, 1.0f), b = EncodeRandom(p, {64}, 2, 1.0f);
  EXPECT_EQ(AddCodes({&a, &b}).status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(AddModQ(a, b).status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_FALSE(AddCodes({}).ok());
  const CompressedTensor c = EncodeRandom(p, {32}, 2, 1.0f);
  EXPECT_EQ(AddCodes({&a, &c}).status().code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace coset
