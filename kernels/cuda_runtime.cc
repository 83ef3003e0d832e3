#include "kernels/cuda_runtime.h"

#include <cuda_runtime_api.h>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <limits>
#include <optional>
#include <utility>

#include "absl/strings/str_cat.h"
#include "core/dtype.h"
#include "core/inner_product.h"
#include "core/lut.h"
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

absl::StatusOr<std::unique_ptr<PageLockedRange>> PageLockedRange::Register(void* data, int64_t bytes) {
  if (bytes <= 0 || data == nullptr) return absl::InvalidArgumentError("nothing to page-lock");
  COSET_RETURN_IF_ERROR(ProbeCudaDevice(0).status());
  const cudaError_t error = cudaHostRegister(data, static_cast<size_t>(bytes), cudaHostRegisterPortable);
  if (error != cudaSuccess) {
    cudaGetLastError();  // not sticky: clear it from the last-error slot
    return CudaError(error, "cudaHostRegister");
  }
  return std::unique_ptr<PageLockedRange>(new PageLockedRange(data));
}

PageLockedRange::~PageLockedRange() { cudaHostUnregister(data_); }

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
  DeviceMemory packed_points;  // device::PackedPointTable, where the codebook has one
  // device::HalfPointTable, where the codebook has one: its table here, its pairs on the host
  // (Upload builds a tensor's half-point indices from them).
  DeviceMemory half_points;
  device::HalfPointsOnHost halves;
  ChunkCodebook view;
  DeviceMemory pair_lut;  // DotRows' two-sided LUT, uploaded on its first use (empty until then)
  bool pair_lut_integral = true;
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

// Page-locked host memory (cudaHostAlloc), which the device's copy engines read and write on their
// own while the host and the kernels go on. Grows on demand, freed on destruction.
class PinnedMemory {
 public:
  PinnedMemory() = default;
  ~PinnedMemory() {
    if (ptr_ != nullptr) cudaFreeHost(ptr_);
  }
  PinnedMemory(const PinnedMemory&) = delete;
  PinnedMemory& operator=(const PinnedMemory&) = delete;

  absl::Status Reserve(int64_t bytes) {
    if (bytes <= bytes_) return absl::OkStatus();
    if (ptr_ != nullptr) cudaFreeHost(ptr_);
    ptr_ = nullptr;
    bytes_ = 0;
    const cudaError_t error = cudaHostAlloc(&ptr_, static_cast<size_t>(bytes), cudaHostAllocDefault);
    if (error != cudaSuccess) {
      ptr_ = nullptr;
      cudaGetLastError();  // not sticky: clear it from the last-error slot
      return absl::ResourceExhaustedError(
          absl::StrCat("page-locked host memory: cannot allocate ", bytes, " bytes (", cudaGetErrorString(error), ")"));
    }
    bytes_ = bytes;
    return absl::OkStatus();
  }
  uint8_t* data() const { return static_cast<uint8_t*>(ptr_); }

 private:
  void* ptr_ = nullptr;
  int64_t bytes_ = 0;
};

// Whether host memory [p, p + bytes) is page-locked (cudaHostAlloc, cudaHostRegister), so a copy
// engine can read or write it in place. Tested at both ends: one registration covers a range.
bool IsPageLocked(const void* p, int64_t bytes) {
  for (const void* at : {p, static_cast<const void*>(static_cast<const uint8_t*>(p) + bytes - 1)}) {
    cudaPointerAttributes attributes;
    if (cudaPointerGetAttributes(&attributes, at) != cudaSuccess) {
      cudaGetLastError();
      return false;
    }
    if (attributes.type != cudaMemoryTypeHost) return false;
  }
  return true;
}

}  // namespace

// StagingOptions::kPipelined's machinery: two slots, each with page-locked memory for a slice's
// input side and output side and the events that order its copies and kernels; a copy-in and a
// copy-out stream beside the codec's stream, which runs the kernels. Slice k takes slot k % 2.
struct CudaCodec::Pipeline {
  struct Slot {
    PinnedMemory in, out;
    cudaEvent_t copied_in = nullptr;   // the slice's input is on the device: the kernels may start
    cudaEvent_t coded = nullptr;       // the slice's kernels are done: its results may be copied out
    cudaEvent_t copied_out = nullptr;  // the results are in `out`, and `in` is free again
    int64_t slice = -1;                // the slice whose copy out was last queued here, or -1
  };
  cudaStream_t copy_in = nullptr, copy_out = nullptr;
  Slot slots[2];

