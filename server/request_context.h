// The per-request context of cosetd's handlers: the call's cancellation and deadline, and the
// executor that runs its codec work. Made by CosetServiceImpl::Serve for one RPC and passed to the
// handler explicitly (no thread-local state), so a handler's helpers see the call they serve.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "core/executor.h"
#include "grpcpp/server_context.h"
#include "server/memory_budget.h"

namespace coset {

class RequestContext {
 public:
  // grpc_ctx: the call. pool: the codec pool for large requests (null: none); not owned.
  // budget: where the request reserves the memory it will allocate (null: unbounded); not owned.
  RequestContext(grpc::ServerContext* grpc_ctx, Executor* pool, MemoryBudget* budget = nullptr)
      : RequestContext([grpc_ctx] { return InterruptionOf(*grpc_ctx); }, pool, budget) {}
  // interruption: OK while the caller still waits, else why it stopped (tests inject it).
  RequestContext(std::function<absl::Status()> interruption, Executor* pool, MemoryBudget* budget = nullptr)
      : interruption_(std::move(interruption)),
        budget_(budget),
        pooled_(pool != nullptr ? pool : InlineExecutor(), this),
        inline_(InlineExecutor(), this) {}
  // Gives back everything the request reserved.
  ~RequestContext() {
    if (budget_ != nullptr) budget_->Release(reserved_);
  }

  // Reserves `bytes` the request is about to allocate for `what` (RESOURCE_EXHAUSTED when the
  // budget cannot take it); held until the request ends.
  absl::Status Reserve(int64_t bytes, const char* what) {
    if (budget_ == nullptr || bytes <= 0) return absl::OkStatus();
    absl::Status s = budget_->Reserve(bytes, what);
    if (s.ok()) reserved_ += bytes;
    return s;
  }
  int64_t reserved() const { return reserved_; }
  // Runs `fn` once the request has succeeded (Serve calls RunSuccessActions with its final status):
  // what a request counts in the metrics is counted only if its client gets OK, not when the
  // deadline passes between the work and the reply.
  void OnSuccess(std::function<void()> fn) { on_success_.push_back(std::move(fn)); }
  void RunSuccessActions() {
    for (auto& fn : on_success_) fn();
    on_success_.clear();
  }
  // Hands the reservations over to the caller (who gives them back later); the context then
  // releases nothing when it ends.
  int64_t TakeReservations() { return std::exchange(reserved_, 0); }
  // The caller's principal (peer_access.h): it owns what the request creates, and may use only
  // its own tensors and regions.
  const std::string& caller() const { return caller_; }
  void set_caller(std::string caller) { caller_ = std::move(caller); }
  // The backend the request's codec work ran on ("cpu" unless a handler says otherwise): the
  // `backend` label of its request metrics.
  const char* backend() const { return backend_; }
  void set_backend(const char* backend) { backend_ = backend; }
  RequestContext(const RequestContext&) = delete;
  RequestContext& operator=(const RequestContext&) = delete;

  // DEADLINE_EXCEEDED once the call's deadline has passed, CANCELLED once the client gave up, else OK.
  absl::Status Interruption() const { return interruption_(); }
  bool cancelled() const { return !interruption_().ok(); }
  static absl::Status InterruptionOf(grpc::ServerContext& ctx);
  // Why a cancelled call stopped. A gRPC client cancels its call when its own deadline passes;
  // the server's copy of that deadline starts when the headers arrive, so the client's
  // cancellation can reach the server a little before the server's deadline. A cancellation this
  // close to the deadline is that client's deadline, not a client that gave up on purpose.
  static absl::Status InterruptionOfCancelled(std::chrono::system_clock::time_point deadline,
                                              std::chrono::system_clock::time_point now);
  static constexpr std::chrono::milliseconds kDeadlineSkew{100};

  // The executor for work on `elements` values: large requests share the codec pool (it runs one
  // request at a time), small ones stay on their gRPC thread so many small clients are served
  // concurrently. Either way the work is sliced so that it stops early once the call is cancelled
  // or past its deadline; the handler's result is then replaced by Interruption().
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
  MemoryBudget* budget_;
  int64_t reserved_ = 0;
  std::string caller_;
  const char* backend_ = "cpu";
  std::vector<std::function<void()>> on_success_;
  CancellableExecutor pooled_;
  CancellableExecutor inline_;
};

}  // namespace coset
