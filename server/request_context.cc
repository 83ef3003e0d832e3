#include "server/request_context.h"

#include <algorithm>

namespace coset {

void RequestContext::CancellableExecutor::ParallelFor(int64_t n, const std::function<void(int64_t, int64_t)>& fn) {
  inner_->ParallelFor(n, [&](int64_t begin, int64_t end) {
    for (int64_t b = begin; b < end; b += kSlice) {
      if (owner_->cancelled()) return;
      fn(b, std::min(end, b + kSlice));
    }
  });
}

Executor* RequestContext::ExecutorFor(int64_t elements) {
  return elements >= kParallelThreshold ? static_cast<Executor*>(&pooled_) : &inline_;
}

}  // namespace coset
