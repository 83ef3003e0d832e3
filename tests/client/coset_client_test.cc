// coset::Client over an injected in-process channel to a real CosetServiceImpl: resident tensors,
// registered configurations and server info in the client's own types (no proto types).
#include "client/coset_client.h"

#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "server/coset_service.h"

namespace coset {
namespace {

class CosetClientTest : public ::testing::Test {
 protected:
  void SetUp() override {
    grpc::EnableDefaultHealthCheckService(true);
    grpc::ServerBuilder builder;
    builder.RegisterService(&service_);
    server_ = builder.BuildAndStart();
    Client::Options options;
    options.address = "in-process";
    client_ = Client::Create(server_->InProcessChannel({}), options);
  }
  void TearDown() override { server_->Shutdown(); }

  Metrics metrics_;
  CosetServiceImpl service_{ServiceLimits{}, &metrics_, nullptr};
  std::unique_ptr<grpc::Server> server_;
  std::unique_ptr<Client> client_;
};

TEST_F(CosetClientTest, ResidentTensorsAndConfigurations) {
  std::vector<float> w(32 * 64);
  for (size_t i = 0; i < w.size(); ++i) w[i] = static_cast<float>(i % 11) - 5.0f;
  CodecParams p;
  p.seed = 0;
  const std::string id = *client_->RegisterConfig(p);
  EncodeStats stats;
  const std::string blob = *client_->EncodeWithConfig(w.data(), {32, 64}, id, &stats);
  EXPECT_EQ(stats.chunks, 32 * 16);
  EXPECT_EQ(blob, *client_->Encode(w.data(), {32, 64}, p));
  const TensorInfo info = *client_->PutTensor("w", blob, false);
  EXPECT_EQ(info.name, "w");
  EXPECT_EQ(info.shape, (std::vector<int64_t>{32, 64}));
  EXPECT_EQ(info.lattice, "D4");
  EXPECT_EQ(info.q, 4);
  EXPECT_EQ(info.M, 2);
  EXPECT_EQ(info.bytes, static_cast<int64_t>(blob.size()));
  EXPECT_EQ(client_->ListTensors()->size(), 1u);
  std::vector<float> values;
  std::vector<int64_t> shape;
  ASSERT_TRUE(client_->Decode("w", true, &values, &shape).ok());
  EXPECT_EQ(shape, (std::vector<int64_t>{32, 64}));
  const ServerInfo server = *client_->GetServerInfo();
  EXPECT_EQ(server.version, kCosetVersion);
  EXPECT_EQ(server.backends, std::vector<std::string>{"cpu"});
  EXPECT_EQ(server.config_ids, std::vector<std::string>{id});
  EXPECT_EQ(server.limits.max_message_bytes, kDefaultMaxMessageBytes);
  EXPECT_TRUE(client_->Health().ok());
  EXPECT_FALSE(client_->used_shared_memory());
  EXPECT_EQ(client_->AllocateShared(16), nullptr) << "no Unix socket, no shared memory";
  ASSERT_TRUE(client_->DeleteTensor("w").ok());
  EXPECT_EQ(client_->GetTensor("w").status().code(), absl::StatusCode::kNotFound);
}

TEST(CosetClientConnectTest, AnEmptyAddressIsRefused) {
  EXPECT_EQ(Client::Connect(Client::Options{}).status().code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace coset
