// The CUDA codec against the CPU codec, bit for bit, on the shared grid (codec_cases.h). Needs a
// CUDA device: without one each GPU test skips and says why (no driver, no device). Tagged `gpu`
// so that a GPU machine can run just these (scripts/gpu_check.sh).
#include <cmath>
#include <cstring>

#include "core/dtype.h"
#include "core/format.h"
#include "gtest/gtest.h"
#include "kernels/cuda_runtime.h"
#include "kernels/device_codec_host.h"
#include "tests/kernels/codec_cases.h"

namespace coset {
namespace {

// The CUDA emulation (cuda_codec_emulated_test: kernels/cuda_emulation.h) runs the kernels on one
// CPU core: there the large tensors below shrink by kShrink, and the pipeline's slices with them,
// so that they still cross as many slices.
#if defined(COSET_CUDA_EMULATION)
constexpr int64_t kShrink = 8;
#else
constexpr int64_t kShrink = 1;
#endif

// The codec on device 0, or why the test cannot run.
absl::StatusOr<std::unique_ptr<CudaCodec>> Device() { return CudaCodec::Create(0); }

#define COSET_REQUIRE_GPU(codec) \
  auto codec = Device();         \
  if (!codec.ok()) GTEST_SKIP() << "needs a CUDA device: " << codec.status().message()

device_testing::CodecUnderTest OnDevice(CudaCodec* cuda) {
  return {[cuda](const TensorCodec& codec, const float* x, const std::vector<int64_t>& shape, EncodeStats* stats) {
            return cuda->Encode(codec, x, shape, DType::kFloat32, stats);
          },
          [cuda](const CompressedTensor& tensor, float* out) { return cuda->Decode(tensor, out); }};
}

TEST(CudaProbeTest, SaysWhyNoDeviceIsUsable) {
  // Runs everywhere: on a machine without a GPU this is the path that matters.
  auto probe = ProbeCudaDevice(0);
  if (probe.ok()) {
    EXPECT_FALSE(probe->name.empty());
    EXPECT_GE(probe->compute_major, 7);
    EXPECT_EQ(ProbeCudaDevice(1 << 20).status().code(), absl::StatusCode::kFailedPrecondition);
    return;
  }
  EXPECT_EQ(probe.status().code(), absl::StatusCode::kFailedPrecondition);
  const std::string why(probe.status().message());
  EXPECT_TRUE(why.rfind("no CUDA driver", 0) == 0 || why.rfind("no CUDA device", 0) == 0) << why;
  // The codec refuses with the same reason instead of failing later, and so does page-locking.
  EXPECT_EQ(CudaCodec::Create(0).status(), probe.status());
  std::vector<float> buffer(1024);
  EXPECT_EQ(PageLockedRange::Register(buffer.data(), 4096).status(), probe.status());
}

TEST(DeviceMemoryTest, TheBudgetRefusesBeforeTheDeviceIsAsked) {
  // Runs everywhere: the refusal comes before cudaMalloc, so it needs no device.
  const int64_t before = DeviceMemoryBudget();
  SetDeviceMemoryBudget(1 << 20);
  {
    DeviceMemory too_big;
    const absl::Status refused = too_big.Allocate((1 << 20) + 1);
    EXPECT_EQ(refused.code(), absl::StatusCode::kResourceExhausted) << refused;
    EXPECT_NE(refused.message().find("device memory budget: 1048577 bytes asked, 0 of 1048576 in use"),
              std::string::npos)
        << refused;
    EXPECT_EQ(DeviceBytesInUse(), 0);
    DeviceMemory fits;
    const absl::Status status = fits.Allocate(1 << 19);
    if (status.ok()) {  // a device: the bytes are charged while held, and the rest of the budget is left
      EXPECT_EQ(DeviceBytesInUse(), 1 << 19);
      EXPECT_EQ(too_big.Allocate((1 << 19) + 1).code(), absl::StatusCode::kResourceExhausted);
      EXPECT_TRUE(too_big.Allocate(1 << 19).ok());
      EXPECT_EQ(DeviceBytesInUse(), 1 << 20);
    } else {  // no device: cudaMalloc's failure returns the charge
      EXPECT_EQ(DeviceBytesInUse(), 0);
    }
  }
  EXPECT_EQ(DeviceBytesInUse(), 0);  // freed with the DeviceMemory objects
  SetDeviceMemoryBudget(0);          // no budget: only the device's own memory bounds it
  DeviceMemory unbounded;
  EXPECT_NE(unbounded.Allocate(int64_t{1} << 40).code(), absl::StatusCode::kOk);  // 1 TiB: no device has it
  EXPECT_EQ(DeviceBytesInUse(), 0);
  SetDeviceMemoryBudget(before);
}

TEST(CudaCodecTest, MatchesCpuCodecOnTheGrid) {
  COSET_REQUIRE_GPU(codec);
  device_testing::RunGrid(OnDevice(codec->get()));
}

TEST(CudaCodecTest, MatchesCpuCodecOnEdgeCases) {
  COSET_REQUIRE_GPU(codec);
  device_testing::RunEdgeCases(OnDevice(codec->get()));
}

TEST(CudaCodecTest, GemmOnCodesMatchesDecodeThenDot) {
  COSET_REQUIRE_GPU(codec);
  CudaCodec* cuda = codec->get();
  for (const GemmMethod method :
       {GemmMethod::kFusedTensorCores, GemmMethod::kFusedRuns, GemmMethod::kFusedPerChunk, GemmMethod::kAuto}) {
    SCOPED_TRACE(GemmMethodName(method));
    device_testing::RunGemmCases([cuda, method](const CompressedTensor& w, const float* x, int64_t batch, float* out) {
      const absl::StatusOr<GemmMethod> ran = cuda->Gemm(w, x, batch, out, method);
      if (ran.ok() && method != GemmMethod::kAuto) {
        EXPECT_EQ(*ran, method);
      }
      return ran.status();
    });
  }
}

// For large batches: the weights decoded to float32 on the device, then cuBLAS SGEMM (loaded at
// run time; the test skips, saying why, where the machine's CUDA has no libcublas.so.13).
TEST(CudaCodecTest, GemmByDecodeThenCublasMatchesDecodeThenDot) {
  COSET_REQUIRE_GPU(codec);
  CudaCodec* cuda = codec->get();
  const CompressedTensor probe =
      *TensorCodec::Create(CodecParams{})->Encode(std::vector<float>(256, 1.0f).data(), {1, 256});
  std::vector<float> x(256, 1.0f), out(1);
  const absl::StatusOr<GemmMethod> loaded = cuda->Gemm(probe, x.data(), 1, out.data(), GemmMethod::kDecodeCublas);
  if (absl::IsFailedPrecondition(loaded.status())) GTEST_SKIP() << "needs cuBLAS: " << loaded.status().message();
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  EXPECT_EQ(*loaded, GemmMethod::kDecodeCublas);
  device_testing::RunGemmCases([cuda](const CompressedTensor& w, const float* x, int64_t batch, float* out) {
    return cuda->Gemm(w, x, batch, out, GemmMethod::kDecodeCublas).status();
  });
  // Decoded weights past the device budget: refused when asked for, the fused kernel under kAuto.
  const int64_t budget = DeviceMemoryBudget();
  const CompressedTensor big =
      *TensorCodec::Create(CodecParams{})->Encode(testing_util::Gaussian(1 << 20, 3).data(), {256, 4096});
  SetDeviceMemoryBudget(DeviceBytesInUse() + (3 << 20));  // the codes and queries (1.9 MB), not 4 MiB of floats
  std::vector<float> q = testing_util::Gaussian(64 * 4096, 4), product(64 * 256);
  EXPECT_EQ(cuda->Gemm(big, q.data(), 64, product.data(), GemmMethod::kDecodeCublas).status().code(),
            absl::StatusCode::kResourceExhausted);
  if (kDecodeCublasMinBatch > 0 && kDecodeCublasMinBatch <= 64) {
    const absl::StatusOr<GemmMethod> fell_back = cuda->Gemm(big, q.data(), 64, product.data(), GemmMethod::kAuto);
    ASSERT_TRUE(fell_back.ok()) << fell_back.status();
    EXPECT_EQ(*fell_back, GemmMethod::kFusedPerChunk);
  }
  SetDeviceMemoryBudget(budget);
}

// Typed inputs widened and outputs narrowed on the device: the CPU's blobs and values, bit for bit,
// for float64, bfloat16 and float16 (NaN refused in the CPU's words); rows rotated (widened before
// the encode, narrowed after the decode) and rows of the default D4 and E8 codes, which the run
// path's single-pass encode reads typed and its decodes store typed.
void ExpectTypedMatchesCpu(CudaCodec* cuda) {
  struct Case {
    const char* lattice;
    bool rotate;
    std::vector<int64_t> shape;  // TestRows's two rows of 1050 or 1024 entries
  };
  for (const Case& k : {Case{"D4", true, {7, 300}}, Case{"D4", false, {2, 1024}}, Case{"E8", false, {2, 1024}}}) {
    SCOPED_TRACE(absl::StrCat(k.lattice, k.rotate ? " rotated " : " ", k.shape[0], " x ", k.shape[1]));
    CodecParams p;
    p.lattice = *Lattice::Parse(k.lattice);
    p.rotate = k.rotate;
    const TensorCodec tc = *TensorCodec::Create(p);
    const std::vector<int64_t>& shape = k.shape;
    const int64_t cols = shape[0] * shape[1] / 2;
    const std::vector<float> x = device_testing::TestRows(cols, 21);
    for (const DType dtype : {DType::kFloat64, DType::kBfloat16, DType::kFloat16}) {
      SCOPED_TRACE(DTypeName(dtype));
      std::vector<uint64_t> typed(x.size());  // 8-byte aligned for every dtype
      FromFloat(x.data(), static_cast<int64_t>(x.size()), dtype, typed.data());
      CompressedTensor cpu;
      ASSERT_TRUE(tc.EncodeTypedInto(typed.data(), dtype, shape, nullptr, nullptr, &cpu).ok());
      const absl::StatusOr<CompressedTensor> gpu = cuda->EncodeTyped(tc, typed.data(), dtype, shape, nullptr);
      ASSERT_TRUE(gpu.ok()) << gpu.status();
      EXPECT_EQ(Serialize(*gpu), Serialize(cpu));
      const size_t bytes = DTypeBytes(dtype) * x.size();
      std::vector<uint64_t> cpu_out(x.size(), 0), gpu_out(x.size(), 1);
      ASSERT_TRUE(tc.DecodeTyped(cpu, cpu_out.data(), dtype).ok());
      ASSERT_TRUE(cuda->DecodeTyped(cpu, gpu_out.data(), dtype).ok());
      EXPECT_EQ(0, std::memcmp(cpu_out.data(), gpu_out.data(), bytes));
      std::vector<uint64_t> bad = typed;
      std::vector<float> with_nan = x;
      with_nan[777] = NAN;
      FromFloat(with_nan.data(), static_cast<int64_t>(x.size()), dtype, bad.data());
      CompressedTensor refused;
      const absl::Status cpu_status = tc.EncodeTypedInto(bad.data(), dtype, shape, nullptr, nullptr, &refused);
      EXPECT_FALSE(cpu_status.ok());
      EXPECT_EQ(cuda->EncodeTyped(tc, bad.data(), dtype, shape, nullptr).status(), cpu_status);
    }
  }
}

TEST(CudaCodecTest, TypedEncodeAndDecodeMatchTheCpu) {
  COSET_REQUIRE_GPU(codec);
  ExpectTypedMatchesCpu(codec->get());
}

TEST(CudaCodecTest, AddCodesMatchesTheCpu) {
  COSET_REQUIRE_GPU(codec);
  CudaCodec* cuda = codec->get();
  device_testing::RunAddCodesCases([cuda](const std::vector<const CompressedTensor*>& codes,
                                          SumValidation* validation) { return cuda->AddCodes(codes, validation); });
}

// DotRows from the two-sided LUT on the device: the CPU's results to double rounding and its
// refusals, and its host run's bits (the same lanes and shuffle tree).
TEST(CudaCodecTest, DotRowsMatchesItsHostRunBitForBit) {
  COSET_REQUIRE_GPU(codec);
  CudaCodec* cuda = codec->get();
  device_testing::RunDotRowsCases([cuda](const CompressedTensor& a, const CompressedTensor& b, int64_t budget) {
    return cuda->DotRows(a, b, budget);
  });
  for (const char* lattice : {"D4", "A2", "Z4"}) {
    CodecParams p;
    p.lattice = *Lattice::Parse(lattice);
    const TensorCodec tc = *TensorCodec::Create(p);
    const CompressedTensor a = *tc.Encode(testing_util::Gaussian(33 * 4000, 1).data(), {33, 4000});
    const CompressedTensor b = *tc.Encode(testing_util::Gaussian(33 * 4000, 2).data(), {33, 4000});
    const std::vector<double> gpu = *cuda->DotRows(a, b), host = *device::DotRowsWithDeviceSteps(a, b);
    ASSERT_EQ(gpu.size(), host.size());
    for (size_t r = 0; r < gpu.size(); ++r) EXPECT_EQ(gpu[r], host[r]) << lattice << " row " << r;
  }
}

// The kRuns GEMM kernels (D4: the packed GEMM on two-bit T; E8: the run kernel on half points)
// against their lane-by-lane host runs (GemmWithDeviceSteps): the same bits, so every chunk or
// run, lane and row a kernel reads is the one the host run reads, for each of its three warp
// shapes (packed: four rows and one query, two rows and up to 4, one row and up to 16; runs: two
// rows and one query, one row and up to 4, up to 16) and row counts that leave a short last
// group; D4 also on heavy-tailed rows (HeavyTailed), whose escapes from two-bit T outnumber a
// warp's lanes.
TEST(CudaCodecTest, GemmRunPathMatchesItsHostRunBitForBit) {
  COSET_REQUIRE_GPU(codec);
  struct Case {
    const char* lattice;
    bool rotate, heavy_tails;  // HeavyTailed rows unrotated: a rotation spreads the tails
  };
  for (const Case& k : {Case{"D4", true, false}, Case{"E8", false, false}, Case{"D4", false, true}}) {
    const bool d4 = std::string(k.lattice) == "D4";
    CodecParams p;
    p.lattice = *Lattice::Parse(k.lattice);
    p.rotate = k.rotate;
    const int64_t rows = 37, cols = 2048;
    const TensorCodec tc = *TensorCodec::Create(p);
    const std::vector<float> w =
        k.heavy_tails ? device_testing::HeavyTailed(rows * cols, 5) : testing_util::Gaussian(rows * cols, 5);
    const CompressedTensor coded = *tc.Encode(w.data(), {rows, cols});
    const device::DeviceCodec c = device::MakePlan(tc, {rows, cols})->view();
    ASSERT_TRUE(device::RunsApply(c));
    ASSERT_EQ(device::PackedApplies(c), d4);
    if (k.heavy_tails) {  // some row's escapes go round the warp's lanes
      const device::CompactOverloadsOnHost compact = device::BuildCompactOverloads(c, coded.t.data());
      uint32_t most = 0;
      for (int64_t n = 0; n < rows; ++n) most = std::max(most, compact.escape_begin[n + 1] - compact.escape_begin[n]);
      ASSERT_GT(most, 32u);
    }
    for (int64_t batch : {1, 3, 4, 16, 21}) {
      SCOPED_TRACE(absl::StrCat(k.lattice, k.heavy_tails ? " heavy tails" : "", " batch ", batch));
      const std::vector<float> x = testing_util::Gaussian(batch * cols, static_cast<uint32_t>(batch));
      std::vector<float> gpu(batch * rows, NAN), host(batch * rows, NAN);
      ASSERT_TRUE(codec->get()->Gemm(coded, x.data(), batch, gpu.data(), GemmMethod::kFusedRuns).ok());
      ASSERT_TRUE(device::GemmWithDeviceSteps(coded, x.data(), batch, host.data(), device::KernelPath::kRuns).ok());
      for (int64_t i = 0; i < batch * rows; ++i) {
        ASSERT_EQ(FloatBits(gpu[i]), FloatBits(host[i])) << "query " << i / rows << " row " << i % rows;
      }
    }
  }
}

// The tensor-core GEMM (kFusedTensorCores from 5 queries on: D4's default code on its packed
// table, E8's on half points) over more thread block items than the grid has blocks (300 rows: ten
// groups of 32, the last short; 40 queries: groups of 16, 16 and 8) and more steps per row than a
// block has warps: within 1e-5 of sum |x w| of decode-then-dot, with and without rotation, and the
// same floats on a second run (the warps' sums meet in a fixed order).
TEST(CudaCodecTest, GemmOnTensorCoresMatchesDecodeThenDot) {
  COSET_REQUIRE_GPU(codec);
  for (const char* lattice : {"D4", "E8"}) {
    for (const bool rotate : {false, true}) {
      SCOPED_TRACE(absl::StrCat(lattice, rotate ? " rotated" : ""));
      CodecParams p;
      p.lattice = *Lattice::Parse(lattice);
      p.rotate = rotate;
      const int64_t rows = 300, cols = 1024, batch = 40;
      const TensorCodec tc = *TensorCodec::Create(p);
      const CompressedTensor coded = *tc.Encode(testing_util::Gaussian(rows * cols, 6).data(), {rows, cols});
      const device::DeviceCodec c = device::MakePlan(tc, {rows, cols})->view();
      ASSERT_TRUE(p.lattice.kind() == LatticeKind::kE8 ? device::HalvesTensorCoresApply(c)
                                                       : device::TensorCoresApply(c));
      std::vector<float> decoded(rows * cols);
      ASSERT_TRUE(tc.Decode(coded, decoded.data()).ok());
      const std::vector<float> x = testing_util::Gaussian(batch * cols, 7);
      std::vector<float> gpu(batch * rows, NAN), again(batch * rows, NAN);
      ASSERT_TRUE(codec->get()->Gemm(coded, x.data(), batch, gpu.data(), GemmMethod::kFusedTensorCores).ok());
      ASSERT_TRUE(codec->get()->Gemm(coded, x.data(), batch, again.data(), GemmMethod::kFusedTensorCores).ok());
      for (int64_t b = 0; b < batch; ++b) {
        for (int64_t n = 0; n < rows; ++n) {
          double exact = 0, scale = 0;
          for (int64_t i = 0; i < cols; ++i) {
            exact += double{x[b * cols + i]} * decoded[n * cols + i];
            scale += std::fabs(double{x[b * cols + i]} * decoded[n * cols + i]);
          }
          ASSERT_NEAR(gpu[b * rows + n], exact, 1e-5 * scale) << "query " << b << " row " << n;
          ASSERT_EQ(FloatBits(gpu[b * rows + n]), FloatBits(again[b * rows + n])) << "query " << b << " row " << n;
        }
      }
    }
  }
}

// What cosetd's resident weights do: the codes uploaded once for GEMMs (with two-bit T for the
// packed GEMM; all of it charged to the device memory in use until freed), then GEMMs against them
// with the staged GEMM's results bit for bit, on the per-chunk and the run paths.
TEST(CudaCodecTest, GemmOnUploadedCodesEqualsTheStagedGemm) {
  COSET_REQUIRE_GPU(codec);
  const int64_t rows = 129, cols = 1000;
  const TensorCodec tc = *TensorCodec::Create(CodecParams{});
  const CompressedTensor coded = *tc.Encode(testing_util::Gaussian(rows * cols, 8).data(), {rows, cols});
  // The codebook's device tables, uploaded on the codec's first use of the codebook and kept with
  // it, are the codec's, not the codes': up before the count starts.
  std::vector<float> warm(rows, NAN);
  ASSERT_TRUE(codec->get()->Gemm(coded, testing_util::Gaussian(cols, 1).data(), 1, warm.data()).ok());
  const int64_t before = DeviceBytesInUse();
  {
    CodesOnDevice codes;
    ASSERT_TRUE(codec->get()->Upload(coded, &codes, CodesFor::kGemm).ok());
    ASSERT_NE(codes.gemm.compact.words, nullptr);
    EXPECT_GE(codes.bytes(), codes.code_bytes);
    EXPECT_LT(codes.gemm_code_bytes(), codes.code_bytes);
    EXPECT_EQ(DeviceBytesInUse() - before, codes.bytes());
    for (const GemmMethod method : {GemmMethod::kFusedPerChunk, GemmMethod::kFusedRuns}) {
      for (int64_t batch : {1, 5, 16}) {
        SCOPED_TRACE(absl::StrCat(GemmMethodName(method), " batch ", batch));
        const std::vector<float> x = testing_util::Gaussian(batch * cols, static_cast<uint32_t>(batch));
        std::vector<float> kept(batch * rows, NAN), staged(batch * rows, NAN);
        ASSERT_TRUE(codec->get()->Gemm(codes, x.data(), batch, kept.data(), method).ok());
        ASSERT_TRUE(codec->get()->Gemm(coded, x.data(), batch, staged.data(), method).ok());
        for (int64_t i = 0; i < batch * rows; ++i) ASSERT_EQ(FloatBits(kept[i]), FloatBits(staged[i])) << i;
      }
    }
  }
  EXPECT_EQ(DeviceBytesInUse(), before);
}

// The run path's GEMM at d = 8 on half points (codes uploaded for GEMMs: E8 and D8 at q = 4, whose
// codebook tables do not fit in shared memory) gives the floats of the run path on the codebook
// table (the same codes uploaded for decodes) bit for bit: GEMV and both batched warp shapes, rows
// that leave a short last group, rotated and scaled codes. The half-point indices are charged to
// the device memory in use, and the GEMV streams them instead of the symbols.
TEST(CudaCodecTest, GemmOnHalfPointsEqualsTheRunPathOnTheCodebook) {
  COSET_REQUIRE_GPU(codec);
  for (const char* lattice : {"E8", "D8"}) {
    CodecParams p;
    p.lattice = *Lattice::Parse(lattice);
    p.rotate = std::string(lattice) == "E8";
    const int64_t rows = 37, cols = 1536;
    const TensorCodec tc = *TensorCodec::Create(p);
    const CompressedTensor coded = *tc.Encode(testing_util::Gaussian(rows * cols, 14).data(), {rows, cols});
    CodesOnDevice for_decode, for_gemm;
    ASSERT_TRUE(codec->get()->Upload(coded, &for_decode).ok());
    const int64_t before = DeviceBytesInUse();
    ASSERT_TRUE(codec->get()->Upload(coded, &for_gemm, CodesFor::kGemm).ok());
    ASSERT_TRUE(device::HalvesApply(for_gemm.codec));
    ASSERT_NE(for_gemm.gemm.halves.head, nullptr);
    EXPECT_EQ(for_decode.gemm.halves.head, nullptr);
    EXPECT_EQ(DeviceBytesInUse() - before, for_gemm.bytes());
    // Per run of 32 entries: 20 bytes of indices instead of 16 of symbols.
    EXPECT_EQ(for_gemm.gemm_code_bytes() - for_gemm.code_bytes, rows * cols / 32 * 4);
    for (int64_t batch : {1, 3, 16, 21}) {
      SCOPED_TRACE(absl::StrCat(lattice, " batch ", batch));
      const std::vector<float> x = testing_util::Gaussian(batch * cols, static_cast<uint32_t>(batch + 20));
      std::vector<float> halves(batch * rows, NAN), table(batch * rows, NAN);
      ASSERT_TRUE(codec->get()->Gemm(for_gemm, x.data(), batch, halves.data(), GemmMethod::kFusedRuns).ok());
      ASSERT_TRUE(codec->get()->Gemm(for_decode, x.data(), batch, table.data(), GemmMethod::kFusedRuns).ok());
      for (int64_t i = 0; i < batch * rows; ++i) {
        ASSERT_EQ(FloatBits(halves[i]), FloatBits(table[i])) << "query " << i / rows << " row " << i % rows;
      }
    }
  }
}

// StagingOptions::kPipelined: slices of blocks through page-locked slots and two copy streams. With
// slices of one block of 256 floats (1 KiB), every case of the grid crosses many slices and
// reuses each slot many times; typed data has slices of its own width; a 64 MiB tensor runs at
// the default slice size; and memory the caller page-locked is copied in place.
TEST(CudaCodecTest, PipelinedStagingMatchesTheCpu) {
  COSET_REQUIRE_GPU(codec);
  CudaCodec* cuda = codec->get();
  cuda->set_staging({StagingOptions::Mode::kPipelined, 1024});
  device_testing::RunGrid(OnDevice(cuda));
  device_testing::RunEdgeCases(OnDevice(cuda));
  cuda->set_staging({StagingOptions::Mode::kPipelined, 3000});
  ExpectTypedMatchesCpu(cuda);
  cuda->set_staging({StagingOptions::Mode::kPipelined, kStagingSliceBytes / kShrink});
  CodecParams p;
  p.rotate = true;
  std::vector<float> x = testing_util::Gaussian((int64_t{1} << 24) / kShrink, 13);
  device_testing::ExpectSameAsCpu(OnDevice(cuda), p, x, {4096 / kShrink, 4096}, "64 MiB, 8 MiB slices");
  p.lattice = *Lattice::Parse("E8");
  {
    // ExpectSameAsCpu's decode writes into a vector of its own: register x for the encode's side.
    auto locked = PageLockedRange::Register(x.data(), static_cast<int64_t>(x.size() * sizeof(float)));
    ASSERT_TRUE(locked.ok()) << locked.status();
    device_testing::ExpectSameAsCpu(OnDevice(cuda), p, x, {1, (int64_t{1} << 24) / kShrink},
                                    "E8, one row, page-locked input");
  }
  const TensorCodec tc = *TensorCodec::Create(p);
  const CompressedTensor coded = *tc.Encode(x.data(), {2048 / kShrink, 8192});
  std::vector<float> cpu(x.size()), gpu(x.size(), NAN);
  ASSERT_TRUE(tc.Decode(coded, cpu.data()).ok());
  auto locked = PageLockedRange::Register(gpu.data(), static_cast<int64_t>(gpu.size() * sizeof(float)));
  ASSERT_TRUE(locked.ok()) << locked.status();
  ASSERT_TRUE(cuda->Decode(coded, gpu.data()).ok());
  EXPECT_EQ(0, std::memcmp(cpu.data(), gpu.data(), cpu.size() * sizeof(float))) << "page-locked output";
}

// The run paths of the encode and decode kernels (KernelPath::kRuns: a thread per run of four
// chunks, where RunsApply; the single-pass encode where TilesApply): the grid, the edge cases, the
// run path's own cases and typed data, whole and through the pipeline's slices of one block, and
// 16 MiB of D4 and E8, all the CPU codec's bytes and floats.
TEST(CudaCodecTest, RunPathsMatchTheCpu) {
  COSET_REQUIRE_GPU(codec);
  CudaCodec* cuda = codec->get();
  cuda->set_codec_kernels(device::KernelPath::kRuns);
  device_testing::RunGrid(OnDevice(cuda));
  device_testing::RunEdgeCases(OnDevice(cuda));
  device_testing::RunRunPathCases(OnDevice(cuda));
  ExpectTypedMatchesCpu(cuda);
  for (const char* lattice : {"D4", "E8"}) {
    CodecParams p;
    p.lattice = *Lattice::Parse(lattice);
    device_testing::ExpectSameAsCpu(OnDevice(cuda), p, testing_util::Gaussian((int64_t{1} << 22) / kShrink, 17),
                                    {1024 / kShrink, 4096}, lattice);
  }
  cuda->set_staging({StagingOptions::Mode::kPipelined, 1024});
  device_testing::RunGrid(OnDevice(cuda));
  device_testing::RunEdgeCases(OnDevice(cuda));
  device_testing::RunRunPathCases(OnDevice(cuda));
  ExpectTypedMatchesCpu(cuda);
}

TEST(CudaCodecTest, LargeTensorMatchesCpuCodec) {
  COSET_REQUIRE_GPU(codec);
  for (const char* lattice : {"D4", "E8"}) {
    CodecParams p;
    p.lattice = *Lattice::Parse(lattice);
    const std::vector<float> x = testing_util::Gaussian((int64_t{1} << 22) / kShrink, 11);
    device_testing::ExpectSameAsCpu(OnDevice(codec->get()), p, x, {1024 / kShrink, 4096}, lattice);
  }
}

}  // namespace
}  // namespace coset
