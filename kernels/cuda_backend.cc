#include "kernels/cuda_backend.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "core/format.h"
#include "core/status_macros.h"

namespace coset {

absl::StatusOr<std::unique_ptr<CudaBackend>> CudaBackend::Create(int device, Executor* executor) {
  COSET_ASSIGN_OR_RETURN(std::unique_ptr<CudaCodec> cuda, CudaCodec::Create(device));
  return std::unique_ptr<CudaBackend>(new CudaBackend(std::move(cuda), executor));
}

CudaBackend::CudaBackend(std::unique_ptr<CudaCodec> cuda, Executor* executor)
    : cuda_(std::move(cuda)), executor_(executor != nullptr ? executor : InlineExecutor()), cpu_(executor_) {}

absl::StatusOr<BackendInfo> CudaBackend::Info() {
  const CudaDeviceInfo& d = cuda_->device();
  BackendInfo info;
  info.name = "cuda";
  info.description = DescribeCudaDevice(d);
  info.details = {{"device", d.name},
                  {"compute_capability", absl::StrCat(d.compute_major, ".", d.compute_minor)},
                  {"memory_bytes", absl::StrCat(d.total_memory_bytes)},
                  {"driver_version", absl::StrCat(d.driver_version)},
                  {"runtime_version", absl::StrCat(d.runtime_version)},
                  {"on_device", "encode, decode, quantize, gemm"},
                  {"on_cpu", "dot, add_codes"}};
  return info;
}

absl::StatusOr<EncodeResult> CudaBackend::Encode(const float* x, const std::vector<int64_t>& shape,
                                                 const CodecParams& params, DType original_dtype) {
  COSET_ASSIGN_OR_RETURN(TensorCodec codec, TensorCodec::Create(params));
  EncodeResult result;
  COSET_ASSIGN_OR_RETURN(CompressedTensor t, cuda_->Encode(codec, x, shape, original_dtype, &result.stats));
  result.blob = Serialize(t, executor_);
  return result;
}

absl::Status CudaBackend::Decode(BlobView blob, float* out) {
  COSET_ASSIGN_OR_RETURN(CompressedTensor t, Parse(blob.data(), blob.size(), executor_));
  return cuda_->Decode(t, out);
}

absl::Status CudaBackend::Quantize(const float* x, const std::vector<int64_t>& shape, const CodecParams& params,
                                   float* out) {
  COSET_ASSIGN_OR_RETURN(TensorCodec codec, TensorCodec::Create(params));
  COSET_ASSIGN_OR_RETURN(CompressedTensor t, cuda_->Encode(codec, x, shape, DType::kFloat32, nullptr));
  return cuda_->Decode(t, out);
}

absl::StatusOr<std::string> CudaBackend::Gemm(BlobView weights, const float* queries, int64_t batch, float* out) {
  COSET_ASSIGN_OR_RETURN(CompressedTensor w, Parse(weights.data(), weights.size(), executor_));
  COSET_ASSIGN_OR_RETURN(const GemmMethod method, cuda_->Gemm(w, queries, batch, out));
  return std::string(GemmMethodName(method));
}

absl::StatusOr<std::vector<double>> CudaBackend::DotRows(BlobView a, BlobView b, int64_t lut_budget_bytes) {
  return cpu_.DotRows(a, b, lut_budget_bytes);
}

// On the CPU for now (cuda_backend.h).
absl::StatusOr<AddCodesResult> CudaBackend::AddCodes(const std::vector<BlobView>& blobs, bool validate) {
  return cpu_.AddCodes(blobs, validate);
}

}  // namespace coset
