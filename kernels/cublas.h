// cuBLAS, loaded at run time (dlopen of libcublas.so.13), for CudaCodec's decode-then-cuBLAS GEMM
// and the benchmarks' baselines: the device check's bundle carries no cuBLAS (hundreds of MiB), a
// GPU machine's CUDA install has it, and a binary linked against it would not start where it is
// missing.
#pragma once

#include <cuda_runtime_api.h>
#include <library_types.h>

#include <cstdint>
#include <memory>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace coset {

class Cublas {
 public:
  // Loads cuBLAS and makes a handle on `stream`; fails, saying why, when cuBLAS is not there.
  static absl::StatusOr<std::unique_ptr<Cublas>> Load(cudaStream_t stream);
  ~Cublas();
  Cublas(const Cublas&) = delete;
  Cublas& operator=(const Cublas&) = delete;

  // out[b * n + i] = <x[b], w[i]> for row-major w (n x k) and x (batch x k), all of `type`
  // (CUDA_R_16BF or CUDA_R_32F), accumulated in float32 (no TF32): the layout of the codec's GEMM.
  absl::Status Gemm(cudaDataType type, const void* w, const void* x, void* out, int64_t n, int64_t k,
                    int64_t batch) const;

 private:
  struct Api;
  Cublas(void* library, std::unique_ptr<Api> api, void* handle);
  void* library_;
  std::unique_ptr<Api> api_;
  void* handle_;
};

}  // namespace coset