  ~Pipeline() {
    for (Slot& slot : slots) {
      for (cudaEvent_t event : {slot.copied_in, slot.coded, slot.copied_out}) {
        if (event != nullptr) cudaEventDestroy(event);
      }
    }
    for (cudaStream_t stream : {copy_in, copy_out}) {
      if (stream != nullptr) cudaStreamDestroy(stream);
    }
  }

  // Runs `slices` through the slots. For slice k: when its slot still holds slice k - 2's results,
  // waits for their copy out and drain(k - 2, slot) moves them on (the slot's input side is free
  // by then too); then queue(k, slot) stages slice k and queues its copies and kernels (those on
  // `kernels`). At the end the last two are drained. queue and drain return absl::Status; after a
  // failure every stream is waited for, so nothing queued still reads or writes the caller's
  // memory or the slots when this returns.
  template <class Queue, class Drain>
  absl::Status Run(int64_t slices, cudaStream_t kernels, Queue queue, Drain drain) {
    const absl::Status status = RunSlices(slices, queue, drain);
    if (!status.ok()) {
      for (cudaStream_t stream : {copy_in, kernels, copy_out}) cudaStreamSynchronize(stream);
    }
    return status;
  }

 private:
  template <class Queue, class Drain>
  absl::Status RunSlices(int64_t slices, Queue& queue, Drain& drain) {
    for (Slot& slot : slots) slot.slice = -1;
    for (int64_t k = 0; k < slices + 2; ++k) {
      Slot& slot = slots[k % 2];
      if (slot.slice >= 0) {
        COSET_CUDA_RETURN_IF_ERROR(cudaEventSynchronize(slot.copied_out));
        COSET_RETURN_IF_ERROR(drain(slot.slice, slot));
        slot.slice = -1;
      }
      if (k >= slices) continue;
      COSET_RETURN_IF_ERROR(queue(k, slot));
      slot.slice = k;
    }
    return absl::OkStatus();
  }
};

absl::StatusOr<CudaCodec::Pipeline*> CudaCodec::GetPipeline() {
  if (pipeline_ != nullptr) return pipeline_.get();
  auto pipeline = std::make_unique<Pipeline>();
  COSET_CUDA_RETURN_IF_ERROR(cudaStreamCreateWithFlags(&pipeline->copy_in, cudaStreamNonBlocking));
  COSET_CUDA_RETURN_IF_ERROR(cudaStreamCreateWithFlags(&pipeline->copy_out, cudaStreamNonBlocking));
  for (Pipeline::Slot& slot : pipeline->slots) {
    for (cudaEvent_t* event : {&slot.copied_in, &slot.coded, &slot.copied_out}) {
      COSET_CUDA_RETURN_IF_ERROR(cudaEventCreateWithFlags(event, cudaEventDisableTiming));
    }
  }
  pipeline_ = std::move(pipeline);
  return pipeline_.get();
}

CudaCodec::CudaCodec(CudaDeviceInfo device, void* stream) : device_(std::move(device)), stream_(stream) {}

CudaCodec::~CudaCodec() {
  cudaSetDevice(device_.index);
  tables_.clear();
  pipeline_.reset();  // its streams, events and page-locked slots
  cublas_.reset();    // its handle works on the stream
  cudaStreamDestroy(static_cast<cudaStream_t>(stream_));
}

absl::StatusOr<std::unique_ptr<CudaCodec>> CudaCodec::Create(int device) {
  COSET_ASSIGN_OR_RETURN(CudaDeviceInfo info, ProbeCudaDevice(device));
  COSET_CUDA_RETURN_IF_ERROR(cudaSetDevice(device));
  cudaStream_t stream = nullptr;
  COSET_CUDA_RETURN_IF_ERROR(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking));
  return std::unique_ptr<CudaCodec>(new CudaCodec(std::move(info), stream));
}

