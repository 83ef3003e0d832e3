#include "client/coset_client.h"

#include <algorithm>
#include <cstring>
#include <functional>
#include <mutex>
#include <thread>

#include "absl/strings/str_cat.h"
#include "client/shm_client.h"
#include "common/files.h"
#include "core/format.h"
#include "core/status_macros.h"
#include "coset/v1/coset.grpc.pb.h"
#include "grpcpp/generic/generic_stub.h"
#include "grpcpp/grpcpp.h"
#include "proto/client_kind.h"
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

void CopyStats(const v1::EncodeStats& from, EncodeStats* to) {
  if (to == nullptr) return;
  to->chunks = from.chunks();
  to->first_try_overloads = from.first_try_overloads();
  to->capped = from.capped();
}

TensorInfo InfoFromProto(const v1::TensorInfo& t) {
  return TensorInfo{
      t.name(), {t.shape().begin(), t.shape().end()}, t.lattice(), static_cast<int>(t.q()), static_cast<int>(t.m()),
      t.bytes()};
}

// Plaintext, or TLS (mutual with a client certificate) when the options name PEM files.
absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> CredentialsFor(const Client::Options& options) {
  if (options.tls_ca_file.empty() && options.tls_cert_file.empty() && options.tls_key_file.empty()) {
    return grpc::InsecureChannelCredentials();
  }
  if (options.address.rfind("unix:", 0) == 0) {
    return absl::InvalidArgumentError("TLS is for TCP addresses; a Unix socket is checked by its peer's uid");
  }
  if (options.tls_ca_file.empty() || options.tls_cert_file.empty() != options.tls_key_file.empty()) {
    return absl::InvalidArgumentError("TLS needs the CA file, and the client certificate and key go together");
  }
  grpc::SslCredentialsOptions ssl;
  COSET_ASSIGN_OR_RETURN(ssl.pem_root_certs, ReadFile(options.tls_ca_file));
  if (!options.tls_cert_file.empty()) {
    COSET_ASSIGN_OR_RETURN(ssl.pem_cert_chain, ReadFile(options.tls_cert_file));
    COSET_ASSIGN_OR_RETURN(ssl.pem_private_key, ReadFile(options.tls_key_file));
  }
  return grpc::SslCredentials(ssl);
}

}  // namespace

// Everything that touches generated proto types or the shared-memory channel.
struct Client::Impl {
  Impl(std::shared_ptr<grpc::Channel> channel, const Options& options)
      : options(options), channel(std::move(channel)), stub(v1::Coset::NewStub(this->channel)) {}

  template <typename Request, typename Response, typename Method>
  absl::Status Call(Method method, const Request& request, Response* response, bool idempotent);
  // The shared-memory region with at least `bytes` free from scratch_offset() on; null when
  // unavailable (then callers use protobuf payloads). It grows only while no AllocateShared
  // buffer lives in it: that buffer never moves or changes under its owner. Caller holds shm_mu.
  ShmChannel* ShmFor(int64_t bytes);
  // Where requests put their payloads in the region: past the AllocateShared buffer.
  int64_t scratch_offset() const { return (shared_bytes + 63) / 64 * 64; }
  // A restarted daemon no longer knows the region: forget it (and the buffer in it).
  void DropRegion() {
    shm.reset();
    shared_bytes = 0;
  }
  // x: values of `dtype`.
  absl::StatusOr<std::string> EncodeRequestWithShm(v1::EncodeRequest& req, const void* x, DType dtype,
                                                   const std::vector<int64_t>& shape, EncodeStats* stats);
  // Decode of req's codes, or of `blob` when not null, to `dtype`; sink(values, bytes) receives the
  // values (from the region or the reply), and shape the shape, when the call succeeds. out_bytes:
  // the values' size when the blob header tells it (then large outputs come back through shared
  // memory, and the blob goes there too), else 0.
  absl::Status DecodeRequestWithShm(v1::DecodeRequest& req, const std::string* blob, DType dtype, int64_t out_bytes,
                                    const std::function<void(const char*, int64_t)>& sink, std::vector<int64_t>* shape);
  absl::StatusOr<std::vector<float>> OutputValues(const v1::Tensor& tensor, std::vector<int64_t>* shape);

  Options options;
  std::shared_ptr<grpc::Channel> channel;
  std::unique_ptr<v1::Coset::Stub> stub;
  std::mutex shm_mu;
  std::unique_ptr<ShmChannel> shm;
  int64_t shared_bytes = 0;  // the AllocateShared buffer at the region's start
  bool used_shm = false;
};

