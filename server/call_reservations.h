// Keeps a call's memory reservation until gRPC is done with the call. A sync handler returns
// before gRPC serializes and sends its reply, so a reservation given back when the handler returns
// would leave the serialized copy of a large reply outside the memory budget. A server interceptor
// (Factory) marks each call as tracked when it starts and gives its held bytes back when gRPC
// destroys it, after the reply was sent or the call failed.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <unordered_map>

#include "grpcpp/support/server_interceptor.h"
#include "server/memory_budget.h"

namespace coset {

class CallReservations {
 public:
  // budget: where the held bytes are given back; not owned.
  explicit CallReservations(MemoryBudget* budget) : budget_(budget) {}

  // The interceptor factory to install with ServerBuilder::experimental().SetInterceptorCreators;
  // must not outlive this object.
  std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface> InterceptorFactory();

  // Keeps `bytes` (already reserved in the budget) until the call of `ctx` ends; gives them back at
  // once when the call is not tracked (no interceptor: the service called directly, in tests).
  void HoldUntilCallEnds(const grpc::ServerContextBase* ctx, int64_t bytes);

 private:
  class Interceptor;
  class Factory;
  void Begin(const grpc::ServerContextBase* ctx);
  void End(const grpc::ServerContextBase* ctx);

  MemoryBudget* budget_;
  std::mutex mu_;
  std::unordered_map<const grpc::ServerContextBase*, int64_t> calls_;  // tracked call -> held bytes
};

}  // namespace coset
