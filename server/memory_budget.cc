#include "server/memory_budget.h"

#include "absl/strings/str_cat.h"

namespace coset {

absl::Status MemoryBudget::Reserve(int64_t bytes, const char* what) {
  if (bytes <= 0) return absl::OkStatus();
  // Optimistic add, undone when over: concurrent reservations never overshoot together.
  const int64_t total = reserved_ += bytes;
  int64_t resident = resident_();
  if (total + resident > limit_ && reclaim_ != nullptr && reclaim_() > 0) resident = resident_();
  if (total + resident > limit_) {
    reserved_ -= bytes;
    return absl::ResourceExhaustedError(
        absl::StrCat(what, " needs ", bytes, " bytes; with ", total - bytes, " reserved by requests in flight and ",
                     resident, " resident that exceeds the memory budget of ", limit_, " bytes; retry later"));
  }
  return absl::OkStatus();
}

}  // namespace coset