absl::StatusOr<CudaCodec::DeviceTables*> CudaCodec::TablesFor(const Codebook& codebook) {
  const TablesKey key{static_cast<int>(codebook.lattice().kind()), codebook.lattice().dim(), codebook.q()};
  auto it = tables_.find(key);
  if (it != tables_.end()) return it->second.get();
  auto tables = std::make_unique<DeviceTables>();
  const ChunkCodebook host = codebook.view();
  const int64_t entries = codebook.num_symbols() * codebook.symbol_dim();
  COSET_RETURN_IF_ERROR(tables->rep_coords.Upload(host.rep_coords, entries * sizeof(int32_t), stream_));
  COSET_RETURN_IF_ERROR(tables->rep_point.Upload(host.rep_point, entries * sizeof(float), stream_));
  const std::vector<uint32_t> packed = device::PackedPointTable(codebook);
  COSET_RETURN_IF_ERROR(UploadVector(packed, stream_, &tables->packed_points));
  tables->halves = device::HalfPointTable(codebook);
  COSET_RETURN_IF_ERROR(UploadVector(tables->halves.table, stream_, &tables->half_points));
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
  // The packed table for every code whose Horner sum fits its bytes (E8's too, which plans do not
  // carry: DeviceCodecPlan::packed_points).
  const std::optional<int> bias = device::PackedBias(*plan.context.codebook, plan.context.levels);
  if (tables->packed_points.bytes() > 0 && bias.has_value()) {
    c.packed_points = tables->packed_points.as<uint32_t>();
    c.packed_bias = *bias;
  }
  COSET_RETURN_IF_ERROR(UploadVector(plan.context.ramp, stream_, ramp));
  COSET_RETURN_IF_ERROR(UploadVector(plan.context.rotation_signs, stream_, signs));
  c.codebook = tables->view;
  c.ramp = ramp->as<float>();
  c.rotation_signs = plan.context.rotation_signs.empty() ? nullptr : signs->as<float>();
  return c;
}

