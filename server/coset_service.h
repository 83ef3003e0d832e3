// The coset.v1.Coset gRPC service: the codec, LUT inner products and code arithmetic of core/,
// plus resident tensors and registered configurations. Never crashes on request data: every
// input is validated and every failure is a gRPC status with the canonical code.
#pragma once

#include <atomic>
#include <memory>
#include <mutex>
#include <string>

#include "core/format.h"
#include "core/limits.h"
#include "core/lut.h"
#include "core/thread_pool.h"
#include "coset/v1/coset.grpc.pb.h"
#include "proto/convert.h"
#include "server/call_reservations.h"
#include "server/code_buffer_pool.h"
#include "server/config_cache.h"
#include "server/memory_budget.h"
#include "server/metrics.h"
#include "server/peer_access.h"
#include "server/request_context.h"
#include "server/shm_registry.h"
#include "server/tensor_store.h"

namespace coset {

class CudaCodec;  // kernels/cuda_runtime.h

struct ServiceLimits {
  int64_t max_message_bytes = kDefaultMaxMessageBytes;
  int64_t max_concurrent_requests = 64;
  int64_t memory_budget_bytes = int64_t{4} << 30;  // resident tensors + requests in flight
  int64_t lut_budget_bytes = kDefaultLutBudgetBytes;
  int threads = 0;  // codec threads for large requests (0 = cores)
};

inline constexpr char kCosetVersion[] = "0.1.0";

class CosetServiceImpl final : public v1::Coset::Service {
 public:
  // shm may be null (no Unix socket, so no shared-memory data path). unix_peers: the gRPC Unix
  // socket's peers (UnixListener), null when there is none; calls from elsewhere are "tcp" or
  // "x509:..." (PrincipalOf).
  CosetServiceImpl(const ServiceLimits& limits, Metrics* metrics, ShmRegistry* shm,
                   const UnixPeers* unix_peers = nullptr);

  ~CosetServiceImpl() override;

  // Serves Encode, Decode, Quantize's encode and InnerProduct's GEMM on this CUDA device (host
  // payloads staged through device memory, one request on the device at a time; resident weights
  // kept there); row dots and code sums stay on the CPU. Call before serving.
  void UseCuda(std::unique_ptr<CudaCodec> cuda);
  // What ServerInfo says of the CUDA backend when it does not serve: why (no driver, no device,
  // not asked for). Call before serving.
  void SetCudaStatus(std::string detail) { cuda_status_ = std::move(detail); }

  // coset::v1::Coset
  grpc::Status Encode(grpc::ServerContext* ctx, const v1::EncodeRequest* req, v1::EncodeResponse* resp) override;
  grpc::Status Decode(grpc::ServerContext* ctx, const v1::DecodeRequest* req, v1::DecodeResponse* resp) override;
  grpc::Status Quantize(grpc::ServerContext* ctx, const v1::QuantizeRequest* req, v1::QuantizeResponse* resp) override;
  grpc::Status InnerProduct(grpc::ServerContext* ctx, const v1::InnerProductRequest* req,
                            v1::InnerProductResponse* resp) override;
  grpc::Status AddCodes(grpc::ServerContext* ctx, const v1::AddCodesRequest* req, v1::AddCodesResponse* resp) override;
  grpc::Status PutTensor(grpc::ServerContext* ctx, const v1::PutTensorRequest* req,
                         v1::PutTensorResponse* resp) override;
  grpc::Status GetTensor(grpc::ServerContext* ctx, const v1::GetTensorRequest* req,
                         v1::GetTensorResponse* resp) override;
  grpc::Status DeleteTensor(grpc::ServerContext* ctx, const v1::DeleteTensorRequest* req,
                            v1::DeleteTensorResponse* resp) override;
  grpc::Status ListTensors(grpc::ServerContext* ctx, const v1::ListTensorsRequest* req,
                           v1::ListTensorsResponse* resp) override;
  grpc::Status RegisterConfig(grpc::ServerContext* ctx, const v1::RegisterConfigRequest* req,
                              v1::RegisterConfigResponse* resp) override;
  grpc::Status ServerInfo(grpc::ServerContext* ctx, const v1::ServerInfoRequest* req,
                          v1::ServerInfoResponse* resp) override;

