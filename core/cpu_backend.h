// The embedded backend: the codec, LUT inner products and code arithmetic of core/ on this
// process's CPU, through an injected Executor (core/backend.h has the contract).
#pragma once

#include "core/backend.h"
#include "core/executor.h"

namespace coset {

class CpuBackend final : public Backend {
 public:
  // executor: runs the row-parallel work (null = the calling thread); not owned.
  explicit CpuBackend(Executor* executor = nullptr);

  // coset::Backend
  MemoryKind memory() const override { return MemoryKind::kHost; }
  absl::StatusOr<BackendInfo> Info() override;
  absl::Status Health() override { return absl::OkStatus(); }
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
  Executor* executor_;
};

}  // namespace coset