absl::StatusOr<CompressedTensor> CudaCodec::EncodeHost(const TensorCodec& codec, const void* x, DType x_dtype,
                                                       const std::vector<int64_t>& shape, DType recorded,
                                                       EncodeStats* stats) {
  COSET_ASSIGN_OR_RETURN(const int64_t numel, CheckedNumel(shape));
  COSET_ASSIGN_OR_RETURN(device::DeviceCodecPlan plan, device::MakePlan(codec, shape));
  const Layout& l = plan.context.layout;
  const cudaStream_t stream = static_cast<cudaStream_t>(stream_);
  const int64_t in_bytes = static_cast<int64_t>(DTypeBytes(x_dtype));
  const bool typed = x_dtype != DType::kFloat32;
  DeviceMemory ramp, signs, raw, input, work, base, scales, t, symbols, counters;
  COSET_ASSIGN_OR_RETURN(const device::DeviceCodec c, OnDevice(plan, &ramp, &signs));
  COSET_RETURN_IF_ERROR(scales.Allocate(sizeof(uint16_t) * l.rows * l.blocks_per_row));
  COSET_RETURN_IF_ERROR(t.Allocate(l.rows * l.chunks_per_row));
  COSET_RETURN_IF_ERROR(symbols.Allocate(device::SymbolBufferBytes(plan)));
  COSET_RETURN_IF_ERROR(counters.Allocate(sizeof(device::EncodeCounters)));
  // x's bytes land in `raw` in their own width; float32 is the encode's `input` itself. The
  // single-pass encode reads any width; the other kernels read float32, widened into `input`.
  COSET_RETURN_IF_ERROR(raw.Allocate(in_bytes * numel));
  const bool one_pass =
      device::EncodesInOnePass(c, raw.as<void>(), t.as<uint8_t>(), symbols.as<void>(), codec_kernels_);
  const float* encoded = raw.as<float>();  // what LaunchEncode reads
  if (typed && !one_pass) {
    COSET_RETURN_IF_ERROR(input.Allocate(sizeof(float) * numel));
    encoded = input.as<float>();
  }
  if (!one_pass) COSET_RETURN_IF_ERROR(base.Allocate(sizeof(float) * l.rows * l.blocks_per_row));
  if (!device::ReadsInPlace(c)) COSET_RETURN_IF_ERROR(work.Allocate(sizeof(float) * l.rows * l.padded_cols));
  COSET_CUDA_RETURN_IF_ERROR(cudaMemsetAsync(counters.as<void>(), 0, sizeof(device::EncodeCounters), stream));
  std::vector<uint16_t> host_scales(l.rows * l.blocks_per_row);
  std::vector<uint8_t> host_t(l.rows * l.chunks_per_row);
  std::vector<uint8_t> host_symbols(device::SymbolBufferBytes(plan));
  const bool scaled = c.scale != device::kScaleNone;
  const int64_t symbol_bytes_per_chunk = c.symbols_per_chunk * c.symbol_bytes;
  uint8_t* landing = raw.as<uint8_t>();  // where x's bytes go on the device

  // The kernels on one slice of blocks, once its input is on the device (queued on `stream`).
  auto encode_slice = [&](device::BlockSlice slice) -> absl::Status {
    slice = device::ClampSlice(c, slice);
    if (one_pass) {
      COSET_CUDA_RETURN_IF_ERROR(device::LaunchEncodeTyped(
          c, raw.as<void>(), static_cast<uint8_t>(x_dtype), scales.as<uint16_t>(), t.as<uint8_t>(), symbols.as<void>(),
          counters.as<device::EncodeCounters>(), stream, slice, codec_kernels_));
      return absl::OkStatus();
    }
    if (typed) {
      const device::IndexRange entries = device::SliceEntries(c, slice);
      COSET_CUDA_RETURN_IF_ERROR(device::LaunchToFloat(raw.as<uint8_t>() + in_bytes * entries.begin,
                                                       static_cast<uint8_t>(x_dtype), entries.size(),
                                                       input.as<float>() + entries.begin, stream));
    }
    COSET_CUDA_RETURN_IF_ERROR(
        device::LaunchEncode(c, encoded, work.as<float>(), base.as<float>(), scales.as<uint16_t>(), t.as<uint8_t>(),
                             symbols.as<void>(), counters.as<device::EncodeCounters>(), stream, slice, codec_kernels_));
    return absl::OkStatus();
  };

  if (staging_.mode == StagingOptions::Mode::kWhole || numel == 0) {
    if (numel > 0) {
      COSET_CUDA_RETURN_IF_ERROR(
          cudaMemcpyAsync(landing, x, static_cast<size_t>(in_bytes * numel), cudaMemcpyHostToDevice, stream));
    }
    COSET_RETURN_IF_ERROR(encode_slice(device::BlockSlice{}));
    COSET_RETURN_IF_ERROR(Download(scales, stream, &host_scales));
    COSET_RETURN_IF_ERROR(Download(t, stream, &host_t));
    COSET_RETURN_IF_ERROR(Download(symbols, stream, &host_symbols));
  } else {
    COSET_ASSIGN_OR_RETURN(Pipeline * pipeline, GetPipeline());
    const int64_t blocks_per_slice = std::max<int64_t>(1, staging_.slice_bytes / (in_bytes * c.block));
    const std::vector<device::BlockSlice> slices = device::SliceBlocks(c, blocks_per_slice);
    // A slot's output side: the slice's scales, T, then symbols (at 16-byte aligned offsets).
    const int64_t chunks_per_slice = blocks_per_slice * c.chunks_per_block;
    const int64_t t_offset = (2 * blocks_per_slice + 15) / 16 * 16;
    const int64_t symbols_offset = t_offset + (chunks_per_slice + 15) / 16 * 16;
    const bool x_locked = IsPageLocked(x, in_bytes * numel);
    for (Pipeline::Slot& slot : pipeline->slots) {
      if (!x_locked) COSET_RETURN_IF_ERROR(slot.in.Reserve(in_bytes * blocks_per_slice * c.block));
      COSET_RETURN_IF_ERROR(slot.out.Reserve(symbols_offset + chunks_per_slice * symbol_bytes_per_chunk));
    }
    auto queue = [&](int64_t k, Pipeline::Slot& slot) -> absl::Status {
      const device::BlockSlice& slice = slices[k];
      const device::IndexRange entries = device::SliceEntries(c, slice);
      const int64_t bytes = in_bytes * entries.size();
      const uint8_t* from = static_cast<const uint8_t*>(x) + in_bytes * entries.begin;
      if (!x_locked) {  // through the slot: the host's copy overlaps the device's work on earlier slices
        std::memcpy(slot.in.data(), from, static_cast<size_t>(bytes));
        from = slot.in.data();
      }
      COSET_CUDA_RETURN_IF_ERROR(cudaMemcpyAsync(landing + in_bytes * entries.begin, from, static_cast<size_t>(bytes),
                                                 cudaMemcpyHostToDevice, pipeline->copy_in));
      COSET_CUDA_RETURN_IF_ERROR(cudaEventRecord(slot.copied_in, pipeline->copy_in));
      COSET_CUDA_RETURN_IF_ERROR(cudaStreamWaitEvent(stream, slot.copied_in, 0));
      COSET_RETURN_IF_ERROR(encode_slice(slice));
      COSET_CUDA_RETURN_IF_ERROR(cudaEventRecord(slot.coded, stream));
      COSET_CUDA_RETURN_IF_ERROR(cudaStreamWaitEvent(pipeline->copy_out, slot.coded, 0));
      const device::IndexRange chunks = device::SliceChunks(c, slice);
      if (scaled) {
        COSET_CUDA_RETURN_IF_ERROR(cudaMemcpyAsync(slot.out.data(), scales.as<uint16_t>() + slice.begin,
                                                   2 * (slice.end - slice.begin), cudaMemcpyDeviceToHost,
                                                   pipeline->copy_out));
      }
      COSET_CUDA_RETURN_IF_ERROR(cudaMemcpyAsync(slot.out.data() + t_offset, t.as<uint8_t>() + chunks.begin,
                                                 chunks.size(), cudaMemcpyDeviceToHost, pipeline->copy_out));
      COSET_CUDA_RETURN_IF_ERROR(cudaMemcpyAsync(
          slot.out.data() + symbols_offset, symbols.as<uint8_t>() + chunks.begin * symbol_bytes_per_chunk,
          chunks.size() * symbol_bytes_per_chunk, cudaMemcpyDeviceToHost, pipeline->copy_out));
      COSET_CUDA_RETURN_IF_ERROR(cudaEventRecord(slot.copied_out, pipeline->copy_out));
      return absl::OkStatus();
    };
    auto drain = [&](int64_t k, Pipeline::Slot& slot) -> absl::Status {
      const device::BlockSlice& slice = slices[k];
      const device::IndexRange chunks = device::SliceChunks(c, slice);
      if (scaled) std::memcpy(host_scales.data() + slice.begin, slot.out.data(), 2 * (slice.end - slice.begin));
      std::memcpy(host_t.data() + chunks.begin, slot.out.data() + t_offset, chunks.size());
      std::memcpy(host_symbols.data() + chunks.begin * symbol_bytes_per_chunk, slot.out.data() + symbols_offset,
                  chunks.size() * symbol_bytes_per_chunk);
      return absl::OkStatus();
    };
    COSET_RETURN_IF_ERROR(pipeline->Run(static_cast<int64_t>(slices.size()), stream, queue, drain));
  }
  std::vector<device::EncodeCounters> host_counters(1);
  COSET_RETURN_IF_ERROR(Download(counters, stream, &host_counters));
  COSET_CUDA_RETURN_IF_ERROR(cudaStreamSynchronize(stream));
  const device::EncodeCounters& n = host_counters[0];
  if (n.refused_blocks > 0 || (n.capped > 0 && codec.params().on_cap == CapPolicy::kFail)) {
    // The CPU codec names the bad entry or chunk: it reads the same floats (widened on the host).
    std::vector<float> wide;
    const float* floats = static_cast<const float*>(x);
    if (typed) {
      wide.resize(static_cast<size_t>(numel));
      ToFloat(x, x_dtype, numel, wide.data());
      floats = wide.data();
    }
    COSET_RETURN_IF_ERROR(device::CheckDeviceEncode(codec, floats, shape, recorded, /*refused=*/true, /*capped=*/0));
  }
  if (stats != nullptr) {
    stats->chunks = l.rows * l.chunks_per_row;
    stats->first_try_overloads = static_cast<int64_t>(n.first_try_overloads);
    stats->capped = static_cast<int64_t>(n.capped);
  }
  CompressedTensor out =
      device::AssembleTensor(plan, recorded, std::move(host_scales), std::move(host_t), std::move(host_symbols));
  out.shape = shape;
  return out;
}