Client::Client(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Client::~Client() = default;

absl::StatusOr<std::unique_ptr<Client>> Client::Connect(const Options& options) {
  if (options.address.empty()) return absl::InvalidArgumentError("client address is empty");
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(static_cast<int>(options.max_message_bytes));
  args.SetMaxSendMessageSize(static_cast<int>(options.max_message_bytes));
  // Reconnect quickly after a daemon restart.
  args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 100);
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 1000);
  COSET_ASSIGN_OR_RETURN(std::shared_ptr<grpc::ChannelCredentials> credentials, CredentialsFor(options));
  return Create(grpc::CreateCustomChannel(options.address, credentials, args), options);
}

std::unique_ptr<Client> Client::Create(std::shared_ptr<grpc::Channel> channel, const Options& options) {
  return std::unique_ptr<Client>(new Client(std::make_unique<Impl>(std::move(channel), options)));
}

bool Client::used_shared_memory() const { return impl_->used_shm; }

absl::StatusOr<std::vector<float>> Client::Impl::OutputValues(const v1::Tensor& tensor, std::vector<int64_t>* shape) {
  COSET_ASSIGN_OR_RETURN(FloatTensor t, TensorFromProto(tensor, kMaxElements));
  if (shape != nullptr) *shape = std::move(t.shape);
  return std::move(t.values);
}

template <typename Request, typename Response, typename Method>
absl::Status Client::Impl::Call(Method method, const Request& request, Response* response, bool idempotent) {
  const auto deadline = std::chrono::system_clock::now() + options.timeout;
  grpc::Status status;
  for (int attempt = 0; attempt < std::max(1, options.max_attempts); ++attempt) {
    grpc::ClientContext ctx;
    ctx.set_deadline(deadline);
    ctx.set_wait_for_ready(idempotent);  // wait out a restarting daemon instead of failing at once
    ctx.AddMetadata(kClientKindMetadata, options.client_kind);
    status = (stub.get()->*method)(&ctx, request, response);
    if (status.ok() || !idempotent || status.error_code() != grpc::StatusCode::UNAVAILABLE) break;
    if (std::chrono::system_clock::now() >= deadline) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(50 << attempt));
  }
  return FromGrpc(status);
}

ShmChannel* Client::Impl::ShmFor(int64_t bytes) {
  if (options.shm_threshold_bytes <= 0 || options.address.rfind("unix:", 0) != 0) return nullptr;
  if (shm == nullptr) {
    auto opened = ShmChannel::Open(options.address.substr(5) + ".shm");
    if (!opened.ok()) return nullptr;
    shm = std::move(*opened);
    shared_bytes = 0;
  }
  if (shm->size() < scratch_offset() + bytes) {
    if (shared_bytes > 0) return nullptr;  // growing would unmap the caller's buffer
    // Grow geometrically so a stream of similar requests registers once.
    if (!shm->Allocate(std::max<int64_t>(bytes, 2 * shm->size())).ok()) {
      DropRegion();
      return nullptr;
    }
  }
  return shm.get();
}

float* Client::AllocateShared(int64_t floats) {
  std::lock_guard<std::mutex> lock(impl_->shm_mu);
  impl_->shared_bytes = 0;  // the previous buffer is given up
  // Room behind the tensor for the blob the daemon writes, or for a decode of the same size (its
  // blob and its values): pages of the region that are never touched cost no memory.
  const int64_t bytes = floats * 4;
  ShmChannel* shm = impl_->ShmFor(bytes + 64 + bytes + 2 * (bytes / 2 + 65536));
  if (shm == nullptr) return nullptr;
  impl_->shared_bytes = bytes;
  return reinterpret_cast<float*>(shm->data());
}