  // Requests being served now (cosetd's drain waits for them).
  int64_t inflight() const { return inflight_.load(); }
  // Install on the gRPC server: a call's reservations are then held until gRPC has sent its reply
  // (see call_reservations.h), not only until the handler returns.
  std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface> ReservationInterceptor() {
    return reservations_.InterceptorFactory();
  }

 private:
  using Config = ConfigCache::Config;
  // Runs one RPC: concurrency and memory admission, a RequestContext for the handler (its
  // cancellation and executor), metrics, status mapping. fn: absl::Status(RequestContext&).
  template <typename Request, typename Response, typename Fn>
  grpc::Status Serve(const char* method, grpc::ServerContext* ctx, const Request* req, Response* resp, Fn&& fn);

  absl::StatusOr<Config> CodecFor(const v1::CodecSpec& spec);
  // Codes from a blob (parsed; reserves the parsed copy), shared memory or a resident tensor.
  absl::StatusOr<std::shared_ptr<const CompressedTensor>> CodesFrom(const v1::Codes& codes, RequestContext& rc);
  // An input, checked by the one tensor validator (CheckTensor) whatever the transport: float32
  // in `data` (a float32 tensor in shared memory read in place, the span keeping it mapped;
  // anything else copied, and widened, into `owned`), or, when asked for, a tensor of another
  // dtype left where it arrived (`raw`: the request's bytes or the span) for a row-by-row widening.
  struct Input {
    std::vector<int64_t> shape;
    const float* data = nullptr;
    const void* raw = nullptr;
    int64_t numel = 0;
    DType dtype = DType::kFloat32;  // as it arrived (the blob records it)
    std::vector<float> owned;
    ShmSpan span;
  };
  // The one tensor check (CheckTensor) with this daemon's limits, before anything is allocated.
  absl::StatusOr<TensorShape> CheckInput(const v1::Tensor& tensor) const;
  // The checked tensor's values; reserves the copy of an inline payload before making it. With
  // keep_raw, a tensor of another dtype than float32 is not copied (Input::raw).
  absl::StatusOr<Input> InputFrom(const v1::Tensor& tensor, TensorShape checked, RequestContext& rc,
                                  bool keep_raw = false);
  absl::StatusOr<ShmSpan> Span(const v1::SharedMemoryRef& ref, const RequestContext& rc);
  // Encodes and plans the serialization (the caller writes the blob where it belongs); reserves the
  // input copy, the codes and their serialization first. With reuse_buffers, *out is first taken
  // from code_buffers_ (the caller gives it back when done with it).
  absl::Status DoEncode(const Config& config, const v1::Tensor& input, RequestContext& rc, CompressedTensor* out,
                        SerializationPlan* plan, v1::EncodeStats* stats, bool reuse_buffers = false);
  // Encode and decode of a whole tensor, on the CUDA device when there is one, else on the CPU.
  absl::Status EncodeTensor(const Config& config, const Input& x, RequestContext& rc, EncodeStats* stats,
                            CompressedTensor* out);
  absl::Status DecodeTensorTo(const CompressedTensor& t, void* out, DType dtype, RequestContext& rc);
  // InnerProduct's queries against w on the CUDA device (the fused kernel): a resident tensor's
  // codes are uploaded on first use and kept with it (TensorStore::DeviceCodes), sent ones per call.
  absl::Status GemmOnDevice(const v1::Codes& source, const CompressedTensor& w, const Input& x, int64_t batch,
                            RequestContext& rc, v1::InnerProductResponse* resp);
  // Bytes held outside requests: resident tensors, their LUT matrices, codebooks and LUTs, and
  // the code buffers kept between encodes.
  int64_t ResidentBytes() const;
  void UpdateGauges();

  const ServiceLimits limits_;
  Metrics* metrics_;
  ShmRegistry* shm_;
  const UnixPeers* unix_peers_;
  TensorStore store_;
  ConfigCache configs_;
  ThreadPool pool_;
  CodeBufferPool code_buffers_;
  MemoryBudget budget_;
  CallReservations reservations_{&budget_};
  std::atomic<int64_t> inflight_{0};
  std::unique_ptr<CudaCodec> cuda_;  // null: the CPU serves everything
  std::string cuda_status_ = "not probed";
  std::mutex cuda_mu_;  // one request on the device at a time
};

}  // namespace coset
