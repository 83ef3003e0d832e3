// CosetServiceImpl called directly (no network): admission by the memory budget and message size,
// registered configurations, metrics by name, and the shared-memory path refused without a socket.
#include "server/coset_service.h"

#include <cstring>

#include "core/code_arith.h"
#include "core/format.h"
#include "gtest/gtest.h"
#include "proto/convert.h"
#include "tests/server/metric_value.h"

namespace coset {
namespace {

void FillInput(int64_t rows, int64_t cols, v1::Tensor* t) {
  std::vector<float> x(rows * cols);
  for (size_t i = 0; i < x.size(); ++i) x[i] = static_cast<float>(i % 17) - 8.0f;
  TensorToProto({rows, cols}, x.data(), DType::kFloat32, t);
}

class CosetServiceTest : public ::testing::Test {
 protected:
  ServiceLimits Limits() {
    ServiceLimits l;
    l.memory_budget_bytes = 64 << 20;  // codebooks of the whole process count here
    l.max_message_bytes = 1 << 20;
    return l;
  }
  Metrics metrics_;
  CosetServiceImpl service_{Limits(), &metrics_, nullptr};
};

TEST_F(CosetServiceTest, RegisteredConfigurationsServeEncodesById) {
  grpc::ServerContext ctx;
  v1::RegisterConfigRequest reg;
  reg.mutable_config()->set_lattice("E8");
  v1::RegisterConfigResponse registered;
  ASSERT_TRUE(service_.RegisterConfig(&ctx, &reg, &registered).ok());
  EXPECT_EQ(registered.resolved().lattice(), "E8");
  EXPECT_GT(registered.resolved().beta(), 0.0f);  // the measured default, resolved
  v1::EncodeRequest req;
  req.mutable_codec()->set_config_id(registered.config_id());
  FillInput(4, 64, req.mutable_input());
  v1::EncodeResponse resp;
  ASSERT_TRUE(service_.Encode(&ctx, &req, &resp).ok());
  EXPECT_EQ(resp.stats().chunks(), 4 * 8);
  EXPECT_EQ(MetricValue(metrics_, "coset_requests_total", {{"method", "Encode"}, {"code", "OK"}}), 1);
  // The T histogram on the metrics (counted while the T stream was coded) is the codes' own.
  const CompressedTensor codes = *Parse(reinterpret_cast<const uint8_t*>(resp.blob().data()), resp.blob().size());
  const OverloadSummary summary = SummarizeOverloads(codes);
  for (int t = 0; t < 8; ++t) {
    const double chunks = MetricValue(metrics_, "coset_overload_t_total", {{"t", std::to_string(t)}});
    EXPECT_EQ(std::max(chunks, 0.0), summary.histogram[t]) << "T = " << t;  // a T no chunk has is not exported
  }
  v1::ServerInfoRequest info_req;
  v1::ServerInfoResponse info;
  ASSERT_TRUE(service_.ServerInfo(&ctx, &info_req, &info).ok());
  ASSERT_EQ(info.configs_size(), 1);
  EXPECT_EQ(info.configs(0).config_id(), registered.config_id());
  EXPECT_GT(info.resident_bytes(), 0);
}

TEST_F(CosetServiceTest, ErrorsAreCanonicalAndCountedByCode) {
  grpc::ServerContext ctx;
  v1::EncodeRequest req;
  req.mutable_codec()->set_config_id("missing");
  FillInput(1, 8, req.mutable_input());
  v1::EncodeResponse resp;
  EXPECT_EQ(service_.Encode(&ctx, &req, &resp).error_code(), grpc::StatusCode::NOT_FOUND);
  req.mutable_codec()->mutable_config()->set_m(0);
  EXPECT_EQ(service_.Encode(&ctx, &req, &resp).error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(MetricValue(metrics_, "coset_requests_total", {{"method", "Encode"}, {"code", "NOT_FOUND"}}), 1);
  EXPECT_EQ(MetricValue(metrics_, "coset_requests_total", {{"method", "Encode"}, {"code", "INVALID_ARGUMENT"}}), 1);
  // Shared-memory references need the side socket, which this service has none of.
  v1::EncodeRequest shm;
  shm.mutable_input()->add_shape(4);
  shm.mutable_input()->mutable_shm()->set_region("r");
  shm.mutable_input()->mutable_shm()->set_length(16);
  EXPECT_EQ(service_.Encode(&ctx, &shm, &resp).error_code(), grpc::StatusCode::FAILED_PRECONDITION);
}

TEST_F(CosetServiceTest, AdmissionRefusesWhatWouldExceedTheBudgetOrTheMessageLimit) {
  grpc::ServerContext ctx;
  // Inline input above the message limit's element count: refused before any work.
  v1::EncodeRequest big;
  FillInput(1024, 300, big.mutable_input());  // 1.2 MB of floats > 1 MiB
  v1::EncodeResponse resp;
  EXPECT_EQ(service_.Encode(&ctx, &big, &resp).error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  // A decode whose output exceeds the message limit.
  v1::EncodeRequest ok_req;
  FillInput(300, 1024, ok_req.mutable_input());  // 1.2 MB of floats decoded
  Metrics metrics;
  ServiceLimits roomy = Limits();
  roomy.max_message_bytes = 2 << 20;
  CosetServiceImpl wide(roomy, &metrics, nullptr);
  ASSERT_TRUE(wide.Encode(&ctx, &ok_req, &resp).ok());
  v1::DecodeRequest dec;
  dec.mutable_codes()->set_blob(resp.blob());
  v1::DecodeResponse out;
  EXPECT_EQ(service_.Decode(&ctx, &dec, &out).error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_EQ(out.output().shape_size(), 0) << "a failed reply is cleared";
}

TEST_F(CosetServiceTest, DecodeCountsTheReplysFramingAgainstTheMessageLimit) {
  grpc::ServerContext ctx;
  // A tensor whose floats alone are exactly the message limit: with its framing the reply would
  // not fit, so it is refused before decoding (before: decoded, then refused by gRPC).
  v1::EncodeRequest req;
  FillInput(256, 1024, req.mutable_input());
  v1::EncodeResponse encoded;
  Metrics metrics;
  ServiceLimits roomy = Limits();
  roomy.max_message_bytes = 2 << 20;
  CosetServiceImpl wide(roomy, &metrics, nullptr);
  ASSERT_TRUE(wide.Encode(&ctx, &req, &encoded).ok());
  v1::DecodeRequest dec;
  dec.mutable_codes()->set_blob(encoded.blob());
  v1::DecodeResponse out;
  const grpc::Status s = service_.Decode(&ctx, &dec, &out);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_NE(s.error_message().find("framing"), std::string::npos) << s.error_message();
}

// The default code of 4M floats (4096 x 1024, a sawtooth): a ~2.3 MB blob.
CompressedTensor FourMillionEntryCode() {
  const int64_t n = int64_t{4} << 20;
  std::vector<float> x(n);
  for (int64_t i = 0; i < n; ++i) x[i] = static_cast<float>(i % 29) - 14.0f;
  return *TensorCodec::Create(CodecParams{})->Encode(x.data(), {n / 1024, 1024});
}

TEST(CosetServiceBudgetTest, AdmissionCountsTheWorkNotTheMessage) {
  // A ~2 MB blob that decodes to 16 MiB of floats, against a 16 MiB budget: the reply (and its
  // serialized copy) cannot fit. Before: admission reserved 3x the message and decoded it anyway.
  Metrics metrics;
  ServiceLimits limits;
  limits.memory_budget_bytes = 16 << 20;
  CosetServiceImpl service(limits, &metrics, nullptr);
  const CompressedTensor t = FourMillionEntryCode();
  const std::vector<uint8_t> blob = Serialize(t);
  grpc::ServerContext ctx;
  v1::DecodeRequest dec;
  dec.mutable_codes()->set_blob(blob.data(), blob.size());
  v1::DecodeResponse out;
  const grpc::Status s = service.Decode(&ctx, &dec, &out);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_NE(s.error_message().find("the decoded tensor and its reply needs"), std::string::npos) << s.error_message();
}

TEST(CosetServiceBudgetTest, AddCodesReservesRowsNotWholeTensorsOfCoordinates) {
  // Two codes of 4M floats (~2.3 MB blobs) summed under a 64 MiB budget: the sum holds a row of
  // int64 coordinates per thread. Before, it reserved 5 x 8 bytes per entry (160 MB) and was
  // refused. The reply is the library's sum; a budget under the codes themselves still refuses.
  const CompressedTensor t = FourMillionEntryCode();
  const std::vector<uint8_t> blob = Serialize(t);
  v1::AddCodesRequest req;
  for (int k = 0; k < 2; ++k) req.add_codes()->set_blob(blob.data(), blob.size());
  req.set_validate(true);
  const auto add = [&](int64_t budget, v1::AddCodesResponse* out) {
    Metrics metrics;
    ServiceLimits limits;
    limits.memory_budget_bytes = budget;
    CosetServiceImpl service(limits, &metrics, nullptr);
    grpc::ServerContext ctx;
    return service.AddCodes(&ctx, &req, out);
  };
  v1::AddCodesResponse sum;
  const grpc::Status served = add(int64_t{64} << 20, &sum);
  ASSERT_TRUE(served.ok()) << served.error_message();
  SumValidation validation;
  const std::vector<uint8_t> expected = Serialize(*AddCodes({&t, &t}, &validation));
  EXPECT_EQ(sum.blob(), std::string(expected.begin(), expected.end()));
  EXPECT_EQ(sum.inexact_chunks(), validation.inexact_chunks);
  v1::AddCodesResponse refused;
  EXPECT_EQ(add(int64_t{4} << 20, &refused).error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
}

TEST(CosetServiceBudgetTest, CodeBuffersKeptBetweenEncodesCountAndGiveWayToRequests) {
  // An encode of 4M floats (D4 q=4 M=2) leaves its codes' buffers (3 MiB) kept for the next encode
  // of about that size, counted as used memory. A larger request of another size (5M floats, M=1:
  // its codes are 2.6 MiB, so it does not take them), with the smallest budget that serves it on a
  // fresh service (found to 64 KiB), fits only if they are given up: it must be served, not refused.
  v1::EncodeRequest kept, other;
  FillInput(4096, 1024, kept.mutable_input());
  FillInput(5120, 1024, other.mutable_input());
  other.mutable_codec()->mutable_config()->set_m(1);
  grpc::ServerContext ctx;
  const auto serves_other = [&](int64_t budget) {
    Metrics metrics;
    ServiceLimits limits;
    limits.memory_budget_bytes = budget;
    CosetServiceImpl fresh(limits, &metrics, nullptr);
    v1::EncodeResponse resp;
    return fresh.Encode(&ctx, &other, &resp).ok();
  };
  int64_t refused = 0, served = int64_t{256} << 20;
  ASSERT_TRUE(serves_other(served));
  while (served - refused > (int64_t{64} << 10)) {
    const int64_t mid = (refused + served) / 2;
    (serves_other(mid) ? served : refused) = mid;
  }
  Metrics metrics;
  ServiceLimits limits;
  limits.memory_budget_bytes = served;
  CosetServiceImpl service(limits, &metrics, nullptr);
  v1::EncodeResponse first, second;
  ASSERT_TRUE(service.Encode(&ctx, &kept, &first).ok());
  const double codebooks = MetricValue(metrics, "coset_codebook_bytes", {});
  EXPECT_GE(MetricValue(metrics, "coset_memory_used_bytes", {}) - codebooks, 3 << 20) << "kept buffers not counted";
  const grpc::Status s = service.Encode(&ctx, &other, &second);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_NEAR(MetricValue(metrics, "coset_memory_used_bytes", {}) - codebooks, 2.6 * (1 << 20), 0.2 * (1 << 20))
      << "only the last encode's buffers are kept";
}

}  // namespace
}  // namespace coset
