// CpuBackend: the Backend operations equal the core calls they wrap, bit for bit, and errors
// come back as the core's statuses.
#include "core/cpu_backend.h"

#include "core/code_arith.h"
#include "core/format.h"
#include "core/inner_product.h"
#include "core/thread_pool.h"
#include "gtest/gtest.h"
#include "tests/core/test_util.h"

namespace coset {
namespace {

using testing_util::Gaussian;

TEST(CpuBackendTest, EncodeDecodeQuantizeEqualTheCore) {
  ThreadPool pool(2);
  CpuBackend backend(&pool);
  EXPECT_EQ(backend.memory(), MemoryKind::kHost);
  EXPECT_TRUE(backend.Health().ok());
  CodecParams p;
  p.lattice = *Lattice::Parse("E8");
  const std::vector<float> x = Gaussian(9 * 130, 3);
  const EncodeResult r = *backend.Encode(x.data(), {9, 130}, p, DType::kFloat64);
  const TensorCodec codec = *TensorCodec::Create(p);
  EncodeStats stats;
  CompressedTensor local = *codec.Encode(x.data(), {9, 130}, DType::kFloat64, nullptr, &stats);
  EXPECT_EQ(r.blob, Serialize(local));
  EXPECT_EQ(r.stats.chunks, stats.chunks);
  EXPECT_EQ(r.stats.first_try_overloads, stats.first_try_overloads);
  std::vector<float> want(x.size()), got(x.size()), quantized(x.size());
  ASSERT_TRUE(codec.Decode(local, want.data()).ok());
  ASSERT_TRUE(backend.Decode(BlobView(r.blob), got.data()).ok());
  EXPECT_EQ(got, want);
  ASSERT_TRUE(backend.Quantize(x.data(), {9, 130}, p, quantized.data()).ok());
  EXPECT_EQ(quantized, want);
}

TEST(CpuBackendTest, GemmDotsAndSumsEqualTheCore) {
  CpuBackend backend;
  CodecParams p;
  p.scale = ScaleMode::kNone;
  p.beta = 0.25f;
  p.t_max = 0;
  p.on_cap = CapPolicy::kZero;
  const std::vector<float> x = Gaussian(16 * 64, 5), y = Gaussian(16 * 64, 6), q = Gaussian(3 * 64, 7);
  const EncodeResult a = *backend.Encode(x.data(), {16, 64}, p, DType::kFloat32);
  const EncodeResult b = *backend.Encode(y.data(), {16, 64}, p, DType::kFloat32);
  const CompressedTensor ta = *Parse(a.blob.data(), a.blob.size());
  const CompressedTensor tb = *Parse(b.blob.data(), b.blob.size());
  std::vector<float> want(3 * 16), got(3 * 16);
  ASSERT_TRUE(LutMatrix::Create(ta)->Gemm(q.data(), 3, want.data()).ok());
  EXPECT_EQ(*backend.Gemm(BlobView(a.blob), q.data(), 3, got.data()), LutMatrix::Create(ta)->path_name());
  EXPECT_EQ(got, want);
  EXPECT_EQ(*backend.DotRows(BlobView(a.blob), BlobView(b.blob), kDefaultLutBudgetBytes), *DotRows(ta, tb));
  SumValidation v;
  const CompressedTensor sum = *AddCodes({&ta, &tb}, &v);
  const AddCodesResult r = *backend.AddCodes({BlobView(a.blob), BlobView(b.blob)}, true);
  EXPECT_EQ(r.blob, Serialize(sum));
  EXPECT_EQ(r.inexact_chunks, v.inexact_chunks);
  EXPECT_EQ(r.chunks, 16 * 16);
}

TEST(CpuBackendTest, ErrorsAreTheCoresStatuses) {
  CpuBackend backend;
  std::vector<float> x(8, 1.0f);
  x[2] = NAN;
  EXPECT_EQ(backend.Encode(x.data(), {8}, CodecParams{}, DType::kFloat32).status().code(),
            absl::StatusCode::kInvalidArgument);
  const std::vector<uint8_t> junk = {1, 2, 3};
  float out[8];
  EXPECT_EQ(backend.Decode(BlobView(junk), out).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(backend.AddCodes({}, false).status().code(), absl::StatusCode::kInvalidArgument);
  const BackendInfo info = *backend.Info();
  EXPECT_EQ(info.name, "cpu");
}

}  // namespace
}  // namespace coset
