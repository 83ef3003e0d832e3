// The host half of the device codec (device_codec.h): the plan that a tensor's DeviceCodec is made
// from, the packing of the kernels' symbols into a CompressedTensor (and back), and a sequential
// host run of exactly the kernels' per-block and per-chunk steps. That run is what the CPU tests
// compare with TensorCodec in every CI run; the CUDA kernels (cuda_codec.h) map the same calls to
// threads.
#pragma once

#include <cstdint>
#include <vector>

#include "absl/status/statusor.h"
#include "core/tensor_codec.h"
#include "kernels/device_codec.h"

namespace coset {
namespace device {

// A DeviceCodec for one tensor shape, with the host tables its pointers refer to.
struct DeviceCodecPlan {
  RowCodecContext context;  // layout, packing, ramp, rotation signs (TensorCodec::MakeContext)
  CodecParams params;       // resolved (beta set)
  // Points at the host tables of `context` and the codebook. Re-point ramp, rotation_signs and the
  // codebook to device copies before a kernel reads it. Do not copy a plan (view() re-points).
  DeviceCodec view() const;
};

absl::StatusOr<DeviceCodecPlan> MakePlan(const TensorCodec& codec, const std::vector<int64_t>& shape);

// The kernels' output (scales, t, one uint32 per symbol) as a CompressedTensor of the plan.
CompressedTensor AssembleTensor(const DeviceCodecPlan& plan, DType dtype, std::vector<uint16_t> scales,
                                std::vector<uint8_t> t, const std::vector<uint32_t>& symbols);

// A coded tensor's symbols, one uint32 each, as the decode kernels read them; DATA_LOSS when the
// packed bytes are corrupt.
absl::StatusOr<std::vector<uint32_t>> UnpackedSymbols(const CompressedTensor& tensor);

// Encode and decode through the device steps, run sequentially on the host. Failures (NaN/Inf,
// a rotation overflow, chunks capped under CapPolicy::kFail) are reported by the CPU codec on the
// same input, so the message is the CPU's word for word.
absl::StatusOr<CompressedTensor> EncodeWithDeviceSteps(const TensorCodec& codec, const float* x,
                                                       const std::vector<int64_t>& shape, DType dtype,
                                                       EncodeStats* stats);
absl::Status DecodeWithDeviceSteps(const CompressedTensor& tensor, float* out);

}  // namespace device
}  // namespace coset
