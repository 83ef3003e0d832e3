// The row kernels at every SIMD level the CPU has (portable, AVX2 with 8-chunk batches, AVX-512
// with 16-chunk batches and the byte-wide levels of D4 q=4 M=2) give the same symbols, T, scales,
// encode statistics and decoded floats, bit for bit, on inputs built to reach every path of the
// batch encoders: whole and partial batches, blocks of 8/16/64 chunks and others, first-try
// overloads and the retry rounds up to the cap, exact ties of the nearest-point rules, zero blocks
// and chunks far outside the code. And the format does not move: a fixed input still gives the
// blob it gave before the AVX-512 encoder existed.
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "core/chunk_math.h"
#include "core/format.h"
#include "core/limits.h"
#include "core/simd/dispatch.h"
#include "core/tensor_codec.h"
#include "gtest/gtest.h"
#include "tests/core/test_util.h"

namespace coset {
namespace {

using testing_util::Config;
using testing_util::Params;
// D4 and E8 with q a power of two take the batch encoders; the others check that nothing else moved.
const Config kConfigs[] = {{"D4", 4, 2},  {"D4", 4, 1}, {"D4", 4, 3}, {"D4", 8, 2}, {"D4", 16, 1},
                           {"D4", 16, 2}, {"E8", 4, 2}, {"E8", 4, 1}, {"E8", 4, 3}, {"E8", 3, 2},
                           {"D4", 3, 2},  {"Z4", 4, 2}, {"A2", 4, 2}};

struct Encoded {
  CompressedTensor tensor;
  EncodeStats stats;
  std::vector<float> decoded;
};

Encoded EncodeAt(SimdLevel level, const TensorCodec& codec, const std::vector<float>& x,
                 const std::vector<int64_t>& shape) {
  ScopedSimdLevel scoped(level);
  EXPECT_TRUE(scoped.ok());
  Encoded e;
  auto t = codec.Encode(x.data(), shape, DType::kFloat32, nullptr, &e.stats);
  EXPECT_TRUE(t.ok()) << t.status();
  if (!t.ok()) return e;
  e.tensor = *std::move(t);
  e.decoded.resize(x.size());
  EXPECT_TRUE(codec.Decode(e.tensor, e.decoded.data()).ok());
  return e;
}

// Gaussian rows with heavy tails (every 13th entry x 9: T well above 1), an all-zero block, exact
// half-integers (ties of the rounding and of the D_n parity fix when the step is 1), integers
// with negative zeros, a few entries near the float range (capped at t_max), and blocks so small
// that their steps come near kMinStep or under it (exact decoder scalings must stay exact there).
std::vector<float> HardRows(int64_t rows, int64_t cols, int64_t block, uint32_t seed) {
  std::vector<float> x = testing_util::Gaussian(rows * cols, seed);
  for (int64_t i = 0; i < rows * cols; i += 13) x[i] *= 9.0f;
  for (int64_t r = 0; r < rows; ++r) {
    float* row = &x[r * cols];
    if (r % 3 == 1 && cols >= 2 * block) std::fill(row + block, row + 2 * block, 0.0f);
    if (r % 4 == 2) {
      for (int64_t i = 0; i < cols; ++i) row[i] = 0.5f * static_cast<float>(static_cast<int>(i % 7) - 3);
    }
    if (r % 5 == 3) row[cols / 2] = 3.0e38f;
    if (r % 7 == 4) {
      constexpr float kTiny[4] = {3e-29f, 1e-29f, 4e-30f, 1.5e-30f};
      for (int64_t i = 0; i < cols; ++i) row[i] *= kTiny[i / block % 4];
    }
    if (r % 6 == 5) {
      // Integers with an odd sum per D4 and E8 chunk, each starting with -0: when the step is 1,
      // every rounding gap is 0, so the parity fix moves coordinate 0, and up (y >= p holds for
      // y = -0, p = 0; the sign of y - p = -0 would say down).
      constexpr float kPattern[8] = {-0.0f, 1.0f, 0.0f, 0.0f, -0.0f, 1.0f, 1.0f, 0.0f};
      for (int64_t i = 0; i < cols; ++i) row[i] = kPattern[i % 8];
    }
  }
  return x;
}

void ExpectSameEverywhere(const TensorCodec& codec, const std::vector<float>& x, const std::vector<int64_t>& shape,
                          const std::string& what) {
  const Encoded want = EncodeAt(SimdLevel::kPortable, codec, x, shape);
  bool compared = false;
  for (SimdLevel level : kAllSimdLevels) {
    if (level == SimdLevel::kPortable || level > DetectedSimdLevel()) continue;
    compared = true;
    const Encoded got = EncodeAt(level, codec, x, shape);
    const std::string where = what + " at " + SimdLevelName(level);
    EXPECT_EQ(got.tensor.symbols, want.tensor.symbols) << where;
    EXPECT_EQ(got.tensor.t, want.tensor.t) << where;
    EXPECT_EQ(got.tensor.scales, want.tensor.scales) << where;
    EXPECT_EQ(got.stats.first_try_overloads, want.stats.first_try_overloads) << where;
    EXPECT_EQ(got.stats.capped, want.stats.capped) << where;
    EXPECT_EQ(0, std::memcmp(got.decoded.data(), want.decoded.data(), x.size() * sizeof(float))) << where;
  }
  if (!compared) GTEST_SKIP() << "this CPU has no AVX2 or AVX-512: only the portable kernels can run";
}

TEST(RowCodecTest, EveryLevelIsBitIdenticalToPortable) {
  for (const Config& c : kConfigs) {
    // Blocks of 8, 16, 64 and 256 chunks of D4 (fewer for E8), and 120 (no whole batches).
    for (int block : {32, 64, 256, 1024, 120}) {
      for (ScaleMode scale : {ScaleMode::kRms, ScaleMode::kAbsMax, ScaleMode::kNone}) {
        CodecParams p = Params(c, scale);
        p.block = block;
        p.t_max = 12;
        p.on_cap = CapPolicy::kZero;
        if (scale == ScaleMode::kNone) p.beta = 1.0f;  // step 1 at T = 0: the half-integers are exact ties
        auto codec = TensorCodec::Create(p);
        ASSERT_TRUE(codec.ok()) << codec.status();
        const int64_t cols = 2048 + 2 * block;  // whole blocks; the partial case is below
        ExpectSameEverywhere(*codec, HardRows(6, cols, block, 7), {6, cols},
                             std::string(c.lattice) + " q=" + std::to_string(c.q) + " M=" + std::to_string(c.levels) +
                                 " block=" + std::to_string(block) +
                                 " scale=" + std::to_string(static_cast<int>(scale)));
      }
    }
  }
}

TEST(RowCodecTest, PartialBlocksPaddingAndRotationAreBitIdentical) {
  for (const Config& c : kConfigs) {
    for (bool rotate : {false, true}) {
      for (int64_t cols : {int64_t{1000}, int64_t{1021}, int64_t{77}}) {
        CodecParams p = Params(c);
        p.block = 256;
        p.rotate = rotate;
        p.on_cap = CapPolicy::kZero;
        const TensorCodec codec = *TensorCodec::Create(p);
        ExpectSameEverywhere(codec, HardRows(5, cols, 256, 3), {5, cols},
                             std::string(c.lattice) + " q=" + std::to_string(c.q) + " cols=" + std::to_string(cols) +
                                 (rotate ? " rotated" : ""));
      }
    }
  }
}

// Many overloads per row and small steps: the retry rounds run with long lists (several 64-chunk
// groups of the byte-wide levels plus a remainder) at every T up to the cap.
TEST(RowCodecTest, LongRetryListsAreBitIdentical) {
  for (const Config& c : {Config{"D4", 4, 2}, Config{"E8", 4, 2}, Config{"D4", 16, 2}}) {
    for (float beta : {0.05f, 0.02f, 0.6f}) {
      CodecParams p = Params(c);
      p.beta = beta;
      p.t_max = 31;
      p.on_cap = CapPolicy::kZero;
      const TensorCodec codec = *TensorCodec::Create(p);
      ExpectSameEverywhere(codec, HardRows(4, 8192, 256, 21), {4, 8192},
                           std::string(c.lattice) + " beta=" + std::to_string(beta));
    }
  }
}

// With block scales no x / step can reach kMaxChunkCoordinate, so the batch encoders skip their
// clamp (TensorCodec::MakeContext's bound). At the bound's edge (the smallest beta, blocks whose
// one nonzero entry is sqrt(block) times their RMS, or their absolute maximum) the unclamped
// encoders still agree with the portable one, which clamps; without block scales or with huge
// blocks the clamp stays.
TEST(RowCodecTest, BlockScalesBoundTheChunkCoordinates) {
  auto clamps = [](CodecParams p) { return TensorCodec::Create(p)->MakeContext({1, 512})->clamp_chunk_coordinates; };
  CodecParams p;
  EXPECT_FALSE(clamps(p));  // the default: RMS scales
  p.scale = ScaleMode::kAbsMax;
  EXPECT_FALSE(clamps(p));
  p.scale = ScaleMode::kNone;
  EXPECT_TRUE(clamps(p));
  p.scale = ScaleMode::kRms;
  p.beta = kMinRelativeBeta;
  EXPECT_FALSE(clamps(p));  // 2 x 16 / 1e-6 < 2^28
  p.block = 1 << 16;
  EXPECT_TRUE(clamps(p));  // 2 x 256 / 1e-6 > 2^28

  for (const Config& c : {Config{"D4", 4, 2}, Config{"E8", 4, 2}, Config{"D4", 8, 2}}) {
    for (ScaleMode scale : {ScaleMode::kRms, ScaleMode::kAbsMax}) {
      CodecParams edge = Params(c, scale);
      edge.beta = kMinRelativeBeta;
      edge.t_max = 31;
      edge.on_cap = CapPolicy::kZero;
      const TensorCodec codec = *TensorCodec::Create(edge);
      ASSERT_FALSE(codec.MakeContext({1, 512})->clamp_chunk_coordinates);
      std::vector<float> x = HardRows(4, 4096, 256, 5);
      for (int64_t r = 0; r < 2; ++r) {  // spikes: one nonzero entry per block
        for (int64_t i = 0; i < 4096; ++i) x[r * 4096 + i] = i % 256 == (r * 37 + i / 256) % 256 ? 1.5f - r : 0.0f;
      }
      ExpectSameEverywhere(codec, x, {4, 4096},
                           std::string(c.lattice) + " q=" + std::to_string(c.q) +
                               " scale=" + std::to_string(static_cast<int>(scale)) + " at the bound's edge");
    }
  }
}

// The AVX2 and AVX-512 encoders take a block's RMS scale from float sums of squares where those
// fix its bf16 rounding, and BlockRms's double sums elsewhere; the scales must be the portable
// encoder's bit for bit. Blocks of +-v (RMS v: BlockRms's double sums are exact there, so its float
// is v itself) with v on a midpoint between two bf16 values (a tie, rounded to even) or 1, 3 or 40
// float ulps off it, at several magnitudes; sums of squares under the float path's 2^-90 and past
// FLT_MAX; blocks of 32, 256 and 4096 entries and of 48 (a size the float sums do not take).
TEST(RowCodecTest, RmsScalesNearBf16MidpointsAreBitIdentical) {
  std::vector<float> values = {1e-30f, 2e-14f, 3.0e18f, 1.0e19f};
  for (float bf16_value : {1.0f, 1.5f, 0.0097656f, 3.0e5f, 1.7e-12f, 6.0e30f}) {
    const uint32_t midpoint = (FloatBits(bf16_value) & 0xFFFF0000u) | 0x8000u;
    for (int ulps : {0, 1, -1, 3, -3, 40, -40}) values.push_back(BitsToFloat(midpoint + ulps));
    // The next midpoint up, with an odd bf16 below it (ties round the other way).
    values.push_back(BitsToFloat(midpoint + 0x10000u));
  }
  constexpr int64_t kCols = 4096;
  for (const Config& c : {Config{"D4", 4, 2}, Config{"E8", 4, 2}}) {
    for (int64_t block : {32, 256, 4096, 48}) {
      CodecParams p = Params(c, ScaleMode::kRms);
      p.block = block;
      p.t_max = 31;
      p.on_cap = CapPolicy::kZero;
      const TensorCodec codec = *TensorCodec::Create(p);
      const int64_t blocks_per_row = (kCols + block - 1) / block;
      const int64_t rows = (static_cast<int64_t>(values.size()) + blocks_per_row - 1) / blocks_per_row;
      std::vector<float> x(rows * kCols);
      for (int64_t i = 0; i < rows * kCols; ++i) {
        const int64_t r = i / kCols, b = i % kCols / block;
        const float v = values[(r * blocks_per_row + b) % values.size()];
        x[i] = i % 2 == 0 ? v : -v;
      }
      ExpectSameEverywhere(codec, x, {rows, kCols},
                           std::string(c.lattice) + " block " + std::to_string(block) + ": RMS near bf16 midpoints");
    }
  }
}

// FNV-1a of a blob: the golden values below were printed by this test against the encoder as it
// was before the AVX-512 kernels and the in-place retries (commit da511e2), and printed again when
// format version 2 changed the T stream's coder (the codes the same: the version 1 values held
// until then).
uint64_t Fnv1a(const std::vector<uint8_t>& bytes) {
  uint64_t h = 1469598103934665603ull;
  for (uint8_t b : bytes) h = (h ^ b) * 1099511628211ull;
  return h;
}

// A fixed input from integer arithmetic only (a sum of four uniforms, scaled), so it is the same
// on every machine and standard library.
std::vector<float> FixedInput(int64_t n) {
  std::vector<float> x(n);
  uint32_t s = 12345;
  for (float& v : x) {
    int32_t sum = 0;
    for (int k = 0; k < 4; ++k) {
      s = s * 1664525u + 1013904223u;
      sum += static_cast<int32_t>(s >> 20);  // uniform in [0, 4096)
    }
    v = static_cast<float>(sum - 8190) / 1024.0f;
    if ((s >> 7) % 17 == 0) v *= 6.0f;
  }
  return x;
}

TEST(RowCodecTest, BlobsAreByteIdenticalToTheFormatBeforeAvx512) {
  struct Golden {
    const char* lattice;
    uint64_t fnv;
  };
  for (const Golden& g : {Golden{"D4", 0x1f2fb12aa5b973aeull}, Golden{"E8", 0xc6464282ac688bf3ull}}) {
    CodecParams p;
    p.lattice = *Lattice::Parse(g.lattice);
    const TensorCodec codec = *TensorCodec::Create(p);
    const std::vector<float> x = FixedInput(64 * 4096);
    for (SimdLevel level : kAllSimdLevels) {
      if (level > DetectedSimdLevel()) continue;
      ScopedSimdLevel scoped(level);
      const CompressedTensor t = *codec.Encode(x.data(), {64, 4096});
      const uint64_t fnv = Fnv1a(Serialize(t));
      EXPECT_EQ(fnv, g.fnv) << g.lattice << " at " << SimdLevelName(level) << ": blob hash 0x" << std::hex << fnv;
    }
  }
}

}  // namespace
}  // namespace coset
