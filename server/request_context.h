// The per-request context of cosetd's handlers: the call's cancellation and deadline, and the
// executor that runs its codec work. Made by CosetServiceImpl::Serve for one RPC and passed to the
// handler explicitly (no thread-local state), so a handler's helpers see the call they serve.
#pragma once

#include <cstdint>
#include <functional>

#include "absl/status/status.h"
#include "core/executor.h"
#include "grpcpp/server_context.h"

namespace coset {

class RequestContext {
 public:
  // grpc_ctx: the call. pool: the codec pool for large requests (null: none); not owned.
  RequestContext(grpc::ServerContext* grpc_ctx, Executor* pool)
      : RequestContext([grpc_ctx] { return InterruptionOf(*grpc_ctx); }, pool) {}
  // interruption: OK while the caller still waits, else why it stopped (tests inject it).
  RequestContext(std::function<absl::Status()> interruption, Executor* pool)
      : interruption_(std::move(interruption)),
        pooled_(pool != nullptr ? pool : InlineExecutor(), this),
        inline_(InlineExecutor(), this) {}
  RequestContext(const RequestContext&) = delete;
  RequestContext& operator=(const RequestContext&) = delete;

  // DEADLINE_EXCEEDED once the call's deadline has passed, CANCELLED once the client gave up, else OK.
  absl::Status Interruption() const { return interruption_(); }
  bool cancelled() const { return !interruption_().ok(); }
  static absl::Status InterruptionOf(grpc::ServerContext& ctx);

  // The executor for work on `elements` values: large requests share the codec pool (it runs one
  // request at a time), small ones stay on their gRPC thread so many small clients are served
  // concurrently. Either way the work is sliced so that it stops early once the call is cancelled
  // or past its deadline; the handler's result is then replaced by CANCELLED.
  Executor* ExecutorFor(int64_t elements);

  // Requests with at least this many elements use the codec pool.
  static constexpr int64_t kParallelThreshold = int64_t{1} << 20;

 private:
  class CancellableExecutor final : public Executor {
   public:
    CancellableExecutor(Executor* inner, const RequestContext* owner) : inner_(inner), owner_(owner) {}
    // coset::Executor
    void ParallelFor(int64_t n, const std::function<void(int64_t, int64_t)>& fn) override;
    int concurrency() const override { return inner_->concurrency(); }

   private:
    static constexpr int64_t kSlice = 64;
    Executor* inner_;
    const RequestContext* owner_;
  };

  std::function<absl::Status()> interruption_;
  CancellableExecutor pooled_;
  CancellableExecutor inline_;
};

}  // namespace coset
