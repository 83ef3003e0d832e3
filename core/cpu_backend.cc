#include "core/cpu_backend.h"

#include "absl/strings/str_cat.h"
#include "core/code_arith.h"
#include "core/format.h"
#include "core/inner_product.h"
#include "core/simd/dispatch.h"
#include "core/status_macros.h"

namespace coset {
namespace {

absl::StatusOr<CompressedTensor> ParseBlob(BlobView blob, Executor* executor) {
  return Parse(blob.data(), blob.size(), executor);
}

}  // namespace

CpuBackend::CpuBackend(Executor* executor) : executor_(executor != nullptr ? executor : InlineExecutor()) {}

absl::StatusOr<BackendInfo> CpuBackend::Info() {
  BackendInfo info;
  info.name = "cpu";
  info.description = absl::StrCat(SimdLevelName(ActiveSimdLevel()), ", ", executor_->concurrency(), " thread(s)");
  info.details = {{"simd", SimdLevelName(ActiveSimdLevel())},
                  {"threads", absl::StrCat(executor_->concurrency())},
                  {"codebooks_cached", absl::StrCat(GetCodebookCacheStats().entries)}};
  return info;
}

absl::StatusOr<EncodeResult> CpuBackend::Encode(const float* x, const std::vector<int64_t>& shape,
                                                const CodecParams& params, DType original_dtype) {
  COSET_ASSIGN_OR_RETURN(TensorCodec codec, TensorCodec::Create(params));
  EncodeResult result;
  COSET_ASSIGN_OR_RETURN(CompressedTensor t, codec.Encode(x, shape, original_dtype, executor_, &result.stats));
  result.blob = Serialize(t, executor_);
  return result;
}

absl::StatusOr<EncodeResult> CpuBackend::EncodeTyped(const void* x, DType dtype, const std::vector<int64_t>& shape,
                                                     const CodecParams& params) {
  COSET_ASSIGN_OR_RETURN(TensorCodec codec, TensorCodec::Create(params));
  EncodeResult result;
  CompressedTensor t;
  COSET_RETURN_IF_ERROR(codec.EncodeTypedInto(x, dtype, shape, executor_, &result.stats, &t));
  result.blob = Serialize(t, executor_);
  return result;
}

absl::Status CpuBackend::Decode(BlobView blob, float* out) {
  COSET_ASSIGN_OR_RETURN(CompressedTensor t, ParseBlob(blob, executor_));
  return DecodeTensor(t, out, executor_);
}

absl::Status CpuBackend::DecodeTyped(BlobView blob, void* out, DType dtype) {
  COSET_ASSIGN_OR_RETURN(CompressedTensor t, ParseBlob(blob, executor_));
  return DecodeTensor(t, out, dtype, executor_);
}

absl::Status CpuBackend::Quantize(const float* x, const std::vector<int64_t>& shape, const CodecParams& params,
                                  float* out) {
  COSET_ASSIGN_OR_RETURN(TensorCodec codec, TensorCodec::Create(params));
  COSET_ASSIGN_OR_RETURN(CompressedTensor t, codec.Encode(x, shape, DType::kFloat32, executor_));
  return codec.Decode(t, out, executor_);
}

absl::StatusOr<std::string> CpuBackend::Gemm(BlobView weights, const float* queries, int64_t batch, float* out) {
  COSET_ASSIGN_OR_RETURN(CompressedTensor w, ParseBlob(weights, executor_));
  COSET_ASSIGN_OR_RETURN(LutMatrix m, LutMatrix::Create(w));
  if (batch > 0) COSET_RETURN_IF_ERROR(m.Gemm(queries, batch, out, executor_));
  return std::string(m.path_name());
}

absl::StatusOr<std::vector<double>> CpuBackend::DotRows(BlobView a, BlobView b, int64_t lut_budget_bytes) {
  COSET_ASSIGN_OR_RETURN(CompressedTensor ta, ParseBlob(a, executor_));
  COSET_ASSIGN_OR_RETURN(CompressedTensor tb, ParseBlob(b, executor_));
  return coset::DotRows(ta, tb, lut_budget_bytes);
}

absl::StatusOr<AddCodesResult> CpuBackend::AddCodes(const std::vector<BlobView>& blobs, bool validate) {
  std::vector<CompressedTensor> parsed;
  parsed.reserve(blobs.size());
  for (BlobView b : blobs) {
    COSET_ASSIGN_OR_RETURN(CompressedTensor t, ParseBlob(b, executor_));
    parsed.push_back(std::move(t));
  }
  std::vector<const CompressedTensor*> codes;
  for (const CompressedTensor& t : parsed) codes.push_back(&t);
  SumValidation validation;
  COSET_ASSIGN_OR_RETURN(CompressedTensor sum, coset::AddCodes(codes, validate ? &validation : nullptr, executor_));
  AddCodesResult result;
  result.blob = Serialize(sum, executor_);
  result.chunks = sum.layout.rows * sum.layout.chunks_per_row;
  result.inexact_chunks = validation.inexact_chunks;
  return result;
}

}  // namespace coset