absl::StatusOr<std::string> Client::Impl::EncodeRequestWithShm(v1::EncodeRequest& req, const void* x, DType dtype,
                                                               const std::vector<int64_t>& shape, EncodeStats* stats) {
  COSET_ASSIGN_OR_RETURN(const int64_t numel, CheckedNumel(shape));
  const int item = DTypeBytes(dtype);
  const int64_t in_bytes = numel * item;
  v1::EncodeResponse resp;
  // Shape and dtype are the same whichever way the values travel.
  v1::Tensor* input = req.mutable_input();
  for (int64_t d : shape) input->add_shape(d);
  input->set_dtype(static_cast<v1::DataType>(dtype));
  if (in_bytes >= options.shm_threshold_bytes) {
    std::lock_guard<std::mutex> lock(shm_mu);
    // Output capacity: a blob is never larger than half its float32 input plus its headers.
    const int64_t out_capacity = numel * 2 + 65536;
    // Zero copy when the tensor already lives in the region (the AllocateShared buffer); the blob
    // then goes behind that buffer. Other tensors are copied in behind it, the blob behind them.
    const uint8_t* xb = static_cast<const uint8_t*>(x);
    const bool in_region = shm != nullptr && xb >= shm->data() && xb + in_bytes <= shm->data() + shared_bytes &&
                           (xb - shm->data()) % item == 0;
    ShmChannel* region = ShmFor(in_region ? out_capacity : in_bytes + 4 + out_capacity);
    if (region != nullptr) {
      const int64_t in_offset = in_region ? xb - region->data() : scratch_offset();
      const int64_t out_offset = in_region ? scratch_offset() : (in_offset + in_bytes + 3) / 4 * 4;
      if (!in_region) std::memcpy(region->data() + in_offset, x, in_bytes);
      v1::SharedMemoryRef* in = input->mutable_shm();
      in->set_region(region->token());
      in->set_offset(in_offset);
      in->set_length(in_bytes);
      v1::SharedMemoryRef* out = req.mutable_output();
      out->set_region(region->token());
      out->set_offset(out_offset);
      out->set_length(out_capacity);
      const absl::Status s = Call(&v1::Coset::Stub::Encode, req, &resp, true);
      if (s.ok()) {
        used_shm = true;
        CopyStats(resp.stats(), stats);
        return std::string(reinterpret_cast<const char*>(region->data()) + out->offset(), resp.output_length());
      }
      // A restarted daemon no longer knows the region: drop it and send the bytes inline.
      if (s.code() != absl::StatusCode::kNotFound && s.code() != absl::StatusCode::kUnavailable) return s;
      DropRegion();
      input->clear_shm();
      req.clear_output();
    }
  }
  used_shm = false;
  input->set_data(x, static_cast<size_t>(in_bytes));
  if (auto s = Call(&v1::Coset::Stub::Encode, req, &resp, true); !s.ok()) return s;
  CopyStats(resp.stats(), stats);
  return std::move(*resp.mutable_blob());
}

absl::StatusOr<std::string> Client::Encode(const float* x, const std::vector<int64_t>& shape, const CodecParams& params,
                                           EncodeStats* stats) {
  return EncodeTyped(x, DType::kFloat32, shape, params, stats);
}

absl::StatusOr<std::string> Client::EncodeTyped(const void* x, DType dtype, const std::vector<int64_t>& shape,
                                                const CodecParams& params, EncodeStats* stats) {
  v1::EncodeRequest req;
  *req.mutable_codec()->mutable_config() = ParamsToProto(params);
  return impl_->EncodeRequestWithShm(req, x, dtype, shape, stats);
}

absl::StatusOr<std::string> Client::EncodeWithConfig(const float* x, const std::vector<int64_t>& shape,
                                                     const std::string& config_id, EncodeStats* stats) {
  v1::EncodeRequest req;
  req.mutable_codec()->set_config_id(config_id);
  return impl_->EncodeRequestWithShm(req, x, DType::kFloat32, shape, stats);
}

