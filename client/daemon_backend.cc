#include "client/daemon_backend.h"

#include <cstring>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "core/format.h"
#include "core/status_macros.h"

namespace coset {
namespace {

std::string AsString(BlobView blob) { return std::string(reinterpret_cast<const char*>(blob.data()), blob.size()); }

}  // namespace

absl::StatusOr<std::unique_ptr<DaemonBackend>> DaemonBackend::Connect(const Client::Options& options) {
  COSET_ASSIGN_OR_RETURN(std::unique_ptr<Client> client, Client::Connect(options));
  return std::make_unique<DaemonBackend>(std::move(client), options.address);
}

DaemonBackend::DaemonBackend(std::unique_ptr<Client> client, std::string address)
    : client_(std::move(client)), address_(std::move(address)) {}

absl::StatusOr<BackendInfo> DaemonBackend::Info() {
  COSET_ASSIGN_OR_RETURN(ServerInfo info, client_->GetServerInfo());
  BackendInfo out;
  out.name = "daemon";
  out.description = absl::StrCat("cosetd ", info.version, " at ", address_);
  out.details = {{"daemon", address_},
                 {"version", info.version},
                 {"backends", absl::StrJoin(info.backends, ",")},
                 {"max_message_bytes", absl::StrCat(info.limits.max_message_bytes)},
                 {"max_concurrent_requests", absl::StrCat(info.limits.max_concurrent_requests)},
                 {"memory_budget_bytes", absl::StrCat(info.limits.memory_budget_bytes)},
                 {"lut_budget_bytes", absl::StrCat(info.limits.lut_budget_bytes)},
                 {"configs", absl::StrCat(info.config_ids.size())},
                 {"resident_bytes", absl::StrCat(info.resident_bytes)}};
  for (const BackendState& b : info.backend_states) {
    out.details.emplace_back("backend_" + b.name, absl::StrCat(b.serving ? "serving: " : "not serving: ", b.detail));
  }
  return out;
}

absl::StatusOr<EncodeResult> DaemonBackend::Encode(const float* x, const std::vector<int64_t>& shape,
                                                   const CodecParams& params, DType original_dtype) {
  EncodeResult result;
  COSET_ASSIGN_OR_RETURN(std::string blob, client_->Encode(x, shape, params, &result.stats));
  result.blob.assign(blob.begin(), blob.end());
  if (original_dtype != DType::kFloat32) {
    // The daemon sees float32; the blob records the caller's original dtype.
    COSET_ASSIGN_OR_RETURN(CompressedTensor t, Parse(result.blob.data(), result.blob.size()));
    t.dtype = original_dtype;
    result.blob = Serialize(t);
  }
  return result;
}

absl::StatusOr<EncodeResult> DaemonBackend::EncodeTyped(const void* x, DType dtype, const std::vector<int64_t>& shape,
                                                        const CodecParams& params) {
  EncodeResult result;
  COSET_ASSIGN_OR_RETURN(std::string blob, client_->EncodeTyped(x, dtype, shape, params, &result.stats));
  result.blob.assign(blob.begin(), blob.end());
  return result;
}

absl::Status DaemonBackend::DecodeTyped(BlobView blob, void* out, DType dtype) {
  return client_->DecodeTyped(AsString(blob), dtype, out);
}

// Straight into `out` (from the shared region or the reply), not through a temporary vector.
absl::Status DaemonBackend::Decode(BlobView blob, float* out) { return DecodeTyped(blob, out, DType::kFloat32); }

absl::Status DaemonBackend::Quantize(const float* x, const std::vector<int64_t>& shape, const CodecParams& params,
                                     float* out) {
  std::vector<float> values;
  COSET_RETURN_IF_ERROR(client_->Quantize(x, shape, params, &values));
  if (!values.empty()) std::memcpy(out, values.data(), values.size() * sizeof(float));
  return absl::OkStatus();
}

absl::StatusOr<std::string> DaemonBackend::Gemm(BlobView weights, const float* queries, int64_t batch, float* out) {
  COSET_ASSIGN_OR_RETURN(BlobHeader header, PeekHeader(weights.data(), weights.size()));
  if (header.shape.empty()) return absl::InvalidArgumentError("weights must have at least one dimension");
  const int64_t k = header.shape.back();
  std::string path;
  if (batch == 0) return path;
  std::vector<float> values;
  COSET_RETURN_IF_ERROR(client_->Gemm(AsString(weights), false, queries, batch, k, &values, &path));
  if (!values.empty()) std::memcpy(out, values.data(), values.size() * sizeof(float));
  return path;
}

absl::StatusOr<std::vector<double>> DaemonBackend::DotRows(BlobView a, BlobView b, int64_t lut_budget_bytes) {
  (void)lut_budget_bytes;  // the daemon applies its own --lut-budget
  COSET_ASSIGN_OR_RETURN(std::vector<float> dots, client_->DotRows(AsString(a), AsString(b)));
  return std::vector<double>(dots.begin(), dots.end());
}

absl::StatusOr<AddCodesResult> DaemonBackend::AddCodes(const std::vector<BlobView>& blobs, bool validate) {
  std::vector<std::string> copies;
  copies.reserve(blobs.size());
  for (BlobView b : blobs) copies.push_back(AsString(b));
  return client_->AddCodes(copies, validate);
}

}  // namespace coset
