// Resident compressed tensors of cosetd, kept under a name so inference services can compute
// against them without resending them. Bounded by a memory budget; thread-safe.
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

  int64_t bytes() const;
  int64_t lut_bytes() const;
  int64_t count() const;
  static absl::Status ValidateName(const std::string& name);

 private:
  struct Entry {
    std::shared_ptr<const ResidentTensor> tensor;
    std::shared_ptr<const LutMatrix> matrix;
  };
  mutable std::mutex mu_;
  std::map<std::string, Entry> entries_;
  int64_t budget_;
  int64_t bytes_ = 0;
  int64_t lut_bytes_ = 0;
};

}  // namespace coset