absl::Status Client::Impl::DecodeRequestWithShm(v1::DecodeRequest& req, const std::string* blob, DType dtype,
                                                int64_t out_bytes,
                                                const std::function<void(const char*, int64_t)>& sink,
                                                std::vector<int64_t>* shape) {
  req.set_dtype(static_cast<v1::DataType>(dtype));
  v1::DecodeResponse resp;
  if (out_bytes >= options.shm_threshold_bytes && out_bytes > 0) {
    std::lock_guard<std::mutex> lock(shm_mu);
    // The blob goes into the region too (a memcpy, where a message's bytes cross the socket at a
    // fraction of that speed), the values come back behind it.
    const int64_t blob_bytes = blob != nullptr ? static_cast<int64_t>(blob->size()) : 0;
    if (ShmChannel* region = ShmFor(blob_bytes + 64 + out_bytes)) {
      const int64_t out_offset = (scratch_offset() + blob_bytes + 63) / 64 * 64;
      if (blob != nullptr) {
        std::memcpy(region->data() + scratch_offset(), blob->data(), blob->size());
        v1::SharedMemoryRef* in = req.mutable_codes()->mutable_shm();
        in->set_region(region->token());
        in->set_offset(scratch_offset());
        in->set_length(blob_bytes);
      }
      v1::SharedMemoryRef* out = req.mutable_output();
      out->set_region(region->token());
      out->set_offset(out_offset);
      out->set_length(out_bytes);
      const absl::Status s = Call(&v1::Coset::Stub::Decode, req, &resp, true);
      if (s.ok()) {
        used_shm = true;
        sink(reinterpret_cast<const char*>(region->data() + out_offset), out_bytes);
        if (shape != nullptr) shape->assign(resp.output().shape().begin(), resp.output().shape().end());
        return absl::OkStatus();
      }
      if (s.code() != absl::StatusCode::kNotFound && s.code() != absl::StatusCode::kUnavailable) return s;
      DropRegion();
      req.clear_output();
    }
  }
  used_shm = false;
  if (blob != nullptr) req.mutable_codes()->set_blob(*blob);
  COSET_RETURN_IF_ERROR(Call(&v1::Coset::Stub::Decode, req, &resp, true));
  // The one tensor check, then the values as they came.
  COSET_ASSIGN_OR_RETURN(TensorShape checked, CheckTensor(resp.output(), kMaxElements));
  if (checked.dtype != dtype) return absl::InternalError("the daemon answered in another dtype than asked");
  sink(resp.output().data().data(), static_cast<int64_t>(resp.output().data().size()));
  if (shape != nullptr) *shape = std::move(checked.shape);
  return absl::OkStatus();
}

absl::Status Client::Decode(const std::string& blob_or_name, bool by_name, std::vector<float>* out,
                            std::vector<int64_t>* shape) {
  v1::DecodeRequest req;
  if (by_name) req.mutable_codes()->set_tensor_name(blob_or_name);
  // Large outputs come back through shared memory (the blob header says how large).
  int64_t out_bytes = 0;
  if (!by_name) {
    auto header = PeekHeader(reinterpret_cast<const uint8_t*>(blob_or_name.data()), blob_or_name.size());
    out_bytes = header.ok() ? header->numel * 4 : 0;
  }
  return impl_->DecodeRequestWithShm(
      req, by_name ? nullptr : &blob_or_name, DType::kFloat32, out_bytes,
      [&](const char* values, int64_t bytes) {
        out->resize(static_cast<size_t>(bytes / 4));
        if (bytes > 0) std::memcpy(out->data(), values, static_cast<size_t>(bytes));
      },
      shape);
}

absl::Status Client::DecodeTyped(const std::string& blob, DType dtype, void* out) {
  COSET_ASSIGN_OR_RETURN(const BlobHeader header,
                         PeekHeader(reinterpret_cast<const uint8_t*>(blob.data()), blob.size()));
  const int64_t out_bytes = header.numel * DTypeBytes(dtype);
  v1::DecodeRequest req;
  absl::Status size = absl::OkStatus();
  COSET_RETURN_IF_ERROR(impl_->DecodeRequestWithShm(
      req, &blob, dtype, out_bytes,
      [&](const char* values, int64_t bytes) {
        if (bytes != out_bytes) {
          size = absl::InternalError(absl::StrCat("the daemon decoded ", bytes, " bytes; the blob holds ", out_bytes));
        } else if (bytes > 0) {
          std::memcpy(out, values, static_cast<size_t>(bytes));
        }
      },
      nullptr));
  return size;
}

absl::Status Client::Quantize(const float* x, const std::vector<int64_t>& shape, const CodecParams& params,
                              std::vector<float>* out) {
  v1::QuantizeRequest req;
  *req.mutable_codec()->mutable_config() = ParamsToProto(params);
  FillTensor(x, shape, req.mutable_input());
  v1::QuantizeResponse resp;
  COSET_RETURN_IF_ERROR(impl_->Call(&v1::Coset::Stub::Quantize, req, &resp, true));
  COSET_ASSIGN_OR_RETURN(*out, impl_->OutputValues(resp.output(), nullptr));
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
  COSET_RETURN_IF_ERROR(impl_->Call(&v1::Coset::Stub::InnerProduct, req, &resp, true));
  COSET_ASSIGN_OR_RETURN(*out, impl_->OutputValues(resp.output(), nullptr));
  if (path != nullptr) *path = resp.path();
  return absl::OkStatus();
}

