// The host side of the GPU codec: whether a CUDA device is usable (and why not), and CudaCodec,
// which stages host tensors through device memory and runs the kernels of cuda_codec.h on one
// device and stream. Every binary links the static CUDA runtime, so all of this compiles and runs
// on machines without a GPU or a driver: the probe then says which is missing.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <tuple>
#include <vector>

#include "absl/status/statusor.h"
#include "core/limits.h"
#include "core/tensor_codec.h"
#include "kernels/device_codec_host.h"

namespace coset {

class Cublas;  // kernels/cublas.h

struct CudaDeviceInfo {
  int index = 0;
  std::string name;
  int compute_major = 0, compute_minor = 0;
  int64_t total_memory_bytes = 0;
  int driver_version = 0;   // e.g. 13000
  int runtime_version = 0;  // the CUDA runtime linked in
};

// "device N (NAME, compute X.Y)", as logs, ServerInfo and backend descriptions name a device.
std::string DescribeCudaDevice(const CudaDeviceInfo& device);

// Device `index` if it can serve, else FAILED_PRECONDITION saying why: "no CUDA driver", "no
// CUDA device", "CUDA device N does not exist (K found)", or the runtime's own words.
absl::StatusOr<CudaDeviceInfo> ProbeCudaDevice(int index);

// Device memory held through DeviceMemory by this process, and the budget it may not pass. An
// allocation past the budget is refused with RESOURCE_EXHAUSTED before the device is asked, so a
// request too large fails cleanly (and nothing else on the device loses memory to it) instead of
// running the device out of memory. The budget is process-wide: every CudaCodec shares it.
int64_t DeviceBytesInUse();
int64_t DeviceMemoryBudget();  // 0: none but the device's own memory
void SetDeviceMemoryBudget(int64_t bytes);

// Device memory owned by the caller of a launch (freed on destruction). Kept free of CUDA types,
// so this header needs no CUDA include.
class DeviceMemory {
 public:
  DeviceMemory() = default;
  ~DeviceMemory();
  DeviceMemory(const DeviceMemory&) = delete;
  DeviceMemory& operator=(const DeviceMemory&) = delete;

  // Allocates `bytes` on the current device (nothing for 0); RESOURCE_EXHAUSTED when that would
  // pass the device-memory budget or the device is out of memory. Frees what was held before.
  absl::Status Allocate(int64_t bytes);
  // Allocates count values and copies them from the host (asynchronously on `stream`, a
  // cudaStream_t: keep the host values alive until the stream has passed this point).
  absl::Status Upload(const void* values, int64_t bytes, void* stream);
  template <typename T>
  T* as() const {
    return static_cast<T*>(ptr_);
  }
  int64_t bytes() const { return bytes_; }

 private:
  void Free();

  void* ptr_ = nullptr;
  int64_t bytes_ = 0;  // charged to DeviceBytesInUse
};

// Host memory page-locked for the devices while this lives (cudaHostRegister): copy engines then
// read and write it in place, and CudaCodec's pipelined staging copies straight from and to it
// instead of through its own staging slots (a buffer a caller reuses, such as a shared-memory
// region, is worth registering once).
class PageLockedRange {
 public:
  // FAILED_PRECONDITION without a device; the runtime's words when it refuses (bytes > 0).
  static absl::StatusOr<std::unique_ptr<PageLockedRange>> Register(void* data, int64_t bytes);
  ~PageLockedRange();
  PageLockedRange(const PageLockedRange&) = delete;
  PageLockedRange& operator=(const PageLockedRange&) = delete;

