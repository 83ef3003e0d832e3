// Resident compressed tensors of cosetd, kept under a name so inference services can compute
// against them without resending them. Bounded by a memory budget; thread-safe. Each tensor can
// carry what is built from it on first use and kept with it: the repacked LUT matrix (CPU GEMM)
// and, on the CUDA backend, its codes on the device (the fused GEMM kernel's input).
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "core/inner_product.h"
#include "core/tensor_codec.h"
#include "kernels/cuda_runtime.h"

namespace coset {

struct ResidentTensor {
  std::string name;
  std::string owner;  // the principal that stored it (peer_access.h); only it may use the tensor
  CompressedTensor tensor;
  std::string blob;  // the serialized form, returned by GetTensor
  int64_t bytes() const { return static_cast<int64_t>(blob.size()); }
};

class TensorStore {
 public:
  explicit TensorStore(int64_t budget_bytes) : budget_(budget_bytes) {}

  // Names are one namespace for all principals; a tensor belongs to its owner, and any other
  // caller naming it gets PERMISSION_DENIED (replacing it included).
  // Fails with INVALID_ARGUMENT for a bad name, ALREADY_EXISTS without overwrite, and
  // RESOURCE_EXHAUSTED when the budget would be exceeded.
  absl::Status Put(std::shared_ptr<const ResidentTensor> tensor, bool overwrite);
  absl::StatusOr<std::shared_ptr<const ResidentTensor>> Get(const std::string& name, const std::string& caller) const;
  absl::Status Delete(const std::string& name, const std::string& caller);
  // The caller's own tensors.
  std::vector<std::shared_ptr<const ResidentTensor>> List(const std::string& caller) const;
  // The repacked LUT matrix of a resident tensor, built on first use and cached with it. Before a
  // build, reserve(LutMatrix::BuildBytes(tensor)) must succeed (the request's memory budget).
  absl::StatusOr<std::shared_ptr<const LutMatrix>> Matrix(
      const std::string& name, const std::string& caller, int64_t lut_budget,
      const std::function<absl::Status(int64_t bytes)>& reserve = [](int64_t) { return absl::OkStatus(); });

  // The tensor's codes on the device, uploaded by upload on first use (outside the store's lock)
  // and kept with the tensor while the kept copies hold at most keep_budget bytes of device memory;
  // past that, or when the tensor was replaced meanwhile, the copy serves the caller alone. Dropped
  // with the tensor (a caller still holding it keeps it until done).
  using DeviceUpload = std::function<absl::StatusOr<std::shared_ptr<const CodesOnDevice>>(const CompressedTensor&)>;
  absl::StatusOr<std::shared_ptr<const CodesOnDevice>> DeviceCodes(const std::string& name, const std::string& caller,
                                                                   int64_t keep_budget, const DeviceUpload& upload);

  int64_t bytes() const;
  int64_t lut_bytes() const;
  int64_t device_bytes() const;  // device memory of the kept device copies
  int64_t count() const;
  static absl::Status ValidateName(const std::string& name);

 private:
  struct Entry {
    std::shared_ptr<const ResidentTensor> tensor;
    std::shared_ptr<const LutMatrix> matrix;
    std::shared_ptr<const CodesOnDevice> device;
  };
  // What Matrix and DeviceCodes share: the entry's `slot` if built, else build(tensor) outside the
  // lock, kept in the slot when the entry still holds that tensor and keep(built) (called under the
  // lock; it accounts what it keeps).
  template <typename T, typename Build, typename Keep>
  absl::StatusOr<std::shared_ptr<const T>> Derived(const std::string& name, const std::string& caller,
                                                   std::shared_ptr<const T> Entry::*slot, const Build& build,
                                                   const Keep& keep);
  // Removes an entry and what it accounts (caller holds mu_).
  void Erase(std::map<std::string, Entry>::iterator it);
  mutable std::mutex mu_;
  std::map<std::string, Entry> entries_;
  int64_t budget_;
  int64_t bytes_ = 0;
  int64_t lut_bytes_ = 0;
  int64_t device_bytes_ = 0;  // not part of budget_: device memory has its own (DeviceMemoryBudget)
};

}  // namespace coset
