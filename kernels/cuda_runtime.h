// The host side of the GPU codec: whether a CUDA device is usable (and why not), and CudaCodec,
// which stages host tensors through device memory and runs the kernels of cuda_codec.h on one
// device and stream. Every binary links the static CUDA runtime, so all of this compiles and runs
// on machines without a GPU or a driver: the probe then says which is missing.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "core/tensor_codec.h"

namespace coset {

struct CudaDeviceInfo {
  int index = 0;
  std::string name;
  int compute_major = 0, compute_minor = 0;
  int64_t total_memory_bytes = 0;
  int driver_version = 0;   // e.g. 13000
  int runtime_version = 0;  // the CUDA runtime linked in
};

// Device `index` if it can serve, else FAILED_PRECONDITION saying why: "no CUDA driver", "no
// CUDA device", "CUDA device N does not exist (K found)", or the runtime's own words.
absl::StatusOr<CudaDeviceInfo> ProbeCudaDevice(int index);

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

  // As TensorCodec::Encode (errors in the CPU codec's words: the input is re-checked there).
  absl::StatusOr<CompressedTensor> Encode(const TensorCodec& codec, const float* x, const std::vector<int64_t>& shape,
                                          DType dtype, EncodeStats* stats);
  // As TensorCodec::Decode into out (numel floats).
  absl::Status Decode(const CompressedTensor& tensor, float* out);

 private:
  struct DeviceTables;
  explicit CudaCodec(CudaDeviceInfo device, void* stream);
  // The device copy of a codebook's tables, uploaded on first use.
  absl::StatusOr<const DeviceTables*> TablesFor(const Codebook& codebook);

  CudaDeviceInfo device_;
  void* stream_;  // cudaStream_t, kept opaque so this header needs no CUDA include
  std::map<const Codebook*, std::unique_ptr<DeviceTables>> tables_;
  std::vector<std::shared_ptr<const Codebook>> held_;  // keeps the keys of tables_ alive
};

}  // namespace coset
