#include "core/tensor_codec.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstring>
#include <limits>
#include <mutex>

#include "absl/strings/str_cat.h"
#include "core/beta_table.h"
#include "core/block_transform.h"
#include "core/dtype.h"
#include "core/range_coder.h"
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
  // A block's entries (rotated or not) are at most sqrt(entries) times its RMS and at most its
  // absolute maximum, and the stored bf16 scale is within 2^-8 of either; the ramp only widens the
  // step (alpha > 0). So, with a factor 2 to spare, |x / step| < 2 peak / beta. Without block
  // scales nothing bounds x.
  const double peak = params_.scale == ScaleMode::kRms      ? std::sqrt(static_cast<double>(params_.block))
                      : params_.scale == ScaleMode::kAbsMax ? 1.0
                                                            : HUGE_VAL;
  ctx.clamp_chunk_coordinates = !(2.0 * peak < kMaxChunkCoordinate * static_cast<double>(params_.beta));
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
  return EncodeRows(x, DType::kFloat32, nullptr, shape, original_dtype, executor, stats, out);
}

absl::Status TensorCodec::EncodeTypedInto(const void* x, DType dtype, const std::vector<int64_t>& shape,
                                          Executor* executor, EncodeStats* stats, CompressedTensor* out) const {
  return EncodeRows(x, dtype, nullptr, shape, dtype, executor, stats, out);
}

namespace {

// Row r's block scales of a coded tensor (null without scales).
const uint16_t* RowScales(const CompressedTensorView& tensor, const Layout& l, int64_t r) {
  return tensor.scales.empty() ? nullptr : tensor.scales.data() + r * l.blocks_per_row;
}

// Row r (its first m entries) of (...((base + s * d_0) + s * d_1) ...) + s * d_{count-1} into out,
// tensor by tensor within the row, so that a sum's partial row stays in cache; base applies to the
// first term (null: 0). False when a tensor's packed symbols are invalid.
bool DecodeSumRow(const RowKernels& kernels, const std::vector<RowCodecContext>& contexts,
                  const CompressedTensorView* tensors, int64_t count, int64_t r, const float* base, float s, int64_t m,
                  float* out, RowScratch& scratch) {
  for (int64_t k = 0; k < count; ++k) {
    const CompressedTensorView& tensor = tensors[k];
    const Layout& l = contexts[k].layout;
    if (!kernels.decode_scale_add(contexts[k], RowScales(tensor, l, r), tensor.t.data() + r * l.chunks_per_row,
                                  tensor.symbols.data() + r * tensor.row_bytes, out, k == 0 ? base : out, s, m,
                                  scratch)) {
      return false;
    }
  }
  return true;
}

// Whether s * (d_0 + ... + d_{count-1}) can be decoded row by row straight into an encode (see
// Feedback): every stored symbol value is valid (symbols stored as whole bytes or shorts, so no
// decode can fail part-way) and no sum can leave float's range, from a bound on each term's
// decoded entries: max block scale x beta x the largest ramp factor x the largest coordinate of a
// lattice point of M levels (x sqrt(block) under rotation). Terms must be consistent
// (TermContexts).
bool TermsSumIsSafe(const CompressedTensorView* terms, const std::vector<RowCodecContext>& contexts, int64_t count,
                    float s, float max_abs_rep_point) {
  double bound = 0.0;
  for (int64_t k = 0; k < count; ++k) {
    const CompressedTensorView& t = terms[k];
    const CodecParams& p = *t.params;
    const int bits = contexts[k].packing.bits_per_symbol_if_pow2();
    if (bits != 8 && bits != 16) return false;
    float max_scale = p.scale == ScaleMode::kNone ? 1.0f : 0.0f;
    for (uint16_t v : t.scales) {
      const float scale = std::fabs(Bf16ToFloat(v));
      if (!(scale <= std::numeric_limits<float>::max())) return false;  // NaN or Inf
      max_scale = std::max(max_scale, scale);
    }
    double point = 0.0;
    for (int m = 0; m < p.M; ++m) point = point * p.q + max_abs_rep_point;
    const double ramp = std::max(1.0, std::exp2(static_cast<double>(p.alpha) * p.t_max));
    const double rotation = p.rotate ? std::sqrt(static_cast<double>(p.block)) : 1.0;
    bound += static_cast<double>(max_scale) * p.beta * ramp * point * rotation;
  }
  return std::fabs(static_cast<double>(s)) * bound < std::numeric_limits<float>::max() / 4.0;
}

}  // namespace

