// libFuzzer target: each RPC's request handling, straight into the service (no network). The
// first byte picks the method, the rest is that method's request message in protobuf wire format
// (inputs that do not parse are skipped, as gRPC would refuse them). Every request must get a
// status from the documented set, and the service must never crash.
#include <set>

#include "core/status_macros.h"
#include "server/coset_service.h"

namespace {

using coset::CosetServiceImpl;
namespace v1 = coset::v1;

CosetServiceImpl& Service() {
  static CosetServiceImpl* service = [] {
    static coset::Metrics metrics;
    coset::ServiceLimits limits;
    limits.memory_budget_bytes = 256 << 20;
    limits.max_message_bytes = 4 << 20;
    limits.threads = 1;
    return new CosetServiceImpl(limits, &metrics, nullptr);
  }();
  return *service;
}

template <typename Request, typename Response>
void Call(grpc::Status (CosetServiceImpl::*method)(grpc::ServerContext*, const Request*, Response*),
          const uint8_t* data, size_t size) {
  Request req;
  if (!req.ParseFromArray(data, static_cast<int>(size))) return;
  Response resp;
  grpc::ServerContext ctx;
  const grpc::Status status = (Service().*method)(&ctx, &req, &resp);
  static const std::set<grpc::StatusCode> kDocumented = {
      grpc::StatusCode::OK,        grpc::StatusCode::INVALID_ARGUMENT,   grpc::StatusCode::OUT_OF_RANGE,
      grpc::StatusCode::NOT_FOUND, grpc::StatusCode::RESOURCE_EXHAUSTED, grpc::StatusCode::FAILED_PRECONDITION,
      grpc::StatusCode::DATA_LOSS, grpc::StatusCode::ALREADY_EXISTS,     grpc::StatusCode::PERMISSION_DENIED};
  COSET_CHECK(kDocumented.count(status.error_code()) == 1);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const uint8_t method = data[0];
  ++data;
  --size;
  switch (method % 11) {
    case 0:
      Call(&CosetServiceImpl::Encode, data, size);
      break;
    case 1:
      Call(&CosetServiceImpl::Decode, data, size);
      break;
    case 2:
      Call(&CosetServiceImpl::Quantize, data, size);
      break;
    case 3:
      Call(&CosetServiceImpl::InnerProduct, data, size);
      break;
    case 4:
      Call(&CosetServiceImpl::AddCodes, data, size);
      break;
    case 5:
      Call(&CosetServiceImpl::PutTensor, data, size);
      break;
    case 6:
      Call(&CosetServiceImpl::GetTensor, data, size);
      break;
    case 7:
      Call(&CosetServiceImpl::DeleteTensor, data, size);
      break;
    case 8:
      Call(&CosetServiceImpl::ListTensors, data, size);
      break;
    case 9:
      Call(&CosetServiceImpl::RegisterConfig, data, size);
      break;
    default:
      Call(&CosetServiceImpl::ServerInfo, data, size);
      break;
  }
  return 0;
}
