// cosetd's memory admission: the bytes the daemon may hold at once are its resident state
// (tensors, their LUT matrices, codebooks and LUTs) plus what requests in flight have reserved.
// A request reserves what it will allocate (its outputs, staging copies, serialized replies) after
// its sizes are known and before it allocates, so a large decode or a shared-memory request (a
// small message that processes a large tensor) is refused with RESOURCE_EXHAUSTED instead of
// running the node out of memory. Thread-safe.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>

#include "absl/status/status.h"

namespace coset {

class MemoryBudget {
 public:
  // limit: --memory-budget. resident: the bytes held outside requests, asked at each reservation.
  // reclaim (optional): frees what is only kept for speed (a cache counted in `resident`) and
  // returns the bytes freed; a reservation that would fail calls it and tries once more.
  MemoryBudget(int64_t limit, std::function<int64_t()> resident, std::function<int64_t()> reclaim = nullptr)
      : limit_(limit), resident_(std::move(resident)), reclaim_(std::move(reclaim)) {}

  // Reserves `bytes` for `what` (named in the error), or RESOURCE_EXHAUSTED. Release() gives back.
  absl::Status Reserve(int64_t bytes, const char* what);
  void Release(int64_t bytes) { reserved_ -= bytes; }

  int64_t limit() const { return limit_; }
  int64_t reserved() const { return reserved_.load(); }

 private:
  const int64_t limit_;
  std::function<int64_t()> resident_;
  std::function<int64_t()> reclaim_;
  std::atomic<int64_t> reserved_{0};
};

}  // namespace coset
