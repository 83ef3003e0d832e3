#include "client/coset_client.h"

#include <algorithm>
#include <cstring>
#include <thread>

#include "absl/strings/str_cat.h"
#include "grpcpp/generic/generic_stub.h"
#include "grpcpp/grpcpp.h"
#include "core/format.h"
#include "proto/convert.h"

namespace coset {
namespace {

absl::Status FromGrpc(const grpc::Status& s) {
  if (s.ok()) return absl::OkStatus();
  return absl::Status(static_cast<absl::StatusCode>(s.error_code()), s.error_message());
}

void FillTensor(const float* x, const std::vector<int64_t>& shape, v1::Tensor* t) {
  TensorToProto(shape, x, DType::kFloat32, t);
}

}  // namespace

Client::Client(const Options& options) : options_(options) {
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(static_cast<int>(options.max_message_bytes));
  args.SetMaxSendMessageSize(static_cast<int>(options.max_message_bytes));
  // Reconnect quickly after a daemon restart.
  args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 100);
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 1000);
  channel_ = grpc::CreateCustomChannel(options.address, grpc::InsecureChannelCredentials(), args);
  stub_ = v1::Coset::NewStub(channel_);
}

absl::StatusOr<std::unique_ptr<Client>> Client::Connect(const Options& options) {
  if (options.address.empty()) return absl::InvalidArgumentError("client address is empty");
  return std::unique_ptr<Client>(new Client(options));
}

template <typename Request, typename Response, typename Method>
absl::Status Client::Call(Method method, const Request& request, Response* response, bool idempotent) {
  const auto deadline = std::chrono::system_clock::now() + options_.timeout;
  grpc::Status status;
  for (int attempt = 0; attempt < std::max(1, options_.max_attempts); ++attempt) {
    grpc::ClientContext ctx;
    ctx.set_deadline(deadline);
    ctx.set_wait_for_ready(idempotent);  // wait out a restarting daemon instead of failing at once
    status = (stub_.get()->*method)(&ctx, request, response);
    if (status.ok() || !idempotent || status.error_code() != grpc::StatusCode::UNAVAILABLE) break;
    if (std::chrono::system_clock::now() >= deadline) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(50 << attempt));
  }
  return FromGrpc(status);
}

ShmChannel* Client::ShmFor(int64_t bytes) {
  if (options_.shm_threshold_bytes <= 0 || options_.address.rfind("unix:", 0) != 0) return nullptr;
  if (shm_ == nullptr) {
    auto channel = ShmChannel::Open(options_.address.substr(5) + ".shm");
    if (!channel.ok()) return nullptr;
    shm_ = std::move(*channel);
  }
  if (shm_->size() < bytes) {
    // Grow geometrically so a stream of similar requests registers once.
    if (!shm_->Allocate(std::max<int64_t>(bytes, 2 * shm_->size())).ok()) {
      shm_.reset();
      return nullptr;
    }
  }
  return shm_.get();
}

float* Client::AllocateShared(int64_t floats) {
  std::lock_guard<std::mutex> lock(shm_mu_);
  // Room for the tensor and for the blob the daemon writes behind it.
  const int64_t bytes = floats * 4;
  ShmChannel* shm = ShmFor(bytes + bytes / 2 + 65536);
  return shm == nullptr ? nullptr : reinterpret_cast<float*>(shm->data());
}

absl::StatusOr<std::string> Client::EncodeRequestWithShm(v1::EncodeRequest& req, const float* x,
                                                         const std::vector<int64_t>& shape, v1::EncodeStats* stats) {
  int64_t numel = 1;
  for (int64_t d : shape) numel *= d;
  const int64_t in_bytes = numel * 4;
  v1::EncodeResponse resp;
  if (in_bytes >= options_.shm_threshold_bytes) {
    std::lock_guard<std::mutex> lock(shm_mu_);
    // Output capacity: a blob is never larger than half its float32 input plus its headers.
    const int64_t out_capacity = in_bytes / 2 + 65536;
    // Zero copy when the tensor already lives in the region (AllocateShared).
    const uint8_t* xb = reinterpret_cast<const uint8_t*>(x);
    const bool in_region = shm_ != nullptr && xb >= shm_->data() && xb + in_bytes <= shm_->data() + shm_->size() &&
                           (xb - shm_->data()) % 4 == 0;
    const int64_t in_offset = in_region ? xb - shm_->data() : 0;
    ShmChannel* shm = in_region ? shm_.get() : ShmFor(in_bytes + out_capacity);
    if (shm != nullptr && in_offset + in_bytes + out_capacity <= shm->size()) {
      if (!in_region) std::memcpy(shm->data(), x, in_bytes);
      for (int64_t d : shape) req.mutable_input()->add_shape(d);
      v1::SharedMemoryRef* in = req.mutable_input()->mutable_shm();
      in->set_region(shm->token());
      in->set_offset(in_offset);
      in->set_length(in_bytes);
      v1::SharedMemoryRef* out = req.mutable_output();
      out->set_region(shm->token());
      out->set_offset((in_offset + in_bytes + 3) / 4 * 4);
      out->set_length(out_capacity);
      const absl::Status s = Call(&v1::Coset::Stub::Encode, req, &resp, true);
      if (s.ok()) {
        used_shm_ = true;
        if (stats != nullptr) *stats = resp.stats();
        return std::string(reinterpret_cast<const char*>(shm->data()) + out->offset(), resp.output_length());
      }
      // A restarted daemon no longer knows the region: drop it and send the bytes inline.
      if (s.code() != absl::StatusCode::kNotFound && s.code() != absl::StatusCode::kUnavailable) return s;
      shm_.reset();
      req.clear_input();
      req.clear_output();
    }
  }
  used_shm_ = false;
  FillTensor(x, shape, req.mutable_input());
  if (auto s = Call(&v1::Coset::Stub::Encode, req, &resp, true); !s.ok()) return s;
  if (stats != nullptr) *stats = resp.stats();
  return std::move(*resp.mutable_blob());
}

