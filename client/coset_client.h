// C++ client of cosetd (coset.v1.Coset over gRPC, TCP or Unix socket). Results are bit-exact
// with the in-process core: the daemon runs the same code on the same inputs.
//
// Idempotent calls wait for the daemon to be reachable (up to the call timeout) and are retried
// on UNAVAILABLE, so a client survives a daemon restart. PutTensor and DeleteTensor are not
// retried (a retry after a lost reply could report a false conflict).
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "client/shm_client.h"
#include "core/tensor_codec.h"
#include "coset/v1/coset.grpc.pb.h"

namespace coset {

class Client {
 public:
  struct Options {
    std::string address;                              // unix:/path or host:port
    int64_t max_message_bytes = int64_t{256} << 20;
    std::chrono::milliseconds timeout{30000};         // per call, retries included
    int max_attempts = 4;
    // Over a Unix socket, Encode/Decode payloads of at least this many bytes travel through a
    // shared-memory region instead of protobuf (0 = never).
    int64_t shm_threshold_bytes = int64_t{1} << 20;
  };

  static absl::StatusOr<std::unique_ptr<Client>> Connect(const Options& options);

  // Encodes x (shape as given) with inline parameters or a registered configuration id.
  absl::StatusOr<std::string> Encode(const float* x, const std::vector<int64_t>& shape, const CodecParams& params,
                                     v1::EncodeStats* stats = nullptr);
  absl::StatusOr<std::string> EncodeWithConfig(const float* x, const std::vector<int64_t>& shape,
                                               const std::string& config_id, v1::EncodeStats* stats = nullptr);
  // Decodes a blob (or a resident tensor, with by_name): values and shape.
  absl::Status Decode(const std::string& blob_or_name, bool by_name, std::vector<float>* out,
                      std::vector<int64_t>* shape);
  absl::Status Quantize(const float* x, const std::vector<int64_t>& shape, const CodecParams& params,
                        std::vector<float>* out);
  // queries: batch x K floats; weights: blob or resident name. out: batch x N.
  absl::Status Gemm(const std::string& weights, bool by_name, const float* queries, int64_t batch, int64_t k,
                    std::vector<float>* out, std::string* path = nullptr);
  absl::StatusOr<std::vector<float>> DotRows(const std::string& a_blob, const std::string& b_blob);
  absl::StatusOr<v1::AddCodesResponse> AddCodes(const std::vector<std::string>& blobs, bool validate);
  absl::StatusOr<v1::TensorInfo> PutTensor(const std::string& name, const std::string& blob, bool overwrite);
  absl::StatusOr<std::string> GetTensor(const std::string& name);
  absl::Status DeleteTensor(const std::string& name);
  absl::StatusOr<std::vector<v1::TensorInfo>> ListTensors();
  absl::StatusOr<std::string> RegisterConfig(const CodecParams& params);
  absl::StatusOr<v1::ServerInfoResponse> ServerInfo();
  // grpc.health.v1 check of the whole server: OK when SERVING.
  absl::Status Health();
  // A float buffer inside this client's shared-memory region (Unix sockets only), for zero-copy
  // encodes: a tensor written there is read by the daemon in place. Valid until the next
  // AllocateShared call or reconnect; null when shared memory is unavailable.
  float* AllocateShared(int64_t floats);
  // Whether the last large Encode/Decode used shared memory (for tests and benchmarks).
  bool used_shared_memory() const { return used_shm_; }

 private:
  explicit Client(const Options& options);
  template <typename Request, typename Response, typename Method>
  absl::Status Call(Method method, const Request& request, Response* response, bool idempotent);

  // The shared-memory region, grown to at least `bytes`; null when unavailable (then callers use
  // protobuf payloads). Caller holds shm_mu_.
  ShmChannel* ShmFor(int64_t bytes);
  absl::StatusOr<std::string> EncodeRequestWithShm(v1::EncodeRequest& req, const float* x,
                                                   const std::vector<int64_t>& shape, v1::EncodeStats* stats);

  Options options_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::Coset::Stub> stub_;
  std::mutex shm_mu_;
  std::unique_ptr<ShmChannel> shm_;
  bool used_shm_ = false;
};

}  // namespace coset
