// Helpers shared by the torch.ops.coset source files: Status -> RuntimeError, the config text, and
// an Executor over torch's intra-op thread pool.
#pragma once

#include <ATen/ATen.h>
#include <ATen/Parallel.h>

#include <cstring>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "core/executor.h"
#include "core/params.h"

namespace coset {

inline void Check(const absl::Status& status) { TORCH_CHECK(status.ok(), "coset: ", std::string(status.message())); }

template <typename T>
T Take(absl::StatusOr<T> value) {
  Check(value.status());
  return std::move(*value);
}

inline CodecParams ParamsFrom(const std::string& config) { return Take(ParamsFromText(config)); }

// Core's parallel loops on torch's intra-op threads (torch.set_num_threads decides how many), so
// an op uses exactly the threads the user gave torch.
class AtenExecutor : public Executor {
 public:
  void ParallelFor(int64_t n, const std::function<void(int64_t, int64_t)>& fn) override {
    at::parallel_for(0, n, 1, [&](int64_t begin, int64_t end) { fn(begin, end); });
  }
  int concurrency() const override { return at::get_num_threads(); }
};

// The tensor dtypes coset records in a blob (core/dtype.h), as torch names them.
inline DType DTypeOf(at::ScalarType type) {
  switch (type) {
    case at::kFloat:
      return DType::kFloat32;
    case at::kDouble:
      return DType::kFloat64;
    case at::kBFloat16:
      return DType::kBfloat16;
    case at::kHalf:
      return DType::kFloat16;
    default:
      TORCH_CHECK(false, "coset: x must be float32, float64, bfloat16 or float16, got ", type);
  }
  return DType::kFloat32;
}
inline at::ScalarType ScalarTypeOf(DType dtype) {
  switch (dtype) {
    case DType::kFloat64:
      return at::kDouble;
    case DType::kBfloat16:
      return at::kBFloat16;
    case DType::kFloat16:
      return at::kHalf;
    case DType::kFloat32:
      break;
  }
  return at::kFloat;
}

// x contiguous in its own dtype (one of DTypeOf's), with its shape: what the backends' EncodeTyped
// takes, converted row by row where the codec runs.
struct TypedInput {
  at::Tensor values;
  std::vector<int64_t> shape;
  DType dtype;
};
inline TypedInput TypedInputOf(const at::Tensor& x) {
  TORCH_CHECK(x.device().is_cpu(), "coset: x must be a CPU tensor (the CUDA kernels are not built yet)");
  const DType dtype = DTypeOf(x.scalar_type());
  return {x.contiguous(), std::vector<int64_t>(x.sizes().begin(), x.sizes().end()), dtype};
}

inline at::Tensor BlobTensor(const std::vector<uint8_t>& blob) {
  at::Tensor out = at::empty({static_cast<int64_t>(blob.size())}, at::TensorOptions().dtype(at::kByte));
  if (!blob.empty()) std::memcpy(out.data_ptr<uint8_t>(), blob.data(), blob.size());
  return out;
}

// A 1-D contiguous float32 tensor on the CPU, or a RuntimeError naming `what`.
inline void CheckFlatFloat(const at::Tensor& t, const char* what) {
  TORCH_CHECK(t.device().is_cpu(), "coset: ", what,
              " must be a CPU tensor (CUDA buckets need the CUDA kernels, which this build lacks)");
  TORCH_CHECK(t.scalar_type() == at::kFloat && t.dim() == 1 && t.is_contiguous(), "coset: ", what,
              " must be a contiguous 1-D float32 tensor, got ", t.scalar_type(), " with ", t.dim(), " dimensions");
}

}  // namespace coset