 private:
  explicit PageLockedRange(void* data) : data_(data) {}
  void* data_;
};

// A coded tensor's codes on one device, ready for LaunchDecode and LaunchGemm (CudaCodec::Upload):
// its DeviceCodec, with device pointers, and the memory they point into. scales is empty (its
// pointer null) without scaling.
struct CodesOnDevice {
  device::DeviceCodec codec;
  DeviceMemory ramp, signs, scales, t, symbols;
  int64_t code_bytes = 0;  // scales + T + symbols as uploaded
  // What the GEMM kernels read beside those (uploaded for CodesFor::kGemm where they apply, else
  // their pointers are null), and the memory they point into: two-bit T for the packed GEMM
  // (CompactOverloadsApply), half-point indices for the run path at d = 8 (HalvesApply, where the
  // codebook has half points; their table is the codec's, one per codebook).
  device::GemmCodes gemm;
  DeviceMemory compact_words, escape_begin, escapes, half_head, half_tail;
  // What a GEMV on these codes streams: scales, then two-bit T where uploaded, else T bytes, and
  // half-point indices where uploaded, else symbols.
  int64_t gemm_code_bytes() const {
    int64_t bytes = code_bytes;
    if (gemm.compact.words != nullptr) {
      bytes += compact_words.bytes() + escape_begin.bytes() + escapes.bytes() - t.bytes();
    }
    if (gemm.halves.head != nullptr) bytes += half_head.bytes() + half_tail.bytes() - symbols.bytes();
    return bytes;
  }
  // Device memory held (charged to DeviceBytesInUse).
  int64_t bytes() const {
    return ramp.bytes() + signs.bytes() + scales.bytes() + t.bytes() + symbols.bytes() + compact_words.bytes() +
           escape_begin.bytes() + escapes.bytes() + half_head.bytes() + half_tail.bytes();
  }
};

// What uploaded codes will serve: GEMMs also take two-bit T and half-point indices (the packed and
// run GEMMs' GemmCodes, built on the host once) where they apply.
enum class CodesFor : uint8_t { kDecode, kGemm };

// How CudaCodec::Gemm multiplies queries by coded weights.
enum class GemmMethod : uint8_t {
  kAuto,              // kDecodeCublas from kDecodeCublasMinBatch queries on (when cuBLAS loads and the
                      // decoded weights fit the device budget), else kFusedPerChunk (kFusedRuns when
                      // set_codec_kernels chose KernelPath::kRuns, kFusedTensorCores for kTensorCores)
  kFusedPerChunk,     // LaunchGemm, KernelPath::kPerChunk: weights decoded in registers, never stored
  kFusedRuns,         // LaunchGemm, KernelPath::kRuns (the packed GEMM or the run path where they
                      // apply, else per chunk)
  kFusedTensorCores,  // LaunchGemm, KernelPath::kTensorCores (the tensor-core GEMM from 5 queries
                      // where it applies, else as kFusedRuns)
  kDecodeCublas,      // the weights decoded to float32 in device memory (LaunchDecode), then cuBLAS
                      // SGEMM in float32 (no TF32): decode-then-dot's own arithmetic, at cuBLAS's speed
};
// What InnerProduct and Backend::Gemm report as the path: "cuda-fused", "cuda-fused-runs",
// "cuda-fused-tensor-cores", "cuda-decode-cublas" ("cuda-auto" for kAuto, which Gemm never reports).
const char* GemmMethodName(GemmMethod method);
// The fused GEMM method of a kernel path (kPerChunk: kFusedPerChunk ...), and the kernel path
// LaunchGemm takes for a fused method (kPerChunk for any other).
GemmMethod FusedGemmMethod(device::KernelPath path);
device::KernelPath FusedKernelPath(GemmMethod method);
// kAuto's crossover to kDecodeCublas, in queries. 0: never. The fused kernels stream ~0.6 bytes
// per weight against cuBLAS's 4 plus a decode that writes them, so they should win at small
// batches and lose at large ones; where they cross is for cuda_codec_bench to measure on a GPU
// (its "decode-cublas" rows), and until it has, kAuto stays on the fused kernel.
inline constexpr int64_t kDecodeCublasMinBatch = 0;

// How CudaCodec moves a host tensor to the device and its results back (Encode, EncodeTyped,
// Decode, DecodeTyped).
struct StagingOptions {
  enum class Mode : uint8_t {
    // One copy in, the kernels on the whole tensor, one copy out, straight from and to the caller's
    // memory (pageable memory: the driver stages it, and nothing overlaps). Has run on a GPU.
    kWhole,
    // Slices of whole blocks (device::BlockSlice, slice_bytes of input or output each) through two
    // slots of page-locked memory and two copy streams, so that one slice's copy in, another's
    // kernels and a third's copy out overlap, and the host's copies into and out of the slots
    // overlap all three. Memory the caller has page-locked itself (cudaHostAlloc, cudaHostRegister)
    // is copied straight from and to. Written 2026-12-06 without a GPU: not yet run on one, so not
    // the default until cuda_codec_test's PipelinedStagingMatchesTheCpu has passed on a device.
    kPipelined,
  };
  Mode mode = Mode::kWhole;
  int64_t slice_bytes = kStagingSliceBytes;
};

// The codec on one CUDA device: encode and decode of host tensors (host -> device -> host), with
// the codebook tables uploaded once per (lattice, q) and kept while the CudaCodec lives. The codes
// are the CPU codec's, bit for bit (the same per-chunk functions; tests/kernels checks it on a GPU).
// Thread-compatible: one CudaCodec per thread, or serialize calls.
class CudaCodec {
 public:
  static absl::StatusOr<std::unique_ptr<CudaCodec>> Create(int device);
  ~CudaCodec();
  CudaCodec(const CudaCodec&) = delete;
  CudaCodec& operator=(const CudaCodec&) = delete;