absl::StatusOr<CompressedTensor> CudaCodec::Encode(const TensorCodec& codec, const float* x,
                                                   const std::vector<int64_t>& shape, DType dtype, EncodeStats* stats) {
  return EncodeHost(codec, x, DType::kFloat32, shape, dtype, stats);
}

absl::StatusOr<CompressedTensor> CudaCodec::EncodeTyped(const TensorCodec& codec, const void* x, DType dtype,
                                                        const std::vector<int64_t>& shape, EncodeStats* stats) {
  return EncodeHost(codec, x, dtype, shape, dtype, stats);
}

absl::Status CudaCodec::Upload(const CompressedTensor& tensor, CodesOnDevice* out, CodesFor use) {
  COSET_ASSIGN_OR_RETURN(const device::CodedForKernels coded, device::PrepareCoded(tensor));
  COSET_ASSIGN_OR_RETURN(out->codec, OnDevice(coded.plan, &out->ramp, &out->signs));
  COSET_RETURN_IF_ERROR(UploadVector(tensor.scales, stream_, &out->scales));
  COSET_RETURN_IF_ERROR(UploadVector(tensor.t, stream_, &out->t));
  COSET_RETURN_IF_ERROR(UploadVector(coded.symbols, stream_, &out->symbols));
  out->code_bytes = static_cast<int64_t>(2 * tensor.scales.size() + tensor.t.size() + coded.symbols.size());
  // The GEMMs' layouts where asked for and applicable; else none (what `out` held before is freed).
  out->gemm = {};
  device::CompactOverloadsOnHost compact;
  device::HalfPointCodesOnHost halves;
  COSET_ASSIGN_OR_RETURN(const DeviceTables* tables, TablesFor(*coded.plan.codebook));
  if (use == CodesFor::kGemm && device::CompactOverloadsApply(out->codec)) {
    compact = device::BuildCompactOverloads(out->codec, tensor.t.data());
  }
  const bool with_halves = use == CodesFor::kGemm && device::HalvesApply(out->codec) && !tables->halves.table.empty();
  if (with_halves) halves = device::BuildHalfPointCodes(out->codec, coded.symbols.data(), tables->halves);
  COSET_RETURN_IF_ERROR(UploadVector(compact.words, stream_, &out->compact_words));
  COSET_RETURN_IF_ERROR(UploadVector(compact.escape_begin, stream_, &out->escape_begin));
  COSET_RETURN_IF_ERROR(UploadVector(compact.escapes, stream_, &out->escapes));
  COSET_RETURN_IF_ERROR(UploadVector(halves.head, stream_, &out->half_head));
  COSET_RETURN_IF_ERROR(UploadVector(halves.tail, stream_, &out->half_tail));
  if (!compact.words.empty()) {
    out->gemm.compact = {out->compact_words.as<uint32_t>(), out->escape_begin.as<uint32_t>(),
                         out->escapes.as<uint32_t>()};
  }
  if (with_halves) {
    out->gemm.halves = {tables->half_points.as<uint32_t>(), tables->halves.bias, out->half_head.as<uint32_t>(),
                        out->half_tail.as<uint32_t>()};
  }
  // The host copies go when this returns: the uploads must be done by then.
  COSET_CUDA_RETURN_IF_ERROR(cudaStreamSynchronize(static_cast<cudaStream_t>(stream_)));
  return absl::OkStatus();
}

