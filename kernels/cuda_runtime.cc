#include "kernels/cuda_runtime.h"

#include <cuda_runtime_api.h>

#include <algorithm>
#include <atomic>
#include <limits>
#include <utility>

#include "absl/strings/str_cat.h"
#include "core/dtype.h"
#include "core/status_macros.h"
#include "kernels/cublas.h"
#include "kernels/cuda_codec.h"
#include "kernels/device_codec_host.h"

namespace coset {
namespace {

absl::Status CudaError(cudaError_t error, const char* what) {
  return absl::InternalError(absl::StrCat(what, ": ", cudaGetErrorName(error), " (", cudaGetErrorString(error), ")"));
}

#define COSET_CUDA_RETURN_IF_ERROR(expr)         \
  do {                                           \
    const cudaError_t coset_cuda_error = (expr); \
    if (coset_cuda_error != cudaSuccess) {       \
      return CudaError(coset_cuda_error, #expr); \
    }                                            \
  } while (false)

std::atomic<int64_t> g_device_bytes{0};
std::atomic<int64_t> g_device_budget{0};

}  // namespace

int64_t DeviceBytesInUse() { return g_device_bytes.load(); }
int64_t DeviceMemoryBudget() { return g_device_budget.load(); }
void SetDeviceMemoryBudget(int64_t bytes) { g_device_budget.store(std::max<int64_t>(bytes, 0)); }

DeviceMemory::~DeviceMemory() { Free(); }

void DeviceMemory::Free() {
  if (ptr_ != nullptr) cudaFree(ptr_);
  ptr_ = nullptr;
  g_device_bytes -= bytes_;
  bytes_ = 0;
}

absl::Status DeviceMemory::Allocate(int64_t bytes) {
  Free();
  if (bytes <= 0) return absl::OkStatus();
  // Charged before cudaMalloc, so concurrent allocations cannot pass the budget together.
  const int64_t budget = g_device_budget.load();
  int64_t used = g_device_bytes.load();
  do {
    if (budget > 0 && bytes > budget - used) {
      return absl::ResourceExhaustedError(absl::StrCat("device memory budget: ", bytes, " bytes asked, ", used, " of ",
                                                       budget, " in use (cosetd --device-memory-budget)"));
    }
  } while (!g_device_bytes.compare_exchange_weak(used, used + bytes));
  bytes_ = bytes;
  const cudaError_t error = cudaMalloc(&ptr_, static_cast<size_t>(bytes));
  if (error != cudaSuccess) {
    ptr_ = nullptr;
    Free();  // returns the charge
    if (error == cudaErrorMemoryAllocation) {
      cudaGetLastError();  // an allocation failure is not sticky: clear it from the last-error slot
      return absl::ResourceExhaustedError(absl::StrCat("device memory: cannot allocate ", bytes, " bytes"));
    }
    return CudaError(error, "cudaMalloc");
  }
  return absl::OkStatus();
}

absl::Status DeviceMemory::Upload(const void* values, int64_t bytes, void* stream) {
  COSET_RETURN_IF_ERROR(Allocate(bytes));
  if (bytes <= 0) return absl::OkStatus();
  COSET_CUDA_RETURN_IF_ERROR(cudaMemcpyAsync(ptr_, values, static_cast<size_t>(bytes), cudaMemcpyHostToDevice,
                                             static_cast<cudaStream_t>(stream)));
  return absl::OkStatus();
}

std::string DescribeCudaDevice(const CudaDeviceInfo& d) {
  return absl::StrCat("device ", d.index, " (", d.name, ", compute ", d.compute_major, ".", d.compute_minor, ")");
}

absl::StatusOr<CudaDeviceInfo> ProbeCudaDevice(int index) {
  int driver = 0;
  if (cudaDriverGetVersion(&driver) != cudaSuccess || driver == 0) {
    return absl::FailedPreconditionError("no CUDA driver (libcuda.so.1 not found)");
  }
  int count = 0;
  const cudaError_t error = cudaGetDeviceCount(&count);
  if (error == cudaErrorNoDevice || (error == cudaSuccess && count == 0)) {
    return absl::FailedPreconditionError("no CUDA device");
  }
  if (error != cudaSuccess) {
    return absl::FailedPreconditionError(
        absl::StrCat("CUDA unavailable: ", cudaGetErrorName(error), " (", cudaGetErrorString(error), ")"));
  }
  if (index < 0 || index >= count) {
    return absl::FailedPreconditionError(absl::StrCat("CUDA device ", index, " does not exist (", count, " found)"));
  }
  cudaDeviceProp prop;
  if (cudaGetDeviceProperties(&prop, index) != cudaSuccess) {
    return absl::FailedPreconditionError(absl::StrCat("CUDA device ", index, ": properties unreadable"));
  }
  CudaDeviceInfo info;
  info.index = index;
  info.name = prop.name;
  info.compute_major = prop.major;
  info.compute_minor = prop.minor;
  info.total_memory_bytes = static_cast<int64_t>(prop.totalGlobalMem);
  info.driver_version = driver;
  cudaRuntimeGetVersion(&info.runtime_version);
  return info;
}

struct CudaCodec::DeviceTables {
  DeviceMemory rep_coords, rep_point;
  ChunkCodebook view;
};

namespace {

template <typename T>
absl::Status Download(const DeviceMemory& buffer, cudaStream_t stream, std::vector<T>* values) {
  if (values->empty()) return absl::OkStatus();
  COSET_CUDA_RETURN_IF_ERROR(
      cudaMemcpyAsync(values->data(), buffer.as<T>(), values->size() * sizeof(T), cudaMemcpyDeviceToHost, stream));
  return absl::OkStatus();
}

template <typename T>
absl::Status UploadVector(const std::vector<T>& values, void* stream, DeviceMemory* buffer) {
  return buffer->Upload(values.data(), static_cast<int64_t>(values.size() * sizeof(T)), stream);
}

}  // namespace

CudaCodec::CudaCodec(CudaDeviceInfo device, void* stream) : device_(std::move(device)), stream_(stream) {}

CudaCodec::~CudaCodec() {
  cudaSetDevice(device_.index);
  tables_.clear();
  cublas_.reset();  // its handle works on the stream
  cudaStreamDestroy(static_cast<cudaStream_t>(stream_));
}

absl::StatusOr<std::unique_ptr<CudaCodec>> CudaCodec::Create(int device) {
  COSET_ASSIGN_OR_RETURN(CudaDeviceInfo info, ProbeCudaDevice(device));
  COSET_CUDA_RETURN_IF_ERROR(cudaSetDevice(device));
  cudaStream_t stream = nullptr;
  COSET_CUDA_RETURN_IF_ERROR(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking));
  return std::unique_ptr<CudaCodec>(new CudaCodec(std::move(info), stream));
}

absl::StatusOr<const CudaCodec::DeviceTables*> CudaCodec::TablesFor(const Codebook& codebook) {
  const TablesKey key{static_cast<int>(codebook.lattice().kind()), codebook.lattice().dim(), codebook.q()};
  auto it = tables_.find(key);
  if (it != tables_.end()) return it->second.get();
  auto tables = std::make_unique<DeviceTables>();
  const ChunkCodebook host = codebook.view();
  const int64_t entries = codebook.num_symbols() * codebook.symbol_dim();
  COSET_RETURN_IF_ERROR(tables->rep_coords.Upload(host.rep_coords, entries * sizeof(int32_t), stream_));
  COSET_RETURN_IF_ERROR(tables->rep_point.Upload(host.rep_point, entries * sizeof(float), stream_));
  COSET_CUDA_RETURN_IF_ERROR(cudaStreamSynchronize(static_cast<cudaStream_t>(stream_)));
  tables->view = host;
  tables->view.rep_coords = tables->rep_coords.as<int32_t>();
  tables->view.rep_point = tables->rep_point.as<float>();
  return tables_.emplace(key, std::move(tables)).first->second.get();
}

absl::StatusOr<device::DeviceCodec> CudaCodec::OnDevice(const device::DeviceCodecPlan& plan, DeviceMemory* ramp,
                                                        DeviceMemory* signs) {
  COSET_CUDA_RETURN_IF_ERROR(cudaSetDevice(device_.index));
  COSET_ASSIGN_OR_RETURN(const DeviceTables* tables, TablesFor(*plan.context.codebook));
  device::DeviceCodec c = plan.view();
  COSET_RETURN_IF_ERROR(UploadVector(plan.context.ramp, stream_, ramp));
  COSET_RETURN_IF_ERROR(UploadVector(plan.context.rotation_signs, stream_, signs));
  c.codebook = tables->view;
  c.ramp = ramp->as<float>();
  c.rotation_signs = plan.context.rotation_signs.empty() ? nullptr : signs->as<float>();
  return c;
}

absl::StatusOr<CompressedTensor> CudaCodec::EncodeStaged(const TensorCodec& codec, const std::vector<int64_t>& shape,
                                                         const DeviceMemory& input, DType dtype, bool* device_refused,
                                                         EncodeStats* stats) {
  COSET_ASSIGN_OR_RETURN(device::DeviceCodecPlan plan, device::MakePlan(codec, shape));
  const Layout& l = plan.context.layout;
  const cudaStream_t stream = static_cast<cudaStream_t>(stream_);
  DeviceMemory ramp, signs, work, base, scales, t, symbols, counters;
  COSET_ASSIGN_OR_RETURN(const device::DeviceCodec c, OnDevice(plan, &ramp, &signs));
  if (!device::ReadsInPlace(c)) COSET_RETURN_IF_ERROR(work.Allocate(sizeof(float) * l.rows * l.padded_cols));
  COSET_RETURN_IF_ERROR(base.Allocate(sizeof(float) * l.rows * l.blocks_per_row));
  COSET_RETURN_IF_ERROR(scales.Allocate(sizeof(uint16_t) * l.rows * l.blocks_per_row));
  COSET_RETURN_IF_ERROR(t.Allocate(l.rows * l.chunks_per_row));
  COSET_RETURN_IF_ERROR(symbols.Allocate(device::SymbolBufferBytes(plan)));
  COSET_RETURN_IF_ERROR(counters.Allocate(sizeof(device::EncodeCounters)));
  COSET_CUDA_RETURN_IF_ERROR(cudaMemsetAsync(counters.as<void>(), 0, sizeof(device::EncodeCounters), stream));
  COSET_CUDA_RETURN_IF_ERROR(device::LaunchEncode(c, input.as<float>(), work.as<float>(), base.as<float>(),
                                                  scales.as<uint16_t>(), t.as<uint8_t>(), symbols.as<void>(),
                                                  counters.as<device::EncodeCounters>(), stream));
  std::vector<uint16_t> host_scales(l.rows * l.blocks_per_row);
  std::vector<uint8_t> host_t(l.rows * l.chunks_per_row);
  std::vector<uint8_t> host_symbols(device::SymbolBufferBytes(plan));
  std::vector<device::EncodeCounters> host_counters(1);
  COSET_RETURN_IF_ERROR(Download(scales, stream, &host_scales));
  COSET_RETURN_IF_ERROR(Download(t, stream, &host_t));
  COSET_RETURN_IF_ERROR(Download(symbols, stream, &host_symbols));
  COSET_RETURN_IF_ERROR(Download(counters, stream, &host_counters));
  COSET_CUDA_RETURN_IF_ERROR(cudaStreamSynchronize(stream));
  const device::EncodeCounters& n = host_counters[0];
  *device_refused = n.refused_blocks > 0 || (n.capped > 0 && codec.params().on_cap == CapPolicy::kFail);
  if (stats != nullptr) {
    stats->chunks = l.rows * l.chunks_per_row;
    stats->first_try_overloads = static_cast<int64_t>(n.first_try_overloads);
    stats->capped = static_cast<int64_t>(n.capped);
  }
  CompressedTensor out =
      device::AssembleTensor(plan, dtype, std::move(host_scales), std::move(host_t), std::move(host_symbols));
  out.shape = shape;
  return out;
}

absl::StatusOr<CompressedTensor> CudaCodec::Encode(const TensorCodec& codec, const float* x,
                                                   const std::vector<int64_t>& shape, DType dtype, EncodeStats* stats) {
  COSET_ASSIGN_OR_RETURN(const int64_t numel, CheckedNumel(shape));
  DeviceMemory input;
  COSET_CUDA_RETURN_IF_ERROR(cudaSetDevice(device_.index));
  COSET_RETURN_IF_ERROR(input.Upload(x, sizeof(float) * numel, stream_));
  bool refused = false;
  COSET_ASSIGN_OR_RETURN(CompressedTensor out, EncodeStaged(codec, shape, input, dtype, &refused, stats));
  if (refused) COSET_RETURN_IF_ERROR(device::CheckDeviceEncode(codec, x, shape, dtype, /*refused=*/true, /*capped=*/0));
  return out;
}

absl::StatusOr<CompressedTensor> CudaCodec::EncodeTyped(const TensorCodec& codec, const void* x, DType dtype,
                                                        const std::vector<int64_t>& shape, EncodeStats* stats) {
  COSET_ASSIGN_OR_RETURN(const int64_t numel, CheckedNumel(shape));
  DeviceMemory raw, input;
  COSET_CUDA_RETURN_IF_ERROR(cudaSetDevice(device_.index));
  COSET_RETURN_IF_ERROR(raw.Upload(x, static_cast<int64_t>(DTypeBytes(dtype)) * numel, stream_));
  COSET_RETURN_IF_ERROR(input.Allocate(sizeof(float) * numel));
  COSET_CUDA_RETURN_IF_ERROR(device::LaunchToFloat(raw.as<void>(), static_cast<uint8_t>(dtype), numel,
                                                   input.as<float>(), static_cast<cudaStream_t>(stream_)));
  bool refused = false;
  COSET_ASSIGN_OR_RETURN(CompressedTensor out, EncodeStaged(codec, shape, input, dtype, &refused, stats));
  if (refused) {
    // The CPU codec names the bad entry or chunk: it reads the same floats, widened on the host.
    std::vector<float> wide(static_cast<size_t>(numel));
    ToFloat(x, dtype, numel, wide.data());
    COSET_RETURN_IF_ERROR(device::CheckDeviceEncode(codec, wide.data(), shape, dtype, /*refused=*/true, /*capped=*/0));
  }
  return out;
}

absl::Status CudaCodec::Upload(const CompressedTensor& tensor, CodesOnDevice* out) {
  COSET_ASSIGN_OR_RETURN(const device::CodedForKernels coded, device::PrepareCoded(tensor));
  COSET_ASSIGN_OR_RETURN(out->codec, OnDevice(coded.plan, &out->ramp, &out->signs));
  COSET_RETURN_IF_ERROR(UploadVector(tensor.scales, stream_, &out->scales));
  COSET_RETURN_IF_ERROR(UploadVector(tensor.t, stream_, &out->t));
  COSET_RETURN_IF_ERROR(UploadVector(coded.symbols, stream_, &out->symbols));
  out->code_bytes = static_cast<int64_t>(2 * tensor.scales.size() + tensor.t.size() + coded.symbols.size());
  // The host copy of the symbols goes when this returns: the uploads must be done by then.
  COSET_CUDA_RETURN_IF_ERROR(cudaStreamSynchronize(static_cast<cudaStream_t>(stream_)));
  return absl::OkStatus();
}

absl::Status CudaCodec::DecodeOnDevice(const CodesOnDevice& codes, DeviceMemory* decoded, DeviceMemory* work) {
  const device::DeviceCodec& c = codes.codec;
  if (!device::ReadsInPlace(c)) COSET_RETURN_IF_ERROR(work->Allocate(sizeof(float) * c.rows * c.padded_cols));
  COSET_RETURN_IF_ERROR(decoded->Allocate(sizeof(float) * c.rows * c.cols));
  COSET_CUDA_RETURN_IF_ERROR(device::LaunchDecode(c, codes.scales.as<uint16_t>(), codes.t.as<uint8_t>(),
                                                  codes.symbols.as<void>(), work->as<float>(), decoded->as<float>(),
                                                  static_cast<cudaStream_t>(stream_)));
  return absl::OkStatus();
}

absl::Status CudaCodec::Decode(const CompressedTensor& tensor, float* out) {
  return DecodeTyped(tensor, out, DType::kFloat32);
}

absl::Status CudaCodec::DecodeTyped(const CompressedTensor& tensor, void* out, DType dtype) {
  CodesOnDevice codes;
  COSET_RETURN_IF_ERROR(Upload(tensor, &codes));
  const device::DeviceCodec& c = codes.codec;
  const cudaStream_t stream = static_cast<cudaStream_t>(stream_);
  const int64_t numel = c.rows * c.cols;
  DeviceMemory work, output, typed;
  COSET_RETURN_IF_ERROR(DecodeOnDevice(codes, &output, &work));
  const DeviceMemory* result = &output;
  if (dtype != DType::kFloat32) {
    COSET_RETURN_IF_ERROR(typed.Allocate(static_cast<int64_t>(DTypeBytes(dtype)) * numel));
    COSET_CUDA_RETURN_IF_ERROR(
        device::LaunchFromFloat(output.as<float>(), numel, static_cast<uint8_t>(dtype), typed.as<void>(), stream));
    result = &typed;
  }
  if (numel > 0) {
    COSET_CUDA_RETURN_IF_ERROR(cudaMemcpyAsync(out, result->as<void>(), static_cast<size_t>(DTypeBytes(dtype)) * numel,
                                               cudaMemcpyDeviceToHost, stream));
  }
  COSET_CUDA_RETURN_IF_ERROR(cudaStreamSynchronize(stream));
  return absl::OkStatus();
}

absl::StatusOr<CompressedTensor> CudaCodec::AddCodes(const std::vector<const CompressedTensor*>& codes,
                                                     SumValidation* validation) {
  COSET_ASSIGN_OR_RETURN(const std::vector<device::CodedForKernels> coded, device::PrepareAddends(codes));
  const device::DeviceCodecPlan& plan = coded[0].plan;
  const cudaStream_t stream = static_cast<cudaStream_t>(stream_);
  DeviceMemory ramp, signs, pointers, sum, inexact;
  COSET_ASSIGN_OR_RETURN(const device::DeviceCodec c, OnDevice(plan, &ramp, &signs));
  std::vector<DeviceMemory> inputs(coded.size());
  std::vector<const void*> input_pointers;
  for (size_t k = 0; k < coded.size(); ++k) {
    COSET_RETURN_IF_ERROR(UploadVector(coded[k].symbols, stream_, &inputs[k]));
    input_pointers.push_back(inputs[k].as<void>());
  }
  const int64_t chunks = c.rows * c.chunks_per_row;
  COSET_RETURN_IF_ERROR(UploadVector(input_pointers, stream_, &pointers));
  COSET_RETURN_IF_ERROR(sum.Allocate(device::SymbolBufferBytes(plan)));
  if (validation != nullptr) COSET_RETURN_IF_ERROR(inexact.Allocate(chunks));
  COSET_CUDA_RETURN_IF_ERROR(device::LaunchAddCodes(c, pointers.as<const void*>(), static_cast<int>(coded.size()),
                                                    sum.as<void>(), inexact.as<uint8_t>(), stream));
  std::vector<uint8_t> host_sum(device::SymbolBufferBytes(plan)), host_inexact(chunks, 0);
  COSET_RETURN_IF_ERROR(Download(sum, stream, &host_sum));
  if (validation != nullptr) COSET_RETURN_IF_ERROR(Download(inexact, stream, &host_inexact));
  // The host copies uploaded above (coded, input_pointers) live until here.
  COSET_CUDA_RETURN_IF_ERROR(cudaStreamSynchronize(stream));
  return device::FinishAddCodes(*codes[0], plan, std::move(host_sum), std::move(host_inexact), validation);
}

const char* GemmMethodName(GemmMethod method) {
  switch (method) {
    case GemmMethod::kAuto:
      return "cuda-auto";
    case GemmMethod::kFusedPerChunk:
      return "cuda-fused";
    case GemmMethod::kFusedRuns:
      return "cuda-fused-runs";
    case GemmMethod::kDecodeCublas:
      return "cuda-decode-cublas";
  }
  return "cuda-unknown";
}

absl::StatusOr<const Cublas*> CudaCodec::LoadCublas() {
  if (cublas_ == nullptr && absl::IsUnknown(cublas_status_)) {
    absl::StatusOr<std::unique_ptr<Cublas>> loaded = Cublas::Load(static_cast<cudaStream_t>(stream_));
    cublas_status_ = loaded.status();
    if (loaded.ok()) cublas_ = *std::move(loaded);
  }
  if (cublas_ == nullptr) return absl::FailedPreconditionError(cublas_status_.message());
  return cublas_.get();
}

absl::Status CudaCodec::DecodeThenCublas(const CodesOnDevice& codes, const float* x, int64_t batch, float* product,
                                         DeviceMemory* decoded, DeviceMemory* work) {
  const device::DeviceCodec& c = codes.codec;
  constexpr int64_t kMaxCublasDim = std::numeric_limits<int>::max();
  if (c.rows > kMaxCublasDim || c.cols > kMaxCublasDim || batch > kMaxCublasDim) {
    return absl::FailedPreconditionError("cuBLAS takes matrix sides below 2^31");
  }
  COSET_ASSIGN_OR_RETURN(const Cublas* cublas, LoadCublas());
  COSET_RETURN_IF_ERROR(DecodeOnDevice(codes, decoded, work));
  return cublas->Gemm(CUDA_R_32F, decoded->as<void>(), x, product, c.rows, c.cols, batch);
}

absl::StatusOr<GemmMethod> CudaCodec::Gemm(const CompressedTensor& weights, const float* queries, int64_t batch,
                                           float* out, GemmMethod method) {
  if (batch < 0) return absl::InvalidArgumentError("batch must be >= 0");
  CodesOnDevice codes;
  COSET_RETURN_IF_ERROR(Upload(weights, &codes));
  return Gemm(codes, queries, batch, out, method);
}

absl::StatusOr<GemmMethod> CudaCodec::Gemm(const CodesOnDevice& codes, const float* queries, int64_t batch, float* out,
                                           GemmMethod method) {
  if (batch < 0) return absl::InvalidArgumentError("batch must be >= 0");
  COSET_CUDA_RETURN_IF_ERROR(cudaSetDevice(device_.index));
  const device::DeviceCodec& c = codes.codec;
  const cudaStream_t stream = static_cast<cudaStream_t>(stream_);
  DeviceMemory x, output, padded, decoded, work;
  COSET_RETURN_IF_ERROR(x.Upload(queries, sizeof(float) * batch * c.cols, stream_));
  COSET_RETURN_IF_ERROR(output.Allocate(sizeof(float) * batch * c.rows));
  const bool chosen = method != GemmMethod::kAuto;
  if (!chosen) {
    method = kDecodeCublasMinBatch > 0 && batch >= kDecodeCublasMinBatch ? GemmMethod::kDecodeCublas
                                                                         : GemmMethod::kFusedPerChunk;
  }
  if (method == GemmMethod::kDecodeCublas) {
    const absl::Status s = DecodeThenCublas(codes, x.as<float>(), batch, output.as<float>(), &decoded, &work);
    // kAuto's choice falls back to the fused kernel, which rewrites every output.
    if (!s.ok() && chosen) return s;
    if (!s.ok()) method = GemmMethod::kFusedPerChunk;
  }
  if (method != GemmMethod::kDecodeCublas) {
    const float* prepared = x.as<float>();
    if (!device::ReadsInPlace(c)) {
      COSET_RETURN_IF_ERROR(padded.Allocate(sizeof(float) * batch * c.padded_cols));
      COSET_CUDA_RETURN_IF_ERROR(device::LaunchPrepareQueries(c, x.as<float>(), batch, padded.as<float>(), stream));
      prepared = padded.as<float>();
    }
    const device::GemmPath path =
        method == GemmMethod::kFusedRuns ? device::GemmPath::kRuns : device::GemmPath::kPerChunk;
    COSET_CUDA_RETURN_IF_ERROR(device::LaunchGemm(c, codes.scales.as<uint16_t>(), codes.t.as<uint8_t>(),
                                                  codes.symbols.as<void>(), prepared, batch, output.as<float>(), stream,
                                                  path));
  }
  if (batch * c.rows > 0) {
    COSET_CUDA_RETURN_IF_ERROR(
        cudaMemcpyAsync(out, output.as<float>(), sizeof(float) * batch * c.rows, cudaMemcpyDeviceToHost, stream));
  }
  // The scratch above is freed when this returns: the stream must be done with it.
  COSET_CUDA_RETURN_IF_ERROR(cudaStreamSynchronize(stream));
  return method;
}

}  // namespace coset
