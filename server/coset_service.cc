#include "server/coset_service.h"

#include <malloc.h>

#include <chrono>
#include <cstdio>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "core/code_arith.h"
#include "core/dtype.h"
#include "core/format.h"
#include "core/inner_product.h"
#include "core/simd/dispatch.h"
#include "core/status_macros.h"
#include "kernels/cuda_runtime.h"
#include "proto/client_kind.h"
#include "proto/convert.h"

namespace coset {
namespace {

// Upper bound of what a DecodeResponse adds around the values: the data field's tag and
// length, kMaxRank shape varints (<= 11 bytes each), the dtype and the message wrappers.
constexpr int64_t kTensorFramingBytes = 16 + 11 * kMaxRank + 16;

// Bytes of the codes and of their blob for a tensor of `shape` (without building either).
absl::StatusOr<int64_t> EncodedBytes(const CodecParams& params, const std::vector<int64_t>& shape) {
  COSET_ASSIGN_OR_RETURN(Layout l, Layout::Make(params, shape));
  const int64_t row_bytes = PackingOf(params, l).row_bytes();
  return l.rows * (row_bytes + l.chunks_per_row + 2 * l.blocks_per_row) + 1024;
}

v1::TensorInfo InfoOf(const ResidentTensor& t) {
  v1::TensorInfo info;
  info.set_name(t.name);
  for (int64_t d : t.tensor.shape) info.add_shape(d);
  info.set_lattice(t.tensor.params.lattice.name());
  info.set_q(t.tensor.params.q);
  info.set_m(t.tensor.params.M);
  info.set_bytes(t.bytes());
  return info;
}

// The request metrics' `client` label: the kind the client library says it is, from a fixed list.
std::string ClientKindOf(const grpc::ServerContext& ctx) {
  const auto& metadata = ctx.client_metadata();
  const auto it = metadata.find(kClientKindMetadata);
  return ClientKindLabel(it == metadata.end() ? std::string() : std::string(it->second.data(), it->second.size()));
}

// Parses a blob from a request into *out on the request's executor, so that a large blob's T
// stream decodes its segments in parallel. A parse cut short because the call was cancelled is
// reported as such and never used.
absl::Status ParseRequestBlob(const uint8_t* data, size_t size, const BlobHeader& header, RequestContext& rc,
                              CompressedTensor* out) {
  COSET_RETURN_IF_ERROR(ParseInto(data, size, rc.ExecutorFor(header.numel), out));
  return rc.Interruption();
}

// The header of a blob from a request, for its sizes; an empty one when PeekHeader cannot read it,
// and then Parse refuses the blob saying precisely why.
BlobHeader RequestBlobHeader(const uint8_t* data, size_t size) {
  absl::StatusOr<BlobHeader> header = PeekHeader(data, size);
  return header.ok() ? *std::move(header) : BlobHeader();
}

}  // namespace

CosetServiceImpl::CosetServiceImpl(const ServiceLimits& limits, Metrics* metrics, ShmRegistry* shm,
                                   const UnixPeers* unix_peers)
    : limits_(limits),
      metrics_(metrics),
      shm_(shm),
      unix_peers_(unix_peers),
      store_(limits.memory_budget_bytes),
      configs_(limits.memory_budget_bytes / 4, limits.lut_budget_bytes),
      pool_(limits.threads),
      code_buffers_(static_cast<int64_t>(limits.memory_budget_bytes * kCodeBufferPoolFraction)),
      budget_(
          limits.memory_budget_bytes, [this] { return ResidentBytes(); }, [this] { return code_buffers_.Clear(); }) {
  metrics_->memory_budget_bytes().Set(static_cast<double>(limits.memory_budget_bytes));
  metrics_->device_memory_budget_bytes().Set(static_cast<double>(DeviceMemoryBudget()));
}

CosetServiceImpl::~CosetServiceImpl() = default;

void CosetServiceImpl::UseCuda(std::unique_ptr<CudaCodec> cuda) { cuda_ = std::move(cuda); }

absl::Status CosetServiceImpl::EncodeTensor(const Config& config, const Input& x, RequestContext& rc,
                                            EncodeStats* stats, CompressedTensor* out) {
  if (x.raw != nullptr)
    return config.codec->EncodeTypedInto(x.raw, x.dtype, x.shape, rc.ExecutorFor(x.numel), stats, out);
  if (cuda_ == nullptr) return config.codec->EncodeInto(x.data, x.shape, x.dtype, rc.ExecutorFor(x.numel), stats, out);
  // The host side of the device's output before it is packed: up to one uint32 per symbol (codes
  // whose symbols are not whole bytes), beyond the codes DoEncode has reserved.
  COSET_ASSIGN_OR_RETURN(const Layout l, Layout::Make(config.codec->params(), x.shape));
  COSET_RETURN_IF_ERROR(rc.Reserve(4 * l.rows * l.symbols_per_row, "the CUDA encode's staged symbols"));
  rc.set_backend("cuda");
  std::lock_guard<std::mutex> lock(cuda_mu_);
  COSET_ASSIGN_OR_RETURN(*out, cuda_->Encode(*config.codec, x.data, x.shape, x.dtype, stats));
  return absl::OkStatus();
}

absl::Status CosetServiceImpl::DecodeTensorTo(const CompressedTensor& t, void* out, DType dtype, RequestContext& rc) {
  if (cuda_ == nullptr) return DecodeTensor(t, out, dtype, rc.ExecutorFor(t.layout.numel));
  // The CUDA codec decodes float32; other dtypes are narrowed from a reserved float32 copy.
  std::vector<float> wide;
  if (dtype != DType::kFloat32) {
    COSET_RETURN_IF_ERROR(rc.Reserve(t.layout.numel * 4, "the decoded float32 values"));
    wide.resize(t.layout.numel);
  }
  float* floats = dtype == DType::kFloat32 ? static_cast<float*>(out) : wide.data();
  rc.set_backend("cuda");
  {
    std::lock_guard<std::mutex> lock(cuda_mu_);
    COSET_RETURN_IF_ERROR(cuda_->Decode(t, floats));
  }
  if (dtype != DType::kFloat32) FromFloat(floats, t.layout.numel, dtype, out);
  return absl::OkStatus();
}

absl::StatusOr<ShmSpan> CosetServiceImpl::Span(const v1::SharedMemoryRef& ref, const RequestContext& rc) {
  if (shm_ == nullptr)
    return absl::FailedPreconditionError("this daemon has no shared-memory socket (no unix: address)");
  return shm_->Resolve(ref.region(), ref.offset(), ref.length(), rc.caller());
}

absl::StatusOr<TensorShape> CosetServiceImpl::CheckInput(const v1::Tensor& t) const {
  // Inline payloads are bounded by the message size, shared-memory ones by the element limit.
  return CheckTensor(t, t.has_shm() ? kMaxElements : limits_.max_message_bytes / 4);
}

absl::StatusOr<CosetServiceImpl::Input> CosetServiceImpl::InputFrom(const v1::Tensor& t, TensorShape checked,
                                                                    RequestContext& rc, bool keep_raw) {
  Input in;
  in.shape = std::move(checked.shape);
  in.numel = checked.numel;
  in.dtype = checked.dtype;
  const void* source = t.data().data();
  if (t.has_shm()) {
    COSET_ASSIGN_OR_RETURN(in.span, Span(t.shm(), rc));
    source = in.span.data;
    if (in.dtype == DType::kFloat32) {  // encoded in place
      in.data = reinterpret_cast<const float*>(in.span.data);
      return in;
    }
  }
  if (keep_raw && in.dtype != DType::kFloat32) {
    in.raw = source;
    return in;
  }
  // Inline payloads are copied out of the request, and other dtypes converted to float32: 4 bytes
  // an element whatever the dtype, within CheckInput's element limit.
  COSET_RETURN_IF_ERROR(rc.Reserve(in.numel * 4, "the input tensor's float32 copy"));
  in.owned.resize(in.numel);
  ToFloat(source, in.dtype, in.numel, in.owned.data());
  in.data = in.owned.data();
  return in;
}

int64_t CosetServiceImpl::ResidentBytes() const {
  return store_.bytes() + store_.lut_bytes() + configs_.bytes() + code_buffers_.bytes();
}

template <typename Request, typename Response, typename Fn>
grpc::Status CosetServiceImpl::Serve(const char* method, grpc::ServerContext* ctx, const Request* req, Response* resp,
                                     Fn&& fn) {
  const auto start = std::chrono::steady_clock::now();
  const int64_t request_bytes = static_cast<int64_t>(req->ByteSizeLong());
  absl::Status status;
  const int64_t running = ++inflight_;
  metrics_->inflight().Set(static_cast<double>(running));
  const char* backend = "cpu";
  {
    // Admission by work: the message now, then each handler reserves what it will allocate once
    // its sizes are known (RequestContext::Reserve); everything is given back when rc ends.
    RequestContext rc(ctx, &pool_, &budget_);
    // Who calls decides what the request may touch; a refused Unix peer is told so before
    // anything it sent is read.
    absl::StatusOr<std::string> caller = PrincipalOf(*ctx, unix_peers_);
    if (!caller.ok()) {
      status = caller.status();
    } else if (running > limits_.max_concurrent_requests) {
      status = absl::ResourceExhaustedError(
          absl::StrCat("more than ", limits_.max_concurrent_requests, " concurrent requests; retry later"));
    } else {
      rc.set_caller(*std::move(caller));
      status = rc.Reserve(request_bytes, "the request message");
      if (status.ok()) status = rc.Interruption();  // gone before it started
      if (status.ok()) status = fn(rc);
      // Work stopped early for a client that left reports why it stopped, whatever it returned.
      if (absl::Status interruption = rc.Interruption(); !interruption.ok()) status = interruption;
    }
    // A reply is serialized and sent after the handler returns: what the request reserved (its
    // reply among it) stays reserved until gRPC is done with the call.
    if (status.ok()) {
      rc.RunSuccessActions();
      reservations_.HoldUntilCallEnds(ctx, rc.TakeReservations());
    }
    backend = rc.backend();
  }
  // Large requests leave large free blocks behind; hand them back so the daemon's footprint
  // returns to its baseline between bursts.
  if (request_bytes + static_cast<int64_t>(status.ok() ? resp->ByteSizeLong() : 0) > (int64_t{1} << 20)) {
    malloc_trim(0);
  }
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  metrics_->RecordRequest(method, absl::StatusCodeToString(status.code()), ClientKindOf(*ctx), backend, seconds,
                          static_cast<double>(request_bytes),
                          status.ok() ? static_cast<double>(resp->ByteSizeLong()) : 0.0);
  // Counted before it leaves the in-flight gauge: a scrape that sees no request in flight sees
  // every finished one.
  metrics_->inflight().Set(static_cast<double>(--inflight_));
  UpdateGauges();
  if (!status.ok()) resp->Clear();
  return ToGrpc(status);
}

absl::StatusOr<CosetServiceImpl::Config> CosetServiceImpl::CodecFor(const v1::CodecSpec& spec) {
  if (spec.spec_case() == v1::CodecSpec::kConfigId) return configs_.Find(spec.config_id());
  COSET_ASSIGN_OR_RETURN(CodecParams params, ParamsFromProto(spec.config()));
  return configs_.Resolve(params, false);
}

absl::StatusOr<std::shared_ptr<const CompressedTensor>> CosetServiceImpl::CodesFrom(const v1::Codes& codes,
                                                                                    RequestContext& rc) {
  // A sent blob is parsed into buffers an earlier request left when their size fits, and they go
  // back to the pool with the last reference (every use of these codes ends with the request).
  const auto parse = [&](const uint8_t* data, size_t size) -> absl::StatusOr<std::shared_ptr<const CompressedTensor>> {
    const BlobHeader header = RequestBlobHeader(data, size);
    COSET_RETURN_IF_ERROR(rc.Reserve(header.parsed_bytes, "the parsed codes"));
    std::shared_ptr<CompressedTensor> t = code_buffers_.Lend(header.parsed_bytes);
    COSET_RETURN_IF_ERROR(ParseRequestBlob(data, size, header, rc, t.get()));
    return std::shared_ptr<const CompressedTensor>(std::move(t));
  };
  switch (codes.source_case()) {
    case v1::Codes::kBlob:
      return parse(reinterpret_cast<const uint8_t*>(codes.blob().data()), codes.blob().size());
    case v1::Codes::kShm: {
      // Copied out first: the client could change shared memory while it is parsed.
      COSET_ASSIGN_OR_RETURN(ShmSpan span, Span(codes.shm(), rc));
      COSET_RETURN_IF_ERROR(rc.Reserve(span.length, "the copy of the codes"));
      const std::vector<uint8_t> copy(span.data, span.data + span.length);
      return parse(copy.data(), copy.size());
    }
    case v1::Codes::kTensorName: {
      COSET_ASSIGN_OR_RETURN(std::shared_ptr<const ResidentTensor> r, store_.Get(codes.tensor_name(), rc.caller()));
      return std::shared_ptr<const CompressedTensor>(r, &r->tensor);
    }
    default:
      return absl::InvalidArgumentError("codes: set blob or tensor_name");
  }
}

absl::Status CosetServiceImpl::DoEncode(const Config& config, const v1::Tensor& input, RequestContext& rc,
                                        CompressedTensor* out, SerializationPlan* plan, v1::EncodeStats* stats,
                                        bool reuse_buffers) {
  // Sizes from the shape before anything is allocated: the codes, then their serialization.
  COSET_ASSIGN_OR_RETURN(TensorShape shape, CheckInput(input));
  COSET_ASSIGN_OR_RETURN(const int64_t coded, EncodedBytes(config.codec->params(), shape.shape));
  COSET_RETURN_IF_ERROR(rc.Reserve(2 * coded, "the codes and their serialization"));
  if (reuse_buffers && cuda_ == nullptr) *out = code_buffers_.Take(coded);
  // The CPU codec widens other dtypes row by row in cache; the CUDA one takes float32.
  COSET_ASSIGN_OR_RETURN(Input x, InputFrom(input, std::move(shape), rc, /*keep_raw=*/cuda_ == nullptr));
  EncodeStats s;
  COSET_RETURN_IF_ERROR(EncodeTensor(config, x, rc, &s, out));
  // A request interrupted mid-encode holds partial codes: nothing is counted or written out.
  COSET_RETURN_IF_ERROR(rc.Interruption());
  *plan = PlanSerialization(*out, rc.ExecutorFor(x.numel));
  stats->set_chunks(s.chunks);
  stats->set_first_try_overloads(s.first_try_overloads);
  stats->set_capped(s.capped);
  stats->set_stored_bits_per_entry(StoredBitsPerEntry(*out, plan->size));
  // Counted once the whole request succeeded (its deadline can still pass before the reply).
  rc.OnSuccess([this, label = config.metrics_label(), raw = static_cast<double>(DTypeBytes(x.dtype)) * x.numel,
                coded = static_cast<double>(plan->size), chunks = static_cast<double>(s.chunks),
                overloads = static_cast<double>(s.first_try_overloads), capped = static_cast<double>(s.capped),
                histogram = plan->t_histogram] {
    metrics_->RecordEncode(label, raw, coded, chunks, overloads, capped, histogram);
  });
  return absl::OkStatus();
}

grpc::Status CosetServiceImpl::Encode(grpc::ServerContext* ctx, const v1::EncodeRequest* req,
                                      v1::EncodeResponse* resp) {
  return Serve("Encode", ctx, req, resp, [&](RequestContext& rc) -> absl::Status {
    COSET_ASSIGN_OR_RETURN(Config config, CodecFor(req->codec()));
    // Buffers of an earlier encode of about this size (DoEncode takes them once the request has
    // reserved them), given back for the next one. The CUDA backend returns buffers of its own.
    const std::shared_ptr<CompressedTensor> codes =
        cuda_ == nullptr ? code_buffers_.Lend() : std::make_shared<CompressedTensor>();
    CompressedTensor& t = *codes;
    SerializationPlan plan;
    COSET_RETURN_IF_ERROR(DoEncode(config, req->input(), rc, &t, &plan, resp->mutable_stats(), /*reuse_buffers=*/true));
    if (req->has_output()) {
      COSET_ASSIGN_OR_RETURN(ShmSpan out, Span(req->output(), rc));
      if (static_cast<int64_t>(plan.size) > out.length) {
        return absl::OutOfRangeError(
            absl::StrCat("output region holds ", out.length, " bytes; the blob needs ", plan.size));
      }
      SerializeTo(t, plan, out.data);  // straight into the client's memory
      resp->set_output_length(plan.size);
      return absl::OkStatus();
    }
    std::string* blob = resp->mutable_blob();
    blob->resize(plan.size);
    SerializeTo(t, plan, reinterpret_cast<uint8_t*>(blob->data()));
    return absl::OkStatus();
  });
}

grpc::Status CosetServiceImpl::Decode(grpc::ServerContext* ctx, const v1::DecodeRequest* req,
                                      v1::DecodeResponse* resp) {
  return Serve("Decode", ctx, req, resp, [&](RequestContext& rc) -> absl::Status {
    COSET_ASSIGN_OR_RETURN(std::shared_ptr<const CompressedTensor> t, CodesFrom(req->codes(), rc));
    COSET_ASSIGN_OR_RETURN(const DType dtype, DTypeFromProto(req->dtype(), "dtype"));
    const int64_t numel = t->layout.numel, bytes = numel * DTypeBytes(dtype);
    // The reply is the values plus their framing (shape varints, tags, lengths): checked before
    // decoding, so a reply gRPC would refuse is never computed.
    if (!req->has_output() && bytes + kTensorFramingBytes > limits_.max_message_bytes) {
      return absl::ResourceExhaustedError(absl::StrCat("decoded tensor (", bytes,
                                                       " bytes and its framing) exceeds the message limit of ",
                                                       limits_.max_message_bytes));
    }
    v1::Tensor* out = resp->mutable_output();
    for (int64_t d : t->shape) out->add_shape(d);
    out->set_dtype(req->dtype());
    if (req->has_output()) {
      COSET_ASSIGN_OR_RETURN(ShmSpan region, Span(req->output(), rc));
      const int item = DTypeBytes(dtype);
      if (req->output().offset() % item != 0 || region.length < bytes) {
        return absl::OutOfRangeError(absl::StrCat("output region must be ", item, "-byte aligned and hold ", bytes,
                                                  " bytes of ", DTypeName(dtype), " (has ", region.length, ")"));
      }
      return DecodeTensorTo(*t, region.data, dtype, rc);
    }
    // Decoded straight into the reply (one copy of the values in the handler); the reservation
    // also covers the serialized copy gRPC makes of the reply once the handler returns.
    COSET_RETURN_IF_ERROR(rc.Reserve(2 * bytes, "the decoded tensor and its reply"));
    std::string* data = out->mutable_data();
    data->resize(static_cast<size_t>(bytes));
    return DecodeTensorTo(*t, data->data(), dtype, rc);
  });
}

grpc::Status CosetServiceImpl::Quantize(grpc::ServerContext* ctx, const v1::QuantizeRequest* req,
                                        v1::QuantizeResponse* resp) {
  return Serve("Quantize", ctx, req, resp, [&](RequestContext& rc) -> absl::Status {
    COSET_ASSIGN_OR_RETURN(Config config, CodecFor(req->codec()));
    CompressedTensor t;
    SerializationPlan plan;
    COSET_RETURN_IF_ERROR(DoEncode(config, req->input(), rc, &t, &plan, resp->mutable_stats()));
    COSET_RETURN_IF_ERROR(rc.Reserve(2 * t.layout.numel * 4, "the quantized tensor and its reply"));
    std::vector<float> y(t.layout.numel);
    COSET_RETURN_IF_ERROR(config.codec->Decode(t, y.data(), rc.ExecutorFor(t.layout.numel)));
    TensorToProto(t.shape, y.data(), t.dtype, resp->mutable_output());  // in the input's dtype
    return absl::OkStatus();
  });
}

grpc::Status CosetServiceImpl::InnerProduct(grpc::ServerContext* ctx, const v1::InnerProductRequest* req,
                                            v1::InnerProductResponse* resp) {
  return Serve("InnerProduct", ctx, req, resp, [&](RequestContext& rc) -> absl::Status {
    COSET_ASSIGN_OR_RETURN(std::shared_ptr<const CompressedTensor> w, CodesFrom(req->weights(), rc));
    if (req->other_case() == v1::InnerProductRequest::kCodes) {
      COSET_ASSIGN_OR_RETURN(std::shared_ptr<const CompressedTensor> other, CodesFrom(req->codes(), rc));
      COSET_ASSIGN_OR_RETURN(std::shared_ptr<const Codebook> codebook, Codebook::Get(w->params.lattice, w->params.q));
      COSET_ASSIGN_OR_RETURN(std::shared_ptr<const TwoSidedLut> lut, configs_.TwoSided(w->params.lattice, w->params.q));
      COSET_ASSIGN_OR_RETURN(std::vector<double> dots, DotRows(*w, *other, *codebook, *lut));
      const std::vector<float> out(dots.begin(), dots.end());
      TensorToProto({static_cast<int64_t>(out.size())}, out.data(), DType::kFloat32, resp->mutable_output());
      resp->set_path("two-sided-lut");
      return absl::OkStatus();
    }
    if (req->other_case() != v1::InnerProductRequest::kQueries) {
      return absl::InvalidArgumentError("set queries (float [K] or [B, K]) or codes");
    }
    COSET_ASSIGN_OR_RETURN(TensorShape checked, CheckInput(req->queries()));
    COSET_ASSIGN_OR_RETURN(Input x, InputFrom(req->queries(), std::move(checked), rc));
    if (x.shape.empty() || x.shape.size() > 2 || x.shape.back() != w->layout.cols) {
      return absl::InvalidArgumentError(absl::StrCat("queries must be [K] or [B, K] with K = ", w->layout.cols));
    }
    const int64_t batch = x.shape.size() == 2 ? x.shape[0] : 1;
    if (batch < 1 || batch > 4096)
      return absl::InvalidArgumentError(absl::StrCat("batch (=", batch, ") must be in [1, 4096]"));
    if (cuda_ != nullptr) return GemmOnDevice(req->weights(), *w, x, batch, rc, resp);
    std::shared_ptr<const LutMatrix> matrix;
    if (req->weights().source_case() == v1::Codes::kTensorName) {
      COSET_ASSIGN_OR_RETURN(matrix,
                             store_.Matrix(req->weights().tensor_name(), rc.caller(), limits_.lut_budget_bytes,
                                           [&](int64_t bytes) { return rc.Reserve(bytes, "the repacked weights"); }));
      UpdateGauges();
    } else {
      COSET_RETURN_IF_ERROR(rc.Reserve(LutMatrix::BuildBytes(*w), "the repacked weights"));
      COSET_ASSIGN_OR_RETURN(LutMatrix m, LutMatrix::Create(*w, limits_.lut_budget_bytes));
      matrix = std::make_shared<const LutMatrix>(std::move(m));
    }
    COSET_RETURN_IF_ERROR(rc.Reserve(2 * batch * matrix->rows() * 4, "the product and its reply"));
    std::vector<float> out(batch * matrix->rows());
    COSET_RETURN_IF_ERROR(matrix->Gemm(x.data, batch, out.data(), rc.ExecutorFor(matrix->rows() * matrix->cols())));
    std::vector<int64_t> shape = {matrix->rows()};
    if (x.shape.size() == 2) shape.insert(shape.begin(), batch);
    TensorToProto(shape, out.data(), DType::kFloat32, resp->mutable_output());
    resp->set_path(matrix->path_name());
    return absl::OkStatus();
  });
}

absl::Status CosetServiceImpl::GemmOnDevice(const v1::Codes& source, const CompressedTensor& w, const Input& x,
                                            int64_t batch, RequestContext& rc, v1::InnerProductResponse* resp) {
  auto upload = [&](const CompressedTensor& t) -> absl::StatusOr<std::shared_ptr<const CodesOnDevice>> {
    // The host copy of the symbols as the kernel reads them (up to one uint32 each), until uploaded.
    COSET_RETURN_IF_ERROR(rc.Reserve(4 * t.layout.rows * t.layout.symbols_per_row, "the weights' staged codes"));
    auto codes = std::make_shared<CodesOnDevice>();
    COSET_RETURN_IF_ERROR(cuda_->Upload(t, codes.get(), CodesFor::kGemm));
    return std::shared_ptr<const CodesOnDevice>(std::move(codes));
  };
  const int64_t rows = w.layout.rows;
  COSET_RETURN_IF_ERROR(rc.Reserve(2 * batch * rows * 4, "the product and its reply"));
  std::vector<float> out(batch * rows);
  rc.set_backend("cuda");
  GemmMethod method = GemmMethod::kAuto;
  {
    std::lock_guard<std::mutex> lock(cuda_mu_);
    std::shared_ptr<const CodesOnDevice> codes;
    if (source.source_case() == v1::Codes::kTensorName) {
      // Resident weights cross once; the kept copies leave the rest of the device budget to requests.
      const int64_t budget = DeviceMemoryBudget() > 0 ? DeviceMemoryBudget() : cuda_->device().total_memory_bytes;
      COSET_ASSIGN_OR_RETURN(codes, store_.DeviceCodes(source.tensor_name(), rc.caller(),
                                                       static_cast<int64_t>(budget * kResidentDeviceFraction), upload));
    } else {
      COSET_ASSIGN_OR_RETURN(codes, upload(w));
    }
    COSET_ASSIGN_OR_RETURN(method, cuda_->Gemm(*codes, x.data, batch, out.data()));
  }
  UpdateGauges();
  std::vector<int64_t> shape = {rows};
  if (x.shape.size() == 2) shape.insert(shape.begin(), batch);
  TensorToProto(shape, out.data(), DType::kFloat32, resp->mutable_output());
  resp->set_path(GemmMethodName(method));
  return absl::OkStatus();
}

grpc::Status CosetServiceImpl::AddCodes(grpc::ServerContext* ctx, const v1::AddCodesRequest* req,
                                        v1::AddCodesResponse* resp) {
  return Serve("AddCodes", ctx, req, resp, [&](RequestContext& rc) -> absl::Status {
    if (req->codes_size() == 0) return absl::InvalidArgumentError("codes is empty");
    std::vector<std::shared_ptr<const CompressedTensor>> held;
    std::vector<const CompressedTensor*> codes;
    for (const v1::Codes& c : req->codes()) {
      COSET_ASSIGN_OR_RETURN(std::shared_ptr<const CompressedTensor> t, CodesFrom(c, rc));
      codes.push_back(t.get());
      held.push_back(std::move(t));
    }
    // Each thread holds one row's int64 coordinates and symbols; the result is a copy of the
    // first code's sections with new symbols, then its serialization and the reply's copy of it
    // (each about the codes' EncodedBytes, as DoEncode counts them), and with validation a flag per
    // chunk.
    const CompressedTensor& first = *codes[0];
    const Layout& l = first.layout;
    Executor* executor = rc.ExecutorFor(l.numel);
    const int64_t row_scratch =
        std::min<int64_t>(l.rows, executor->concurrency()) * (8 * l.padded_cols + 4 * l.symbols_per_row);
    COSET_ASSIGN_OR_RETURN(const int64_t sections, EncodedBytes(first.params, first.shape));
    const int64_t flags = req->validate() ? l.rows * l.chunks_per_row : 0;
    COSET_RETURN_IF_ERROR(
        rc.Reserve(row_scratch + 3 * sections + flags + 2 * static_cast<int64_t>(req->ByteSizeLong()), "the code sum"));
    SumValidation validation;
    COSET_ASSIGN_OR_RETURN(CompressedTensor sum,
                           coset::AddCodes(codes, req->validate() ? &validation : nullptr, executor));
    const std::vector<uint8_t> bytes = Serialize(sum, executor);
    resp->set_blob(reinterpret_cast<const char*>(bytes.data()), bytes.size());
    resp->set_chunks(sum.layout.rows * sum.layout.chunks_per_row);
    resp->set_inexact_chunks(validation.inexact_chunks);
    return absl::OkStatus();
  });
}

grpc::Status CosetServiceImpl::PutTensor(grpc::ServerContext* ctx, const v1::PutTensorRequest* req,
                                         v1::PutTensorResponse* resp) {
  return Serve("PutTensor", ctx, req, resp, [&](RequestContext& rc) -> absl::Status {
    COSET_RETURN_IF_ERROR(TensorStore::ValidateName(req->name()));
    auto resident = std::make_shared<ResidentTensor>();
    resident->name = req->name();
    resident->owner = rc.caller();
    if (req->source_case() == v1::PutTensorRequest::kBlob) {
      // Until the store accounts it: the parsed tensor and the kept blob.
      const auto* data = reinterpret_cast<const uint8_t*>(req->blob().data());
      const BlobHeader header = RequestBlobHeader(data, req->blob().size());
      COSET_RETURN_IF_ERROR(
          rc.Reserve(header.parsed_bytes + static_cast<int64_t>(req->blob().size()), "the resident tensor"));
      COSET_RETURN_IF_ERROR(ParseRequestBlob(data, req->blob().size(), header, rc, &resident->tensor));
      resident->blob = req->blob();
    } else if (req->source_case() == v1::PutTensorRequest::kEncode) {
      COSET_ASSIGN_OR_RETURN(Config config, CodecFor(req->encode().codec()));
      v1::EncodeStats stats;
      SerializationPlan plan;
      COSET_RETURN_IF_ERROR(DoEncode(config, req->encode().input(), rc, &resident->tensor, &plan, &stats));
      resident->blob.resize(plan.size);
      SerializeTo(resident->tensor, plan, reinterpret_cast<uint8_t*>(resident->blob.data()));
    } else {
      return absl::InvalidArgumentError("set blob or encode");
    }
    COSET_RETURN_IF_ERROR(store_.Put(resident, req->overwrite()));
    UpdateGauges();
    *resp->mutable_info() = InfoOf(*resident);
    return absl::OkStatus();
  });
}

grpc::Status CosetServiceImpl::GetTensor(grpc::ServerContext* ctx, const v1::GetTensorRequest* req,
                                         v1::GetTensorResponse* resp) {
  return Serve("GetTensor", ctx, req, resp, [&](RequestContext& rc) -> absl::Status {
    COSET_ASSIGN_OR_RETURN(std::shared_ptr<const ResidentTensor> t, store_.Get(req->name(), rc.caller()));
    COSET_RETURN_IF_ERROR(rc.Reserve(t->bytes(), "the blob's reply"));
    resp->set_blob(t->blob);
    *resp->mutable_info() = InfoOf(*t);
    return absl::OkStatus();
  });
}

grpc::Status CosetServiceImpl::DeleteTensor(grpc::ServerContext* ctx, const v1::DeleteTensorRequest* req,
                                            v1::DeleteTensorResponse* resp) {
  return Serve("DeleteTensor", ctx, req, resp, [&](RequestContext& rc) -> absl::Status {
    COSET_RETURN_IF_ERROR(store_.Delete(req->name(), rc.caller()));
    UpdateGauges();
    return absl::OkStatus();
  });
}

grpc::Status CosetServiceImpl::ListTensors(grpc::ServerContext* ctx, const v1::ListTensorsRequest* req,
                                           v1::ListTensorsResponse* resp) {
  return Serve("ListTensors", ctx, req, resp, [&](RequestContext& rc) -> absl::Status {
    for (const auto& t : store_.List(rc.caller())) *resp->add_tensors() = InfoOf(*t);
    return absl::OkStatus();
  });
}

grpc::Status CosetServiceImpl::RegisterConfig(grpc::ServerContext* ctx, const v1::RegisterConfigRequest* req,
                                              v1::RegisterConfigResponse* resp) {
  return Serve("RegisterConfig", ctx, req, resp, [&](RequestContext&) -> absl::Status {
    COSET_ASSIGN_OR_RETURN(CodecParams params, ParamsFromProto(req->config()));
    COSET_ASSIGN_OR_RETURN(Config config, configs_.Resolve(params, true));
    resp->set_config_id(config.id);
    *resp->mutable_resolved() = ParamsToProto(config.codec->params());
    return absl::OkStatus();
  });
}

grpc::Status CosetServiceImpl::ServerInfo(grpc::ServerContext* ctx, const v1::ServerInfoRequest* req,
                                          v1::ServerInfoResponse* resp) {
  return Serve("ServerInfo", ctx, req, resp, [&](RequestContext&) -> absl::Status {
    resp->set_version(kCosetVersion);
    if (cuda_ != nullptr) resp->add_backends("cuda");  // encode, decode, GEMM on codes
    resp->add_backends("cpu");
    v1::BackendStatus* cpu = resp->add_backend_status();
    cpu->set_name("cpu");
    cpu->set_serving(true);
    cpu->set_detail(absl::StrCat(SimdLevelName(ActiveSimdLevel()), ", ", pool_.concurrency(), " codec thread(s)",
                                 cuda_ != nullptr ? "; row dots and code sums" : ""));
    v1::BackendStatus* cuda = resp->add_backend_status();
    cuda->set_name("cuda");
    cuda->set_serving(cuda_ != nullptr);
    cuda->set_detail(cuda_ != nullptr ? DescribeCudaDevice(cuda_->device()) +
                                            ": encode, decode, GEMM on codes (resident weights kept on the device)"
                                      : cuda_status_);
    v1::Limits* l = resp->mutable_limits();
    l->set_max_message_bytes(limits_.max_message_bytes);
    l->set_max_concurrent_requests(limits_.max_concurrent_requests);
    l->set_memory_budget_bytes(limits_.memory_budget_bytes);
    l->set_lut_budget_bytes(limits_.lut_budget_bytes);
    for (const Config& c : configs_.List()) {
      v1::ConfigInfo* info = resp->add_configs();
      info->set_config_id(c.id);
      *info->mutable_config() = ParamsToProto(c.codec->params());
    }
    resp->set_resident_bytes(ResidentBytes());
    return absl::OkStatus();
  });
}

void CosetServiceImpl::UpdateGauges() {
  if (shm_ != nullptr) {
    metrics_->shm_regions().Set(static_cast<double>(shm_->regions()));
    metrics_->shm_bytes().Set(static_cast<double>(shm_->bytes()));
  }
  metrics_->resident_bytes().Set(static_cast<double>(store_.bytes()));
  metrics_->resident_tensors().Set(static_cast<double>(store_.count()));
  metrics_->lut_cache_bytes().Set(static_cast<double>(store_.lut_bytes()));
  metrics_->resident_device_bytes().Set(static_cast<double>(store_.device_bytes()));
  metrics_->configs().Set(static_cast<double>(configs_.count()));
  metrics_->codebook_bytes().Set(static_cast<double>(configs_.bytes()));
  metrics_->memory_used_bytes().Set(static_cast<double>(ResidentBytes() + budget_.reserved()));
  metrics_->device_memory_used_bytes().Set(static_cast<double>(DeviceBytesInUse()));
}

}  // namespace coset