  const CudaDeviceInfo& device() const { return device_; }
  void* stream() const { return stream_; }  // cudaStream_t
  const StagingOptions& staging() const { return staging_; }
  void set_staging(const StagingOptions& staging) { staging_ = staging; }
  // The encode and decode kernels (LaunchEncode, LaunchDecode) and kAuto's fused GEMM: per chunk
  // (the default, which has run on a GPU), or the run paths and the packed GEMM where they apply
  // (not yet run on one). The same codes either way; GEMM results within float rounding.
  device::KernelPath codec_kernels() const { return codec_kernels_; }
  void set_codec_kernels(device::KernelPath path) { codec_kernels_ = path; }

  // The plan's DeviceCodec with every pointer on this device: the codebook tables (uploaded once
  // per codebook), and the plan's ramp and rotation signs, copied into `ramp` and `signs` (keep
  // them alive while kernels use the result). For callers that launch the kernels themselves.
  absl::StatusOr<device::DeviceCodec> OnDevice(const device::DeviceCodecPlan& plan, DeviceMemory* ramp,
                                               DeviceMemory* signs);

  // Checks a coded tensor as the blob reader does (device::PrepareCoded) and uploads its codes
  // (and for kGemm their GemmCodes: two-bit T, half-point indices, where they apply).
  absl::Status Upload(const CompressedTensor& tensor, CodesOnDevice* out, CodesFor use = CodesFor::kDecode);

