#include "kernels/cublas.h"

#include <cublas_api.h>
#include <dlfcn.h>

#include "absl/strings/str_cat.h"

namespace coset {

// The entry points the baseline calls, by their exported names (cublas_v2.h maps cublasCreate and
// friends to the _v2 symbols).
struct Cublas::Api {
  cublasStatus_t (*create)(cublasHandle_t*);
  cublasStatus_t (*destroy)(cublasHandle_t);
  cublasStatus_t (*set_stream)(cublasHandle_t, cudaStream_t);
  cublasStatus_t (*gemm_ex)(cublasHandle_t, cublasOperation_t, cublasOperation_t, int, int, int, const void*,
                            const void*, cudaDataType, int, const void*, cudaDataType, int, const void*, void*,
                            cudaDataType, int, cublasComputeType_t, cublasGemmAlgo_t);
};

namespace {

template <typename Fn>
bool Bind(void* library, const char* name, Fn* fn) {
  *fn = reinterpret_cast<Fn>(dlsym(library, name));
  return *fn != nullptr;
}

}  // namespace

absl::StatusOr<std::unique_ptr<Cublas>> Cublas::Load(cudaStream_t stream) {
#if defined(COSET_CUDA_EMULATION)
  // The CUDA emulation's cuBLAS (kernels/cuda_emulation.cc): the same entry points, on the CPU.
  void* library = nullptr;
  auto api = std::make_unique<Api>(Api{&cublasCreate_v2, &cublasDestroy_v2, &cublasSetStream_v2, &cublasGemmEx});
#else
  void* library = dlopen("libcublas.so.13", RTLD_NOW | RTLD_LOCAL);
  if (library == nullptr) return absl::NotFoundError(absl::StrCat("no cuBLAS: ", dlerror()));
  auto api = std::make_unique<Api>();
  if (!Bind(library, "cublasCreate_v2", &api->create) || !Bind(library, "cublasDestroy_v2", &api->destroy) ||
      !Bind(library, "cublasSetStream_v2", &api->set_stream) || !Bind(library, "cublasGemmEx", &api->gemm_ex)) {
    dlclose(library);
    return absl::NotFoundError("no cuBLAS: libcublas.so.13 lacks cublasGemmEx or cublasCreate_v2");
  }
#endif
  cublasHandle_t handle = nullptr;
  if (api->create(&handle) != CUBLAS_STATUS_SUCCESS || api->set_stream(handle, stream) != CUBLAS_STATUS_SUCCESS) {
    if (handle != nullptr) api->destroy(handle);
    if (library != nullptr) dlclose(library);
    return absl::FailedPreconditionError("cuBLAS: cublasCreate failed");
  }
  return std::unique_ptr<Cublas>(new Cublas(library, std::move(api), handle));
}

Cublas::Cublas(void* library, std::unique_ptr<Api> api, void* handle)
    : library_(library), api_(std::move(api)), handle_(handle) {}

Cublas::~Cublas() {
  api_->destroy(static_cast<cublasHandle_t>(handle_));
  if (library_ != nullptr) dlclose(library_);
}

absl::Status Cublas::Gemm(cudaDataType type, const void* w, const void* x, void* out, int64_t n, int64_t k,
                          int64_t batch) const {
  // Column-major, cuBLAS's view: out^T (n x batch) = w (k x n, transposed) * x^T (k x batch).
  const float one = 1.0f, zero = 0.0f;
  const cublasStatus_t status = api_->gemm_ex(static_cast<cublasHandle_t>(handle_), CUBLAS_OP_T, CUBLAS_OP_N,
                                              static_cast<int>(n), static_cast<int>(batch), static_cast<int>(k), &one,
                                              w, type, static_cast<int>(k), x, type, static_cast<int>(k), &zero, out,
                                              type, static_cast<int>(n), CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT);
  if (status != CUBLAS_STATUS_SUCCESS) return absl::InternalError(absl::StrCat("cublasGemmEx: status ", status));
  return absl::OkStatus();
}

}  // namespace coset