absl::Status CudaCodec::DecodeOnDevice(const CodesOnDevice& codes, DeviceMemory* decoded, DeviceMemory* work) {
  const device::DeviceCodec& c = codes.codec;
  if (!device::ReadsInPlace(c)) COSET_RETURN_IF_ERROR(work->Allocate(sizeof(float) * c.rows * c.padded_cols));
  COSET_RETURN_IF_ERROR(decoded->Allocate(sizeof(float) * c.rows * c.cols));
  COSET_CUDA_RETURN_IF_ERROR(device::LaunchDecode(
      c, codes.scales.as<uint16_t>(), codes.t.as<uint8_t>(), codes.symbols.as<void>(), work->as<float>(),
      decoded->as<float>(), static_cast<cudaStream_t>(stream_), device::BlockSlice{}, codec_kernels_));
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
  const int64_t out_bytes = static_cast<int64_t>(DTypeBytes(dtype));
  const bool typed = dtype != DType::kFloat32;
  // Decoded into `result` in dtype: directly where the kernels narrow as they store
  // (DecodesTyped), else to float32 (`output`) and then narrowed.
  DeviceMemory work, output, result;
  if (!device::ReadsInPlace(c)) COSET_RETURN_IF_ERROR(work.Allocate(sizeof(float) * c.rows * c.padded_cols));
  COSET_RETURN_IF_ERROR(result.Allocate(out_bytes * numel));
  const bool direct = typed && device::DecodesTyped(c, codes.t.as<uint8_t>(), codes.symbols.as<void>(),
                                                    result.as<void>(), codec_kernels_);
  if (typed && !direct) COSET_RETURN_IF_ERROR(output.Allocate(sizeof(float) * numel));
  float* floats = typed ? output.as<float>() : result.as<float>();  // LaunchDecode's output

  auto decode_slice = [&](device::BlockSlice slice) -> absl::Status {
    slice = device::ClampSlice(c, slice);
    if (direct) {
      COSET_CUDA_RETURN_IF_ERROR(device::LaunchDecodeTyped(c, codes.scales.as<uint16_t>(), codes.t.as<uint8_t>(),
                                                           codes.symbols.as<void>(), result.as<void>(),
                                                           static_cast<uint8_t>(dtype), stream, slice, codec_kernels_));
      return absl::OkStatus();
    }
    COSET_CUDA_RETURN_IF_ERROR(device::LaunchDecode(c, codes.scales.as<uint16_t>(), codes.t.as<uint8_t>(),
                                                    codes.symbols.as<void>(), work.as<float>(), floats, stream, slice,
                                                    codec_kernels_));
    if (typed) {
      const device::IndexRange entries = device::SliceEntries(c, slice);
      COSET_CUDA_RETURN_IF_ERROR(device::LaunchFromFloat(output.as<float>() + entries.begin, entries.size(),
                                                         static_cast<uint8_t>(dtype),
                                                         result.as<uint8_t>() + out_bytes * entries.begin, stream));
    }
    return absl::OkStatus();
  };

  if (staging_.mode == StagingOptions::Mode::kWhole || numel == 0) {
    COSET_RETURN_IF_ERROR(decode_slice(device::BlockSlice{}));
    if (numel > 0) {
      COSET_CUDA_RETURN_IF_ERROR(cudaMemcpyAsync(out, result.as<uint8_t>(), static_cast<size_t>(out_bytes * numel),
                                                 cudaMemcpyDeviceToHost, stream));
    }
  } else {
    COSET_ASSIGN_OR_RETURN(Pipeline * pipeline, GetPipeline());
    const int64_t blocks_per_slice = std::max<int64_t>(1, staging_.slice_bytes / (out_bytes * c.block));
    const std::vector<device::BlockSlice> slices = device::SliceBlocks(c, blocks_per_slice);
    const bool out_locked = IsPageLocked(out, out_bytes * numel);
    if (!out_locked) {
      for (Pipeline::Slot& slot : pipeline->slots) {
        COSET_RETURN_IF_ERROR(slot.out.Reserve(out_bytes * blocks_per_slice * c.block));
      }
    }
    auto queue = [&](int64_t k, Pipeline::Slot& slot) -> absl::Status {
      COSET_RETURN_IF_ERROR(decode_slice(slices[k]));
      COSET_CUDA_RETURN_IF_ERROR(cudaEventRecord(slot.coded, stream));
      COSET_CUDA_RETURN_IF_ERROR(cudaStreamWaitEvent(pipeline->copy_out, slot.coded, 0));
      const device::IndexRange entries = device::SliceEntries(c, slices[k]);
      uint8_t* to = out_locked ? static_cast<uint8_t*>(out) + out_bytes * entries.begin : slot.out.data();
      COSET_CUDA_RETURN_IF_ERROR(cudaMemcpyAsync(to, result.as<uint8_t>() + out_bytes * entries.begin,
                                                 static_cast<size_t>(out_bytes * entries.size()),
                                                 cudaMemcpyDeviceToHost, pipeline->copy_out));
      COSET_CUDA_RETURN_IF_ERROR(cudaEventRecord(slot.copied_out, pipeline->copy_out));
      return absl::OkStatus();
    };
    auto drain = [&](int64_t k, Pipeline::Slot& slot) -> absl::Status {
      const device::IndexRange entries = device::SliceEntries(c, slices[k]);
      if (!out_locked) {
        std::memcpy(static_cast<uint8_t*>(out) + out_bytes * entries.begin, slot.out.data(),
                    static_cast<size_t>(out_bytes * entries.size()));
      }
      return absl::OkStatus();
    };
    COSET_RETURN_IF_ERROR(pipeline->Run(static_cast<int64_t>(slices.size()), stream, queue, drain));
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

absl::StatusOr<std::vector<double>> CudaCodec::DotRows(const CompressedTensor& a, const CompressedTensor& b,
                                                       int64_t lut_budget_bytes) {
  // The checks in DotRows' order: the LUT's budget, then the tensors (Upload checks each).
  COSET_ASSIGN_OR_RETURN(std::shared_ptr<const Codebook> codebook, Codebook::Get(a.params.lattice, a.params.q));
  COSET_ASSIGN_OR_RETURN(const LutFootprint footprint, TwoSidedLutFootprint(*codebook));
  if (footprint.bytes > lut_budget_bytes) {
    return TwoSidedLut::Build(*codebook, lut_budget_bytes).status();  // its refusal, in its words
  }
  CodesOnDevice codes_a, codes_b;
  COSET_RETURN_IF_ERROR(Upload(a, &codes_a));
  COSET_RETURN_IF_ERROR(Upload(b, &codes_b));
  COSET_RETURN_IF_ERROR(CheckSameCode(a, b));
  COSET_ASSIGN_OR_RETURN(DeviceTables * tables, TablesFor(*codebook));
  const cudaStream_t stream = static_cast<cudaStream_t>(stream_);
  if (tables->pair_lut.bytes() == 0) {
    COSET_ASSIGN_OR_RETURN(const TwoSidedLut lut, TwoSidedLut::Build(*codebook, lut_budget_bytes));
    tables->pair_lut_integral = lut.integral();
    if (lut.integral()) {
      COSET_RETURN_IF_ERROR(UploadVector(lut.ints(), stream_, &tables->pair_lut));
    } else {
      COSET_RETURN_IF_ERROR(UploadVector(lut.floats(), stream_, &tables->pair_lut));
    }
    // The host table goes when this block ends: the upload must be done by then.
    COSET_CUDA_RETURN_IF_ERROR(cudaStreamSynchronize(stream));
  }
  const int64_t rows = codes_a.codec.rows;
  DeviceMemory out;
  COSET_RETURN_IF_ERROR(out.Allocate(sizeof(double) * rows));
  COSET_CUDA_RETURN_IF_ERROR(device::LaunchDotRows(
      codes_a.codec, codes_a.scales.as<uint16_t>(), codes_a.t.as<uint8_t>(), codes_a.symbols.as<void>(), codes_b.codec,
      codes_b.scales.as<uint16_t>(), codes_b.t.as<uint8_t>(), codes_b.symbols.as<void>(), tables->pair_lut.as<void>(),
      tables->pair_lut_integral, out.as<double>(), stream));
  std::vector<double> host(static_cast<size_t>(rows));
  COSET_RETURN_IF_ERROR(Download(out, stream, &host));
  COSET_CUDA_RETURN_IF_ERROR(cudaStreamSynchronize(stream));
  return host;
}

const char* GemmMethodName(GemmMethod method) {
  switch (method) {
    case GemmMethod::kAuto:
      return "cuda-auto";
    case GemmMethod::kFusedPerChunk:
      return "cuda-fused";
    case GemmMethod::kFusedRuns:
      return "cuda-fused-runs";
    case GemmMethod::kFusedTensorCores:
      return "cuda-fused-tensor-cores";
    case GemmMethod::kDecodeCublas:
      return "cuda-decode-cublas";
  }
  return "cuda-unknown";
}

GemmMethod FusedGemmMethod(device::KernelPath path) {
  switch (path) {
    case device::KernelPath::kRuns:
      return GemmMethod::kFusedRuns;
    case device::KernelPath::kTensorCores:
      return GemmMethod::kFusedTensorCores;
    default:
      return GemmMethod::kFusedPerChunk;
  }
}

device::KernelPath FusedKernelPath(GemmMethod method) {
  switch (method) {
    case GemmMethod::kFusedRuns:
      return device::KernelPath::kRuns;
    case GemmMethod::kFusedTensorCores:
      return device::KernelPath::kTensorCores;
    default:
      return device::KernelPath::kPerChunk;
  }
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
  COSET_RETURN_IF_ERROR(Upload(weights, &codes, CodesFor::kGemm));
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
  // kAuto's fused kernel is the one the codec kernels' path names (set_codec_kernels).
  const GemmMethod fused = FusedGemmMethod(codec_kernels_);
  if (!chosen) {
    method = kDecodeCublasMinBatch > 0 && batch >= kDecodeCublasMinBatch ? GemmMethod::kDecodeCublas : fused;
  }
  if (method == GemmMethod::kDecodeCublas) {
    const absl::Status s = DecodeThenCublas(codes, x.as<float>(), batch, output.as<float>(), &decoded, &work);
    // kAuto's choice falls back to the fused kernel, which rewrites every output.
    if (!s.ok() && chosen) return s;
    if (!s.ok()) method = fused;
  }
  if (method != GemmMethod::kDecodeCublas) {
    const float* prepared = x.as<float>();
    if (!device::ReadsInPlace(c)) {
      COSET_RETURN_IF_ERROR(padded.Allocate(sizeof(float) * batch * c.padded_cols));
      COSET_CUDA_RETURN_IF_ERROR(device::LaunchPrepareQueries(c, x.as<float>(), batch, padded.as<float>(), stream));
      prepared = padded.as<float>();
    }
    COSET_CUDA_RETURN_IF_ERROR(device::LaunchGemm(c, codes.scales.as<uint16_t>(), codes.t.as<uint8_t>(),
                                                  codes.symbols.as<void>(), prepared, batch, output.as<float>(), stream,
                                                  FusedKernelPath(method), codes.gemm));
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