absl::StatusOr<std::string> Client::Encode(const float* x, const std::vector<int64_t>& shape, const CodecParams& params,
                                           v1::EncodeStats* stats) {
  v1::EncodeRequest req;
  *req.mutable_codec()->mutable_config() = ParamsToProto(params);
  return EncodeRequestWithShm(req, x, shape, stats);
}

absl::StatusOr<std::string> Client::EncodeWithConfig(const float* x, const std::vector<int64_t>& shape,
                                                     const std::string& config_id, v1::EncodeStats* stats) {
  v1::EncodeRequest req;
  req.mutable_codec()->set_config_id(config_id);
  return EncodeRequestWithShm(req, x, shape, stats);
}

absl::Status Client::Decode(const std::string& blob_or_name, bool by_name, std::vector<float>* out,
                            std::vector<int64_t>* shape) {
  v1::DecodeRequest req;
  if (by_name) {
    req.mutable_codes()->set_tensor_name(blob_or_name);
  } else {
    req.mutable_codes()->set_blob(blob_or_name);
  }
  v1::DecodeResponse resp;
  if (!by_name) {
    // Large outputs come back through shared memory (the blob header says how large).
    auto header = PeekHeader(reinterpret_cast<const uint8_t*>(blob_or_name.data()), blob_or_name.size());
    const int64_t out_bytes = header.ok() ? header->numel * 4 : 0;
    if (out_bytes >= options_.shm_threshold_bytes && out_bytes > 0) {
      std::lock_guard<std::mutex> lock(shm_mu_);
      if (ShmChannel* shm = ShmFor(out_bytes)) {
        v1::SharedMemoryRef* region = req.mutable_output();
        region->set_region(shm->token());
        region->set_length(out_bytes);
        const absl::Status s = Call(&v1::Coset::Stub::Decode, req, &resp, true);
        if (s.ok()) {
          used_shm_ = true;
          const float* values = reinterpret_cast<const float*>(shm->data());
          out->assign(values, values + out_bytes / 4);
          if (shape != nullptr) shape->assign(resp.output().shape().begin(), resp.output().shape().end());
          return absl::OkStatus();
        }
        if (s.code() != absl::StatusCode::kNotFound && s.code() != absl::StatusCode::kUnavailable) return s;
        shm_.reset();
        req.clear_output();
      }
    }
  }
  used_shm_ = false;
  if (auto s = Call(&v1::Coset::Stub::Decode, req, &resp, true); !s.ok()) return s;
  auto t = TensorFromProto(resp.output(), int64_t{1} << 40);
  if (!t.ok()) return t.status();
  *out = std::move(t->values);
  if (shape != nullptr) *shape = std::move(t->shape);
  return absl::OkStatus();
}

absl::Status Client::Quantize(const float* x, const std::vector<int64_t>& shape, const CodecParams& params,
                              std::vector<float>* out) {
  v1::QuantizeRequest req;
  *req.mutable_codec()->mutable_config() = ParamsToProto(params);
  FillTensor(x, shape, req.mutable_input());
  v1::QuantizeResponse resp;
  if (auto s = Call(&v1::Coset::Stub::Quantize, req, &resp, true); !s.ok()) return s;
  auto t = TensorFromProto(resp.output(), int64_t{1} << 40);
  if (!t.ok()) return t.status();
  *out = std::move(t->values);
  return absl::OkStatus();
}

