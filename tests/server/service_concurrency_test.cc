// CosetServiceImpl under concurrent calls from many threads, with no network in between, so that
// ThreadSanitizer (scripts/test.sh's TSan pass) sees every access of the daemon's shared state:
// the tensor store and its lazily built LUT matrices, the configuration cache, the codebook cache,
// the memory budget, the metrics and the codec pool. Results are checked against the single-thread
// answers, so a race that corrupts data fails here even without a sanitizer.
#include <atomic>
#include <string>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "proto/convert.h"
#include "server/coset_service.h"

namespace coset {
namespace {

constexpr int kThreads = 8;
constexpr int kRounds = 40;

void FillInput(int64_t rows, int64_t cols, int seed, v1::Tensor* t) {
  std::vector<float> x(rows * cols);
  for (size_t i = 0; i < x.size(); ++i) x[i] = static_cast<float>((i * 7 + seed) % 23) / 4.0f - 2.5f;
  TensorToProto({rows, cols}, x.data(), DType::kFloat32, t);
}

TEST(ServiceConcurrencyTest, ManyThreadsShareTheStoreCachesBudgetAndPool) {
  Metrics metrics;
  ServiceLimits limits;
  limits.memory_budget_bytes = 256 << 20;
  limits.threads = 2;
  CosetServiceImpl service(limits, &metrics, nullptr);

  // Reference answers, computed once on one thread.
  grpc::ServerContext ctx;
  v1::EncodeRequest encode;
  *encode.mutable_codec()->mutable_config() = ParamsToProto(*ParamsFromText("lattice=E8,q=4,M=2"));
  FillInput(16, 256, 1, encode.mutable_input());
  v1::EncodeResponse reference;
  ASSERT_TRUE(service.Encode(&ctx, &encode, &reference).ok());
  v1::PutTensorRequest put;
  put.set_name("shared/w");
  put.set_blob(reference.blob());
  v1::PutTensorResponse put_resp;
  ASSERT_TRUE(service.PutTensor(&ctx, &put, &put_resp).ok());
  v1::InnerProductRequest gemv;
  gemv.mutable_weights()->set_tensor_name("shared/w");
  FillInput(1, 256, 2, gemv.mutable_queries());
  gemv.mutable_queries()->clear_shape();
  gemv.mutable_queries()->add_shape(256);  // one query of K = 256
  v1::InnerProductResponse gemv_reference;
  // Deleted and put back so that the threads below race to build the LUT matrix themselves.
  ASSERT_TRUE(service.InnerProduct(&ctx, &gemv, &gemv_reference).ok());
  v1::DeleteTensorRequest del;
  del.set_name("shared/w");
  v1::DeleteTensorResponse del_resp;
  ASSERT_TRUE(service.DeleteTensor(&ctx, &del, &del_resp).ok());
  ASSERT_TRUE(service.PutTensor(&ctx, &put, &put_resp).ok());

  std::atomic<int> failures{0}, wrong{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      const std::string own = "thread/" + std::to_string(t);
      for (int r = 0; r < kRounds; ++r) {
        grpc::ServerContext c;
        switch ((t + r) % 5) {
          case 0: {  // a large encode on the shared pool, then its bytes
            v1::EncodeRequest req = encode;
            if (r % 2) FillInput(256, 4096, 3, req.mutable_input());
            v1::EncodeResponse resp;
            failures += !service.Encode(&c, &req, &resp).ok();
            if (r % 2 == 0) wrong += resp.blob() != reference.blob();
            break;
          }
          case 1: {  // the shared tensor's LUT matrix, built once by whichever thread comes first
            v1::InnerProductResponse resp;
            failures += !service.InnerProduct(&c, &gemv, &resp).ok();
            wrong += resp.output().data() != gemv_reference.output().data();
            break;
          }
          case 2: {  // own tensors: put (replace), get, list, delete
            v1::PutTensorRequest p = put;
            p.set_name(own);
            p.set_overwrite(true);
            v1::PutTensorResponse pr;
            failures += !service.PutTensor(&c, &p, &pr).ok();
            v1::GetTensorRequest g;
            g.set_name(own);
            v1::GetTensorResponse gr;
            failures += !service.GetTensor(&c, &g, &gr).ok();
            wrong += gr.blob() != reference.blob();
            v1::ListTensorsRequest l;
            v1::ListTensorsResponse lr;
            failures += !service.ListTensors(&c, &l, &lr).ok();
            if (r % 3 == 0) {
              v1::DeleteTensorRequest d;
              d.set_name(own);
              v1::DeleteTensorResponse dr;
              failures += !service.DeleteTensor(&c, &d, &dr).ok();
            }
            break;
          }
          case 3: {  // configurations: registered and inline ones with distinct betas
            v1::RegisterConfigRequest reg;
            *reg.mutable_config() = encode.codec().config();
            reg.mutable_config()->set_beta(0.5f + 0.01f * static_cast<float>(r % 7));
            v1::RegisterConfigResponse rr;
            failures += !service.RegisterConfig(&c, &reg, &rr).ok();
            v1::EncodeRequest by_id = encode;
            by_id.mutable_codec()->set_config_id(rr.config_id());
            v1::EncodeResponse resp;
            failures += !service.Encode(&c, &by_id, &resp).ok();
            break;
          }
          default: {  // metrics and gauges read while everything else moves
            v1::ServerInfoRequest i;
            v1::ServerInfoResponse ir;
            failures += !service.ServerInfo(&c, &i, &ir).ok();
            v1::AddCodesRequest add;
            add.add_codes()->set_tensor_name("shared/w");
            add.add_codes()->set_blob(reference.blob());
            v1::AddCodesResponse ar;
            failures += !service.AddCodes(&c, &add, &ar).ok();
          }
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(failures.load(), 0);
  EXPECT_EQ(wrong.load(), 0);
}

}  // namespace
}  // namespace coset
