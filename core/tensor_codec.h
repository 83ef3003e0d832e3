// HNLQ on tensors of any shape: only the last dimension is quantized; leading dimensions are rows,
// coded independently (and in parallel through an injected Executor).
//
// Per row: zero-pad to a multiple of d; per block of `block` entries: optional rotation, a scale
// (RMS or absmax, stored as bf16), then every d-dim chunk is encoded at step
// scale * beta * 2^(alpha T) with the smallest T in [0, t_max] that does not overload.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "core/codebook.h"
#include "core/executor.h"
#include "core/params.h"
#include "core/row_codec.h"

namespace coset {

// A tensor in coded form, in memory. Serialize with format.h.
struct CompressedTensor {
  CodecParams params;             // resolved: beta is never 0 here
  DType dtype = DType::kFloat32;  // dtype of the original tensor (decode returns it)
  std::vector<int64_t> shape;
  Layout layout;
  int64_t row_bytes = 0;
  std::vector<uint16_t> scales;  // bf16, rows * blocks_per_row; empty when scale == none
  std::vector<uint8_t> t;        // rows * chunks_per_row overload counters
  std::vector<uint8_t> symbols;  // rows * row_bytes packed symbols (symbol_packing.h)
};

// What decoding reads of a coded tensor, borrowed (it must outlive the view): a CompressedTensor's
// own sections (the implicit conversion), or a bucket packet's, its symbols read in place
// (bucket_packet.h ReadPacketInPlace), so that a sum of the W packets a rank receives decodes
// without a copy of each.
struct CompressedTensorView {
  CompressedTensorView() = default;
  CompressedTensorView(const CompressedTensor& tensor)  // NOLINT: implicit, a tensor is its own view
      : params(&tensor.params),
        shape(&tensor.shape),
        row_bytes(tensor.row_bytes),
        scales(tensor.scales.data(), tensor.scales.size()),
        t(tensor.t.data(), tensor.t.size()),
        symbols(tensor.symbols.data(), tensor.symbols.size()) {}

  const CodecParams* params = nullptr;
  const std::vector<int64_t>* shape = nullptr;
  int64_t row_bytes = 0;
  absl::Span<const uint16_t> scales;
  absl::Span<const uint8_t> t;
  absl::Span<const uint8_t> symbols;
  bool t_checked = false;  // every counter is known to be <= t_max (checked while unpacking a packet)
};

struct EncodeStats {
  int64_t chunks = 0;
  int64_t first_try_overloads = 0;  // chunks that needed T > 0
  int64_t capped = 0;               // chunks still overloaded at t_max (zeroed under kZero)
  double first_try_overload_rate() const { return chunks ? double(first_try_overloads) / chunks : 0.0; }
};

// Histogram and entropy of T over a compressed tensor (for info and rate accounting).
struct OverloadSummary {
  std::vector<int64_t> histogram;  // t_max + 1 counts
  double entropy_bits = 0.0;       // H(T) per chunk
  double first_try_overload_rate = 0.0;
};
// executor (optional) counts parts of the counters in parallel.
OverloadSummary SummarizeOverloads(const CompressedTensor& tensor, Executor* executor = nullptr);
// The nominal rate of a coded tensor: M log2 q + H(T) / d bits per entry (summary of the tensor).
double NominalBitsPerEntry(const CompressedTensor& tensor, const OverloadSummary& summary);

class TensorCodec {
 public:
  // Validates params, resolves a default beta (beta_table.h) and takes the shared codebook.
  static absl::StatusOr<TensorCodec> Create(const CodecParams& params);

  const CodecParams& params() const { return params_; }
  const Codebook& codebook() const { return *codebook_; }

  // x: numel floats, row-major, shape as given. Fails on NaN/Inf (naming the first index), on a
  // bad shape, or (CapPolicy::kFail) when a chunk is still overloaded after t_max retries.
  absl::StatusOr<CompressedTensor> Encode(const float* x, const std::vector<int64_t>& shape,
                                          DType original_dtype = DType::kFloat32, Executor* executor = nullptr,
                                          EncodeStats* stats = nullptr) const;

  // Encode into `out`, reusing its buffers (no allocation or page faults when the shape repeats).
  absl::Status EncodeInto(const float* x, const std::vector<int64_t>& shape, DType original_dtype, Executor* executor,
                          EncodeStats* stats, CompressedTensor* out) const;
  // x: numel values of `dtype` (any alignment), widened to float32 row by row in a cache-resident
  // row (core/dtype.h) and encoded: the codes of EncodeInto on the widened floats, with `dtype`
  // recorded, without a float32 copy of the tensor.
  absl::Status EncodeTypedInto(const void* x, DType dtype, const std::vector<int64_t>& shape, Executor* executor,
                               EncodeStats* stats, CompressedTensor* out) const;

