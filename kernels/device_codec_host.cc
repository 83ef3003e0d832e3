#include "kernels/device_codec_host.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "core/status_macros.h"

namespace coset {
namespace device {

static_assert(kLatticeZ == static_cast<uint8_t>(LatticeKind::kZ) &&
                  kLatticeA2 == static_cast<uint8_t>(LatticeKind::kA2) &&
                  kLatticeD == static_cast<uint8_t>(LatticeKind::kD) &&
                  kLatticeE8 == static_cast<uint8_t>(LatticeKind::kE8),
              "device lattice numbers follow LatticeKind");
static_assert(kScaleNone == static_cast<uint8_t>(ScaleMode::kNone) &&
                  kScaleRms == static_cast<uint8_t>(ScaleMode::kRms) &&
                  kScaleAbsMax == static_cast<uint8_t>(ScaleMode::kAbsMax),
              "device scale numbers follow ScaleMode");

DeviceCodec DeviceCodecPlan::view() const {
  const RowCodecContext& ctx = context;
  const Layout& l = ctx.layout;
  DeviceCodec c;
  c.codebook = ctx.codebook->view();
  c.lattice = static_cast<uint8_t>(params.lattice.kind());
  c.scale = static_cast<uint8_t>(params.scale);
  c.q_pow2 = ctx.codebook->q_is_power_of_two();
  c.dim = l.dim;
  c.levels = ctx.levels;
  c.block = ctx.block;
  c.t_max = ctx.t_max;
  c.beta = ctx.beta;
  c.ramp = ctx.ramp.data();
  c.rotation_signs = ctx.rotation_signs.empty() ? nullptr : ctx.rotation_signs.data();
  c.rows = l.rows;
  c.cols = l.cols;
  c.padded_cols = l.padded_cols;
  c.blocks_per_row = l.blocks_per_row;
  c.chunks_per_row = l.chunks_per_row;
  c.symbols_per_chunk = l.symbols_per_chunk;
  return c;
}

absl::StatusOr<DeviceCodecPlan> MakePlan(const TensorCodec& codec, const std::vector<int64_t>& shape) {
  DeviceCodecPlan plan;
  COSET_ASSIGN_OR_RETURN(plan.context, codec.MakeContext(shape));
  plan.params = codec.params();
  return plan;
}

CompressedTensor AssembleTensor(const DeviceCodecPlan& plan, DType dtype, std::vector<uint16_t> scales,
                                std::vector<uint8_t> t, const std::vector<uint32_t>& symbols) {
  const Layout& l = plan.context.layout;
  CompressedTensor out;
  out.params = plan.params;
  out.dtype = dtype;
  out.layout = l;
  out.row_bytes = plan.context.packing.row_bytes();
  if (plan.params.scale == ScaleMode::kNone) scales.clear();
  out.scales = std::move(scales);
  out.t = std::move(t);
  out.symbols.resize(l.rows * out.row_bytes);
  for (int64_t r = 0; r < l.rows; ++r) {
    plan.context.packing.PackRow(symbols.data() + r * l.symbols_per_row, out.symbols.data() + r * out.row_bytes);
  }
  return out;
}

absl::StatusOr<std::vector<uint32_t>> UnpackedSymbols(const CompressedTensor& tensor) {
  COSET_RETURN_IF_ERROR(TensorCodec::CheckConsistent(tensor));
  const Layout& l = tensor.layout;
  std::vector<uint32_t> symbols(l.rows * l.symbols_per_row);
  for (int64_t r = 0; r < l.rows; ++r) {
    if (!UnpackRowSymbols(tensor, r, symbols.data() + r * l.symbols_per_row)) {
      return absl::DataLossError(absl::StrCat("packed symbols of row ", r, " are invalid (corrupt data)"));
    }
  }
  return symbols;
}

absl::StatusOr<CompressedTensor> EncodeWithDeviceSteps(const TensorCodec& codec, const float* x,
                                                       const std::vector<int64_t>& shape, DType dtype,
                                                       EncodeStats* stats) {
  COSET_ASSIGN_OR_RETURN(DeviceCodecPlan plan, MakePlan(codec, shape));
  const DeviceCodec c = plan.view();
  const Layout& l = plan.context.layout;
  std::vector<float> work(l.rows * l.padded_cols);
  std::vector<uint16_t> scales(l.rows * l.blocks_per_row);
  std::vector<float> base(l.rows * l.blocks_per_row);
  std::vector<uint8_t> t(l.rows * l.chunks_per_row);
  std::vector<uint32_t> symbols(l.rows * l.symbols_per_row);
  bool refused = false;
  EncodeStats counts;
  for (int64_t r = 0; r < l.rows && l.numel > 0; ++r) {
    for (int64_t b = 0; b < l.blocks_per_row; ++b) {
      refused |= !PrepareBlock(c, x + r * l.cols, b, work.data() + r * l.padded_cols,
                               scales.data() + r * l.blocks_per_row, base.data() + r * l.blocks_per_row);
    }
  }
  for (int64_t r = 0; r < l.rows && l.numel > 0 && !refused; ++r) {
    for (int64_t chunk = 0; chunk < l.chunks_per_row; ++chunk) {
      const int t_chunk = EncodeChunkAt(c, work.data() + r * l.padded_cols, base.data() + r * l.blocks_per_row, chunk,
                                        symbols.data() + r * l.symbols_per_row, t.data() + r * l.chunks_per_row);
      counts.first_try_overloads += t_chunk != 0;
      counts.capped += t_chunk < 0;
    }
  }
  if (refused || (counts.capped > 0 && plan.params.on_cap == CapPolicy::kFail)) {
    // The CPU codec names the entry or the chunk (and cannot succeed where these steps refused).
    COSET_RETURN_IF_ERROR(codec.Encode(x, shape, dtype).status());
    return absl::InternalError("the device steps refused an input that the CPU codec encodes");
  }
  counts.chunks = l.rows * l.chunks_per_row;
  if (stats != nullptr) *stats = counts;
  CompressedTensor out = AssembleTensor(plan, dtype, std::move(scales), std::move(t), symbols);
  out.shape = shape;
  return out;
}

absl::Status DecodeWithDeviceSteps(const CompressedTensor& tensor, float* out) {
  COSET_ASSIGN_OR_RETURN(std::vector<uint32_t> symbols, UnpackedSymbols(tensor));
  COSET_ASSIGN_OR_RETURN(TensorCodec codec, TensorCodec::Create(tensor.params));
  COSET_ASSIGN_OR_RETURN(DeviceCodecPlan plan, MakePlan(codec, tensor.shape));
  const DeviceCodec c = plan.view();
  const Layout& l = tensor.layout;
  for (int64_t r = 0; r < l.rows; ++r) {
    const uint8_t* t = tensor.t.data() + r * l.chunks_per_row;
    for (int64_t chunk = 0; chunk < l.chunks_per_row; ++chunk) {
      if (t[chunk] > c.t_max) return absl::DataLossError("a chunk's T exceeds t_max (corrupt data)");
    }
  }
  std::vector<float> work(l.padded_cols);
  for (int64_t r = 0; r < l.rows && l.numel > 0; ++r) {
    const uint16_t* scales = tensor.scales.empty() ? nullptr : tensor.scales.data() + r * l.blocks_per_row;
    for (int64_t chunk = 0; chunk < l.chunks_per_row; ++chunk) {
      DecodeChunkAt(c, scales, tensor.t.data() + r * l.chunks_per_row, symbols.data() + r * l.symbols_per_row, chunk,
                    work.data());
    }
    for (int64_t b = 0; b < l.blocks_per_row; ++b) FinishDecodedBlock(c, work.data(), b, out + r * l.cols);
  }
  return absl::OkStatus();
}

}  // namespace device
}  // namespace coset
