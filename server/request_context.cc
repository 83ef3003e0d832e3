#include "server/request_context.h"

#include <algorithm>
#include <chrono>

namespace coset {

void RequestContext::CancellableExecutor::ParallelFor(int64_t n, const std::function<void(int64_t, int64_t)>& fn) {
  inner_->ParallelFor(n, [&](int64_t begin, int64_t end) {
    for (int64_t b = begin; b < end; b += kSlice) {
      if (owner_->cancelled()) return;
      fn(b, std::min(end, b + kSlice));
    }
  });
}

absl::Status RequestContext::InterruptionOf(grpc::ServerContext& ctx) {
  if (!ctx.IsCancelled()) return absl::OkStatus();
  // gRPC reports an expired deadline as a cancellation; tell the two apart for the client.
  return InterruptionOfCancelled(ctx.deadline(), std::chrono::system_clock::now());
}

absl::Status RequestContext::InterruptionOfCancelled(std::chrono::system_clock::time_point deadline,
                                                     std::chrono::system_clock::time_point now) {
  // Without a deadline gRPC reports the far future; subtracting from it would overflow.
  if (deadline <= now + kDeadlineSkew) {
    return absl::DeadlineExceededError("the request's deadline expired while it was served");
  }
  return absl::CancelledError("the client cancelled the request");
}

Executor* RequestContext::ExecutorFor(int64_t elements) {
  return elements >= kParallelThreshold ? static_cast<Executor*>(&pooled_) : &inline_;
}

}  // namespace coset
