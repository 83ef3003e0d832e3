// The host half of the device codec (device_codec.h): the plan that a tensor's DeviceCodec is made
// from, the packing of the kernels' symbols into a CompressedTensor (and back), and a sequential
// host run of exactly the kernels' per-block and per-chunk steps. That run is what the CPU tests
// compare with TensorCodec in every CI run; the CUDA kernels (cuda_codec.h) map the same calls to
// threads.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <vector>

#include "absl/status/statusor.h"
#include "core/code_arith.h"
#include "core/tensor_codec.h"
#include "kernels/device_codec.h"

namespace coset {
namespace device {

// A DeviceCodec for one tensor shape, with the host tables its pointers refer to.
struct DeviceCodecPlan {
  RowCodecContext context;                   // layout, packing, ramp, rotation signs (TensorCodec::MakeContext)
  CodecParams params;                        // resolved (beta set)
  std::shared_ptr<const Codebook> codebook;  // what context.codebook points to, kept alive
  // Points at the host tables of `context` and the codebook (taken when called). Re-point ramp,
  // rotation_signs and the codebook to device copies before a kernel reads it.
  DeviceCodec view() const;
  // DeviceCodec::symbol_bytes: 1 or 2 where the blob's packed rows are whole-byte symbols, else 4.
  int symbol_bytes() const;
  // At d = 4, the codebook's PackedPointTable where its Horner sum over the code's levels fits in
  // bytes (PackedBias), else empty; view() points DeviceCodec::packed_points at it.
  std::vector<uint32_t> packed_points;
  int packed_bias = 0;
};

// The packed paths' table (device_codec.h, PackedApplies; at d = 8 the run decode's): per symbol
// of a codebook of chunks of 4 coordinates with at most 256 symbols (D4 at q = 4), or of 8 with at
// most 65536 (E8 and D8 at q = 4: two words, coordinates 0..3 first), 2 rep(b) + bias_1 in a byte
// per coordinate (coordinate i in byte i % 4), bias_1 = max |2 rep(b)|; empty for other codebooks.
std::vector<uint32_t> PackedPointTable(const Codebook& codebook);
// The offset of a `levels`-level Horner sum of those words, bias_1 (1 + q + ... + q^(levels - 1)),
// when its bytes stay within 0..255 (twice the offset at most), else nothing.
std::optional<int> PackedBias(const Codebook& codebook, int levels);

absl::StatusOr<DeviceCodecPlan> MakePlan(const TensorCodec& codec, const std::vector<int64_t>& shape);

// Bytes of the kernels' symbol buffer for the plan's tensor (symbol_bytes per symbol).
int64_t SymbolBufferBytes(const DeviceCodecPlan& plan);

// The blob's packed symbol rows from the kernels' symbol buffer (the buffer itself where symbols
// are whole bytes).
std::vector<uint8_t> PackKernelSymbols(const DeviceCodecPlan& plan, std::vector<uint8_t> symbols);

// The kernels' output (scales, t, the symbol buffer) as a CompressedTensor of the plan.
CompressedTensor AssembleTensor(const DeviceCodecPlan& plan, DType dtype, std::vector<uint16_t> scales,
                                std::vector<uint8_t> t, std::vector<uint8_t> symbols);

// A coded tensor ready for the decode and GEMM kernels, after the checks the blob reader makes
// (TensorCodec::CheckConsistent: sizes, T <= t_max; and valid packed symbols):
// its plan, and its symbols as the kernels read them (the packed rows themselves for whole-byte
// symbols, else one uint32 per symbol).
struct CodedForKernels {
  DeviceCodecPlan plan;
  std::vector<uint8_t> symbols;
};
absl::StatusOr<CodedForKernels> PrepareCoded(const CompressedTensor& tensor);

// The end of an encode by the device steps (here or on a GPU): OK when its codes stand, else the
// CPU codec's own error for the same input (it names the entry or the chunk). refused: a block
// had NaN/Inf or a rotation overflow; capped: chunks still overloaded at t_max.
absl::Status CheckDeviceEncode(const TensorCodec& codec, const float* x, const std::vector<int64_t>& shape, DType dtype,
                               bool refused, int64_t capped);

// The tensor's blocks in order, in slices of blocks_per_slice (the last may be shorter; 0: one
// slice of them all; none for an empty tensor): how a pipelined encode or decode walks them.
std::vector<BlockSlice> SliceBlocks(const DeviceCodec& c, int64_t blocks_per_slice);

// Encode and decode through the device steps, run sequentially on the host, slice by slice
// (SliceBlocks) as the kernels' launches take them, with the steps of the kernels LaunchEncode and
// LaunchDecode pick for `path` (per chunk, or per run where RunsApply). Failures (NaN/Inf, a
// rotation overflow, chunks capped under CapPolicy::kFail) are reported by the CPU codec on the
// same input, so the message is the CPU's word for word.
absl::StatusOr<CompressedTensor> EncodeWithDeviceSteps(const TensorCodec& codec, const float* x,
                                                       const std::vector<int64_t>& shape, DType dtype,
                                                       EncodeStats* stats, int64_t blocks_per_slice = 0,
                                                       KernelPath path = KernelPath::kPerChunk);
absl::Status DecodeWithDeviceSteps(const CompressedTensor& tensor, float* out, int64_t blocks_per_slice = 0,
                                   KernelPath path = KernelPath::kPerChunk);
// AddCodes' inputs, checked as AddCodes checks them (CheckAddable) and prepared for the kernels
// (PrepareCoded), in order: what every device AddCodes starts from.
absl::StatusOr<std::vector<CodedForKernels>> PrepareAddends(const std::vector<const CompressedTensor*>& codes);
// AddCodes (core/code_arith.h) through the device steps (AddChunkCodes per chunk): the same sum,
// blob and validation, the same refusals (CheckAddable).
absl::StatusOr<CompressedTensor> AddCodesWithDeviceSteps(const std::vector<const CompressedTensor*>& codes,
                                                         SumValidation* validation = nullptr);
// The end of a device AddCodes: the first code with the kernels' sum symbols, and the validation
// (when asked for) from inexact, one byte per chunk.
CompressedTensor FinishAddCodes(const CompressedTensor& first, const DeviceCodecPlan& plan,
                                std::vector<uint8_t> symbols, std::vector<uint8_t> inexact, SumValidation* validation);

// DotRows (core/inner_product.h) through the device steps: the same checks and refusals (a
// two-sided LUT over lut_budget_bytes is refused), and per row the kernel's lanes (chunk c to lane
// c % 32, ChunkPairDot) and shuffle tree, so the results are LaunchDotRows' bit for bit. They agree
// with DotRows to double rounding (it scales sums per block and T pair; these, per chunk).
absl::StatusOr<std::vector<double>> DotRowsWithDeviceSteps(const CompressedTensor& a, const CompressedTensor& b,
                                                           int64_t lut_budget_bytes = kDefaultLutBudgetBytes);

// Two-bit T (CompactOverloads) from a coded tensor's T bytes, rows of chunks_per_row: what the
// packed GEMM reads instead of them (built once, on the host, when weights cross to a device).
struct CompactOverloadsOnHost {
  std::vector<uint32_t> words, escape_begin, escapes;
  CompactOverloads view() const { return {words.data(), escape_begin.data(), escapes.data()}; }
  int64_t bytes() const { return 4 * static_cast<int64_t>(words.size() + escape_begin.size() + escapes.size()); }
};
CompactOverloadsOnHost BuildCompactOverloads(const DeviceCodec& c, const uint8_t* t);

// The half points of a codebook of chunks of 8 coordinates (HalfPointCodes' table) where its
// points' halves number at most kHalfPointEntries, rebuild its rep_point floats bit for bit
// (doubled coordinates in int8) and two levels of them sum within bytes (HalfPointX2), for q a
// power of two (the run path's codes), else empty: kHalfPointEntries table words (the kernels
// stage them all), the first `used` of them the halves in order of first use (bytes 2 x + bias,
// bias = max |2 x|), the rest 0; and per symbol its pair left | right << kHalfIndexBits.
struct HalfPointsOnHost {
  std::vector<uint32_t> table, pair_of_symbol;
  int used = 0, bias = 0;
};
HalfPointsOnHost HalfPointTable(const Codebook& codebook);

// A coded tensor's half-point indices (HalfPointCodes' head and tail) from its 16-bit symbols (the
// kernels' symbol buffer) and the codebook's pairs: what the run path's GEMM reads instead of the
// symbols at d = 8 (built once, on the host, when weights cross to a device). c satisfies
// HalvesApply and halves is its codebook's non-empty HalfPointTable.
struct HalfPointCodesOnHost {
  std::vector<uint32_t> head, tail;
  HalfPointCodes view(const uint32_t* table, int bias) const { return {table, bias, head.data(), tail.data()}; }
};
HalfPointCodesOnHost BuildHalfPointCodes(const DeviceCodec& c, const uint8_t* symbols, const HalfPointsOnHost& halves);

// GEMM on codes through the device steps: out[b * rows + n] = <queries[b], decode(weights)[n]>,
// queries batch x cols floats, through the kernel LaunchGemm picks for `path` (given two-bit T
// where CompactOverloadsApply and half points where HalvesApply, as CudaCodec::Gemm gives them).
// The run path is mirrored lane by lane and through the kernel's shuffle tree, so its results are
// the GPU's bit for bit; the per-chunk path sums chunk after chunk (the GPU adds its lanes' partial
// sums in a tree), so there the results agree with the GPU's to float rounding, not bit for bit.
absl::Status GemmWithDeviceSteps(const CompressedTensor& weights, const float* queries, int64_t batch, float* out,
                                 KernelPath path = KernelPath::kPerChunk);

}  // namespace device
}  // namespace coset
