// Bounded randomized requests straight into the service implementation (no network): random
// configurations, shapes, payload sizes, blobs and names. The service must answer every one with
// a status from the documented set and never crash.
#include <random>
#include <set>

#include "core/format.h"
#include "gtest/gtest.h"
#include "server/coset_service.h"

namespace coset {
namespace {

const std::set<grpc::StatusCode> kAllowed = {
    grpc::StatusCode::OK,        grpc::StatusCode::INVALID_ARGUMENT,   grpc::StatusCode::OUT_OF_RANGE,
    grpc::StatusCode::NOT_FOUND, grpc::StatusCode::RESOURCE_EXHAUSTED, grpc::StatusCode::FAILED_PRECONDITION,
    grpc::StatusCode::DATA_LOSS, grpc::StatusCode::ALREADY_EXISTS};

TEST(ServiceFuzzTest, RandomRequestsGetDocumentedStatuses) {
  Metrics metrics;
  ServiceLimits limits;
  limits.memory_budget_bytes = 64 << 20;
  limits.max_message_bytes = 4 << 20;
  CosetServiceImpl service(limits, &metrics, nullptr);
  std::mt19937 rng(99);
  const char* lattices[] = {"D4", "E8", "Z1", "Z4", "A2", "D5", "X9", "", "E8x"};
  std::string last_blob;
  int ok = 0;
  for (int iter = 0; iter < 3000; ++iter) {
    grpc::ServerContext ctx;
    grpc::Status status;
    switch (rng() % 4) {
      case 0: {
        v1::EncodeRequest req;
        v1::CodecConfig* c = req.mutable_codec()->mutable_config();
        c->set_lattice(lattices[rng() % 9]);
        c->set_q(rng() % 10);
        c->set_m(rng() % 10);
        if (rng() % 3 == 0) c->set_beta(static_cast<float>(rng() % 100) / 50 - 0.5f);
        if (rng() % 3 == 0) c->set_alpha(static_cast<float>(rng() % 100) / 10 - 1.0f);
        c->set_block(rng() % 3 == 0 ? rng() % 300 : 0);
        c->set_scale(static_cast<v1::ScaleMode>(rng() % 4));
        c->set_rotate(rng() % 2);
        if (rng() % 4 == 0) c->set_t_max(rng() % 80);
        c->set_on_cap(static_cast<v1::CapPolicy>(rng() % 3));
        const int rank = static_cast<int>(rng() % 4);
        int64_t numel = 1;
        for (int i = 0; i < rank; ++i) {
          const int64_t d = static_cast<int64_t>(rng() % 40) - (rng() % 20 == 0 ? 50 : 0);
          req.mutable_input()->add_shape(d);
          numel *= std::max<int64_t>(d, 0);
        }
        const int64_t bytes =
            std::max<int64_t>(0, numel * 4 + (rng() % 5 == 0 ? static_cast<int64_t>(rng() % 9) - 4 : 0));
        std::string data(bytes, '\0');
        for (size_t i = 0; i + 4 <= data.size(); i += 4) {
          float v = static_cast<float>(static_cast<int32_t>(rng())) / 1e9f;
          if (rng() % 500 == 0) v = NAN;
          if (rng() % 500 == 0) v = 3e38f;
          std::memcpy(&data[i], &v, 4);
        }
        req.mutable_input()->set_data(data);
        v1::EncodeResponse resp;
        status = service.Encode(&ctx, &req, &resp);
        if (status.ok()) last_blob = resp.blob();
        break;
      }
      case 1: {
        v1::DecodeRequest req;
        std::string blob = last_blob;
        if (!blob.empty() && rng() % 2) blob[rng() % blob.size()] ^= static_cast<char>(1 << (rng() % 8));
        if (rng() % 5 == 0) blob.resize(rng() % (blob.size() + 1));
        if (rng() % 7 == 0)
          req.mutable_codes()->set_tensor_name(rng() % 2 ? "nope" : "bad name!");
        else
          req.mutable_codes()->set_blob(blob);
        v1::DecodeResponse resp;
        status = service.Decode(&ctx, &req, &resp);
        break;
      }
      case 2: {
        v1::InnerProductRequest req;
        req.mutable_weights()->set_blob(last_blob);
        if (rng() % 2) {
          const int64_t k = rng() % 50;
          req.mutable_queries()->add_shape(k);
          req.mutable_queries()->set_data(std::string(k * 4, '\0'));
        } else {
          req.mutable_codes()->set_blob(last_blob);
        }
        v1::InnerProductResponse resp;
        status = service.InnerProduct(&ctx, &req, &resp);
        break;
      }
      default: {
        v1::PutTensorRequest req;
        req.set_name(rng() % 3 ? "t" + std::to_string(rng() % 5) : std::string(300, 'x'));
        req.set_blob(rng() % 4 ? last_blob : "junk");
        req.set_overwrite(rng() % 2);
        v1::PutTensorResponse resp;
        status = service.PutTensor(&ctx, &req, &resp);
      }
    }
    ASSERT_TRUE(kAllowed.count(status.error_code())) << status.error_code() << ": " << status.error_message();
    ok += status.ok();
  }
  EXPECT_GT(ok, 100);
}

}  // namespace
}  // namespace coset