  // Error feedback fused into the encode (the DDP hook's), row by row through a cache-resident row:
  // g = x + residual is encoded (the codes of EncodeInto(g)) and residual becomes g - decode(codes),
  // computed as g + (-1) * decoded. x and residual hold the tensor's first `entries` entries; the
  // later ones are zeros (a bucket's padded last shard). residual may be null (then g = x and
  // nothing is updated). g never goes to memory: three passes over the entries instead of six.
  // Rows are independent: if some x + residual is not finite the call fails, and rows encoded
  // without error keep their updated residual (callers that must not lose it check x first).
  // The input may instead be a scaled sum (the DDP hook's reduce-scatter re-encodes the sum of the
  // shards it receives and of its own): with `sum` set, each row of
  // (...((b + s * d_0) + s * d_1) ...) + s * d_{count-1} (DecodeSum's floats), with s =
  // terms_scale, d_k the `count` coded tensors of this shape decoded, and b = s * x, or 0 when x
  // is null, is formed in the cache-resident row and encoded from there, never going to memory.
  // count may be 0 (terms then unread) when x is set (a sum of x alone). x may hold fewer entries
  // than `entries` (x_entries; -1: as many), the rest taken as 0 (a rank's own shard cut at its
  // bucket's end).
  struct Feedback {
    const float* x = nullptr;
    float* residual = nullptr;
    int64_t entries = 0;
    bool sum = false;  // the input is the scaled sum of x and the terms below
    const CompressedTensorView* terms = nullptr;
    int64_t count = 0;
    float terms_scale = 1.0f;
    int64_t x_entries = -1;
  };
  absl::Status EncodeWithFeedback(const Feedback& in, const std::vector<int64_t>& shape, Executor* executor,
                                  EncodeStats* stats, CompressedTensor* out) const;

  // out: numel floats. The tensor must carry this codec's parameters.
  absl::Status Decode(const CompressedTensor& tensor, float* out, Executor* executor = nullptr) const;
  // out: numel values of `dtype` (aligned to its size), each row decoded in a cache-resident row
  // and narrowed from there (core/dtype.h): no float32 copy of the tensor.
  absl::Status DecodeTyped(const CompressedTensor& tensor, void* out, DType dtype, Executor* executor = nullptr) const;

  // Decode fused with an elementwise epilogue, row by row through a cache-resident row buffer, so
  // the decoded tensor never goes to memory: out[i] = base[i] + scale * decoded[i], with base =
  // `base` (may be `out` itself: accumulation), or 0 when base is null (then -0 becomes +0, as in a
  // zeroed buffer accumulating it). The same floats as decoding and then looping. out and base hold
  // the first `entries` entries of the tensor (-1: all of them); the rest is not decoded (a
  // bucket's padded last shard).
  struct Epilogue {
    const float* base = nullptr;
    float scale = 1.0f;
    int64_t entries = -1;
  };
  absl::Status Decode(const CompressedTensor& tensor, float* out, Executor* executor, const Epilogue& epilogue) const;

  // The scaled sum of `count` tensors of one shape, decoded row by row in cache: out =
  // (...((base + s * d_0) + s * d_1) ...) + s * d_{count-1} (base, s and entries from the
  // epilogue), the same floats as decoding each in turn with an accumulating epilogue, but out is
  // written once instead of read and written count times.
  absl::Status DecodeSum(const CompressedTensorView* tensors, int64_t count, float* out, Executor* executor,
                         const Epilogue& epilogue) const;

  // Checks that a tensor's sizes agree with its params and shape, and that T <= t_max (cheap;
  // decode calls it).
  static absl::Status CheckConsistent(const CompressedTensorView& tensor);

  // Everything the row kernels read for a tensor of this shape: layout, symbol packing, ramp and
  // rotation signs (the CUDA kernels take their copies from here too).
  absl::StatusOr<RowCodecContext> MakeContext(const std::vector<int64_t>& shape) const;

 private:
  TensorCodec(CodecParams params, std::shared_ptr<const Codebook> codebook);
  // x: values of x_dtype (float32 under feedback).
  absl::Status EncodeRows(const void* x, DType x_dtype, const Feedback* feedback, const std::vector<int64_t>& shape,
                          DType original_dtype, Executor* executor, EncodeStats* stats, CompressedTensor* out) const;
  // The decode contexts of tensors[0..count), which must share this codec's lattice, q and M and
  // one shape (their other parameters come from each tensor).
  absl::StatusOr<std::vector<RowCodecContext>> TermContexts(const CompressedTensorView* tensors, int64_t count) const;
  // Decodes tensors[0..count) (count > 1 only with an epilogue, whose base then applies to the
  // first: later ones accumulate into out).
  // out holds values of out_dtype (float32 with an epilogue).
  absl::Status DecodeRows(const CompressedTensorView* tensors, int64_t count, void* out, Executor* executor,
                          const Epilogue* epilogue, DType out_dtype = DType::kFloat32) const;

  CodecParams params_;
  std::shared_ptr<const Codebook> codebook_;
};

// Helpers for computing on codes (inner products, code arithmetic): the symbols of one row
// (symbols_per_row values; false when the packed bytes are invalid) and the step of one chunk.
bool UnpackRowSymbols(const CompressedTensor& tensor, int64_t row, uint32_t* symbols);
// The symbol packing of a tensor with these parameters and layout (q^s symbols per row slot).
SymbolPacking PackingOf(const CodecParams& params, const Layout& layout);
float ChunkStep(const CompressedTensor& tensor, int64_t row, int64_t chunk);
// Block scale x beta of one block (0 for blocks that decode to zero), and the ramp factor of T.
float BlockBase(const CompressedTensor& tensor, int64_t row, int64_t block);
float RampFactor(const CodecParams& params, int t);

// Decodes with a codec built from the tensor's own parameters (into values of `dtype`).
absl::Status DecodeTensor(const CompressedTensor& tensor, float* out, Executor* executor = nullptr);
absl::Status DecodeTensor(const CompressedTensor& tensor, void* out, DType dtype, Executor* executor = nullptr);

}  // namespace coset
