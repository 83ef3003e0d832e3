// The grid on which a device codec must agree with the CPU codec bit for bit: every lattice, q in
// {3, 4, 5, 8}, M in {1, 2, 3} (where the codec accepts them), rows of 1, 3, 7, 255, 256, 257 and
// 4097 entries, with and without rotation, every scale mode, zero blocks, huge entries deep in the
// overload ramp, capped chunks (zeroed and refused) and NaN refusal. Shared by the CPU run of the
// device steps (device_codec_test) and the GPU run (cuda_codec_test); so are the GEMM, AddCodes and
// DotRows cases below.
#pragma once

#include <cmath>
#include <functional>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "core/code_arith.h"
#include "core/format.h"
#include "core/inner_product.h"
#include "core/tensor_codec.h"
#include "gtest/gtest.h"
#include "tests/core/test_util.h"

namespace coset {
namespace device_testing {

// A device codec under test: encode and decode of host tensors.
struct CodecUnderTest {
  std::function<absl::StatusOr<CompressedTensor>(const TensorCodec&, const float*, const std::vector<int64_t>&,
                                                 EncodeStats*)>
      encode;
  std::function<absl::Status(const CompressedTensor&, float*)> decode;
};

// Heavy-tailed weights: n cubed N(0, 1) values. Under RMS block scales ~8 % of D4 chunks end at
// T >= 3, the packed GEMM's escapes (unrotated: a rotation spreads the tails over the block).
inline std::vector<float> HeavyTailed(int64_t n, uint32_t seed) {
  std::vector<float> w = testing_util::Gaussian(n, seed);
  for (float& v : w) v = v * v * v;
  return w;
}

// Two rows of `cols` entries: Gaussian, with a zero block, a tiny block (its step underflows) and a
// few entries 100x the rest (their chunks climb the overload ramp).
inline std::vector<float> TestRows(int64_t cols, uint32_t seed) {
  std::vector<float> x = testing_util::Gaussian(2 * cols, seed);
  for (int64_t i = 0; i < std::min<int64_t>(cols, 256); ++i) x[i] = 0.0f;  // row 0, first block: zeros
  if (cols > 300) {
    for (int64_t i = 256; i < std::min<int64_t>(cols, 512); ++i) x[i] *= 1e-36f;  // step below kMinStep
  }
  for (int64_t i = cols; i < 2 * cols; i += 97) x[i] *= 100.0f;
  return x;
}

// Encodes x with the CPU codec and with `device`; expects the same status, the same blob bytes and
// the same decoded floats (each side decoding its own codes, and the device decoding the CPU's).
inline void ExpectSameAsCpu(const CodecUnderTest& device, const CodecParams& params, const std::vector<float>& x,
                            const std::vector<int64_t>& shape, const std::string& label) {
  SCOPED_TRACE(label);
  auto codec = TensorCodec::Create(params);
  ASSERT_TRUE(codec.ok()) << codec.status();
  EncodeStats cpu_stats, device_stats;
  auto cpu = codec->Encode(x.data(), shape, DType::kFloat32, nullptr, &cpu_stats);
  auto gpu = device.encode(*codec, x.data(), shape, &device_stats);
  ASSERT_EQ(cpu.status(), gpu.status());
  if (!cpu.ok()) return;
  EXPECT_EQ(Serialize(*cpu), Serialize(*gpu));
  EXPECT_EQ(cpu->t, gpu->t);
  EXPECT_EQ(cpu->scales, gpu->scales);
  EXPECT_EQ(cpu->symbols, gpu->symbols);
  EXPECT_EQ(cpu_stats.first_try_overloads, device_stats.first_try_overloads);
  EXPECT_EQ(cpu_stats.capped, device_stats.capped);
  std::vector<float> cpu_out(x.size()), gpu_out(x.size(), -1.0f);
  ASSERT_TRUE(codec->Decode(*cpu, cpu_out.data()).ok());
  ASSERT_TRUE(device.decode(*cpu, gpu_out.data()).ok());
  // Bitwise, so that -0 and +0 and every last bit count.
  // (memcmp of no entries still needs non-null pointers: an empty vector's data() may be null.)
  if (!x.empty()) {
    EXPECT_EQ(0, std::memcmp(cpu_out.data(), gpu_out.data(), sizeof(float) * x.size()));
  }
}

inline void RunGrid(const CodecUnderTest& device) {
  const char* lattices[] = {"Z1", "Z4", "A2", "D3", "D4", "D8", "E8"};
  const ScaleMode scales[] = {ScaleMode::kNone, ScaleMode::kRms, ScaleMode::kAbsMax};
  const int64_t lengths[] = {1, 3, 7, 255, 256, 257, 4097};
  int cases = 0;
  for (const char* lattice : lattices) {
    for (int q : {3, 4, 5, 8}) {
      for (int levels : {1, 2, 3}) {
        CodecParams p;
        p.lattice = *Lattice::Parse(lattice);
        p.q = q;
        p.M = levels;
        if (!TensorCodec::Create(p).ok()) continue;  // q below the lattice's minimum, codebook too large
        for (int64_t cols : lengths) {
          for (bool rotate : {false, true}) {
            for (ScaleMode scale : scales) {
              p.rotate = rotate;
              p.scale = scale;
              p.beta = scale == ScaleMode::kNone ? 0.25f : 0.0f;
              ExpectSameAsCpu(device, p, TestRows(cols, static_cast<uint32_t>(cols + q)), {2, cols},
                              absl::StrCat(lattice, " q=", q, " M=", levels, " cols=", cols, " rotate=", rotate,
                                           " scale=", ScaleModeName(scale)));
              ++cases;
            }
          }
        }
      }
    }
  }
  EXPECT_GT(cases, 1000);
  ::testing::Test::RecordProperty("grid_cases", cases);  // in the test's XML report
}

// x of `shape` with a NaN, then an Inf, at entry 1500, refused as the CPU codec refuses it (its
// message), under rms and absmax scales.
inline void ExpectNonFiniteRefused(const CodecUnderTest& device, const std::vector<float>& x,
                                   const std::vector<int64_t>& shape) {
  CodecParams p;
  for (float bad : {std::nanf(""), INFINITY}) {
    for (ScaleMode scale : {ScaleMode::kRms, ScaleMode::kAbsMax}) {
      p.scale = scale;
      std::vector<float> y = x;
      y[1500] = bad;
      ExpectSameAsCpu(device, p, y, shape, absl::StrCat("non-finite ", bad, " ", ScaleModeName(scale)));
    }
  }
}

// Capped chunks (t_max 2: the 100x entries cannot fit), zeroed or refused; NaN and Inf refused
// with the CPU's message; an empty last dimension.
inline void RunEdgeCases(const CodecUnderTest& device) {
  CodecParams p;  // D4 q=4 M=2, rms
  p.t_max = 2;
  const std::vector<float> x = TestRows(1000, 7);
  p.on_cap = CapPolicy::kZero;
  EncodeStats stats;
  ASSERT_TRUE(TensorCodec::Create(p)->Encode(x.data(), {2, 1000}, DType::kFloat32, nullptr, &stats).ok());
  EXPECT_GT(stats.capped, 0);  // the case exercises the cap
  ExpectSameAsCpu(device, p, x, {2, 1000}, "capped, zeroed");
  p.on_cap = CapPolicy::kFail;
  ExpectSameAsCpu(device, p, x, {2, 1000}, "capped, refused");
  ExpectNonFiniteRefused(device, x, {2, 1000});
  p = CodecParams{};
  p.rotate = true;
  std::vector<float> huge(512, 3e38f);
  ExpectSameAsCpu(device, p, huge, {2, 256}, "rotation overflow");
  ExpectSameAsCpu(device, CodecParams{}, {}, {3, 0}, "no entries");
}

// Where the run paths apply (RunsApply: rows of whole runs of four chunks; and rows read in place
// with blocks of at most 2048 entries for the single-pass encode's tiles), which the grid and the
// edge cases above mostly miss: capped chunks zeroed and refused, NaN and Inf refused in both
// scale modes, no scales, blocks of 64, 2048 and 4096 entries (16, 1 and no block per tile: the
// run path's two kernels), a short last block in each row, rows shorter than a block (many rows
// per tile), D8 and E8.
inline void RunRunPathCases(const CodecUnderTest& device) {
  const std::vector<float> x = TestRows(1024, 41);
  CodecParams p;  // D4 q=4 M=2, rms
  p.t_max = 2;
  p.on_cap = CapPolicy::kZero;
  EncodeStats stats;
  ASSERT_TRUE(TensorCodec::Create(p)->Encode(x.data(), {2, 1024}, DType::kFloat32, nullptr, &stats).ok());
  EXPECT_GT(stats.capped, 0);  // the case exercises the cap
  for (CapPolicy cap : {CapPolicy::kZero, CapPolicy::kFail}) {
    p.on_cap = cap;
    ExpectSameAsCpu(device, p, x, {2, 1024}, absl::StrCat("capped, ", CapPolicyName(cap)));
  }
  ExpectNonFiniteRefused(device, x, {2, 1024});
  p = CodecParams{};
  p.scale = ScaleMode::kNone;
  p.beta = 0.25f;
  ExpectSameAsCpu(device, p, x, {2, 1024}, "no scales");
  p = CodecParams{};
  const std::vector<float> wide = testing_util::Gaussian(4 * 4096, 43);
  for (int block : {64, 2048, 4096}) {
    p.block = block;
    ExpectSameAsCpu(device, p, wide, {4, 4096}, absl::StrCat("blocks of ", block));
  }
  p = CodecParams{};
  ExpectSameAsCpu(device, p, TestRows(272, 44), {2, 272}, "a short last block");
  ExpectSameAsCpu(device, p, testing_util::Gaussian(300 * 16, 45), {300, 16}, "rows of 16");
  for (const char* lattice : {"D8", "E8"}) {
    p.lattice = *Lattice::Parse(lattice);
    ExpectSameAsCpu(device, p, TestRows(320, 46), {2, 320}, lattice);
  }
}

// A GEMM on codes under test: out[b * N + n] = <queries[b], decode(weights)[n]>.
using GemmUnderTest = std::function<absl::Status(const CompressedTensor&, const float*, int64_t, float*)>;

// Against decode-then-dot in double, within 1e-5 of sum |x_i| |w_i| (the float rounding of any
// summation order): lattices with byte, 16-bit and packed symbols, rotated and not, padded rows,
// rows of whole runs of four chunks (the run path: 256 and 1024 entries at d = 4 and 8) and not (7,
// 520), batches across the 16-query groups, a zero block, a corrupt T, and heavy-tailed weights
// (rows of 4168 entries: packed GEMM rows with more escapes than a warp has lanes).
inline void RunGemmCases(const GemmUnderTest& gemm) {
  struct Case {
    const char* lattice;
    int q;
    bool rotate;
    bool heavy_tails;  // HeavyTailed weights: many chunks at T >= 3 (the packed GEMM's escapes)
  };
  const Case cases[] = {{"D4", 4, false, false}, {"D4", 4, true, false},  {"E8", 4, false, false},
                        {"D8", 3, false, false}, {"A2", 3, false, false}, {"Z4", 5, true, false},
                        {"D4", 4, false, true}};
  for (const Case& k : cases) {
    // Heavy-tailed rows long enough for more escapes than a warp has lanes (~8 % of chunks).
    for (int64_t cols : k.heavy_tails ? std::vector<int64_t>{4168} : std::vector<int64_t>{7, 256, 520, 1024}) {
      for (int64_t batch : {1, 5, 17}) {
        SCOPED_TRACE(absl::StrCat(k.lattice, " q=", k.q, " rotate=", k.rotate, " heavy tails=", k.heavy_tails,
                                  " cols=", cols, " batch=", batch));
        CodecParams p;
        p.lattice = *Lattice::Parse(k.lattice);
        p.q = k.q;
        p.rotate = k.rotate;
        const int64_t rows = 37;
        std::vector<float> w = k.heavy_tails ? HeavyTailed(rows * cols, static_cast<uint32_t>(cols))
                                             : testing_util::Gaussian(rows * cols, static_cast<uint32_t>(cols));
        std::fill(w.begin(), w.begin() + std::min<int64_t>(cols, 256), 0.0f);  // row 0's first block
        const std::vector<float> x = testing_util::Gaussian(batch * cols, static_cast<uint32_t>(batch + 100));
        auto codec = TensorCodec::Create(p);
        ASSERT_TRUE(codec.ok());
        auto coded = codec->Encode(w.data(), {rows, cols});
        ASSERT_TRUE(coded.ok()) << coded.status();
        std::vector<float> decoded(rows * cols);
        ASSERT_TRUE(codec->Decode(*coded, decoded.data()).ok());
        std::vector<float> out(batch * rows, NAN);
        ASSERT_TRUE(gemm(*coded, x.data(), batch, out.data()).ok());
        for (int64_t b = 0; b < batch; ++b) {
          for (int64_t n = 0; n < rows; ++n) {
            double exact = 0, scale = 0;
            for (int64_t i = 0; i < cols; ++i) {
              exact += double(x[b * cols + i]) * decoded[n * cols + i];
              scale += std::fabs(double(x[b * cols + i]) * decoded[n * cols + i]);
            }
            EXPECT_NEAR(out[b * rows + n], exact, 1e-5 * scale + 1e-30) << "query " << b << " row " << n;
          }
        }
        coded->t[3] = static_cast<uint8_t>(p.t_max + 1);
        EXPECT_EQ(gemm(*coded, x.data(), batch, out.data()).code(), absl::StatusCode::kDataLoss);
      }
    }
  }
}

// A device AddCodes under test (core/code_arith.h's signature).
using AddCodesUnderTest =
    std::function<absl::StatusOr<CompressedTensor>(const std::vector<const CompressedTensor*>&, SumValidation*)>;

// Against the CPU's AddCodes: the same blob bytes and the same validation, chunk for chunk, for
// byte, 16-bit and packed symbols (D4, E8, D8 q=4 and Z4 q=5, A2 q=3), one to three levels, sums
// of 1 to 9 codes, some overloading (validation flags them), with and without validation, and the
// same refusals (no codes, codes that do not share scales, a corrupt T).
inline void RunAddCodesCases(const AddCodesUnderTest& add) {
  struct Case {
    const char* lattice;
    int q, levels;
  };
  const Case cases[] = {{"D4", 4, 2}, {"E8", 4, 2}, {"D8", 4, 2}, {"Z4", 5, 2}, {"A2", 3, 3}, {"D4", 3, 1}};
  for (const Case& k : cases) {
    for (int w : {1, 2, 9}) {
      SCOPED_TRACE(absl::StrCat(k.lattice, " q=", k.q, " M=", k.levels, " W=", w));
      // Shared scales: no block scale, a power-of-two beta, T = 0 everywhere.
      CodecParams p;
      p.lattice = *Lattice::Parse(k.lattice);
      p.q = k.q;
      p.M = k.levels;
      p.scale = ScaleMode::kNone;
      p.beta = 0.25f;
      p.t_max = 0;
      p.on_cap = CapPolicy::kZero;
      const TensorCodec codec = *TensorCodec::Create(p);
      std::vector<CompressedTensor> codes;
      for (int i = 0; i < w; ++i) {
        const std::vector<float> x = testing_util::Gaussian(5 * 48, static_cast<uint32_t>(i + 1), 0.7f);
        codes.push_back(*codec.Encode(x.data(), {5, 48}));
      }
      std::vector<const CompressedTensor*> inputs;
      for (const CompressedTensor& c : codes) inputs.push_back(&c);
      SumValidation cpu_validation, device_validation;
      const absl::StatusOr<CompressedTensor> cpu = AddCodes(inputs, &cpu_validation);
      const absl::StatusOr<CompressedTensor> device = add(inputs, &device_validation);
      ASSERT_TRUE(cpu.ok()) << cpu.status();
      ASSERT_TRUE(device.ok()) << device.status();
      EXPECT_EQ(Serialize(*device), Serialize(*cpu));
      EXPECT_EQ(device_validation.chunks, cpu_validation.chunks);
      EXPECT_EQ(device_validation.inexact, cpu_validation.inexact);
      EXPECT_EQ(device_validation.inexact_chunks, cpu_validation.inexact_chunks);
      if (w == 9) {
        EXPECT_GT(cpu_validation.inexact_chunks, 0) << "nine codes should overload somewhere";
      }
      const absl::StatusOr<CompressedTensor> unvalidated = add(inputs, nullptr);
      ASSERT_TRUE(unvalidated.ok()) << unvalidated.status();
      EXPECT_EQ(Serialize(*unvalidated), Serialize(*cpu));
    }
  }
  EXPECT_EQ(add({}, nullptr).status().code(), absl::StatusCode::kInvalidArgument);
  CodecParams rms;  // block scales of its own per tensor: the two do not share scales
  const TensorCodec codec = *TensorCodec::Create(rms);
  const std::vector<float> x = testing_util::Gaussian(2 * 256, 3);
  const CompressedTensor a = *codec.Encode(x.data(), {256}), b = *codec.Encode(x.data() + 256, {256});
  EXPECT_EQ(add({&a, &b}, nullptr).status().code(), absl::StatusCode::kFailedPrecondition);
  CompressedTensor corrupt = a;
  corrupt.t[0] = static_cast<uint8_t>(rms.t_max + 1);
  EXPECT_EQ(add({&corrupt}, nullptr).status().code(), absl::StatusCode::kDataLoss);
}

// A DotRows under test (the device steps on the host, or the CUDA codec).
using DotRowsUnderTest =
    std::function<absl::StatusOr<std::vector<double>>(const CompressedTensor&, const CompressedTensor&, int64_t)>;

// dot against the CPU's DotRows: every lattice family (integral LUTs of each width and A2's float
// one; symbols of one and two bytes and packed), q a power of two or not, 1 to 3 levels, rows of
// odd lengths, the two tensors with different blocks, betas and scales (and the same rotation),
// chunks up the ramp; to double rounding (1e-12 of the product of the rows' norms, far below
// float's). Then the same refusals: different codes, shapes, rotations, a LUT over the budget,
// corrupt T.
inline void RunDotRowsCases(const DotRowsUnderTest& dot) {
  struct Case {
    const char* lattice;
    int q, levels;
    bool rotate;
    ScaleMode scale;
  };
  const Case cases[] = {{"D4", 4, 2, false, ScaleMode::kRms},  {"D4", 3, 2, true, ScaleMode::kRms},
                        {"D4", 4, 3, false, ScaleMode::kNone}, {"Z4", 5, 2, false, ScaleMode::kAbsMax},
                        {"A2", 4, 2, false, ScaleMode::kRms},  {"Z1", 3, 2, true, ScaleMode::kRms},
                        {"D3", 3, 2, false, ScaleMode::kRms},  {"D4", 5, 1, false, ScaleMode::kAbsMax}};
  for (const Case& k : cases) {
    SCOPED_TRACE(absl::StrCat(k.lattice, " q=", k.q, " M=", k.levels, " rotate=", k.rotate));
    CodecParams p;
    p.lattice = *Lattice::Parse(k.lattice);
    p.q = k.q;
    p.M = k.levels;
    p.rotate = k.rotate;
    p.scale = k.scale;
    CodecParams pb = p;
    pb.beta = p.scale == ScaleMode::kNone ? 0.05f : 0.0f;
    if (!k.rotate) pb.block = p.lattice.dim() * 8;  // blocks of their own (the rotation ties them)
    const int64_t cols = 1003;
    std::vector<float> xa = TestRows(cols, 31), xb = TestRows(cols, 32);
    for (float& v : xa) v *= 3.0f;
    const CompressedTensor a = *TensorCodec::Create(p)->Encode(xa.data(), {2, cols});
    const CompressedTensor b = *TensorCodec::Create(pb)->Encode(xb.data(), {2, cols});
    const absl::StatusOr<std::vector<double>> cpu = DotRows(a, b);
    const absl::StatusOr<std::vector<double>> got = dot(a, b, kDefaultLutBudgetBytes);
    ASSERT_TRUE(cpu.ok()) << cpu.status();
    ASSERT_TRUE(got.ok()) << got.status();
    ASSERT_EQ(got->size(), cpu->size());
    std::vector<float> da(xa.size()), db(xb.size());
    ASSERT_TRUE(TensorCodec::Create(p)->Decode(a, da.data()).ok());
    ASSERT_TRUE(TensorCodec::Create(pb)->Decode(b, db.data()).ok());
    for (size_t r = 0; r < cpu->size(); ++r) {
      double na = 0, nb = 0;
      for (int64_t i = 0; i < cols; ++i) {
        na += static_cast<double>(da[r * cols + i]) * da[r * cols + i];
        nb += static_cast<double>(db[r * cols + i]) * db[r * cols + i];
      }
      EXPECT_NEAR((*got)[r], (*cpu)[r], 1e-12 * std::sqrt(na * nb)) << "row " << r;
      EXPECT_NE((*got)[r], 0.0) << "row " << r;
    }
  }
  CodecParams p;
  const CompressedTensor a = *TensorCodec::Create(p)->Encode(testing_util::Gaussian(64, 1).data(), {64});
  auto same_status = [&](const CompressedTensor& x, const CompressedTensor& y, int64_t budget) {
    EXPECT_EQ(dot(x, y, budget).status(), DotRows(x, y, budget).status());
    EXPECT_FALSE(dot(x, y, budget).ok());
  };
  CodecParams rotated = p;
  rotated.rotate = true;
  same_status(a, *TensorCodec::Create(rotated)->Encode(testing_util::Gaussian(64, 2).data(), {64}),
              kDefaultLutBudgetBytes);
  same_status(a, *TensorCodec::Create(p)->Encode(testing_util::Gaussian(32, 2).data(), {32}), kDefaultLutBudgetBytes);
  CodecParams q3 = p;
  q3.q = 3;
  same_status(a, *TensorCodec::Create(q3)->Encode(testing_util::Gaussian(64, 2).data(), {64}), kDefaultLutBudgetBytes);
  same_status(a, a, 1024);  // D4 q=4's LUT is 64 KiB
  CompressedTensor corrupt = a;
  corrupt.t[0] = static_cast<uint8_t>(p.t_max + 1);
  same_status(a, corrupt, kDefaultLutBudgetBytes);
}

}  // namespace device_testing
}  // namespace coset
