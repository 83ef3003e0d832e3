// The daemon backend: the Backend operations (core/backend.h) served by cosetd through a Client
// (gRPC, shared memory for large payloads). Bit-exact with CpuBackend: the daemon runs the same
// core code on the same inputs.
#pragma once

#include <memory>
#include <string>

#include "client/coset_client.h"
#include "core/backend.h"

namespace coset {

class DaemonBackend final : public Backend {
 public:
  // Connects lazily: a wrong address shows up as UNAVAILABLE on the first call.
  static absl::StatusOr<std::unique_ptr<DaemonBackend>> Connect(const Client::Options& options);
  explicit DaemonBackend(std::unique_ptr<Client> client, std::string address);

  Client& client() { return *client_; }

  // coset::Backend
  MemoryKind memory() const override { return MemoryKind::kHost; }
  absl::StatusOr<BackendInfo> Info() override;
  absl::Status Health() override { return client_->Health(); }
  absl::StatusOr<EncodeResult> Encode(const float* x, const std::vector<int64_t>& shape, const CodecParams& params,
                                      DType original_dtype) override;
  absl::Status Decode(BlobView blob, float* out) override;
  absl::StatusOr<EncodeResult> EncodeTyped(const void* x, DType dtype, const std::vector<int64_t>& shape,
                                           const CodecParams& params) override;
  absl::Status DecodeTyped(BlobView blob, void* out, DType dtype) override;
  absl::Status Quantize(const float* x, const std::vector<int64_t>& shape, const CodecParams& params,
                        float* out) override;
  absl::StatusOr<std::string> Gemm(BlobView weights, const float* queries, int64_t batch, float* out) override;
  absl::StatusOr<std::vector<double>> DotRows(BlobView a, BlobView b, int64_t lut_budget_bytes) override;
  absl::StatusOr<AddCodesResult> AddCodes(const std::vector<BlobView>& blobs, bool validate) override;

 private:
  std::unique_ptr<Client> client_;
  std::string address_;
};

}  // namespace coset
