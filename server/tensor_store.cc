#include "server/tensor_store.h"

#include "absl/strings/str_cat.h"
#include "core/status_macros.h"

namespace coset {
namespace {

// The entry `name` of `entries` if it exists and belongs to `caller`.
template <typename Map>
auto FindOwned(Map& entries, const std::string& name, const std::string& caller)
    -> absl::StatusOr<decltype(entries.begin())> {
  auto it = entries.find(name);
  // Names come from clients and are not checked on lookups: echoed clipped (errors travel in
  // gRPC metadata, which clients cap at a few KB).
  if (it == entries.end()) {
    return absl::NotFoundError(absl::StrCat("no resident tensor named '", name.substr(0, 64), "'"));
  }
  if (it->second.tensor->owner != caller) {
    return absl::PermissionDeniedError(
        absl::StrCat("resident tensor '", name.substr(0, 64), "' belongs to another user"));
  }
  return it;
}

}  // namespace

absl::Status TensorStore::ValidateName(const std::string& name) {
  if (name.empty() || name.size() > 256) {
    return absl::InvalidArgumentError(absl::StrCat("tensor name must have 1..256 characters (got ", name.size(), ")"));
  }
  for (char c : name) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
                    c == '_' || c == '-' || c == '/' || c == ':';
    if (!ok) {
      return absl::InvalidArgumentError(
          absl::StrCat("tensor name '", name.substr(0, 64), "' may only use [A-Za-z0-9._/:-]"));
    }
  }
  return absl::OkStatus();
}

absl::Status TensorStore::Put(std::shared_ptr<const ResidentTensor> tensor, bool overwrite) {
  if (auto s = ValidateName(tensor->name); !s.ok()) return s;
  std::lock_guard<std::mutex> lock(mu_);
  auto it = entries_.find(tensor->name);
  int64_t freed = 0;
  if (it != entries_.end()) {
    if (it->second.tensor->owner != tensor->owner) {
      return absl::PermissionDeniedError(absl::StrCat("resident tensor '", tensor->name, "' belongs to another user"));
    }
    if (!overwrite) return absl::AlreadyExistsError(absl::StrCat("tensor '", tensor->name, "' exists (set overwrite)"));
    freed = it->second.tensor->bytes() + (it->second.matrix ? it->second.matrix->packed_bytes() : 0);
  }
  if (bytes_ + lut_bytes_ - freed + tensor->bytes() > budget_) {
    return absl::ResourceExhaustedError(absl::StrCat("storing '", tensor->name, "' (", tensor->bytes(),
                                                     " bytes) would exceed the memory budget of ", budget_,
                                                     " bytes (in use: ", bytes_ + lut_bytes_, ")"));
  }
  if (it != entries_.end()) Erase(it);
  bytes_ += tensor->bytes();
  const std::string name = tensor->name;
  entries_[name] = Entry{std::move(tensor), nullptr, nullptr};
  return absl::OkStatus();
}

void TensorStore::Erase(std::map<std::string, Entry>::iterator it) {
  bytes_ -= it->second.tensor->bytes();
  if (it->second.matrix) lut_bytes_ -= it->second.matrix->packed_bytes();
  if (it->second.device) device_bytes_ -= it->second.device->bytes();
  entries_.erase(it);
}

absl::StatusOr<std::shared_ptr<const ResidentTensor>> TensorStore::Get(const std::string& name,
                                                                       const std::string& caller) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = FindOwned(entries_, name, caller);
  if (!it.ok()) return it.status();
  return (*it)->second.tensor;
}

absl::Status TensorStore::Delete(const std::string& name, const std::string& caller) {
  std::lock_guard<std::mutex> lock(mu_);
  auto found = FindOwned(entries_, name, caller);
  if (!found.ok()) return found.status();
  Erase(*found);
  return absl::OkStatus();
}

std::vector<std::shared_ptr<const ResidentTensor>> TensorStore::List(const std::string& caller) const {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<std::shared_ptr<const ResidentTensor>> out;
  for (const auto& [name, e] : entries_) {
    if (e.tensor->owner == caller) out.push_back(e.tensor);
  }
  return out;
}

template <typename T, typename Build, typename Keep>
absl::StatusOr<std::shared_ptr<const T>> TensorStore::Derived(const std::string& name, const std::string& caller,
                                                              std::shared_ptr<const T> Entry::*slot, const Build& build,
                                                              const Keep& keep) {
  std::shared_ptr<const ResidentTensor> tensor;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto found = FindOwned(entries_, name, caller);
    if (!found.ok()) return found.status();
    if ((*found)->second.*slot) return (*found)->second.*slot;
    tensor = (*found)->second.tensor;
  }
  // Built outside the lock (it can take a while); the first finisher's copy is kept.
  absl::StatusOr<std::shared_ptr<const T>> built = build(tensor->tensor);
  if (!built.ok()) return built.status();
  std::lock_guard<std::mutex> lock(mu_);
  auto it = entries_.find(name);
  if (it == entries_.end() || it->second.tensor != tensor) return built;  // replaced meanwhile: not kept
  if (it->second.*slot) return it->second.*slot;
  if (keep(**built)) it->second.*slot = *built;
  return built;
}

absl::StatusOr<std::shared_ptr<const LutMatrix>> TensorStore::Matrix(
    const std::string& name, const std::string& caller, int64_t lut_budget,
    const std::function<absl::Status(int64_t bytes)>& reserve) {
  auto build = [&](const CompressedTensor& t) -> absl::StatusOr<std::shared_ptr<const LutMatrix>> {
    COSET_RETURN_IF_ERROR(reserve(LutMatrix::BuildBytes(t)));
    COSET_ASSIGN_OR_RETURN(LutMatrix m, LutMatrix::Create(t, lut_budget));
    return std::make_shared<const LutMatrix>(std::move(m));
  };
  // Kept within the store's budget; past it, served but not kept.
  auto keep = [&](const LutMatrix& m) {
    if (bytes_ + lut_bytes_ + m.packed_bytes() > budget_) return false;
    lut_bytes_ += m.packed_bytes();
    return true;
  };
  return Derived(name, caller, &Entry::matrix, build, keep);
}

absl::StatusOr<std::shared_ptr<const CodesOnDevice>> TensorStore::DeviceCodes(const std::string& name,
                                                                              const std::string& caller,
                                                                              int64_t keep_budget,
                                                                              const DeviceUpload& upload) {
  auto keep = [&](const CodesOnDevice& codes) {
    if (device_bytes_ + codes.bytes() > keep_budget) return false;
    device_bytes_ += codes.bytes();
    return true;
  };
  return Derived(name, caller, &Entry::device, upload, keep);
}

int64_t TensorStore::bytes() const {
  std::lock_guard<std::mutex> lock(mu_);
  return bytes_;
}

int64_t TensorStore::lut_bytes() const {
  std::lock_guard<std::mutex> lock(mu_);
  return lut_bytes_;
}

int64_t TensorStore::device_bytes() const {
  std::lock_guard<std::mutex> lock(mu_);
  return device_bytes_;
}

int64_t TensorStore::count() const {
  std::lock_guard<std::mutex> lock(mu_);
  return static_cast<int64_t>(entries_.size());
}

}  // namespace coset
