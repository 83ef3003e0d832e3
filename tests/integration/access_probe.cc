// Helper process for the access-control tests: one call to cosetd as whoever runs it (the tests
// start it under another uid with setpriv), printing the call's status code name and, for list,
// the tensor names. Exits 0 when it could make the call, whatever the daemon answered.
//   access_probe ADDR [--tls-ca F] [--tls-cert F --tls-key F] put NAME | get NAME | delete NAME | list
//   access_probe unix:PATH encode-region TOKEN     (an Encode reading a shared-memory region)
#include <cstdio>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "client/coset_client.h"
#include "coset/v1/coset.grpc.pb.h"
#include "grpcpp/grpcpp.h"

namespace {

void Print(const absl::Status& s) { std::printf("%s\n", absl::StatusCodeToString(s.code()).c_str()); }

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  if (args.size() < 2) return 2;
  coset::Client::Options o;
  o.address = args[0];
  o.timeout = std::chrono::milliseconds(2000);
  o.max_attempts = 1;
  size_t i = 1;
  for (; i + 1 < args.size() && args[i].rfind("--tls-", 0) == 0; i += 2) {
    if (args[i] == "--tls-ca") o.tls_ca_file = args[i + 1];
    if (args[i] == "--tls-cert") o.tls_cert_file = args[i + 1];
    if (args[i] == "--tls-key") o.tls_key_file = args[i + 1];
  }
  const std::string op = args[i];
  const std::string arg = i + 1 < args.size() ? args[i + 1] : "";
  if (op == "encode-region") {
    // A raw call: the client library only names regions it registered itself.
    auto stub = coset::v1::Coset::NewStub(grpc::CreateChannel(o.address, grpc::InsecureChannelCredentials()));
    coset::v1::EncodeRequest req;
    req.mutable_codec()->mutable_config();
    coset::v1::Tensor* t = req.mutable_input();
    t->add_shape(1024);
    t->set_dtype(coset::v1::DATA_TYPE_FLOAT32);
    t->mutable_shm()->set_region(arg);
    t->mutable_shm()->set_length(4096);
    coset::v1::EncodeResponse resp;
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
    const grpc::Status s = stub->Encode(&ctx, req, &resp);
    Print(absl::Status(static_cast<absl::StatusCode>(s.error_code()), s.error_message()));
    return 0;
  }
  auto client = coset::Client::Connect(o);
  if (!client.ok()) {
    Print(client.status());
    return 0;
  }
  coset::Client& c = **client;
  if (op == "put") {
    std::vector<float> x(4 * 64, 0.25f);
    auto blob = c.Encode(x.data(), {4, 64}, coset::CodecParams{});
    Print(blob.ok() ? c.PutTensor(arg, *blob, true).status() : blob.status());
  } else if (op == "get") {
    Print(c.GetTensor(arg).status());
  } else if (op == "delete") {
    Print(c.DeleteTensor(arg));
  } else if (op == "list") {
    auto list = c.ListTensors();
    Print(list.status());
    if (list.ok()) {
      for (const auto& t : *list) std::printf("%s\n", t.name.c_str());
    }
  } else {
    return 2;
  }
  return 0;
}
