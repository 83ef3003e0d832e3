// C++ client of cosetd (coset.v1.Coset over gRPC, TCP or Unix socket). Results are bit-exact
// with the in-process core: the daemon runs the same code on the same inputs.
//
// The public API speaks core types (CodecParams, EncodeStats) and the plain structs below; the
// generated proto types stay inside coset_client.cc. The gRPC channel is injected (Create), so
// tests can hand the client an in-process channel; Connect builds the usual one from an address.
//
// Idempotent calls wait for the daemon to be reachable (up to the call timeout) and are retried
// on UNAVAILABLE, so a client survives a daemon restart. PutTensor and DeleteTensor are not
// retried (a retry after a lost reply could report a false conflict).
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "core/backend.h"
#include "core/limits.h"
#include "core/tensor_codec.h"

namespace grpc {
class Channel;
}  // namespace grpc

namespace coset {

// A resident tensor as the daemon lists it.
struct TensorInfo {
  std::string name;
  std::vector<int64_t> shape;
  std::string lattice;
  int q = 0;
  int M = 0;
  int64_t bytes = 0;
};

struct ServerLimits {
  int64_t max_message_bytes = 0;
  int64_t max_concurrent_requests = 0;
  int64_t memory_budget_bytes = 0;
  int64_t lut_budget_bytes = 0;
};

struct BackendState {
  std::string name;  // "cpu", "cuda"
  bool serving = false;
  std::string detail;  // what it is, or why it does not serve
};

struct ServerInfo {
  std::string version;
  std::vector<std::string> backends;         // the serving ones
  std::vector<BackendState> backend_states;  // every backend of the daemon's build
  ServerLimits limits;
  std::vector<std::string> config_ids;  // registered and cached configurations
  int64_t resident_bytes = 0;
};

class Client {
 public:
  struct Options {
    std::string address;  // unix:/path or host:port
    int64_t max_message_bytes = kDefaultMaxMessageBytes;
    std::chrono::milliseconds timeout{30000};  // per call, retries included
    int max_attempts = 4;
    // Over a Unix socket, Encode/Decode payloads of at least this many bytes travel through a
    // shared-memory region instead of protobuf (0 = never).
    int64_t shm_threshold_bytes = int64_t{1} << 20;
    // TLS to a TCP address (PEM files): the CA that signed the daemon's certificate and, for
    // mutual TLS, this client's certificate and key. Empty: plaintext.
    std::string tls_ca_file;
    std::string tls_cert_file;
    std::string tls_key_file;
    // Sent with every call (proto/client_kind.h): the `client` label of cosetd's request metrics.
    std::string client_kind = "cxx";
  };

  // A channel to options.address with the message limits and reconnect backoff set.
  static absl::StatusOr<std::unique_ptr<Client>> Connect(const Options& options);
  // A client over a caller-made channel (e.g. grpc::Server::InProcessChannel in tests). Shared
  // memory is used only when options.address names the daemon's Unix socket.
  static std::unique_ptr<Client> Create(std::shared_ptr<grpc::Channel> channel, const Options& options);
  ~Client();

  // Encodes x (shape as given) with inline parameters or a registered configuration id.
  absl::StatusOr<std::string> Encode(const float* x, const std::vector<int64_t>& shape, const CodecParams& params,
                                     EncodeStats* stats = nullptr);
  absl::StatusOr<std::string> EncodeWithConfig(const float* x, const std::vector<int64_t>& shape,
                                               const std::string& config_id, EncodeStats* stats = nullptr);
  // Encodes x holding numel values of `dtype` (core/dtype.h), sent in that dtype (bfloat16 and
  // float16 in half the bytes); the blob records it.
  absl::StatusOr<std::string> EncodeTyped(const void* x, DType dtype, const std::vector<int64_t>& shape,
                                          const CodecParams& params, EncodeStats* stats = nullptr);
  // Decodes a blob (or a resident tensor, with by_name): values and shape.
  absl::Status Decode(const std::string& blob_or_name, bool by_name, std::vector<float>* out,
                      std::vector<int64_t>* shape);
  // Decodes a blob into out: numel values of `dtype` (numel from the blob header), narrowed by the
  // daemon.
  absl::Status DecodeTyped(const std::string& blob, DType dtype, void* out);
  absl::Status Quantize(const float* x, const std::vector<int64_t>& shape, const CodecParams& params,
                        std::vector<float>* out);
  // queries: batch x K floats; weights: blob or resident name. out: batch x N.
  absl::Status Gemm(const std::string& weights, bool by_name, const float* queries, int64_t batch, int64_t k,
                    std::vector<float>* out, std::string* path = nullptr);
  absl::StatusOr<std::vector<float>> DotRows(const std::string& a_blob, const std::string& b_blob);
  absl::StatusOr<AddCodesResult> AddCodes(const std::vector<std::string>& blobs, bool validate);
  absl::StatusOr<TensorInfo> PutTensor(const std::string& name, const std::string& blob, bool overwrite);
  absl::StatusOr<std::string> GetTensor(const std::string& name);
  absl::Status DeleteTensor(const std::string& name);
  absl::StatusOr<std::vector<TensorInfo>> ListTensors();
  absl::StatusOr<std::string> RegisterConfig(const CodecParams& params);
  absl::StatusOr<ServerInfo> GetServerInfo();
  // grpc.health.v1 check of `service` ("" = the whole server, or "coset.v1.Coset"): OK when SERVING.
  absl::Status Health(const std::string& service = "");
  // A float buffer inside this client's shared-memory region (Unix sockets only), for zero-copy
  // encodes: a tensor written there is read by the daemon in place. Valid until the next
  // AllocateShared call or reconnect; null when shared memory is unavailable. The client's other
  // large calls leave it alone: they use the region behind it (it has room for an encode's blob
  // and for a decode of the same size), and send their payloads inline when that is too small.
  float* AllocateShared(int64_t floats);
  // Whether the last large Encode/Decode used shared memory (for tests and benchmarks).
  bool used_shared_memory() const;

 private:
  struct Impl;
  explicit Client(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace coset
