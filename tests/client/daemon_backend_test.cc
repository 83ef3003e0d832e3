// DaemonBackend over an injected in-process gRPC channel to a real CosetServiceImpl: the same
// bytes and floats as CpuBackend for every operation, and the service's errors passed through.
#include "client/daemon_backend.h"

#include "core/cpu_backend.h"
#include "core/dtype.h"
#include "core/format.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "server/coset_service.h"

namespace coset {
namespace {

std::vector<float> Ramp(int64_t n) {
  std::vector<float> x(n);
  for (int64_t i = 0; i < n; ++i) x[i] = static_cast<float>((i * 37) % 101) / 50.0f - 1.0f;
  return x;
}

class DaemonBackendTest : public ::testing::Test {
 protected:
  void SetUp() override {
    grpc::EnableDefaultHealthCheckService(true);  // as cosetd does
    grpc::ServerBuilder builder;
    builder.RegisterService(&service_);
    server_ = builder.BuildAndStart();
    Client::Options options;
    options.address = "in-process";  // not unix:, so no shared memory
    backend_ = std::make_unique<DaemonBackend>(Client::Create(server_->InProcessChannel({}), options), "in-process");
  }
  void TearDown() override { server_->Shutdown(); }

  Metrics metrics_;
  CosetServiceImpl service_{ServiceLimits{}, &metrics_, nullptr};
  std::unique_ptr<grpc::Server> server_;
  std::unique_ptr<DaemonBackend> backend_;
  CpuBackend cpu_;
};

TEST_F(DaemonBackendTest, TypedEncodeAndDecodeEqualTheCpuBackendAndTheDefaults) {
  const std::vector<float> x = Ramp(16 * 40);
  for (DType dtype : {DType::kFloat32, DType::kFloat64, DType::kBfloat16, DType::kFloat16}) {
    SCOPED_TRACE(DTypeName(dtype));
    std::vector<unsigned char> typed(x.size() * DTypeBytes(dtype));
    FromFloat(x.data(), static_cast<int64_t>(x.size()), dtype, typed.data());
    // The CPU backend (row by row), the daemon (the values sent in their dtype) and the seam's
    // default (through a float32 copy, as a CUDA backend does) make the same blob.
    const EncodeResult local = *cpu_.EncodeTyped(typed.data(), dtype, {16, 40}, CodecParams{});
    const EncodeResult remote = *backend_->EncodeTyped(typed.data(), dtype, {16, 40}, CodecParams{});
    const EncodeResult by_default = *cpu_.Backend::EncodeTyped(typed.data(), dtype, {16, 40}, CodecParams{});
    EXPECT_EQ(remote.blob, local.blob);
    EXPECT_EQ(by_default.blob, local.blob);
    EXPECT_EQ(PeekHeader(local.blob.data(), local.blob.size())->dtype, dtype);
    std::vector<unsigned char> a(typed.size()), b(typed.size()), c(typed.size());
    ASSERT_TRUE(cpu_.DecodeTyped(BlobView(local.blob), a.data(), dtype).ok());
    ASSERT_TRUE(backend_->DecodeTyped(BlobView(remote.blob), b.data(), dtype).ok());
    ASSERT_TRUE(cpu_.Backend::DecodeTyped(BlobView(local.blob), c.data(), dtype).ok());
    EXPECT_EQ(a, b);
    EXPECT_EQ(a, c);
  }
}

TEST_F(DaemonBackendTest, EveryOperationEqualsTheCpuBackend) {
  CodecParams p;
  p.scale = ScaleMode::kNone;
  p.beta = 0.25f;
  p.t_max = 0;
  p.on_cap = CapPolicy::kZero;
  const std::vector<float> x = Ramp(16 * 40), y = Ramp(16 * 40 + 3), q = Ramp(2 * 40);
  const EncodeResult local = *cpu_.Encode(x.data(), {16, 40}, p, DType::kFloat64);
  const EncodeResult remote = *backend_->Encode(x.data(), {16, 40}, p, DType::kFloat64);
  EXPECT_EQ(remote.blob, local.blob);  // float64 recorded in the blob either way
  EXPECT_EQ(remote.stats.chunks, local.stats.chunks);
  std::vector<float> a(x.size()), b(x.size());
  ASSERT_TRUE(cpu_.Decode(BlobView(local.blob), a.data()).ok());
  ASSERT_TRUE(backend_->Decode(BlobView(remote.blob), b.data()).ok());
  EXPECT_EQ(a, b);
  ASSERT_TRUE(backend_->Quantize(x.data(), {16, 40}, p, b.data()).ok());
  EXPECT_EQ(a, b);
  std::vector<float> ga(2 * 16), gb(2 * 16);
  EXPECT_EQ(*cpu_.Gemm(BlobView(local.blob), q.data(), 2, ga.data()),
            *backend_->Gemm(BlobView(remote.blob), q.data(), 2, gb.data()));
  EXPECT_EQ(ga, gb);
  const EncodeResult other = *cpu_.Encode(y.data(), {16, 40}, p, DType::kFloat32);
  const std::vector<double> da = *cpu_.DotRows(BlobView(local.blob), BlobView(other.blob), kDefaultLutBudgetBytes);
  const std::vector<double> db = *backend_->DotRows(BlobView(local.blob), BlobView(other.blob), 0);
  ASSERT_EQ(da.size(), db.size());
  for (size_t i = 0; i < da.size(); ++i) EXPECT_EQ(static_cast<float>(da[i]), db[i]);
  const AddCodesResult sa = *cpu_.AddCodes({BlobView(local.blob), BlobView(other.blob)}, true);
  const AddCodesResult sb = *backend_->AddCodes({BlobView(local.blob), BlobView(other.blob)}, true);
  EXPECT_EQ(sa.blob, sb.blob);
  EXPECT_EQ(sa.inexact_chunks, sb.inexact_chunks);
  EXPECT_TRUE(backend_->Health().ok());
  EXPECT_EQ(backend_->Info()->name, "daemon");
}

TEST_F(DaemonBackendTest, ServiceErrorsComeBackWithTheirCodes) {
  std::vector<float> x(16, 1.0f);
  x[3] = NAN;
  const auto r = backend_->Encode(x.data(), {16}, CodecParams{}, DType::kFloat32);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(r.status().message().find("input[3]"), std::string::npos);
  const std::vector<uint8_t> junk = {'C', 'S', 'E', 'T', 1, 0};
  float out[4];
  EXPECT_FALSE(backend_->Decode(BlobView(junk), out).ok());
}

}  // namespace
}  // namespace coset
