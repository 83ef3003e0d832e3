// The backend seam: the operations every front end needs (cosetctl, the torch ops, the DDP hook),
// written once against this interface and served by one of its implementations:
//   - CpuBackend (core/cpu_backend.h): the embedded codec on this process's CPU threads;
//   - DaemonBackend (client/daemon_backend.h): the same operations through cosetd (gRPC + shared
//     memory), bit-exact with the CPU backend;
//   - CudaBackend (kernels/cuda_backend.h): encode, decode, quantize and GEMM on a CUDA device, with
//     host buffers staged through device memory (memory() is kHost); a backend on device memory
//     for CUDA tensors comes with the torch extension's CUDA path.
// MockBackend (tests/core/mock_backend.h) is its gmock twin for unit tests of the front ends.
//
// Buffers and ownership. Every pointer argument is owned by the caller and must stay valid until
// the call returns; no backend keeps a pointer after returning. Float tensors (x, out, queries)
// live in the memory named by memory(): host memory for the CPU and daemon backends, device memory
// of the backend's device for a CUDA backend. Blobs (the .coset format, core/FORMAT.md) are always
// host bytes: they are what is stored and sent. Output buffers are sized by the caller: decode's
// from the blob header (PeekHeader in core/format.h), GEMM's from the weights' rows and the batch.
//
// Where the work runs. A backend is bound at construction to its execution resources: the CPU
// backend to an Executor (core/executor.h), the daemon backend to a client connection, a CUDA
// backend to a device and stream. Every call is synchronous: when it returns, outputs are written
// (a CUDA backend synchronizes its own stream before returning, never the whole device).
// Backends are thread-compatible: give each thread its own, or serialize calls.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "core/dtype.h"
#include "core/format.h"
#include "core/params.h"
#include "core/status_macros.h"
#include "core/tensor_codec.h"

namespace coset {

enum class MemoryKind { kHost, kDevice };

using BlobView = absl::Span<const uint8_t>;

struct EncodeResult {
  std::vector<uint8_t> blob;
  EncodeStats stats;
};

struct AddCodesResult {
  std::vector<uint8_t> blob;
  int64_t chunks = 0;
  int64_t inexact_chunks = 0;  // filled when validation was asked for
};

struct BackendInfo {
  std::string name;         // "cpu", "daemon", "cuda"
  std::string description;  // e.g. "avx2, 2 threads" or the daemon's address and version
  std::vector<std::pair<std::string, std::string>> details;  // key/value facts for `cosetctl info`
};

class Backend {
 public:
  virtual ~Backend() = default;

  virtual MemoryKind memory() const = 0;
  virtual absl::StatusOr<BackendInfo> Info() = 0;
  // OK when the backend can serve (always for CPU; a daemon's health check).
  virtual absl::Status Health() = 0;

  // Encodes x (shape as given, numel floats, row-major) with params. original_dtype is recorded
  // in the blob (decode returns it). Fails like TensorCodec::Encode.
  virtual absl::StatusOr<EncodeResult> Encode(const float* x, const std::vector<int64_t>& shape,
                                              const CodecParams& params, DType original_dtype) = 0;
  // Decodes a blob into out: numel floats (numel from the blob header).
  virtual absl::Status Decode(BlobView blob, float* out) = 0;
  // Encode and Decode on values of any dtype (core/dtype.h): x holds numel values of `dtype`, which
  // the blob records; out receives numel values of `dtype` (aligned to its size). These defaults
  // convert through a float32 copy; the CPU backend converts row by row in cache and the daemon
  // backend sends and receives the values in their own dtype.
  virtual absl::StatusOr<EncodeResult> EncodeTyped(const void* x, DType dtype, const std::vector<int64_t>& shape,
                                                   const CodecParams& params);
  virtual absl::Status DecodeTyped(BlobView blob, void* out, DType dtype);
  // decode(encode(x)) into out (numel floats, x's shape).
  virtual absl::Status Quantize(const float* x, const std::vector<int64_t>& shape, const CodecParams& params,
                                float* out) = 0;
  // out[b, n] = <queries[b], decode(weights)[n]>, computed on the codes. queries: batch x K floats;
  // out: batch x N floats. Returns the kernel path taken ("int8-lanes", "one-sided-lut").
  virtual absl::StatusOr<std::string> Gemm(BlobView weights, const float* queries, int64_t batch, float* out) = 0;
  // Row-wise <decode(a)[r], decode(b)[r]> on the codes (two-sided LUT within lut_budget_bytes).
  virtual absl::StatusOr<std::vector<double>> DotRows(BlobView a, BlobView b, int64_t lut_budget_bytes) = 0;
  // Compressed-domain sum of codes that share scales (core/code_arith.h).
  virtual absl::StatusOr<AddCodesResult> AddCodes(const std::vector<BlobView>& blobs, bool validate) = 0;
};

inline absl::StatusOr<EncodeResult> Backend::EncodeTyped(const void* x, DType dtype, const std::vector<int64_t>& shape,
                                                         const CodecParams& params) {
  if (dtype == DType::kFloat32) return Encode(static_cast<const float*>(x), shape, params, dtype);
  COSET_ASSIGN_OR_RETURN(const int64_t numel, CheckedNumel(shape));
  std::vector<float> wide(static_cast<size_t>(numel));
  ToFloat(x, dtype, numel, wide.data());
  return Encode(wide.data(), shape, params, dtype);
}

inline absl::Status Backend::DecodeTyped(BlobView blob, void* out, DType dtype) {
  if (dtype == DType::kFloat32) return Decode(blob, static_cast<float*>(out));
  COSET_ASSIGN_OR_RETURN(const BlobHeader header, PeekHeader(blob.data(), blob.size()));
  std::vector<float> wide(static_cast<size_t>(header.numel));
  COSET_RETURN_IF_ERROR(Decode(blob, wide.data()));
  FromFloat(wide.data(), header.numel, dtype, out);
  return absl::OkStatus();
}

}  // namespace coset
