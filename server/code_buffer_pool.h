// Code buffers kept between large encodes. cosetd maps blocks of 1 MiB and more on their own and
// unmaps them when freed (main.cc), so that its footprint follows its memory budget; but then every
// large encode faults in and zeroes fresh pages for its codes (a 64 MiB D4 encode: 12 MiB, 3,000
// page faults). The pool keeps the buffers of a few finished encodes for the next one of about the
// same size: a training loop's stream of same-sized requests reuses them. What it holds is counted
// as resident memory by the daemon's budget, and dropped when a reservation would otherwise fail
// (MemoryBudget's reclaim). Thread-safe.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <vector>

#include "core/tensor_codec.h"

namespace coset {

class CodeBufferPool {
 public:
  // max_bytes: what the kept buffers may hold together (0: keep none).
  explicit CodeBufferPool(int64_t max_bytes) : max_bytes_(max_bytes) {}

  // A tensor to encode about `bytes` of codes into (the request has reserved them): kept buffers
  // whose capacity is within an eighth of that (larger ones would hold memory nobody accounts
  // for; a vector that is short grows as usual), else an empty tensor. The encode overwrites
  // every byte it returns (tensor_codec_test checks it).
  CompressedTensor Take(int64_t bytes);
  // Keeps t's buffers when they are worth keeping (1 MiB or more) and fit the bound; else frees them.
  void Give(CompressedTensor t);
  // Take(bytes) (nothing taken for 0), owned by a pointer that gives the buffers back with its last
  // reference, whatever they hold by then. The pool must outlive it.
  std::shared_ptr<CompressedTensor> Lend(int64_t bytes = 0);
  // Frees everything kept; returns the bytes freed.
  int64_t Clear();
  int64_t bytes() const;

  // The bytes a tensor's buffers hold (their capacity).
  static int64_t CapacityOf(const CompressedTensor& t);
  static constexpr int64_t kMinKeptBytes = int64_t{1} << 20;
  static constexpr int kMaxKept = 4;

 private:
  const int64_t max_bytes_;
  mutable std::mutex mu_;
  std::vector<CompressedTensor> kept_;  // most recently given last
  int64_t bytes_ = 0;
};

}  // namespace coset