absl::Status TensorCodec::EncodeWithFeedback(const Feedback& in, const std::vector<int64_t>& shape, Executor* executor,
                                             EncodeStats* stats, CompressedTensor* out) const {
  return EncodeRows(in.x, DType::kFloat32, &in, shape, DType::kFloat32, executor, stats, out);
}

absl::Status TensorCodec::EncodeRows(const void* x, DType x_dtype, const Feedback* feedback,
                                     const std::vector<int64_t>& shape, DType original_dtype, Executor* executor,
                                     EncodeStats* stats, CompressedTensor* out_ptr) const {
  CompressedTensor& out = *out_ptr;
  COSET_ASSIGN_OR_RETURN(RowCodecContext ctx, MakeContext(shape));
  const Layout& l = ctx.layout;
  if (feedback != nullptr && (feedback->entries < 0 || feedback->entries > l.numel)) {
    return absl::InvalidArgumentError(
        absl::StrCat("feedback input has ", feedback->entries, " entries for a tensor of ", l.numel));
  }
  bool from_terms = feedback != nullptr && feedback->sum;
  if (l.numel > 0 && x == nullptr && !from_terms && (feedback == nullptr || feedback->entries > 0)) {
    return absl::InvalidArgumentError("input pointer is null");
  }
  std::vector<RowCodecContext> term_contexts;
  // A sum's first summand: s * x (its first sum_x_entries entries, then zeros), or nothing (0 + s * d_0).
  const float* sum_x = from_terms ? feedback->x : nullptr;
  const int64_t sum_x_entries =
      from_terms && feedback->x_entries >= 0 ? std::min(feedback->x_entries, feedback->entries) : l.numel;
  if (from_terms && feedback->count > 0 && feedback->terms == nullptr) {
    return absl::InvalidArgumentError("a sum of coded terms names none (terms is null)");
  }
  if (from_terms && feedback->count < (sum_x != nullptr ? 0 : 1)) {
    return absl::InvalidArgumentError("a sum of coded terms needs at least one term (or x)");
  }
  if (from_terms && feedback->count > 0) {
    COSET_ASSIGN_OR_RETURN(term_contexts, TermContexts(feedback->terms, feedback->count));
    // The terms are decoded through this encode's row scratch: their rows must be laid out alike.
    const Layout& tl = term_contexts[0].layout;
    if (*feedback->terms[0].shape != shape || tl.padded_cols != l.padded_cols ||
        tl.blocks_per_row != l.blocks_per_row || tl.chunks_per_row != l.chunks_per_row) {
      return absl::InvalidArgumentError("the coded terms' shape or block layout differs from the tensor's");
    }
  }
  // The input's first `entries` values under feedback: x, or the terms' sum decoded up front when a
  // row of it could fail to decode or overflow part-way (a corrupt or hostile packet), so that the
  // call fails before any residual changes.
  const float* input = feedback != nullptr ? feedback->x : nullptr;
  std::vector<float> decoded_sum;
  if (from_terms && !TermsSumIsSafe(feedback->terms, term_contexts, feedback->count, feedback->terms_scale,
                                    codebook_->max_abs_rep_point())) {
    decoded_sum.resize(feedback->entries);
    const float s = feedback->terms_scale;
    if (sum_x != nullptr) {
      for (int64_t i = 0; i < std::min(feedback->entries, sum_x_entries); ++i) decoded_sum[i] = s * sum_x[i];
    }
    const Epilogue sum{sum_x != nullptr ? decoded_sum.data() : nullptr, s, feedback->entries};
    if (feedback->count > 0) {
      COSET_RETURN_IF_ERROR(DecodeRows(feedback->terms, feedback->count, decoded_sum.data(), executor, &sum));
    }
    const auto bad = std::find_if(decoded_sum.begin(), decoded_sum.end(), [](float v) { return !std::isfinite(v); });
    if (bad != decoded_sum.end()) {
      return absl::InvalidArgumentError(absl::StrCat("sum of the coded terms[", bad - decoded_sum.begin(), "] is ",
                                                     *bad, "; NaN and Inf cannot be encoded"));
    }
    input = decoded_sum.data();
    from_terms = false;
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
  float first_nonfinite_value = 0.0f;  // the entry as encoded (x, or x + residual)
  std::atomic<int64_t> bad_term_row{-1};
  if (executor == nullptr) executor = InlineExecutor();
  executor->ParallelFor(l.rows, [&](int64_t begin, int64_t end) {
    RowScratch scratch(l);
    EncodeStats local;
    int64_t nonfinite = -1;
    float nonfinite_value = 0.0f;
    int64_t capped_row = -1, capped_chunk = -1;
    // row: the row as encoded.
    auto Account = [&](int64_t r, const float* row, const RowEncodeCounts& counts) {
      if (counts.nonfinite_index >= 0 && nonfinite < 0) {
        nonfinite = r * l.cols + counts.nonfinite_index;
        nonfinite_value = row[counts.nonfinite_index];
      }
      local.first_try_overloads += counts.first_try_overloads;
      local.capped += counts.capped;
      if (counts.first_capped_chunk >= 0 && capped_row < 0) {
        capped_row = r;
        capped_chunk = counts.first_capped_chunk;
      }
    };
    // Error feedback's g, or a row of x widened to float32, in a cache-resident row.
    std::vector<float> g(feedback != nullptr || x_dtype != DType::kFloat32 ? l.cols : 0);
    for (int64_t r = begin; r < end; ++r) {
      uint16_t* scales = out.scales.empty() ? nullptr : out.scales.data() + r * l.blocks_per_row;
      uint8_t* t = out.t.data() + r * l.chunks_per_row;
      uint8_t* symbols = out.symbols.data() + r * out.row_bytes;
      if (feedback == nullptr) {
        const float* row = g.data();
        if (x_dtype == DType::kFloat32) {
          row = static_cast<const float*>(x) + r * l.cols;
        } else {
          ToFloat(static_cast<const unsigned char*>(x) + r * l.cols * DTypeBytes(x_dtype), x_dtype, l.cols, g.data());
        }
        const RowEncodeCounts counts = kernels.encode(ctx, row, scales, t, symbols, scratch);
        Account(r, row, counts);
        continue;
      }
      const int64_t first = r * l.cols;
      const int64_t m = std::clamp<int64_t>(feedback->entries - first, 0, l.cols);
      // Raw pointers: read through the vectors (or the struct) the loops stay scalar.
      // (Rows past `entries` are zeros and touch neither x nor the residual, which may be null.)
      float* gs = g.data();
      float* rs = m > 0 && feedback->residual != nullptr ? feedback->residual + first : nullptr;
      if (from_terms && m > 0) {
        // x's row: the scaled sum, decoded into g as DecodeSum does (s * x or 0, then + s * d_k).
        const float s = feedback->terms_scale;
        const float* base = nullptr;
        if (sum_x != nullptr) {
          const int64_t mx = std::clamp<int64_t>(sum_x_entries - first, 0, m);
          const float* xs = sum_x + first;
          for (int64_t i = 0; i < mx; ++i) gs[i] = s * xs[i];
          std::fill(gs + mx, gs + m, 0.0f);
          base = gs;
        }
        if (feedback->count > 0 &&
            !DecodeSumRow(kernels, term_contexts, feedback->terms, feedback->count, r, base, s, m, gs, scratch)) {
          int64_t expected = -1;
          bad_term_row.compare_exchange_strong(expected, r);
          break;
        }
        if (rs != nullptr) {
          for (int64_t i = 0; i < m; ++i) gs[i] = gs[i] + rs[i];
        }
      } else if (m > 0) {
        const float* xs = input + first;
        if (rs != nullptr) {
          for (int64_t i = 0; i < m; ++i) gs[i] = xs[i] + rs[i];
        } else {
          std::memcpy(gs, xs, sizeof(float) * m);
        }
      }
      std::fill(gs + m, gs + l.cols, 0.0f);
      const RowEncodeCounts counts = kernels.encode(ctx, gs, scales, t, symbols, scratch);
      Account(r, gs, counts);
      if (rs == nullptr || counts.nonfinite_index >= 0) continue;
      // Just encoded, so the symbols are valid; residual = g + (-1) * decoded, as Decode's epilogue.
      kernels.decode_scale_add(ctx, scales, t, symbols, rs, gs, -1.0f, m, scratch);
    }
    std::lock_guard<std::mutex> lock(mu);
    if (nonfinite >= 0 && (first_nonfinite < 0 || nonfinite < first_nonfinite)) {
      first_nonfinite = nonfinite;
      first_nonfinite_value = nonfinite_value;
    }
    total.first_try_overloads += local.first_try_overloads;
    total.capped += local.capped;
    if (capped_row >= 0 && (first_capped_row < 0 || capped_row < first_capped_row)) {
      first_capped_row = capped_row;
      first_capped_chunk = capped_chunk;
    }
  });
  if (bad_term_row.load() >= 0) {
    return absl::DataLossError(
        absl::StrCat("packed symbols of row ", bad_term_row.load(), " of a summed term are invalid (corrupt data)"));
  }
  if (first_nonfinite >= 0) {
    // The entry as encoded: x + residual under feedback (the failing row's residual is untouched).
    const float value = first_nonfinite_value;
    const bool with_residual = feedback != nullptr && feedback->residual != nullptr;
    const char* what = feedback != nullptr && feedback->sum
                           ? (with_residual ? "sum of the coded terms + residual" : "sum of the coded terms")
                           : (with_residual ? "input + residual" : "input");
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

absl::Status TensorCodec::CheckConsistent(const CompressedTensorView& tensor) {
  const CodecParams& params = *tensor.params;
  COSET_RETURN_IF_ERROR(ValidateParams(params));
  if (params.beta <= 0.0f) return absl::InvalidArgumentError("compressed tensor has beta <= 0");
  COSET_ASSIGN_OR_RETURN(Layout l, Layout::Make(params, *tensor.shape));
  const SymbolPacking packing = PackingOf(params, l);
  const size_t want_scales = params.scale == ScaleMode::kNone ? 0 : l.rows * l.blocks_per_row;
  if (tensor.scales.size() != want_scales || tensor.t.size() != static_cast<size_t>(l.rows * l.chunks_per_row) ||
      tensor.row_bytes != packing.row_bytes() ||
      tensor.symbols.size() != static_cast<size_t>(l.rows * packing.row_bytes())) {
    return absl::InvalidArgumentError("compressed tensor sections do not match its shape and parameters");
  }
  // One vectorizable pass over T (a plain max loop: std::max_element over the span's pointers
  // compiled to a byte-by-byte loop, 40 % of a sum of eight decodes); the offending value is looked
  // up only on failure.
  uint8_t largest = 0;
  if (!tensor.t_checked) {
    for (const uint8_t v : tensor.t) largest = std::max(largest, v);
  }
  if (largest > params.t_max) {
    const uint8_t t = *std::find_if(tensor.t.begin(), tensor.t.end(), [&](uint8_t v) { return v > params.t_max; });
    return absl::DataLossError(absl::StrCat("overload counter ", int{t}, " exceeds t_max ", params.t_max));
  }
  return absl::OkStatus();
}

absl::Status TensorCodec::Decode(const CompressedTensor& tensor, float* out, Executor* executor) const {
  const CompressedTensorView view(tensor);
  return DecodeRows(&view, 1, out, executor, nullptr);
}

absl::Status TensorCodec::DecodeTyped(const CompressedTensor& tensor, void* out, DType dtype,
                                      Executor* executor) const {
  const CompressedTensorView view(tensor);
  return DecodeRows(&view, 1, out, executor, nullptr, dtype);
}

absl::Status TensorCodec::Decode(const CompressedTensor& tensor, float* out, Executor* executor,
                                 const Epilogue& epilogue) const {
  const CompressedTensorView view(tensor);
  return DecodeRows(&view, 1, out, executor, &epilogue);
}

absl::Status TensorCodec::DecodeSum(const CompressedTensorView* tensors, int64_t count, float* out, Executor* executor,
                                    const Epilogue& epilogue) const {
  if (count < 1) return absl::InvalidArgumentError("nothing to sum: no tensors");
  return DecodeRows(tensors, count, out, executor, &epilogue);
}

absl::StatusOr<std::vector<RowCodecContext>> TensorCodec::TermContexts(const CompressedTensorView* tensors,
                                                                       int64_t count) const {
  // Per-tensor parameters (beta, alpha, block, scale, rotation) come from each tensor itself.
  std::vector<RowCodecContext> contexts;
  contexts.reserve(count);
  for (int64_t k = 0; k < count; ++k) {
    const CompressedTensorView& tensor = tensors[k];
    COSET_RETURN_IF_ERROR(CheckConsistent(tensor));
    const CodecParams& p = *tensor.params;
    if (p.lattice != params_.lattice || p.q != params_.q || p.M != params_.M) {
      return absl::InvalidArgumentError(absl::StrCat("tensor was coded with ", p.lattice.name(), " q=", p.q, " M=", p.M,
                                                     ", this codec is ", params_.lattice.name(), " q=", params_.q,
                                                     " M=", params_.M));
    }
    if (*tensor.shape != *tensors[0].shape) {
      return absl::InvalidArgumentError("tensors summed in one decode must have the same shape");
    }
    TensorCodec view(p, codebook_);
    COSET_ASSIGN_OR_RETURN(RowCodecContext ctx, view.MakeContext(*tensor.shape));
    contexts.push_back(std::move(ctx));
  }
  return contexts;
}

absl::Status TensorCodec::DecodeRows(const CompressedTensorView* tensors, int64_t count, void* out, Executor* executor,
                                     const Epilogue* epilogue, DType out_dtype) const {
  COSET_ASSIGN_OR_RETURN(std::vector<RowCodecContext> contexts, TermContexts(tensors, count));
  const Layout& l = contexts[0].layout;
  const int64_t entries = epilogue != nullptr && epilogue->entries >= 0 ? epilogue->entries : l.numel;
  if (entries > l.numel) {
    return absl::InvalidArgumentError(absl::StrCat("epilogue of ", entries, " entries for a tensor of ", l.numel));
  }
  if (entries > 0 && out == nullptr) return absl::InvalidArgumentError("output pointer is null");
  // (An epilogue's output is written with the fused kernel's plain stores, and a sum reads it back
  // term by term: never streamed.)
  // (Other dtypes are decoded into a cache-resident row and narrowed from there.)
  const bool typed = out_dtype != DType::kFloat32;
  if (typed && epilogue != nullptr) return absl::InternalError("an epilogue writes float32");
  contexts[0].stream_output =
      epilogue == nullptr && !typed && l.numel * static_cast<int64_t>(sizeof(float)) >= kStreamingOutputBytes;
  const RowKernels kernels =
      GetRowKernels(ActiveSimdLevel(), params_.lattice.kind(), params_.lattice.dim(), codebook_->q_is_power_of_two(),
                    contexts[0].packing.bits_per_symbol_if_pow2());
  if (entries == 0) return absl::OkStatus();  // nothing to write, however many empty rows
  std::atomic<int64_t> bad_row{-1};
  if (executor == nullptr) executor = InlineExecutor();
  // Rows past `entries` are not decoded at all; the last one kept may be cut.
  executor->ParallelFor((entries + l.cols - 1) / l.cols, [&](int64_t begin, int64_t end) {
    RowScratch scratch(l);
    std::vector<float> row(typed ? l.cols : 0);
    for (int64_t r = begin; r < end; ++r) {
      float* o = typed ? row.data() : static_cast<float*>(out) + r * l.cols;
      const int64_t m = std::min(l.cols, entries - r * l.cols);
      bool ok;
      if (epilogue == nullptr) {  // one tensor
        const CompressedTensorView& tensor = tensors[0];
        ok = kernels.decode(contexts[0], RowScales(tensor, l, r), tensor.t.data() + r * l.chunks_per_row,
                            tensor.symbols.data() + r * tensor.row_bytes, o, scratch);
      } else {
        ok = DecodeSumRow(kernels, contexts, tensors, count, r,
                          epilogue->base == nullptr ? nullptr : epilogue->base + r * l.cols, epilogue->scale, m, o,
                          scratch);
      }
      if (!ok) {
        int64_t expected = -1;
        bad_row.compare_exchange_strong(expected, r);
      } else if (typed) {
        FromFloat(o, m, out_dtype, static_cast<unsigned char*>(out) + r * l.cols * DTypeBytes(out_dtype));
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

absl::Status DecodeTensor(const CompressedTensor& tensor, void* out, DType dtype, Executor* executor) {
  COSET_ASSIGN_OR_RETURN(TensorCodec codec, TensorCodec::Create(tensor.params));
  return codec.DecodeTyped(tensor, out, dtype, executor);
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

OverloadSummary SummarizeOverloads(const CompressedTensor& tensor, Executor* executor) {
  OverloadSummary s;
  s.histogram.assign(tensor.params.t_max + 1, 0);
  // Parts of 64K counters, counted on the executor and added up under a lock.
  constexpr int64_t kPart = int64_t{1} << 16;
  const int64_t count = static_cast<int64_t>(tensor.t.size());
  int64_t histogram[256] = {};
  std::mutex mu;
  const auto count_parts = [&](int64_t begin, int64_t end) {
    int64_t part[256] = {};
    CountValues(tensor.t.data() + begin * kPart, std::min(count, end * kPart) - begin * kPart, part);
    std::lock_guard<std::mutex> lock(mu);
    for (int v = 0; v < 256; ++v) histogram[v] += part[v];
  };
  if (executor == nullptr) executor = InlineExecutor();
  executor->ParallelFor((count + kPart - 1) / kPart, count_parts);
  for (size_t v = 0; v < s.histogram.size(); ++v) s.histogram[v] = histogram[v];
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