  // As TensorCodec::Encode (errors in the CPU codec's words: the input is re-checked there).
  absl::StatusOr<CompressedTensor> Encode(const TensorCodec& codec, const float* x, const std::vector<int64_t>& shape,
                                          DType dtype, EncodeStats* stats);
  // As TensorCodec::EncodeTypedInto: x holds numel values of `dtype` (aligned to its size), widened
  // to float32 on the device (exactly, as core/dtype.h's ToFloat), so a 16-bit input crosses to the
  // device in 2 bytes per entry; the blob records dtype.
  absl::StatusOr<CompressedTensor> EncodeTyped(const TensorCodec& codec, const void* x, DType dtype,
                                               const std::vector<int64_t>& shape, EncodeStats* stats);
  // As TensorCodec::Decode into out (numel floats).
  absl::Status Decode(const CompressedTensor& tensor, float* out);
  // As TensorCodec::DecodeTyped: numel values of `dtype`, narrowed on the device as FromFloat does.
  absl::Status DecodeTyped(const CompressedTensor& tensor, void* out, DType dtype);
  // As AddCodes (core/code_arith.h): the same sum, blob bytes and validation, computed on the device.
  absl::StatusOr<CompressedTensor> AddCodes(const std::vector<const CompressedTensor*>& codes,
                                            SumValidation* validation);
  // As DotRows (core/inner_product.h): row-wise <decode(a)[r], decode(b)[r]> from the two-sided
  // LUT, kept on the device per codebook (uploaded on first use, charged to the device budget; a
  // LUT over lut_budget_bytes is refused as DotRows refuses it). The results are
  // DotRowsWithDeviceSteps' bit for bit, and DotRows' to double rounding.
  absl::StatusOr<std::vector<double>> DotRows(const CompressedTensor& a, const CompressedTensor& b,
                                              int64_t lut_budget_bytes = kDefaultLutBudgetBytes);
  // out[b * N + n] = <queries[b], decode(weights)[n]> on the codes (weights N x K, queries batch x
  // K floats, host memory), by `method`; returns the method that ran (kAuto's choice). An explicit
  // kDecodeCublas fails when cuBLAS does not load (FAILED_PRECONDITION, saying why) or the decoded
  // weights do not fit the device budget (RESOURCE_EXHAUSTED); kAuto then runs the fused kernel.
  absl::StatusOr<GemmMethod> Gemm(const CompressedTensor& weights, const float* queries, int64_t batch, float* out,
                                  GemmMethod method = GemmMethod::kAuto);
  // The same against codes already on this device (Upload), e.g. a daemon's resident weights:
  // only the queries and the product cross between host and device.
  absl::StatusOr<GemmMethod> Gemm(const CodesOnDevice& weights, const float* queries, int64_t batch, float* out,
                                  GemmMethod method = GemmMethod::kAuto);

 private:
  struct DeviceTables;
  struct Pipeline;
  explicit CudaCodec(CudaDeviceInfo device, void* stream);
  // Encode and EncodeTyped: x holds numel values of x_dtype (widened to float32 on the device unless
  // float32), staged as staging_ says; the blob records `recorded`. A block with NaN/Inf or a
  // rotation overflow, or a chunk capped under CapPolicy::kFail, is re-reported by the CPU codec.
  absl::StatusOr<CompressedTensor> EncodeHost(const TensorCodec& codec, const void* x, DType x_dtype,
                                              const std::vector<int64_t>& shape, DType recorded, EncodeStats* stats);
  // The two staging slots and copy streams of StagingOptions::kPipelined, made on first use.
  absl::StatusOr<Pipeline*> GetPipeline();
  // LaunchDecode of codes into *decoded (rows x cols floats, allocated here) with *work for rotated
  // or padded rows; queued on the stream (the caller keeps both until it has passed).
  absl::Status DecodeOnDevice(const CodesOnDevice& codes, DeviceMemory* decoded, DeviceMemory* work);
  // kDecodeCublas's steps on device buffers: x (batch x cols queries) times the weights decoded
  // into *decoded (and *work, for rotated or padded rows), into product (batch x rows). The
  // scratch is the caller's, to outlive the stream's work.
  absl::Status DecodeThenCublas(const CodesOnDevice& codes, const float* x, int64_t batch, float* product,
                                DeviceMemory* decoded, DeviceMemory* work);
  // cuBLAS on this codec's stream, loaded on first use (once: a failure is kept and returned).
  absl::StatusOr<const Cublas*> LoadCublas();
  // The device copy of a codebook's tables, uploaded on first use and kept per (lattice, q).
  absl::StatusOr<DeviceTables*> TablesFor(const Codebook& codebook);
  using TablesKey = std::tuple<int, int, int>;  // lattice kind, dimension, q

  CudaDeviceInfo device_;
  void* stream_;  // cudaStream_t, kept opaque so this header needs no CUDA include
  std::map<TablesKey, std::unique_ptr<DeviceTables>> tables_;
  std::unique_ptr<Cublas> cublas_;
  absl::Status cublas_status_ = absl::UnknownError("not loaded yet");
  StagingOptions staging_;
  device::KernelPath codec_kernels_ = device::KernelPath::kPerChunk;
  std::unique_ptr<Pipeline> pipeline_;
};

}  // namespace coset
