#include "server/call_reservations.h"

namespace coset {

// One per call: created when the call starts, destroyed by gRPC when the call is over.
class CallReservations::Interceptor final : public grpc::experimental::Interceptor {
 public:
  Interceptor(CallReservations* owner, const grpc::ServerContextBase* ctx) : owner_(owner), ctx_(ctx) {
    owner_->Begin(ctx_);
  }
  ~Interceptor() override { owner_->End(ctx_); }
  void Intercept(grpc::experimental::InterceptorBatchMethods* methods) override { methods->Proceed(); }

 private:
  CallReservations* owner_;
  const grpc::ServerContextBase* ctx_;
};

class CallReservations::Factory final : public grpc::experimental::ServerInterceptorFactoryInterface {
 public:
  explicit Factory(CallReservations* owner) : owner_(owner) {}
  grpc::experimental::Interceptor* CreateServerInterceptor(grpc::experimental::ServerRpcInfo* info) override {
    return new Interceptor(owner_, info->server_context());
  }

 private:
  CallReservations* owner_;
};

std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface> CallReservations::InterceptorFactory() {
  return std::make_unique<Factory>(this);
}

void CallReservations::Begin(const grpc::ServerContextBase* ctx) {
  std::lock_guard<std::mutex> lock(mu_);
  calls_[ctx] = 0;
}

void CallReservations::End(const grpc::ServerContextBase* ctx) {
  int64_t held = 0;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = calls_.find(ctx);
    if (it == calls_.end()) return;
    held = it->second;
    calls_.erase(it);
  }
  budget_->Release(held);
}

void CallReservations::HoldUntilCallEnds(const grpc::ServerContextBase* ctx, int64_t bytes) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = calls_.find(ctx);
    if (it != calls_.end()) {
      it->second += bytes;
      return;
    }
  }
  budget_->Release(bytes);
}

}  // namespace coset
