// The CUDA backend behind the seam (core/backend.h), for cosetctl --backend cuda: encode, decode,
// quantize and GEMM on codes run on one CUDA device through CudaCodec; row dots and code sums stay
// on the CPU backend (said in Info). Buffers are host memory (memory() is kHost): each call stages
// its tensors through device memory, as cosetd's CUDA path does. Typed (16-bit, float64) tensors
// convert on the host (Backend's defaults), and code sums and row dots run on the CPU, until
// CudaCodec's EncodeTyped / DecodeTyped, AddCodes and DotRows, written without a GPU, have passed
// cuda_codec_test on one: a daemon's shared device runs only kernels that have run on a device.
#pragma once

#include <memory>

#include "core/backend.h"
#include "core/cpu_backend.h"
#include "kernels/cuda_runtime.h"

namespace coset {

class CudaBackend final : public Backend {
 public:
  // FAILED_PRECONDITION with ProbeCudaDevice's reason when the device cannot serve. executor: the
  // CPU backend's (row dots, code sums, blob parsing); not owned, may be null.
  static absl::StatusOr<std::unique_ptr<CudaBackend>> Create(int device, Executor* executor);

  // coset::Backend
  MemoryKind memory() const override { return MemoryKind::kHost; }
  absl::StatusOr<BackendInfo> Info() override;
  absl::Status Health() override { return absl::OkStatus(); }
  absl::StatusOr<EncodeResult> Encode(const float* x, const std::vector<int64_t>& shape, const CodecParams& params,
                                      DType original_dtype) override;
  absl::Status Decode(BlobView blob, float* out) override;
  absl::Status Quantize(const float* x, const std::vector<int64_t>& shape, const CodecParams& params,
                        float* out) override;
  absl::StatusOr<std::string> Gemm(BlobView weights, const float* queries, int64_t batch, float* out) override;
  absl::StatusOr<std::vector<double>> DotRows(BlobView a, BlobView b, int64_t lut_budget_bytes) override;
  absl::StatusOr<AddCodesResult> AddCodes(const std::vector<BlobView>& blobs, bool validate) override;

 private:
  CudaBackend(std::unique_ptr<CudaCodec> cuda, Executor* executor);
  std::unique_ptr<CudaCodec> cuda_;
  Executor* executor_;
  CpuBackend cpu_;
};

}  // namespace coset
