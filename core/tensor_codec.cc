#include "core/tensor_codec.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstring>
#include <mutex>

#include "absl/strings/str_cat.h"
#include "core/beta_table.h"
#include "core/block_transform.h"
#include "core/status_macros.h"

namespace coset {

TensorCodec::TensorCodec(CodecParams params, std::shared_ptr<const Codebook> codebook)
    : params_(std::move(params)), codebook_(std::move(codebook)) {}

absl::StatusOr<TensorCodec> TensorCodec::Create(const CodecParams& params) {
  COSET_RETURN_IF_ERROR(ValidateParams(params));
  const Lattice& lattice = params.lattice;
  COSET_ASSIGN_OR_RETURN(std::shared_ptr<const Codebook> codebook, Codebook::Get(lattice, params.q));
  CodecParams resolved = params;
  if (resolved.block == 0) resolved.block = std::max(1, kDefaultBlock / lattice.dim()) * lattice.dim();
  if (resolved.beta == 0.0f) resolved.beta = DefaultBeta(lattice, params.q, params.M, params.scale);
  return TensorCodec(std::move(resolved), std::move(codebook));
}

absl::StatusOr<RowCodecContext> TensorCodec::MakeContext(const std::vector<int64_t>& shape) const {
  RowCodecContext ctx;
  COSET_ASSIGN_OR_RETURN(ctx.layout, Layout::Make(params_, shape));
  ctx.codebook = codebook_.get();
  ctx.packing = SymbolPacking(static_cast<uint64_t>(codebook_->num_symbols()), ctx.layout.symbols_per_row);
  ctx.levels = params_.M;
  ctx.block = params_.block;
  ctx.t_max = params_.t_max;
  ctx.scale = params_.scale;
  ctx.on_cap = params_.on_cap;
  ctx.beta = params_.beta;
  ctx.ramp.resize(params_.t_max + 1);
  for (int t = 0; t <= params_.t_max; ++t) {
    ctx.ramp[t] = static_cast<float>(std::exp2(static_cast<double>(params_.alpha) * t));
  }
  if (params_.rotate) ctx.rotation_signs = RotationSigns(params_.seed, params_.block);
  return ctx;
}

absl::StatusOr<CompressedTensor> TensorCodec::Encode(const float* x, const std::vector<int64_t>& shape,
                                                     DType original_dtype, Executor* executor,
                                                     EncodeStats* stats) const {
  CompressedTensor out;
  COSET_RETURN_IF_ERROR(EncodeInto(x, shape, original_dtype, executor, stats, &out));
  return out;
}

absl::Status TensorCodec::EncodeInto(const float* x, const std::vector<int64_t>& shape, DType original_dtype,
                                     Executor* executor, EncodeStats* stats, CompressedTensor* out) const {
  return EncodeRows(x, nullptr, shape, original_dtype, executor, stats, out);
}

absl::Status TensorCodec::EncodeWithFeedback(const Feedback& in, const std::vector<int64_t>& shape, Executor* executor,
                                             EncodeStats* stats, CompressedTensor* out) const {
  return EncodeRows(in.x, &in, shape, DType::kFloat32, executor, stats, out);
}

absl::Status TensorCodec::EncodeRows(const float* x, const Feedback* feedback, const std::vector<int64_t>& shape,
                                     DType original_dtype, Executor* executor, EncodeStats* stats,
                                     CompressedTensor* out_ptr) const {
  CompressedTensor& out = *out_ptr;
  COSET_ASSIGN_OR_RETURN(RowCodecContext ctx, MakeContext(shape));
  const Layout& l = ctx.layout;
  if (feedback != nullptr && (feedback->entries < 0 || feedback->entries > l.numel)) {
    return absl::InvalidArgumentError(
        absl::StrCat("feedback input has ", feedback->entries, " entries for a tensor of ", l.numel));
  }
  if (l.numel > 0 && x == nullptr && (feedback == nullptr || feedback->entries > 0)) {
    return absl::InvalidArgumentError("input pointer is null");
  }
  out.params = params_;
  out.dtype = original_dtype;
  out.shape = shape;
  out.layout = l;
  out.row_bytes = ctx.packing.row_bytes();
  out.scales.resize(params_.scale != ScaleMode::kNone ? l.rows * l.blocks_per_row : 0);
  out.t.resize(l.rows * l.chunks_per_row);
  out.symbols.resize(l.rows * out.row_bytes);

  const RowKernels kernels = GetRowKernels(ActiveSimdLevel(), params_.lattice.kind(), params_.lattice.dim(),
                                           codebook_->q_is_power_of_two(), ctx.packing.bits_per_symbol_if_pow2());
  // No entries (a zero-sized last dimension): nothing to code, however many rows the shape names
  // (billions of empty rows would otherwise take seconds of a daemon thread).
  if (l.numel == 0) {
    if (stats != nullptr) *stats = EncodeStats{};
    return absl::OkStatus();
  }
  std::mutex mu;
  EncodeStats total;
  int64_t first_capped_row = -1, first_capped_chunk = -1, first_nonfinite = -1;
  if (executor == nullptr) executor = InlineExecutor();
  executor->ParallelFor(l.rows, [&](int64_t begin, int64_t end) {
    RowScratch scratch(l);
    EncodeStats local;
    int64_t nonfinite = -1;
    int64_t capped_row = -1, capped_chunk = -1;
    auto Account = [&](int64_t r, const RowEncodeCounts& counts) {
      if (counts.nonfinite_index >= 0 && nonfinite < 0) nonfinite = r * l.cols + counts.nonfinite_index;
      local.first_try_overloads += counts.first_try_overloads;
      local.capped += counts.capped;
      if (counts.first_capped_chunk >= 0 && capped_row < 0) {
        capped_row = r;
        capped_chunk = counts.first_capped_chunk;
      }
    };
    // Error feedback: g in a cache-resident row.
    std::vector<float> g(feedback != nullptr ? l.cols : 0);
    for (int64_t r = begin; r < end; ++r) {
      uint16_t* scales = out.scales.empty() ? nullptr : out.scales.data() + r * l.blocks_per_row;
      uint8_t* t = out.t.data() + r * l.chunks_per_row;
      uint8_t* symbols = out.symbols.data() + r * out.row_bytes;
      if (feedback == nullptr) {
        const RowEncodeCounts counts = kernels.encode(ctx, x + r * l.cols, scales, t, symbols, scratch);
        Account(r, counts);
        continue;
      }
      const int64_t first = r * l.cols;
      const int64_t m = std::clamp<int64_t>(feedback->entries - first, 0, l.cols);
      // Raw pointers: read through the vectors (or the struct) the loops stay scalar.
      // (Rows past `entries` are zeros and touch neither x nor the residual, which may be null.)
      float* gs = g.data();
      const float* xs = m > 0 ? feedback->x + first : nullptr;
      float* rs = m > 0 && feedback->residual != nullptr ? feedback->residual + first : nullptr;
      if (rs != nullptr) {
        for (int64_t i = 0; i < m; ++i) gs[i] = xs[i] + rs[i];
      } else if (m > 0) {
        std::memcpy(gs, xs, sizeof(float) * m);
      }
      std::fill(gs + m, gs + l.cols, 0.0f);
      const RowEncodeCounts counts = kernels.encode(ctx, gs, scales, t, symbols, scratch);
      Account(r, counts);
      if (rs == nullptr || counts.nonfinite_index >= 0) continue;
      // Just encoded, so the symbols are valid; residual = g + (-1) * decoded, as Decode's epilogue.
      kernels.decode_scale_add(ctx, scales, t, symbols, rs, gs, -1.0f, m, scratch);
    }
    std::lock_guard<std::mutex> lock(mu);
    if (nonfinite >= 0 && (first_nonfinite < 0 || nonfinite < first_nonfinite)) first_nonfinite = nonfinite;
    total.first_try_overloads += local.first_try_overloads;
    total.capped += local.capped;
    if (capped_row >= 0 && (first_capped_row < 0 || capped_row < first_capped_row)) {
      first_capped_row = capped_row;
      first_capped_chunk = capped_chunk;
    }
  });
  if (first_nonfinite >= 0) {
    // The entry as encoded: x + residual under feedback (the failing row's residual is untouched).
    float value = x[first_nonfinite];
    if (feedback != nullptr && feedback->residual != nullptr) value += feedback->residual[first_nonfinite];
    const char* what = feedback != nullptr && feedback->residual != nullptr ? "input + residual" : "input";
    if (std::isfinite(value)) {
      return absl::InvalidArgumentError(absl::StrCat(what, "[", first_nonfinite, "] is ", value,
                                                     ": too large to rotate (its block's Hadamard transform "
                                                     "overflows float32); encode without rotation"));
    }
    return absl::InvalidArgumentError(
        absl::StrCat(what, "[", first_nonfinite, "] is ", value, "; NaN and Inf cannot be encoded"));
  }
  total.chunks = l.rows * l.chunks_per_row;
  if (stats != nullptr) *stats = total;
  if (total.capped > 0 && params_.on_cap == CapPolicy::kFail) {
    return absl::OutOfRangeError(absl::StrCat(total.capped, " chunk(s) still overload after t_max (=", params_.t_max,
                                              ") ramp steps; first at row ", first_capped_row, ", entries [",
                                              first_capped_chunk * l.dim, ", ", (first_capped_chunk + 1) * l.dim,
                                              "). Use block scaling (--scale rms), a larger beta or t_max, "
                                              "or the 'zero' cap policy"));
  }
  return absl::OkStatus();
}

absl::Status TensorCodec::CheckConsistent(const CompressedTensor& tensor) {
  COSET_RETURN_IF_ERROR(ValidateParams(tensor.params));
  if (tensor.params.beta <= 0.0f) return absl::InvalidArgumentError("compressed tensor has beta <= 0");
  COSET_ASSIGN_OR_RETURN(Layout l, Layout::Make(tensor.params, tensor.shape));
  const SymbolPacking packing = PackingOf(tensor.params, l);
  const size_t want_scales = tensor.params.scale == ScaleMode::kNone ? 0 : l.rows * l.blocks_per_row;
  if (tensor.scales.size() != want_scales || tensor.t.size() != static_cast<size_t>(l.rows * l.chunks_per_row) ||
      tensor.row_bytes != packing.row_bytes() ||
      tensor.symbols.size() != static_cast<size_t>(l.rows * packing.row_bytes())) {
    return absl::InvalidArgumentError("compressed tensor sections do not match its shape and parameters");
  }
  // One vectorizable pass over T; the offending value is looked up only on failure.
  if (!tensor.t.empty() && *std::max_element(tensor.t.begin(), tensor.t.end()) > tensor.params.t_max) {
    const uint8_t t =
        *std::find_if(tensor.t.begin(), tensor.t.end(), [&](uint8_t v) { return v > tensor.params.t_max; });
    return absl::DataLossError(absl::StrCat("overload counter ", int{t}, " exceeds t_max ", tensor.params.t_max));
  }
  return absl::OkStatus();
}

absl::Status TensorCodec::Decode(const CompressedTensor& tensor, float* out, Executor* executor) const {
  const CompressedTensor* tensors[] = {&tensor};
  return DecodeRows(tensors, 1, out, executor, nullptr);
}

absl::Status TensorCodec::Decode(const CompressedTensor& tensor, float* out, Executor* executor,
                                 const Epilogue& epilogue) const {
  const CompressedTensor* tensors[] = {&tensor};
  return DecodeRows(tensors, 1, out, executor, &epilogue);
}

absl::Status TensorCodec::DecodeSum(const CompressedTensor* const* tensors, int64_t count, float* out,
                                    Executor* executor, const Epilogue& epilogue) const {
  if (count < 1) return absl::InvalidArgumentError("nothing to sum: no tensors");
  return DecodeRows(tensors, count, out, executor, &epilogue);
}

absl::Status TensorCodec::DecodeRows(const CompressedTensor* const* tensors, int64_t count, float* out,
                                     Executor* executor, const Epilogue* epilogue) const {
  // Per-tensor parameters (beta, alpha, block, scale, rotation) come from each tensor itself.
  std::vector<RowCodecContext> contexts;
  contexts.reserve(count);
  for (int64_t k = 0; k < count; ++k) {
    const CompressedTensor& tensor = *tensors[k];
    COSET_RETURN_IF_ERROR(CheckConsistent(tensor));
    const CodecParams& p = tensor.params;
    if (p.lattice != params_.lattice || p.q != params_.q || p.M != params_.M) {
      return absl::InvalidArgumentError(absl::StrCat("tensor was coded with ", p.lattice.name(), " q=", p.q, " M=", p.M,
                                                     ", this codec is ", params_.lattice.name(), " q=", params_.q,
                                                     " M=", params_.M));
    }
    if (tensor.shape != tensors[0]->shape) {
      return absl::InvalidArgumentError("tensors summed in one decode must have the same shape");
    }
    TensorCodec view(p, codebook_);
    COSET_ASSIGN_OR_RETURN(RowCodecContext ctx, view.MakeContext(tensor.shape));
    contexts.push_back(std::move(ctx));
  }
  const Layout& l = contexts[0].layout;
  const int64_t entries = epilogue != nullptr && epilogue->entries >= 0 ? epilogue->entries : l.numel;
  if (entries > l.numel) {
    return absl::InvalidArgumentError(absl::StrCat("epilogue of ", entries, " entries for a tensor of ", l.numel));
  }
  if (entries > 0 && out == nullptr) return absl::InvalidArgumentError("output pointer is null");
  // (An epilogue's output is written with the fused kernel's plain stores, and a sum reads it back
  // term by term: never streamed.)
  contexts[0].stream_output =
      epilogue == nullptr && l.numel * static_cast<int64_t>(sizeof(float)) >= kStreamingOutputBytes;
  const RowKernels kernels =
      GetRowKernels(ActiveSimdLevel(), params_.lattice.kind(), params_.lattice.dim(), codebook_->q_is_power_of_two(),
                    contexts[0].packing.bits_per_symbol_if_pow2());
  if (entries == 0) return absl::OkStatus();  // nothing to write, however many empty rows
  std::atomic<int64_t> bad_row{-1};
  if (executor == nullptr) executor = InlineExecutor();
  // Rows past `entries` are not decoded at all; the last one kept may be cut.
  executor->ParallelFor((entries + l.cols - 1) / l.cols, [&](int64_t begin, int64_t end) {
    RowScratch scratch(l);
    for (int64_t r = begin; r < end; ++r) {
      float* o = out + r * l.cols;
      const int64_t m = std::min(l.cols, entries - r * l.cols);
      // Tensor by tensor within the row: a sum's partial row stays in cache.
      for (int64_t k = 0; k < count; ++k) {
        const CompressedTensor& tensor = *tensors[k];
        const uint16_t* scales = tensor.scales.empty() ? nullptr : tensor.scales.data() + r * l.blocks_per_row;
        const uint8_t* t = tensor.t.data() + r * l.chunks_per_row;
        const uint8_t* symbols = tensor.symbols.data() + r * tensor.row_bytes;
        // A sum's later terms add onto the partial row (the epilogue's base is for the first).
        const float* b = o;
        if (k == 0) b = epilogue == nullptr || epilogue->base == nullptr ? nullptr : epilogue->base + r * l.cols;
        const bool ok = epilogue == nullptr ? kernels.decode(contexts[k], scales, t, symbols, o, scratch)
                                            : kernels.decode_scale_add(contexts[k], scales, t, symbols, o, b,
                                                                       epilogue->scale, m, scratch);
        if (!ok) {
          int64_t expected = -1;
          bad_row.compare_exchange_strong(expected, r);
          break;
        }
      }
    }
  });
  if (bad_row.load() >= 0) {
    return absl::DataLossError(absl::StrCat("packed symbols of row ", bad_row.load(), " are invalid (corrupt data)"));
  }
  return absl::OkStatus();
}

absl::Status DecodeTensor(const CompressedTensor& tensor, float* out, Executor* executor) {
  COSET_ASSIGN_OR_RETURN(TensorCodec codec, TensorCodec::Create(tensor.params));
  return codec.Decode(tensor, out, executor);
}

SymbolPacking PackingOf(const CodecParams& params, const Layout& layout) {
  int64_t alphabet = 1;
  for (int i = 0; i < params.lattice.symbol_dim(); ++i) alphabet *= params.q;
  return SymbolPacking(static_cast<uint64_t>(alphabet), layout.symbols_per_row);
}

bool UnpackRowSymbols(const CompressedTensor& tensor, int64_t row, uint32_t* symbols) {
  return PackingOf(tensor.params, tensor.layout).UnpackRow(tensor.symbols.data() + row * tensor.row_bytes, symbols);
}

float RampFactor(const CodecParams& params, int t) {
  // The same float as RowCodecContext::ramp, so results match the decoder's steps bit for bit.
  return static_cast<float>(std::exp2(static_cast<double>(params.alpha) * t));
}

float BlockBase(const CompressedTensor& tensor, int64_t row, int64_t block) {
  const float scale = tensor.params.scale == ScaleMode::kNone
                          ? 1.0f
                          : Bf16ToFloat(tensor.scales[row * tensor.layout.blocks_per_row + block]);
  const float base = scale * tensor.params.beta;
  return base >= kMinStep ? base : 0.0f;
}

float ChunkStep(const CompressedTensor& tensor, int64_t row, int64_t chunk) {
  const int64_t block = chunk * tensor.layout.dim / tensor.params.block;
  return BlockBase(tensor, row, block) *
         RampFactor(tensor.params, tensor.t[row * tensor.layout.chunks_per_row + chunk]);
}

double NominalBitsPerEntry(const CompressedTensor& tensor, const OverloadSummary& summary) {
  return tensor.params.M * std::log2(static_cast<double>(tensor.params.q)) + summary.entropy_bits / tensor.layout.dim;
}

OverloadSummary SummarizeOverloads(const CompressedTensor& tensor) {
  OverloadSummary s;
  s.histogram.assign(tensor.params.t_max + 1, 0);
  for (uint8_t t : tensor.t) {
    if (t < s.histogram.size()) ++s.histogram[t];
  }
  const double n = static_cast<double>(tensor.t.size());
  if (n > 0) {
    for (int64_t c : s.histogram) {
      if (c > 0) s.entropy_bits -= (c / n) * std::log2(c / n);
    }
    s.first_try_overload_rate = (n - s.histogram[0]) / n;
  }
  return s;
}

}  // namespace coset
