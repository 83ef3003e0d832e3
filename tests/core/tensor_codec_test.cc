#include "core/tensor_codec.h"

#include <cmath>
#include <cstring>
#include <random>

#include "core/block_transform.h"
#include "core/codebook.h"
#include "core/dtype.h"
#include "core/hnlq_ref.h"
#include "core/simd/dispatch.h"
#include "core/thread_pool.h"
#include "gtest/gtest.h"
#include "tests/core/test_util.h"

namespace coset {
namespace {

using testing_util::Config;
using testing_util::Params;
const Config kConfigs[] = {{"Z1", 2, 3}, {"Z4", 4, 2}, {"Z3", 5, 2}, {"A2", 3, 2}, {"A2", 4, 2}, {"D4", 3, 2},
                           {"D4", 4, 2}, {"D4", 8, 2}, {"D4", 4, 3}, {"D5", 3, 1}, {"E8", 3, 2}, {"E8", 4, 2}};

using testing_util::Gaussian;

// Digits of chunk `chunk` of row `row`, level-major (M * d), recovered from the packed symbols.
std::vector<int32_t> ChunkDigits(const CompressedTensor& t, const Codebook& cb, int64_t row, int64_t chunk) {
  const Layout& l = t.layout;
  SymbolPacking packing(static_cast<uint64_t>(cb.num_symbols()), l.symbols_per_row);
  std::vector<uint32_t> symbols(l.symbols_per_row);
  EXPECT_TRUE(packing.UnpackRow(&t.symbols[row * t.row_bytes], symbols.data()));
  std::vector<int32_t> digits;
  const int s = cb.symbol_dim();
  for (int64_t k = 0; k < l.symbols_per_chunk; ++k) {
    uint32_t sym = symbols[chunk * l.symbols_per_chunk + k];
    for (int i = 0; i < s; ++i) {
      digits.push_back(static_cast<int32_t>(sym % cb.q()));
      sym /= cb.q();
    }
  }
  return digits;
}

// cosetd encodes into buffers an earlier request left (server/code_buffer_pool.h): EncodeInto must
// write every byte of the codes it returns, whatever the buffers held, or one client's codes would
// leak into another's blob.
TEST(TensorCodecTest, EncodeIntoUsedBuffersWritesEveryByteOfTheCodes) {
  for (const Config& c : kConfigs) {
    for (const ScaleMode scale : {ScaleMode::kRms, ScaleMode::kAbsMax, ScaleMode::kNone}) {
      for (const bool rotate : {false, true}) {
        CodecParams p = Params(c, scale);
        p.rotate = rotate;
        p.on_cap = CapPolicy::kZero;
        const TensorCodec codec = *TensorCodec::Create(p);
        const std::vector<int64_t> shape = {5, 1001};  // rows padded to whole chunks and blocks
        std::vector<float> x = Gaussian(5 * 1001, 3);
        std::fill(x.begin() + 1001, x.begin() + 2002, 0.0f);  // a zero row
        const CompressedTensor fresh = *codec.Encode(x.data(), shape);
        SCOPED_TRACE(testing::Message() << c.lattice << " q=" << c.q << " M=" << c.levels << " scale "
                                        << static_cast<int>(scale) << " rotate " << rotate);
        // Buffers holding a larger tensor's codes, then every byte poisoned.
        CompressedTensor used = *codec.Encode(Gaussian(9 * 1500, 4).data(), {9, 1500});
        for (auto* bytes : {&used.symbols, &used.t}) std::fill(bytes->begin(), bytes->end(), uint8_t{0xA5});
        std::fill(used.scales.begin(), used.scales.end(), uint16_t{0xA5A5});
        ASSERT_TRUE(codec.EncodeInto(x.data(), shape, DType::kFloat32, nullptr, nullptr, &used).ok());
        EXPECT_EQ(used.symbols, fresh.symbols);
        EXPECT_EQ(used.t, fresh.t);
        EXPECT_EQ(used.scales, fresh.scales);
        EXPECT_EQ(used.shape, fresh.shape);
      }
    }
  }
}

TEST(TensorCodecTest, OverloadSummaryIsTheSameCountedInParallel) {
  CodecParams p;
  p.beta = 0.05f;  // small steps: counters of many values
  const TensorCodec codec = *TensorCodec::Create(p);
  const std::vector<float> x = Gaussian(int64_t{1} << 20, 8);  // 256K chunks: four parts of 64K
  const CompressedTensor t = *codec.Encode(x.data(), {256, 4096});
  ThreadPool pool(3);
  const OverloadSummary serial = SummarizeOverloads(t);
  const OverloadSummary parallel = SummarizeOverloads(t, &pool);
  EXPECT_EQ(parallel.histogram, serial.histogram);
  EXPECT_EQ(parallel.entropy_bits, serial.entropy_bits);
  int64_t total = 0, nonzero_values = 0;
  for (int64_t c : serial.histogram) {
    total += c;
    nonzero_values += c > 0;
  }
  EXPECT_EQ(total, static_cast<int64_t>(t.t.size()));
  EXPECT_GE(nonzero_values, 4);
}

TEST(TensorCodecTest, RejectsBadParameters) {
  CodecParams p;
  p.lattice = *Lattice::Parse("D4");
  p.q = 2;
  EXPECT_EQ(TensorCodec::Create(p).status().code(), absl::StatusCode::kInvalidArgument);
  p.q = 4;
  p.M = 0;
  EXPECT_EQ(TensorCodec::Create(p).status().code(), absl::StatusCode::kInvalidArgument);
  p.M = 9;
  EXPECT_EQ(TensorCodec::Create(p).status().code(), absl::StatusCode::kInvalidArgument);
  p.M = 2;
  p.block = 6;
  EXPECT_NE(TensorCodec::Create(p).status().message().find("block (=6)"), std::string::npos);
  p.block = 256;
  p.beta = -1.0f;
  EXPECT_FALSE(TensorCodec::Create(p).ok());
  p.beta = 0.0f;
  p.alpha = std::nanf("");
  EXPECT_FALSE(TensorCodec::Create(p).ok());
  p.alpha = 1.0f / 3;
  p.q = 256;
  EXPECT_FALSE(TensorCodec::Create(p).ok());
  // A lattice is typed in CodecParams: a bad name is refused where names are parsed.
  EXPECT_FALSE(Lattice::Parse("E9").ok());
  EXPECT_FALSE(ParamsFromText("lattice=E9").ok());
}

// x / step far outside int32 (here ~3e38 / 1e-6) used to overflow the integer coordinates of the
// nearest-point kernels (undefined behaviour UBSan reports; #14 item 13). It must simply overload.
TEST(TensorCodecTest, HugeInputsOverloadInsteadOfOverflowing) {
  for (const char* lattice : {"Z4", "D4", "E8", "A2"}) {
    CodecParams p;
    p.lattice = *Lattice::Parse(lattice);
    p.q = std::string(lattice) == "Z4" ? 4 : 3;
    p.scale = ScaleMode::kNone;
    p.beta = 1e-6f;
    p.on_cap = CapPolicy::kZero;
    const TensorCodec codec = *TensorCodec::Create(p);
    std::vector<float> x(64, 0.5f);
    x[3] = 3e38f;
    x[17] = -3e38f;
    x[40] = 1e30f;
    EncodeStats stats;
    const auto t = codec.Encode(x.data(), {64}, DType::kFloat32, nullptr, &stats);
    ASSERT_TRUE(t.ok()) << lattice << ": " << t.status();
    EXPECT_GE(stats.capped, 1) << lattice;  // the huge chunks exhaust the ramp and are zeroed
    std::vector<float> y(64);
    ASSERT_TRUE(codec.Decode(*t, y.data()).ok());
    EXPECT_EQ(y[3], 0.0f) << lattice;
  }
}

TEST(TensorCodecTest, RefusesNanAndInfNamingTheIndex) {
  const TensorCodec codec = *TensorCodec::Create(CodecParams{});
  std::vector<float> x(32, 1.0f);
  x[17] = std::nanf("");
  auto r = codec.Encode(x.data(), {2, 16});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(r.status().message().find("input[17]"), std::string::npos);
  x[17] = -INFINITY;
  EXPECT_FALSE(codec.Encode(x.data(), {2, 16}).ok());
  // Under rotation too (the transform's overflow check sees a NaN first): named, not called too large.
  CodecParams rotated;
  rotated.rotate = true;
  rotated.block = 16;
  x[17] = std::nanf("");
  r = TensorCodec::Create(rotated)->Encode(x.data(), {2, 16});
  EXPECT_NE(r.status().message().find("input[17] is nan"), std::string::npos) << r.status().message();
}

// Typed inputs (float64, bfloat16, float16) encode to the codes of their widened floats, and
// typed decodes give the float32 decode narrowed, row by row.
TEST(TensorCodecTest, TypedInputsEncodeLikeTheirWidenedFloats) {
  // Rows that need padding (37 columns for D4 with block 16) and rotation, over threads.
  CodecParams p;
  p.block = 16;
  p.rotate = true;
  const TensorCodec codec = *TensorCodec::Create(p);
  ThreadPool pool(2);
  const std::vector<float> x = Gaussian(9 * 37, 31);
  for (DType dtype : {DType::kFloat64, DType::kBfloat16, DType::kFloat16}) {
    std::vector<unsigned char> typed(x.size() * DTypeBytes(dtype) + 1);
    FromFloat(x.data(), static_cast<int64_t>(x.size()), dtype, typed.data() + 1);  // an odd address
    std::vector<float> wide(x.size());
    ToFloat(typed.data() + 1, dtype, static_cast<int64_t>(x.size()), wide.data());
    const CompressedTensor want = *codec.Encode(wide.data(), {9, 37}, dtype);
    CompressedTensor got;
    EncodeStats stats;
    ASSERT_TRUE(codec.EncodeTypedInto(typed.data() + 1, dtype, {9, 37}, &pool, &stats, &got).ok());
    EXPECT_EQ(got.dtype, dtype);
    EXPECT_EQ(got.scales, want.scales) << DTypeName(dtype);
    EXPECT_EQ(got.t, want.t) << DTypeName(dtype);
    EXPECT_EQ(got.symbols, want.symbols) << DTypeName(dtype);
    EXPECT_EQ(stats.chunks, 9 * 10);
  }
  // And back: each dtype decoded row by row equals the float32 decode narrowed.
  const CompressedTensor t = *codec.Encode(x.data(), {9, 37});
  std::vector<float> decoded(x.size());
  ASSERT_TRUE(codec.Decode(t, decoded.data()).ok());
  for (DType dtype : {DType::kFloat32, DType::kFloat64, DType::kBfloat16, DType::kFloat16}) {
    const size_t bytes = x.size() * DTypeBytes(dtype);
    std::vector<unsigned char> want(bytes), got(bytes + 2);  // at an address of 2 mod 4 for 16-bit dtypes
    const size_t at = DTypeBytes(dtype) == 2 ? 2 : 0;
    FromFloat(decoded.data(), static_cast<int64_t>(x.size()), dtype, want.data());
    ASSERT_TRUE(codec.DecodeTyped(t, got.data() + at, dtype, &pool).ok());
    EXPECT_EQ(std::vector<unsigned char>(got.begin() + at, got.begin() + at + bytes), want) << DTypeName(dtype);
  }
  // A NaN in a 16-bit tensor is named by its index, as in a float32 one.
  std::vector<uint16_t> half(2 * 37);
  FromFloat(x.data(), 2 * 37, DType::kFloat16, half.data());
  half[40] = 0x7E00;
  CompressedTensor out;
  const absl::Status status = codec.EncodeTypedInto(half.data(), DType::kFloat16, {2, 37}, nullptr, nullptr, &out);
  EXPECT_NE(status.message().find("input[40] is nan"), std::string::npos) << status.message();
}

// Finite inputs far beyond what a step can code (up to FLT_MAX, where x / step reaches Inf) are
// overloaded chunks like any other: capped to zero under on_cap=zero, the rest of the row intact,
// and never a NaN or an out-of-range int inside the nearest-point search (UBSan runs this; the
// RPC fuzzer found the A2 case), for every lattice, scale mode and both encoder paths.
TEST(TensorCodecTest, HugeFiniteInputsOverloadInsteadOfOverflowing) {
  for (const Config& c : kConfigs) {
    for (ScaleMode scale : {ScaleMode::kNone, ScaleMode::kRms, ScaleMode::kAbsMax}) {
      CodecParams p = Params(c, scale);
      p.block = 120;
      p.t_max = 3;
      p.on_cap = CapPolicy::kZero;
      const TensorCodec codec = *TensorCodec::Create(p);
      const int64_t cols = 240;  // two blocks; 64 rows: the AVX2 batch path takes whole batches
      std::vector<float> x = Gaussian(64 * cols, 11);
      for (int64_t r = 0; r < 64; ++r) {
        x[r * cols + 0] = 3.4e38f;
        x[r * cols + 1] = -3.0e38f;
        x[r * cols + 7] = 1e20f;
      }
      EncodeStats stats;
      auto t = codec.Encode(x.data(), {64, cols}, DType::kFloat32, nullptr, &stats);
      ASSERT_TRUE(t.ok()) << c.lattice << " " << t.status();
      std::vector<float> y(x.size());
      ASSERT_TRUE(codec.Decode(*t, y.data()).ok());
      for (size_t i = 0; i < y.size(); ++i) {
        // An entry within one step of FLT_MAX may round to a lattice point beyond it (+-Inf);
        // everything else stays finite, and nothing is NaN.
        ASSERT_FALSE(std::isnan(y[i])) << c.lattice << " at " << i;
        if (std::fabs(x[i]) < 1e38f) {
          ASSERT_TRUE(std::isfinite(y[i])) << c.lattice << " at " << i;
        }
      }
      if (scale == ScaleMode::kNone) {
        EXPECT_GE(stats.capped, 64) << c.lattice;  // the chunks holding the huge entries
        EXPECT_EQ(y[0], 0.0f) << c.lattice;
        // The second block has no huge entry: coded as usual.
        double err = 0, energy = 0;
        for (int64_t i = 120; i < cols; ++i) {
          err += (y[i] - x[i]) * (y[i] - x[i]);
          energy += x[i] * x[i];
        }
        EXPECT_LT(err, energy) << c.lattice;
      }
    }
  }
}

// With rotation, a block of finite entries near FLT_MAX overflows the Hadamard transform: the
// row is refused naming its largest entry (the RPC fuzzer's input: A2, scale none, rotate).
TEST(TensorCodecTest, RotationOverflowIsRefusedNamingTheEntry) {
  for (const Config& c : kConfigs) {
    CodecParams p = Params(c, ScaleMode::kNone);
    p.rotate = true;
    p.on_cap = CapPolicy::kZero;
    const TensorCodec codec = *TensorCodec::Create(p);
    std::vector<float> x(2 * 120, 0.75f);
    x[120 + 9] = -2.6e38f;
    x[120 + 11] = -3.2e38f;
    auto r = codec.Encode(x.data(), {2, 120});
    ASSERT_FALSE(r.ok()) << c.lattice;
    EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_NE(r.status().message().find("input[131]"), std::string::npos) << r.status();
    EXPECT_NE(r.status().message().find("too large to rotate"), std::string::npos) << r.status();
    x[120 + 9] = x[120 + 11] = 1e30f;  // large, but the transform holds it: encoded
    EXPECT_TRUE(codec.Encode(x.data(), {2, 120}).ok()) << c.lattice;
  }
}

// The core invariant: without overload, decode(encode(x)) == step * Q_L(x * (1/step)) exactly.
TEST(TensorCodecTest, DecodeIsExactlyTheScaledNearestPointWithoutOverload) {
  for (const Config& c : kConfigs) {
    if (std::string(c.lattice) == "A2") continue;  // A2 points are irrational: checked with tolerance below
    for (ScaleMode scale : {ScaleMode::kNone, ScaleMode::kRms}) {
      CodecParams p = Params(c, scale);
      p.block = 120;  // a multiple of every tested d
      const TensorCodec codec = *TensorCodec::Create(p);
      const Lattice lattice = *Lattice::Parse(c.lattice);
      const int d = lattice.dim();
      const int64_t rows = 3, cols = 128;
      const std::vector<float> x = Gaussian(rows * cols, 7);
      const CompressedTensor t = *codec.Encode(x.data(), {rows, cols});
      std::vector<float> y(x.size());
      ASSERT_TRUE(codec.Decode(t, y.data()).ok());
      const int64_t chunks = cols / d;
      int64_t checked = 0;
      for (int64_t r = 0; r < rows; ++r) {
        for (int64_t ch = 0; ch < chunks; ++ch) {
          const uint8_t tc = t.t[r * t.layout.chunks_per_row + ch];
          const int64_t block = ch * d / p.block;
          const float scale_v =
              scale == ScaleMode::kNone ? 1.0f : Bf16ToFloat(t.scales[r * t.layout.blocks_per_row + block]);
          const float step = scale_v * t.params.beta * static_cast<float>(std::exp2(double(p.alpha) * tc));
          float yin[kMaxLatticeDim];
          const float inv_step = 1.0f / step;
          for (int i = 0; i < d; ++i) yin[i] = x[r * cols + ch * d + i] * inv_step;
          int32_t z[kMaxLatticeDim];
          double pt[kMaxLatticeDim];
          lattice.Nearest(yin, z);
          lattice.Point(z, pt);
          for (int i = 0; i < d; ++i) {
            ASSERT_EQ(y[r * cols + ch * d + i], static_cast<float>(pt[i]) * step)
                << c.lattice << " q=" << c.q << " M=" << c.levels << " row " << r << " chunk " << ch;
          }
          ++checked;
        }
      }
      EXPECT_EQ(checked, rows * chunks);
    }
  }
}

// The fast kernels (integer coordinates + coset table) against the paper-literal reference: same
// digits, same overload decisions, same decoded points, and x_hat = Q_L(x) - q^M g_M always.
TEST(TensorCodecTest, MatchesPaperLiteralReferenceAndTelescopingIdentity) {
  for (const Config& c : kConfigs) {
    CodecParams p = Params(c, ScaleMode::kNone);
    p.beta = 1.0f;
    p.t_max = 0;
    p.on_cap = CapPolicy::kZero;  // keep overloaded chunks so they can be compared too
    const TensorCodec codec = *TensorCodec::Create(p);
    const Lattice lattice = *Lattice::Parse(c.lattice);
    const int d = lattice.dim();
    const double qm = std::pow(c.q, c.levels);
    // Inputs spread over the whole code region and beyond, so both outcomes occur.
    const std::vector<float> x = Gaussian(d * 400, 11, static_cast<float>(0.45 * qm));
    EncodeStats stats;
    const CompressedTensor t = *codec.Encode(x.data(), {400, d}, DType::kFloat32, nullptr, &stats);
    int overloads = 0;
    for (int64_t r = 0; r < 400; ++r) {
      std::vector<double> xd(x.begin() + r * d, x.begin() + (r + 1) * d);
      const ChunkCodeRef ref = EncodeChunkRef(lattice, c.q, c.levels, xd.data());
      const std::vector<double> x_hat = DecodeChunkRef(lattice, c.q, c.levels, ref.digits.data());
      for (int i = 0; i < d; ++i) {
        ASSERT_NEAR(x_hat[i], ref.first[i] - qm * ref.last[i], 1e-9) << "telescoping identity, " << c.lattice;
      }
      overloads += ref.overload;
      if (ref.overload) continue;  // fast path zeroes overloaded chunks (CapPolicy::kZero)
      EXPECT_EQ(ChunkDigits(t, codec.codebook(), r, 0), ref.digits) << c.lattice << " q=" << c.q << " row " << r;
    }
    EXPECT_EQ(overloads, stats.capped) << c.lattice << " q=" << c.q;
    EXPECT_GT(overloads, 0) << c.lattice;
    EXPECT_LT(overloads, 400) << c.lattice;
  }
}

TEST(TensorCodecTest, TieCasesDecodeExactly) {
  // Points on Voronoi boundaries of L at every level (multiples of 1/q of lattice points).
  const Lattice d4 = *Lattice::Parse("D4");
  CodecParams p;
  p.lattice = *Lattice::Parse("D4");
  p.q = 3;
  p.M = 2;
  p.scale = ScaleMode::kNone;
  p.beta = 1.0f;
  const TensorCodec codec = *TensorCodec::Create(p);
  std::vector<float> x = {1.0f / 3, 1.0f / 3, 0.0f, -2.0f / 3,  // the note's tie at level 0
                          1.0f,     1.0f,     0.0f, -2.0f,      // lattice point whose g/q is that tie
                          3.0f,     0.0f,     0.0f, -3.0f,     1.5f, 1.5f, 0.0f, 0.0f};
  const CompressedTensor t = *codec.Encode(x.data(), {4, 4});
  std::vector<float> y(x.size());
  ASSERT_TRUE(codec.Decode(t, y.data()).ok());
  for (int r = 0; r < 4; ++r) {
    if (t.t[r] != 0) continue;
    float in[4];
    for (int i = 0; i < 4; ++i) in[i] = x[r * 4 + i];
    int32_t z[4];
    double pt[4];
    d4.Nearest(in, z);
    d4.Point(z, pt);
    for (int i = 0; i < 4; ++i) EXPECT_EQ(y[r * 4 + i], static_cast<float>(pt[i])) << "row " << r;
  }
  EXPECT_EQ(t.t[1], 0);  // (1,1,0,-2) is a lattice point well inside 9V
}

TEST(TensorCodecTest, GoldenVectorD4Q4M2) {
  CodecParams p;
  p.scale = ScaleMode::kNone;
  p.beta = 0.25f;
  const TensorCodec codec = *TensorCodec::Create(p);
  const std::vector<float> x = {0.3125f, -1.1875f, 0.8125f, 0.0625f, 2.5f, 2.5f, -2.5f, 2.5f};
  const CompressedTensor t = *codec.Encode(x.data(), {2, 4});
  // Worked by hand: x/beta = (1.25, -4.75, 3.25, 0.25) rounds (half up) to (1, -5, 3, 0), whose sum
  // is odd; all gaps are 0.25, so the first coordinate is re-rounded: Q = (2, -5, 3, 0) = G (0, 2, -3, 0).
  // Level 0: b_0 = (0, 2, 1, 0); G b_0 / 4 = (.5, -.25, -.25, 0) is nearest 0, so g_1 = (0, 0, -1, 0).
  // Level 1: b_1 = (0, 0, 3, 0); G b_1 / 4 = (0, .75, -.75, 0) is nearest g3, rep = (0, 0, -1, 0), g_2 = 0.
  EXPECT_EQ(t.t[0], 0);
  EXPECT_EQ(ChunkDigits(t, codec.codebook(), 0, 0), (std::vector<int32_t>{0, 2, 1, 0, 0, 0, 3, 0}));
  std::vector<float> y(8);
  ASSERT_TRUE(codec.Decode(t, y.data()).ok());
  const std::vector<float> want0 = {0.5f, -1.25f, 0.75f, 0.0f};
  for (int i = 0; i < 4; ++i) EXPECT_EQ(y[i], want0[i]) << i;
  // (10, 10, -10, 10) is closer to 16 (1, 1, 0, 0) than to 0: outside 16 V, so it needs ramp steps.
  EXPECT_GT(t.t[1], 0);
}

TEST(TensorCodecTest, AnyShapeRoundTripsWithBoundedError) {
  std::mt19937 rng(5);
  std::uniform_int_distribution<int> dim(1, 37);
  const TensorCodec codec = *TensorCodec::Create(CodecParams{});
  for (int trial = 0; trial < 30; ++trial) {
    std::vector<int64_t> shape;
    const int rank = trial % 4;
    int64_t n = 1;
    for (int i = 0; i < rank; ++i) {
      shape.push_back(dim(rng));
      n *= shape.back();
    }
    const std::vector<float> x = Gaussian(n, trial);
    const CompressedTensor t = *codec.Encode(x.data(), shape);
    EXPECT_EQ(t.shape, shape);
    std::vector<float> y(n);
    ASSERT_TRUE(codec.Decode(t, y.data()).ok());
    double err = 0, energy = 0;
    for (int64_t i = 0; i < n; ++i) {
      err += (x[i] - y[i]) * (x[i] - y[i]);
      energy += x[i] * x[i];
    }
    EXPECT_LT(err, 0.05 * energy + 1e-12) << "trial " << trial;  // 13 dB floor; typical is ~22 dB
  }
}

TEST(TensorCodecTest, ZeroAndTinyBlocksDecodeToZero) {
  const TensorCodec codec = *TensorCodec::Create(CodecParams{});
  std::vector<float> x(512, 0.0f);
  for (int i = 256; i < 512; ++i) x[i] = 1e-38f;
  const CompressedTensor t = *codec.Encode(x.data(), {512});
  std::vector<float> y(512, 1.0f);
  ASSERT_TRUE(codec.Decode(t, y.data()).ok());
  for (float v : y) EXPECT_EQ(v, 0.0f);
}

TEST(TensorCodecTest, CapPolicyFailsOrZeroesAndCounts) {
  CodecParams p;
  p.scale = ScaleMode::kNone;
  p.beta = 0.02f;
  p.t_max = 3;
  std::vector<float> x(16, 0.1f);
  x[5] = 1e6f;
  const TensorCodec failing = *TensorCodec::Create(p);
  const auto r = failing.Encode(x.data(), {16});
  ASSERT_EQ(r.status().code(), absl::StatusCode::kOutOfRange);
  EXPECT_NE(r.status().message().find("entries [4, 8)"), std::string::npos) << r.status();
  p.on_cap = CapPolicy::kZero;
  const TensorCodec zeroing = *TensorCodec::Create(p);
  EncodeStats stats;
  const CompressedTensor t = *zeroing.Encode(x.data(), {16}, DType::kFloat32, nullptr, &stats);
  EXPECT_EQ(stats.capped, 1);
  std::vector<float> y(16);
  ASSERT_TRUE(zeroing.Decode(t, y.data()).ok());
  for (int i = 4; i < 8; ++i) EXPECT_EQ(y[i], 0.0f);
  EXPECT_NEAR(y[0], 0.1f, 0.02f);
}

TEST(TensorCodecTest, RotationIsUndoneOnDecode) {
  CodecParams p;
  p.rotate = true;
  p.block = 96;  // not a power of two: rotated as 64 + 32
  const TensorCodec codec = *TensorCodec::Create(p);
  std::vector<float> x = Gaussian(4 * 200, 9);
  for (size_t i = 0; i < x.size(); i += 50) x[i] *= 30.0f;  // heavy outliers
  const CompressedTensor t = *codec.Encode(x.data(), {4, 200});
  std::vector<float> y(x.size());
  ASSERT_TRUE(codec.Decode(t, y.data()).ok());
  double err = 0, energy = 0;
  for (size_t i = 0; i < x.size(); ++i) {
    err += (x[i] - y[i]) * (x[i] - y[i]);
    energy += x[i] * x[i];
  }
  EXPECT_LT(10 * std::log10(energy / err), 35.0);
  EXPECT_GT(10 * std::log10(energy / err), 18.0);
}

TEST(TensorCodecTest, PortableAndAvx2KernelsAreBitIdentical) {
  for (const Config& c : kConfigs) {
    for (bool rotate : {false, true}) {
      CodecParams p = Params(c, ScaleMode::kRms);
      p.rotate = rotate;
      p.block = 120;  // a multiple of every tested d
      const TensorCodec codec = *TensorCodec::Create(p);
      const std::vector<float> x = Gaussian(5 * 77, 13);
      CompressedTensor a, b;
      std::vector<float> ya(x.size()), yb(x.size());
      {
        ScopedSimdLevel portable(SimdLevel::kPortable);
        ASSERT_TRUE(portable.ok());
        a = *codec.Encode(x.data(), {5, 77});
        ASSERT_TRUE(codec.Decode(a, ya.data()).ok());
      }
      {
        ScopedSimdLevel avx2(SimdLevel::kAvx2);
        if (!avx2.ok()) GTEST_SKIP() << "this CPU has no AVX2+FMA+BMI2; only the portable kernels can run";
        b = *codec.Encode(x.data(), {5, 77});
        ASSERT_TRUE(codec.Decode(b, yb.data()).ok());
      }
      EXPECT_EQ(a.symbols, b.symbols) << c.lattice;
      EXPECT_EQ(a.t, b.t);
      EXPECT_EQ(a.scales, b.scales);
      EXPECT_EQ(ya, yb);
    }
  }
}

// The fused epilogue gives exactly the floats of decoding and then looping (scale, base, in-place
// accumulation), threaded or not, with and without rotation and padding, for D4 and E8: whole
// unrotated rows reach each lattice's fused kernel, the others go through a row buffer.
TEST(TensorCodecTest, DecodeEpilogueMatchesDecodeThenLoop) {
  ThreadPool pool(2);
  for (const char* lattice : {"D4", "E8"}) {
    for (bool rotate : {false, true}) {
      for (int64_t cols : {int64_t{1024}, int64_t{1030}}) {  // 1030: a padded last block
        CodecParams p;
        p.lattice = *Lattice::Parse(lattice);
        p.rotate = rotate;
        const TensorCodec codec = *TensorCodec::Create(p);
        const int64_t rows = 9;
        const std::vector<float> x = Gaussian(rows * cols, 23);
        const CompressedTensor t = *codec.Encode(x.data(), {rows, cols});
        std::vector<float> decoded(x.size());
        ASSERT_TRUE(codec.Decode(t, decoded.data()).ok());
        const std::vector<float> base = Gaussian(rows * cols, 24);
        for (float scale : {1.0f, 0.25f, -1.0f}) {
          std::vector<float> want_zero(x.size()), want_base(x.size()), want_acc(x.size());
          for (size_t i = 0; i < x.size(); ++i) {
            want_zero[i] = 0.0f + scale * decoded[i];
            want_base[i] = base[i] + scale * decoded[i];
            want_acc[i] = base[i] + scale * decoded[i];
          }
          std::vector<float> zero(x.size(), 7.0f), with_base(x.size(), 7.0f), acc = base;
          ASSERT_TRUE(codec.Decode(t, zero.data(), &pool, TensorCodec::Epilogue{nullptr, scale}).ok());
          ASSERT_TRUE(codec.Decode(t, with_base.data(), nullptr, TensorCodec::Epilogue{base.data(), scale}).ok());
          ASSERT_TRUE(codec.Decode(t, acc.data(), &pool, TensorCodec::Epilogue{acc.data(), scale}).ok());
          EXPECT_EQ(0, std::memcmp(zero.data(), want_zero.data(), x.size() * 4)) << scale;
          EXPECT_EQ(0, std::memcmp(with_base.data(), want_base.data(), x.size() * 4)) << scale;
          EXPECT_EQ(0, std::memcmp(acc.data(), want_acc.data(), x.size() * 4)) << scale;
        }
      }
    }
  }
}

// D4 q=4 M=2 with the DDP hook's block absmax scale and zeroing cap (coset_torch.ddp).
TensorCodec HookCodec() {
  CodecParams p;
  p.scale = ScaleMode::kAbsMax;
  p.t_max = 7;
  p.on_cap = CapPolicy::kZero;
  return *TensorCodec::Create(p);
}

// `count` codes of N(0,1) [rows, cols] tensors (seeds seed, seed + 1, ...).
std::vector<CompressedTensor> EncodedGaussians(const TensorCodec& codec, int64_t rows, int64_t cols, int count,
                                               int seed) {
  std::vector<CompressedTensor> tensors;
  for (int k = 0; k < count; ++k) {
    const std::vector<float> x = Gaussian(rows * cols, seed + k);
    tensors.push_back(*codec.Encode(x.data(), {rows, cols}));
  }
  return tensors;
}

// Epilogues that keep only the first `entries` entries write nothing past them and the same
// floats before them, at every ISA level (the epilogue is compiled per level).
TEST(TensorCodecTest, DecodeEpilogueKeepsItsFirstEntries) {
  for (const char* lattice : {"D4", "E8"}) {
    CodecParams p;
    p.lattice = *Lattice::Parse(lattice);
    const TensorCodec codec = *TensorCodec::Create(p);
    const int64_t rows = 5, cols = 1024;
    const std::vector<float> x = Gaussian(rows * cols, 31);
    const CompressedTensor t = *codec.Encode(x.data(), {rows, cols});
    std::vector<float> decoded(x.size());
    ASSERT_TRUE(codec.Decode(t, decoded.data()).ok());
    for (SimdLevel level : kAllSimdLevels) {
      if (level > DetectedSimdLevel()) continue;
      ScopedSimdLevel scoped(level);
      for (int64_t entries : {int64_t{0}, int64_t{1}, cols - 3, cols, 3 * cols + 17, rows * cols}) {
        std::vector<float> out(x.size() + 1, 7.0f);
        ASSERT_TRUE(codec.Decode(t, out.data(), nullptr, TensorCodec::Epilogue{nullptr, 0.5f, entries}).ok());
        for (int64_t i = 0; i < entries; ++i) ASSERT_EQ(out[i], 0.0f + 0.5f * decoded[i]) << i;
        for (size_t i = entries; i < out.size(); ++i) ASSERT_EQ(out[i], 7.0f) << i << " " << SimdLevelName(level);
      }
    }
    std::vector<float> out(x.size());
    EXPECT_EQ(codec.Decode(t, out.data(), nullptr, TensorCodec::Epilogue{nullptr, 1.0f, rows * cols + 1}).code(),
              absl::StatusCode::kInvalidArgument);
  }
}

// A sum of decoded tensors is the same floats as decoding them in turn into an accumulating buffer
// (which it replaces: the output is written once), at every ISA level, threaded or not, with a base
// and with a cut.
TEST(TensorCodecTest, DecodeSumMatchesDecodingInTurn) {
  ThreadPool pool(2);
  const TensorCodec codec = HookCodec();
  const int64_t rows = 7, cols = 1024, n = rows * cols;
  const std::vector<CompressedTensor> tensors = EncodedGaussians(codec, rows, cols, 5, 40);
  const std::vector<float> base = Gaussian(n, 50);
  for (SimdLevel level : kAllSimdLevels) {
    if (level > DetectedSimdLevel()) continue;
    ScopedSimdLevel scoped(level);
    for (size_t count : {size_t{1}, size_t{2}, size_t{5}}) {
      for (const float* b : {static_cast<const float*>(nullptr), base.data()}) {
        const float scale = 1.0f / static_cast<float>(count);
        std::vector<float> want(n, 0.0f);
        ASSERT_TRUE(codec.Decode(tensors[0], want.data(), nullptr, TensorCodec::Epilogue{b, scale}).ok());
        for (size_t k = 1; k < count; ++k) {
          ASSERT_TRUE(codec.Decode(tensors[k], want.data(), nullptr, TensorCodec::Epilogue{want.data(), scale}).ok());
        }
        const std::vector<CompressedTensorView> terms(tensors.begin(), tensors.begin() + count);
        for (int64_t entries : {n, n - 100}) {
          std::vector<float> got(n, 9.0f);
          ASSERT_TRUE(
              codec.DecodeSum(terms.data(), count, got.data(), &pool, TensorCodec::Epilogue{b, scale, entries}).ok());
          EXPECT_EQ(0, std::memcmp(got.data(), want.data(), entries * 4)) << count << " " << SimdLevelName(level);
          for (int64_t i = entries; i < n; ++i) ASSERT_EQ(got[i], 9.0f);
        }
      }
    }
  }
  // Tensors of different shapes cannot be summed; nor can nothing.
  const std::vector<float> y = Gaussian(cols, 60);
  const CompressedTensor other = *codec.Encode(y.data(), {1, cols});
  const CompressedTensorView mixed[] = {tensors[0], other};
  std::vector<float> out(n);
  EXPECT_EQ(codec.DecodeSum(mixed, 2, out.data(), nullptr, {}).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(codec.DecodeSum(mixed, 0, out.data(), nullptr, {}).code(), absl::StatusCode::kInvalidArgument);
}

// Error feedback fused into the encode gives the codes of encoding g = x + residual (zero past
// `entries`) and leaves residual = g + (-1) * decode(codes), the floats of the unfused path, at
// every ISA level; without a residual it encodes x itself.
TEST(TensorCodecTest, EncodeWithFeedbackMatchesEncodeThenDecode) {
  ThreadPool pool(2);
  const TensorCodec codec = HookCodec();
  const int64_t rows = 6, cols = 1024, n = rows * cols;
  const std::vector<float> x = Gaussian(n, 70), residual0 = Gaussian(n, 71);
  for (SimdLevel level : kAllSimdLevels) {
    if (level > DetectedSimdLevel()) continue;
    ScopedSimdLevel scoped(level);
    for (int64_t entries : {n, n - 1000, int64_t{0}}) {
      for (bool with_residual : {false, true}) {
        std::vector<float> g(n, 0.0f);
        for (int64_t i = 0; i < entries; ++i) g[i] = with_residual ? x[i] + residual0[i] * 0.1f : x[i];
        std::vector<float> scaled(residual0.size());
        for (size_t i = 0; i < scaled.size(); ++i) scaled[i] = residual0[i] * 0.1f;
        const CompressedTensor want = *codec.Encode(g.data(), {rows, cols});
        std::vector<float> decoded(n);
        ASSERT_TRUE(codec.Decode(want, decoded.data()).ok());
        std::vector<float> residual = scaled;
        CompressedTensor got;
        const TensorCodec::Feedback in{x.data(), with_residual ? residual.data() : nullptr, entries};
        ASSERT_TRUE(codec.EncodeWithFeedback(in, {rows, cols}, &pool, nullptr, &got).ok());
        const std::string where = std::string(SimdLevelName(level)) + " entries " + std::to_string(entries);
        EXPECT_EQ(got.symbols, want.symbols) << where;
        EXPECT_EQ(got.t, want.t) << where;
        EXPECT_EQ(got.scales, want.scales) << where;
        for (int64_t i = 0; i < n; ++i) {
          const float expected = !with_residual ? scaled[i] : i < entries ? g[i] + -1.0f * decoded[i] : scaled[i];
          ASSERT_EQ(residual[i], expected) << where << " at " << i;
        }
      }
    }
  }
  // A non-finite x + residual is named; the rows encoded without error keep their update.
  std::vector<float> bad = x, residual(n, 0.0f);
  bad[5 * cols + 3] = std::nanf("");
  CompressedTensor out;
  const absl::Status status = codec.EncodeWithFeedback(TensorCodec::Feedback{bad.data(), residual.data(), n},
                                                       {rows, cols}, nullptr, nullptr, &out);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(std::string(status.message()).find("input + residual[5123] is nan"), std::string::npos) << status;
  EXPECT_EQ(
      codec.EncodeWithFeedback(TensorCodec::Feedback{x.data(), nullptr, n + 1}, {rows, cols}, nullptr, nullptr, &out)
          .code(),
      absl::StatusCode::kInvalidArgument);
}

// The input may be the scaled sum of coded terms (reduce_scatter's re-encode), optionally after a
// float summand x cut short (a rank's own shard): the codes and residual are those of decoding the
// sum (DecodeSum from s * x) and encoding it with feedback, bit for bit, at every ISA level, whether
// the sum is decoded row by row into the encode or, for terms whose sum might overflow, whole and
// checked first; a sum that does overflow fails before any residual changes.
TEST(TensorCodecTest, EncodeWithFeedbackOfASumOfTermsMatchesDecodeSumThenEncode) {
  ThreadPool pool(2);
  const TensorCodec codec = HookCodec();
  const int64_t rows = 6, cols = 1024, n = rows * cols;
  const std::vector<CompressedTensor> tensors = EncodedGaussians(codec, rows, cols, 3, 80);
  // A term whose first block has a huge (finite) scale but only zero points: its sum is finite, but
  // only decoding it shows that, so it takes the decode-whole-then-check path.
  CompressedTensor huge = tensors[2];
  huge.scales[0] = 0x7F00;  // bf16 1.7e38
  std::fill(huge.symbols.begin(), huge.symbols.begin() + 2 * 64, 0);
  std::fill(huge.t.begin(), huge.t.begin() + 64, 0);
  const float scale = 1.0f / 3.0f;
  const std::vector<float> residual0 = Gaussian(n, 90), own = Gaussian(n, 91);
  for (SimdLevel level : kAllSimdLevels) {
    if (level > DetectedSimdLevel()) continue;
    ScopedSimdLevel scoped(level);
    for (const CompressedTensor* last : std::vector<const CompressedTensor*>{&tensors[2], &huge}) {
      const CompressedTensorView terms[] = {tensors[0], tensors[1], *last};
      for (int64_t entries : {n, n - 1000}) {
        for (int with : {0, 1, 2, 3}) {  // bit 0: a residual; bit 1: x (its last 1500 entries cut)
          const bool with_residual = (with & 1) != 0, with_x = (with & 2) != 0;
          const int64_t x_entries = entries - 1500;
          std::vector<float> sum(n, 0.0f);
          for (int64_t i = 0; with_x && i < x_entries; ++i) sum[i] = scale * own[i];
          ASSERT_TRUE(codec
                          .DecodeSum(terms, 3, sum.data(), nullptr,
                                     TensorCodec::Epilogue{with_x ? sum.data() : nullptr, scale, entries})
                          .ok());
          std::vector<float> want_residual = residual0, got_residual = residual0;
          CompressedTensor want, got;
          ASSERT_TRUE(codec
                          .EncodeWithFeedback({sum.data(), with_residual ? want_residual.data() : nullptr, entries},
                                              {rows, cols}, nullptr, nullptr, &want)
                          .ok());
          TensorCodec::Feedback in{with_x ? own.data() : nullptr, with_residual ? got_residual.data() : nullptr,
                                   entries};
          in.sum = true;
          in.terms = terms;
          in.count = 3;
          in.terms_scale = scale;
          in.x_entries = with_x ? x_entries : -1;
          ASSERT_TRUE(codec.EncodeWithFeedback(in, {rows, cols}, &pool, nullptr, &got).ok());
          const std::string where = std::string(SimdLevelName(level)) + (last == &huge ? " huge" : "") + " entries " +
                                    std::to_string(entries) + " with " + std::to_string(with);
          EXPECT_EQ(got.symbols, want.symbols) << where;
          EXPECT_EQ(got.t, want.t) << where;
          EXPECT_EQ(got.scales, want.scales) << where;
          EXPECT_EQ(0, std::memcmp(got_residual.data(), want_residual.data(), n * 4)) << where;
        }
      }
    }
  }
  // An infinite scale (a hostile packet): refused naming the entry, the residual untouched.
  CompressedTensor hostile = tensors[1];
  hostile.scales[3] = 0x7F80;  // bf16 +inf
  const CompressedTensorView terms[] = {tensors[0], hostile};
  std::vector<float> residual = residual0;
  TensorCodec::Feedback in{nullptr, residual.data(), n};
  in.sum = true;
  in.terms = terms;
  in.count = 2;
  in.terms_scale = 0.5f;
  CompressedTensor out;
  const absl::Status status = codec.EncodeWithFeedback(in, {rows, cols}, nullptr, nullptr, &out);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(std::string(status.message()).find("sum of the coded terms["), std::string::npos) << status;
  EXPECT_EQ(residual, residual0);
  // No terms and no x, terms counted but not given, or terms of another shape.
  in.count = 0;
  EXPECT_EQ(codec.EncodeWithFeedback(in, {rows, cols}, nullptr, nullptr, &out).code(),
            absl::StatusCode::kInvalidArgument);
  {
    TensorCodec::Feedback unnamed = in;
    unnamed.terms = nullptr;
    unnamed.count = 2;
    EXPECT_EQ(codec.EncodeWithFeedback(unnamed, {rows, cols}, nullptr, nullptr, &out).code(),
              absl::StatusCode::kInvalidArgument);
  }
  // x alone (a sum over one rank): the codes and residual of encoding s * x with feedback.
  {
    std::vector<float> scaled(n), want_residual = residual0;
    for (int64_t i = 0; i < n; ++i) scaled[i] = 0.5f * own[i];
    CompressedTensor want;
    ASSERT_TRUE(
        codec.EncodeWithFeedback({scaled.data(), want_residual.data(), n}, {rows, cols}, nullptr, nullptr, &want).ok());
    in.x = own.data();
    ASSERT_TRUE(codec.EncodeWithFeedback(in, {rows, cols}, nullptr, nullptr, &out).ok());
    EXPECT_EQ(out.symbols, want.symbols);
    EXPECT_EQ(out.t, want.t);
    EXPECT_EQ(residual, want_residual);
    in.x = nullptr;
  }
  in.count = 1;
  EXPECT_EQ(codec.EncodeWithFeedback(in, {rows * 2, cols / 2}, nullptr, nullptr, &out).code(),
            absl::StatusCode::kInvalidArgument);
}

// A shape with a zero-sized last dimension names rows but no entries: encode and decode return at
// once (a blob the fuzzer built with 2.3e9 empty rows took seconds to decode).
TEST(TensorCodecTest, BillionsOfEmptyRowsCostNothing) {
  const TensorCodec codec = *TensorCodec::Create(CodecParams{});
  EncodeStats stats;
  const auto t = codec.Encode(nullptr, {int64_t{1} << 33, 0}, DType::kFloat32, nullptr, &stats);
  ASSERT_TRUE(t.ok()) << t.status();
  EXPECT_EQ(t->layout.numel, 0);
  EXPECT_TRUE(t->symbols.empty());
  EXPECT_EQ(stats.chunks, 0);
  EXPECT_TRUE(codec.Decode(*t, nullptr).ok());
}

TEST(TensorCodecTest, ThreadedAndInlineResultsAreIdentical) {
  ThreadPool pool(3);
  const TensorCodec codec = *TensorCodec::Create(CodecParams{});
  const std::vector<float> x = Gaussian(64 * 300, 17);
  const CompressedTensor a = *codec.Encode(x.data(), {64, 300});
  const CompressedTensor b = *codec.Encode(x.data(), {64, 300}, DType::kFloat32, &pool);
  EXPECT_EQ(a.symbols, b.symbols);
  EXPECT_EQ(a.t, b.t);
  std::vector<float> ya(x.size()), yb(x.size());
  ASSERT_TRUE(codec.Decode(a, ya.data()).ok());
  ASSERT_TRUE(codec.Decode(a, yb.data(), &pool).ok());
  EXPECT_EQ(ya, yb);
}

TEST(TensorCodecTest, DecodeRefusesInconsistentTensors) {
  const TensorCodec codec = *TensorCodec::Create(CodecParams{});
  const std::vector<float> x = Gaussian(64, 1);
  CompressedTensor t = *codec.Encode(x.data(), {64});
  std::vector<float> y(64);
  CompressedTensor shorter = t;
  shorter.symbols.pop_back();
  EXPECT_FALSE(codec.Decode(shorter, y.data()).ok());
  CompressedTensor bad_t = t;
  bad_t.t[0] = 200;
  EXPECT_EQ(codec.Decode(bad_t, y.data()).code(), absl::StatusCode::kDataLoss);
  CompressedTensor other = t;
  other.params.q = 3;
  EXPECT_FALSE(codec.Decode(other, y.data()).ok());
}

}  // namespace
}  // namespace coset