absl::StatusOr<std::vector<float>> Client::DotRows(const std::string& a_blob, const std::string& b_blob) {
  v1::InnerProductRequest req;
  req.mutable_weights()->set_blob(a_blob);
  req.mutable_codes()->set_blob(b_blob);
  v1::InnerProductResponse resp;
  COSET_RETURN_IF_ERROR(impl_->Call(&v1::Coset::Stub::InnerProduct, req, &resp, true));
  return impl_->OutputValues(resp.output(), nullptr);
}

absl::StatusOr<AddCodesResult> Client::AddCodes(const std::vector<std::string>& blobs, bool validate) {
  v1::AddCodesRequest req;
  for (const std::string& b : blobs) req.add_codes()->set_blob(b);
  req.set_validate(validate);
  v1::AddCodesResponse resp;
  COSET_RETURN_IF_ERROR(impl_->Call(&v1::Coset::Stub::AddCodes, req, &resp, true));
  const std::string& blob = resp.blob();
  return AddCodesResult{std::vector<uint8_t>(blob.begin(), blob.end()), resp.chunks(), resp.inexact_chunks()};
}

absl::StatusOr<TensorInfo> Client::PutTensor(const std::string& name, const std::string& blob, bool overwrite) {
  v1::PutTensorRequest req;
  req.set_name(name);
  req.set_blob(blob);
  req.set_overwrite(overwrite);
  v1::PutTensorResponse resp;
  COSET_RETURN_IF_ERROR(impl_->Call(&v1::Coset::Stub::PutTensor, req, &resp, false));
  return InfoFromProto(resp.info());
}

absl::StatusOr<std::string> Client::GetTensor(const std::string& name) {
  v1::GetTensorRequest req;
  req.set_name(name);
  v1::GetTensorResponse resp;
  COSET_RETURN_IF_ERROR(impl_->Call(&v1::Coset::Stub::GetTensor, req, &resp, true));
  return std::move(*resp.mutable_blob());
}

absl::Status Client::DeleteTensor(const std::string& name) {
  v1::DeleteTensorRequest req;
  req.set_name(name);
  v1::DeleteTensorResponse resp;
  return impl_->Call(&v1::Coset::Stub::DeleteTensor, req, &resp, false);
}

absl::StatusOr<std::vector<TensorInfo>> Client::ListTensors() {
  v1::ListTensorsRequest req;
  v1::ListTensorsResponse resp;
  COSET_RETURN_IF_ERROR(impl_->Call(&v1::Coset::Stub::ListTensors, req, &resp, true));
  std::vector<TensorInfo> out;
  for (const v1::TensorInfo& t : resp.tensors()) out.push_back(InfoFromProto(t));
  return out;
}

absl::StatusOr<std::string> Client::RegisterConfig(const CodecParams& params) {
  v1::RegisterConfigRequest req;
  *req.mutable_config() = ParamsToProto(params);
  v1::RegisterConfigResponse resp;
  COSET_RETURN_IF_ERROR(impl_->Call(&v1::Coset::Stub::RegisterConfig, req, &resp, true));
  return resp.config_id();
}

absl::StatusOr<ServerInfo> Client::GetServerInfo() {
  v1::ServerInfoRequest req;
  v1::ServerInfoResponse resp;
  COSET_RETURN_IF_ERROR(impl_->Call(&v1::Coset::Stub::ServerInfo, req, &resp, true));
  ServerInfo info;
  info.version = resp.version();
  info.backends.assign(resp.backends().begin(), resp.backends().end());
  for (const v1::BackendStatus& b : resp.backend_status())
    info.backend_states.push_back({b.name(), b.serving(), b.detail()});
  info.limits = {resp.limits().max_message_bytes(), resp.limits().max_concurrent_requests(),
                 resp.limits().memory_budget_bytes(), resp.limits().lut_budget_bytes()};
  for (const v1::ConfigInfo& c : resp.configs()) info.config_ids.push_back(c.config_id());
  info.resident_bytes = resp.resident_bytes();
  return info;
}

absl::Status Client::Health(const std::string& service) {
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + impl_->options.timeout);
  ctx.AddMetadata(kClientKindMetadata, impl_->options.client_kind);
  grpc::ByteBuffer request, response;
  // grpc.health.v1.HealthCheckRequest{service}: field 1, length-delimited (empty for "").
  if (service.size() > 127) return absl::InvalidArgumentError("health service name is too long");
  std::string encoded;
  if (!service.empty()) encoded = std::string("\x0a", 1) + static_cast<char>(service.size()) + service;
  grpc::Slice slice(encoded);
  request = grpc::ByteBuffer(&slice, 1);
  grpc::GenericStub generic(impl_->channel);
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