absl::Status Client::Gemm(const std::string& weights, bool by_name, const float* queries, int64_t batch, int64_t k,
                          std::vector<float>* out, std::string* path) {
  v1::InnerProductRequest req;
  if (by_name) {
    req.mutable_weights()->set_tensor_name(weights);
  } else {
    req.mutable_weights()->set_blob(weights);
  }
  FillTensor(queries, {batch, k}, req.mutable_queries());
  v1::InnerProductResponse resp;
  if (auto s = Call(&v1::Coset::Stub::InnerProduct, req, &resp, true); !s.ok()) return s;
  auto t = TensorFromProto(resp.output(), int64_t{1} << 40);
  if (!t.ok()) return t.status();
  *out = std::move(t->values);
  if (path != nullptr) *path = resp.path();
  return absl::OkStatus();
}

absl::StatusOr<std::vector<float>> Client::DotRows(const std::string& a_blob, const std::string& b_blob) {
  v1::InnerProductRequest req;
  req.mutable_weights()->set_blob(a_blob);
  req.mutable_codes()->set_blob(b_blob);
  v1::InnerProductResponse resp;
  if (auto s = Call(&v1::Coset::Stub::InnerProduct, req, &resp, true); !s.ok()) return s;
  auto t = TensorFromProto(resp.output(), int64_t{1} << 40);
  if (!t.ok()) return t.status();
  return std::move(t->values);
}

absl::StatusOr<v1::AddCodesResponse> Client::AddCodes(const std::vector<std::string>& blobs, bool validate) {
  v1::AddCodesRequest req;
  for (const std::string& b : blobs) req.add_codes()->set_blob(b);
  req.set_validate(validate);
  v1::AddCodesResponse resp;
  if (auto s = Call(&v1::Coset::Stub::AddCodes, req, &resp, true); !s.ok()) return s;
  return resp;
}

absl::StatusOr<v1::TensorInfo> Client::PutTensor(const std::string& name, const std::string& blob, bool overwrite) {
  v1::PutTensorRequest req;
  req.set_name(name);
  req.set_blob(blob);
  req.set_overwrite(overwrite);
  v1::PutTensorResponse resp;
  if (auto s = Call(&v1::Coset::Stub::PutTensor, req, &resp, false); !s.ok()) return s;
  return resp.info();
}

absl::StatusOr<std::string> Client::GetTensor(const std::string& name) {
  v1::GetTensorRequest req;
  req.set_name(name);
  v1::GetTensorResponse resp;
  if (auto s = Call(&v1::Coset::Stub::GetTensor, req, &resp, true); !s.ok()) return s;
  return std::move(*resp.mutable_blob());
}

absl::Status Client::DeleteTensor(const std::string& name) {
  v1::DeleteTensorRequest req;
  req.set_name(name);
  v1::DeleteTensorResponse resp;
  return Call(&v1::Coset::Stub::DeleteTensor, req, &resp, false);
}

absl::StatusOr<std::vector<v1::TensorInfo>> Client::ListTensors() {
  v1::ListTensorsRequest req;
  v1::ListTensorsResponse resp;
  if (auto s = Call(&v1::Coset::Stub::ListTensors, req, &resp, true); !s.ok()) return s;
  return std::vector<v1::TensorInfo>(resp.tensors().begin(), resp.tensors().end());
}

absl::StatusOr<std::string> Client::RegisterConfig(const CodecParams& params) {
  v1::RegisterConfigRequest req;
  *req.mutable_config() = ParamsToProto(params);
  v1::RegisterConfigResponse resp;
  if (auto s = Call(&v1::Coset::Stub::RegisterConfig, req, &resp, true); !s.ok()) return s;
  return resp.config_id();
}

absl::StatusOr<v1::ServerInfoResponse> Client::ServerInfo() {
  v1::ServerInfoRequest req;
  v1::ServerInfoResponse resp;
  if (auto s = Call(&v1::Coset::Stub::ServerInfo, req, &resp, true); !s.ok()) return s;
  return resp;
}

absl::Status Client::Health() {
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + options_.timeout);
  grpc::ByteBuffer request, response;
  // grpc.health.v1.HealthCheckRequest{service: ""} serializes to zero bytes.
  grpc::Slice empty;
  request = grpc::ByteBuffer(&empty, 1);
  grpc::GenericStub generic(channel_);
  grpc::CompletionQueue cq;
  auto call = generic.PrepareUnaryCall(&ctx, "/grpc.health.v1.Health/Check", request, &cq);
  call->StartCall();
  grpc::Status status;
  call->Finish(&response, &status, reinterpret_cast<void*>(1));
  void* tag;
  bool ok;
  cq.Next(&tag, &ok);
  if (!status.ok()) return FromGrpc(status);
  // HealthCheckResponse{status: SERVING (1)} is the two bytes 08 01.
  std::vector<grpc::Slice> slices;
  response.Dump(&slices);
  std::string bytes;
  for (const auto& s : slices) bytes.append(reinterpret_cast<const char*>(s.begin()), s.size());
  if (bytes != std::string("\x08\x01", 2)) return absl::UnavailableError("daemon is not SERVING");
  return absl::OkStatus();
}

}  // namespace coset
