// torch.ops.coset operators of the DDP hook (coset_torch.ddp): each direction of each mode is one
// call, threaded over the bucket on torch's intra-op threads, with no per-entry Python work.
//
//   coset::bucket_layout(int numel, int parts, str config) -> int[]   [shard_len, packet_bytes]
//   coset::bucket_encode(Tensor x, Tensor(a!)? residual, str config, int parts, Tensor? out,
//       int skip) -> Tensor
//       uint8 [parts, packet_bytes] (core/FORMAT.md "Bucket packets"); residual: error feedback;
//       skip (if in 0..parts-1): that shard is not encoded, its row is zeros and its residual
//       unchanged (reduce_scatter sums a rank's own shard exactly, see `own` below)
//   coset::bucket_decode(Tensor packets, str config, int numel, int parts, bool sum, float scale,
//       Tensor? out, Tensor? own, int rank) -> Tensor
//       sum: packets [k, P] of one shard -> scale * their sum, float32 [shard_len] (or out's
//            first entries: out may be shorter, e.g. the bucket itself when parts = 1)
//       else: packets [parts, P], shard i in row i -> scale * the bucket, float32 [numel]
//   coset::bucket_reduce_encode(Tensor packets, Tensor(a!)? residual, str config, int numel,
//       int parts, float scale, Tensor? out, Tensor? own, int rank) -> Tensor
//       packets [k, P] of one shard -> uint8 [1, P]: the packet of bucket_encode(bucket_decode(
//       packets, sum, scale), residual) as a bucket of shard_len entries, the sum never in memory
//   own, rank (sums only): this rank's bucket (numel floats) and its rank; the sum is then
//       ((scale * own's shard `rank` + scale * d_0) + ...), d_k the packets of the other ranks in
//       order (packets [parts, P]; row `rank` is not read), the own shard 0 past the bucket's end
//   coset::exact_sum_layout(int numel, str config, int world, int bound) -> int[]   [words, blocks]
//   coset::block_absmax(Tensor x, Tensor? residual, str config) -> Tensor   (per scale block)
//   coset::exact_sum_encode(Tensor x, Tensor(a!)? residual, Tensor scales, str config, int world,
//       int bound, Tensor? out) -> Tensor   int64 words (core/exact_sum.h)
//   coset::exact_sum_decode(Tensor words, Tensor scales, str config, int world, int bound,
//       int numel, Tensor? out) -> Tensor   float32 [numel], the average of the world's summed words
//
// x, residual: contiguous 1-D float32 CPU tensors of the bucket's size (the CUDA kernels register
// the same schemas for the CUDA key). out (optional, last): a tensor of the result's sizes and dtype
// to write into and return, so a hook reuses its buffers (or the bucket) instead of page-faulting a
// fresh bucket-sized tensor every step.
#include <ATen/ATen.h>
#include <torch/library.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstring>
#include <map>
#include <memory>
#include <mutex>
#include <vector>

#include "core/bucket_packet.h"
#include "core/exact_sum.h"
#include "torch_ext/bucket_ops.h"
#include "torch_ext/op_util.h"

namespace coset {
namespace {

// The codec of a config text, parsed and resolved once: the hook calls these ops with the same
// text for every bucket of every step, and parsing it each time was a third of a small bucket's
// cost. A handful of configs per process at most; the cache is cleared past 64.
std::shared_ptr<const TensorCodec> CodecFor(const std::string& config) {
  static std::mutex mu;
  static std::map<std::string, std::shared_ptr<const TensorCodec>> cache;
  std::lock_guard<std::mutex> lock(mu);
  auto it = cache.find(config);
  if (it != cache.end()) return it->second;
  auto codec = std::make_shared<const TensorCodec>(Take(TensorCodec::Create(ParamsFrom(config))));
  if (cache.size() >= 64) cache.clear();  // ops in flight keep their shared_ptr
  cache.emplace(config, codec);
  return codec;
}

// The packet layout of a bucket of numel entries in `parts` shards, or a RuntimeError.
BucketLayout LayoutFor(const TensorCodec& codec, int64_t numel, int64_t parts) {
  TORCH_CHECK(parts >= 1 && parts <= (1 << 16), "coset: parts must be in 1..65536, got ", parts);
  return Take(BucketLayout::Make(codec.params(), numel, static_cast<int>(parts)));
}

// The error-feedback residual (updated in place) of an input of `numel` entries, named `input` in
// the error, or null when none was given.
float* ResidualOrNull(const c10::optional<at::Tensor>& residual, int64_t numel, const char* input = "x") {
  if (!residual.has_value() || !residual->defined()) return nullptr;
  CheckFlatFloat(*residual, "residual");
  TORCH_CHECK(residual->numel() == numel, "coset: residual has ", residual->numel(), " entries, ", input, " has ",
              numel);
  return residual->data_ptr<float>();
}

// The op's output: `out` when the caller passes one (the bucket's own buffer, or a buffer it keeps
// between steps: a fresh bucket-sized tensor costs a page fault per 4 KiB, as much as the decode),
// checked to be a contiguous CPU tensor of `sizes` and `dtype`; else a new one. prefix_ok: a 1-D out
// may be shorter than sizes[0] and takes the result's first entries.
at::Tensor OutputFor(const c10::optional<at::Tensor>& out, at::IntArrayRef sizes, at::ScalarType dtype,
                     bool prefix_ok = false) {
  if (!out.has_value() || !out->defined()) return at::empty(sizes, at::TensorOptions().dtype(dtype));
  const at::Tensor& t = *out;
  TORCH_CHECK(t.device().is_cpu() && t.scalar_type() == dtype && t.is_contiguous(), "coset: out must be a contiguous ",
              dtype, " CPU tensor, got ", t.scalar_type(), " on ", t.device());
  const bool fits = prefix_ok ? t.dim() == 1 && t.numel() <= sizes[0] : t.sizes() == sizes;
  TORCH_CHECK(fits, "coset: out has sizes ", t.sizes(), "; this result has ", sizes, prefix_ok ? " (or fewer)" : "");
  return t;
}

// Received packets: a contiguous uint8 CPU tensor [count, packet_bytes] of this layout.
void CheckPackets(const at::Tensor& packets, const BucketLayout& layout) {
  TORCH_CHECK(
      packets.device().is_cpu() && packets.scalar_type() == at::kByte && packets.dim() == 2 && packets.is_contiguous(),
      "coset: packets must be a contiguous 2-D uint8 CPU tensor [count, packet_bytes]");
  TORCH_CHECK(packets.size(1) == layout.packet_bytes, "coset: packets have ", packets.size(1),
              " bytes each; a shard of this bucket has ", layout.packet_bytes);
}

// Refuses a gradient holding NaN or Inf, naming its first such entry as the encoder would. One
// read-only pass over the exponent bits (it vectorizes; std::isfinite per entry does not).
void CheckFinite(const at::Tensor& x) {
  const float* xs = x.data_ptr<float>();
  std::atomic<bool> bad{false};
  at::parallel_for(0, x.numel(), 1 << 16, [xs, &bad](int64_t begin, int64_t end) {
    // Sixteen independent flags, so that the vectorized loop is not one chain of ORs (at one
    // register per step that chain was 6 % of an encode with feedback).
    uint32_t all_ones[16] = {};
    int64_t i = begin;
    for (; i + 16 <= end; i += 16) {
      for (int k = 0; k < 16; ++k) {
        uint32_t bits;
        std::memcpy(&bits, xs + i + k, 4);
        all_ones[k] |= static_cast<uint32_t>((bits & 0x7F800000u) == 0x7F800000u);
      }
    }
    for (; i < end; ++i) {
      uint32_t bits;
      std::memcpy(&bits, xs + i, 4);
      all_ones[0] |= static_cast<uint32_t>((bits & 0x7F800000u) == 0x7F800000u);
    }
    if (std::any_of(all_ones, all_ones + 16, [](uint32_t v) { return v != 0; })) bad = true;
  });
  if (!bad) return;
  const float* first = std::find_if(xs, xs + x.numel(), [](float v) { return !std::isfinite(v); });
  TORCH_CHECK(false, "coset: input[", first - xs, "] is ", *first, "; NaN and Inf cannot be encoded");
}

// Buffers of one calling thread, kept between calls: the hook calls these ops with buckets of the
// same sizes every step, and fresh bucket-sized vectors cost a page fault per 4 KiB each time (a
// third of a step's hook time before). They hold the coded shards of the largest bucket seen (and,
// for the cosetd path, its g), per thread.
struct BucketScratch {
  std::vector<float> g;
  std::vector<CompressedTensor> shards;
};

BucketScratch& ThreadScratch() {
  thread_local BucketScratch scratch;
  return scratch;
}

// `count` coded shards of this layout, reusing the thread's (their sections keep their capacity).
std::vector<CompressedTensor>& ShardsFor(const BucketLayout& layout, const CodecParams& params, int64_t count) {
  std::vector<CompressedTensor>& shards = ThreadScratch().shards;
  if (static_cast<int64_t>(shards.size()) < count) shards.resize(count);
  for (int64_t p = 0; p < count; ++p) Check(ShapeShardTensor(layout, params, &shards[p]));
  return shards;
}

// A sum's own summand (bucket_decode / bucket_reduce_encode with `own`): shard `rank` of this
// rank's bucket, of which the first `entries` exist (the rest lies past the bucket's end); none
// (rank -1) without `own`.
struct OwnShard {
  const float* x = nullptr;
  int64_t entries = 0;
  int64_t rank = -1;
};

OwnShard OwnShardOf(const c10::optional<at::Tensor>& own, int64_t rank, const at::Tensor& packets,
                    const BucketLayout& layout) {
  if (!own.has_value() || !own->defined()) {
    TORCH_CHECK(rank == -1, "coset: rank ", rank, " is given without the rank's own bucket");
    return {};
  }
  CheckFlatFloat(*own, "own");
  TORCH_CHECK(own->numel() == layout.numel, "coset: own has ", own->numel(), " entries; the bucket has ", layout.numel);
  TORCH_CHECK(rank >= 0 && rank < layout.parts, "coset: rank must be in 0..", layout.parts - 1, ", got ", rank);
  TORCH_CHECK(packets.size(0) == layout.parts, "coset: a sum with the own shard takes one packet row per rank (",
              layout.parts, "), got ", packets.size(0));
  const int64_t first = std::min(rank * layout.shard_len, layout.numel);
  return {own->data_ptr<float>() + first, std::min(layout.shard_len, layout.numel - first), rank};
}

// The packets (rows of packets, checked by CheckPackets) other than the own shard's row, as the
// coded terms of a sum in rank order: scales and counters read into shards[k] (shards has at least
// as many entries), symbols decoded in place from `packets`, which outlives the views (the op's
// input).
std::vector<CompressedTensorView> SumTerms(const at::Tensor& packets, const BucketLayout& layout, const OwnShard& own,
                                           std::vector<CompressedTensor>& shards) {
  const uint8_t* data = packets.data_ptr<uint8_t>();
  std::vector<CompressedTensorView> terms;
  terms.reserve(packets.size(0));
  for (int64_t k = 0; k < packets.size(0); ++k) {
    if (k == own.rank) continue;
    terms.push_back(Take(ReadPacketInPlace(layout, data + k * layout.packet_bytes, layout.packet_bytes, &shards[k])));
  }
  return terms;
}

}  // namespace

at::Tensor EncodeBucket(const at::Tensor& x, const c10::optional<at::Tensor>& residual, const std::string& config,
                        int64_t parts, const ShardEncoder& encode, const c10::optional<at::Tensor>& packets,
                        int64_t skip) {
  CheckFlatFloat(x, "x");
  float* rs = ResidualOrNull(residual, x.numel());
  const std::shared_ptr<const TensorCodec> held = CodecFor(config);
  const TensorCodec& codec = *held;
  const BucketLayout layout = LayoutFor(codec, x.numel(), parts);
  const int64_t n = x.numel();
  const float* xs = x.data_ptr<float>();
  TORCH_CHECK(skip >= -1 && skip < parts, "coset: skip must be -1 or in 0..", parts - 1, ", got ", skip);
  at::Tensor out = OutputFor(packets, {parts, layout.packet_bytes}, at::kByte);
  if (skip >= 0) std::memset(out.data_ptr<uint8_t>() + skip * layout.packet_bytes, 0, layout.packet_bytes);
  std::vector<CompressedTensor>& shards = ShardsFor(layout, codec.params(), parts);
  AtenExecutor executor;
  if (!encode) {
    // In-process: g = x + residual and the residual update fused into the encode, row by row in
    // cache (TensorCodec::EncodeWithFeedback). A non-finite gradient (an fp16 overflow under a
    // grad scaler) is refused before any residual changes; only x + residual overflowing float
    // could fail later, leaving earlier rows' residuals updated.
    if (rs != nullptr) CheckFinite(x);
    for (int64_t p = 0; p < parts; ++p) {
      if (p == skip) continue;
      const int64_t first = p * layout.shard_len;
      const TensorCodec::Feedback in{xs + std::min(first, n), rs == nullptr ? nullptr : rs + std::min(first, n),
                                     std::clamp<int64_t>(n - first, 0, layout.shard_len)};
      Check(codec.EncodeWithFeedback(in, layout.shard_shape(), &executor, nullptr, &shards[p]));
      WritePacket(layout, shards[p], out.data_ptr<uint8_t>() + p * layout.packet_bytes);
    }
    return out;
  }
  BucketScratch& scratch = ThreadScratch();
  // g = x + residual, zero-padded to whole shards.
  std::vector<float>& g = scratch.g;
  g.resize(parts * layout.shard_len);
  std::fill(g.begin() + n, g.end(), 0.0f);
  // The pointers are copied into the lambda: read through captured references they could alias the
  // stores, and the loop stayed scalar (a fifth of a small bucket's encode).
  at::parallel_for(0, n, 1 << 16, [xs, rs, gs = g.data()](int64_t begin, int64_t end) {
    if (rs != nullptr) {
      for (int64_t i = begin; i < end; ++i) gs[i] = xs[i] + rs[i];
    } else {
      std::memcpy(gs + begin, xs + begin, sizeof(float) * (end - begin));
    }
  });
  // Every shard is encoded before any residual changes: an encoder that fails part-way (cosetd)
  // leaves the residual as it was, so the caller can retry in-process.
  for (int64_t p = 0; p < parts; ++p) {
    if (p == skip) continue;
    Check(encode(codec, g.data() + p * layout.shard_len, layout.shard_shape(), &shards[p]));
    WritePacket(layout, shards[p], out.data_ptr<uint8_t>() + p * layout.packet_bytes);
  }
  if (rs != nullptr) {
    for (int64_t p = 0; p < parts; ++p) {
      if (p == skip) continue;
      // residual = g - decoded (g + (-1) * decoded: the same float), fused into the decode, the
      // shard cut at numel.
      const int64_t first = p * layout.shard_len, entries = std::clamp<int64_t>(n - first, 0, layout.shard_len);
      Check(codec.Decode(shards[p], rs + std::min(first, n), &executor,
                         TensorCodec::Epilogue{g.data() + first, -1.0f, entries}));
    }
  }
  return out;
}

namespace {

std::vector<int64_t> BucketLayoutOp(int64_t numel, int64_t parts, const std::string& config) {
  const BucketLayout layout = LayoutFor(*CodecFor(config), numel, parts);
  return {layout.shard_len, layout.packet_bytes};
}

at::Tensor BucketEncode(const at::Tensor& x, const c10::optional<at::Tensor>& residual, const std::string& config,
                        int64_t parts, const c10::optional<at::Tensor>& out, int64_t skip) {
  return EncodeBucket(x, residual, config, parts, nullptr, out, skip);
}

at::Tensor BucketDecode(const at::Tensor& packets, const std::string& config, int64_t numel, int64_t parts, bool sum,
                        double scale, const c10::optional<at::Tensor>& out, const c10::optional<at::Tensor>& own,
                        int64_t rank) {
  const std::shared_ptr<const TensorCodec> held = CodecFor(config);
  const TensorCodec& codec = *held;
  const BucketLayout layout = LayoutFor(codec, numel, parts);
  CheckPackets(packets, layout);
  TORCH_CHECK(sum || packets.size(0) == parts, "coset: ", packets.size(0), " packets for a bucket of ", parts,
              " shards");
  TORCH_CHECK(sum || !own.has_value() || !own->defined(), "coset: own is for sums only");
  const OwnShard mine = sum ? OwnShardOf(own, rank, packets, layout) : OwnShard{};
  const int64_t count = packets.size(0);
  // Every entry is written below (a sum starts from the first packet; shards tile the bucket).
  at::Tensor result = OutputFor(out, {sum ? layout.shard_len : numel}, at::kFloat, /*prefix_ok=*/sum);
  float* o = result.data_ptr<float>();
  AtenExecutor executor;
  const float s = static_cast<float>(scale);
  const uint8_t* data = packets.data_ptr<uint8_t>();
  if (sum) {
    // All packets of the shard decoded row by row into one sum that stays in cache: the output is
    // written once, not read and written once per packet. With the own shard the sum starts from
    // s * own (zero past the bucket's end), as bucket_reduce_encode forms it.
    const int64_t entries = result.numel();
    if (mine.rank >= 0) {
      const int64_t kept = std::min(entries, mine.entries);
      for (int64_t i = 0; i < kept; ++i) o[i] = s * mine.x[i];
      std::fill(o + kept, o + entries, 0.0f);
    }
    const std::vector<CompressedTensorView> terms =
        SumTerms(packets, layout, mine, ShardsFor(layout, codec.params(), count));
    if (terms.empty()) return mine.rank >= 0 ? result : result.zero_();
    Check(codec.DecodeSum(terms.data(), static_cast<int64_t>(terms.size()), o, &executor,
                          TensorCodec::Epilogue{mine.rank >= 0 ? o : nullptr, s, entries}));
    return result;
  }
  CompressedTensor& shard = ShardsFor(layout, codec.params(), 1)[0];
  for (int64_t k = 0; k < count; ++k) {
    const CompressedTensorView view =
        Take(ReadPacketInPlace(layout, data + k * layout.packet_bytes, layout.packet_bytes, &shard));
    // Shard k lands at k * shard_len, scaled (0 + s * v: -0 becomes +0), the last one cut at numel.
    const int64_t first = std::min(k * layout.shard_len, numel);
    const int64_t kept = std::min(layout.shard_len, numel - first);
    Check(codec.DecodeSum(&view, 1, o + first, &executor, TensorCodec::Epilogue{nullptr, s, kept}));
  }
  return result;
}

// The shard this rank owns, summed from every rank's packet of it and re-encoded with its own error
// feedback (reduce_scatter's middle step): the packet of bucket_encode(bucket_decode(packets, sum,
// scale), residual), bit for bit, with the sum decoded row by row straight into the encode instead
// of through a shard-sized tensor (TensorCodec::Feedback's terms).
at::Tensor BucketReduceEncode(const at::Tensor& packets, const c10::optional<at::Tensor>& residual,
                              const std::string& config, int64_t numel, int64_t parts, double scale,
                              const c10::optional<at::Tensor>& out, const c10::optional<at::Tensor>& own,
                              int64_t rank) {
  const std::shared_ptr<const TensorCodec> held = CodecFor(config);
  const TensorCodec& codec = *held;
  const BucketLayout layout = LayoutFor(codec, numel, parts);
  CheckPackets(packets, layout);
  const int64_t count = packets.size(0);
  const OwnShard mine = OwnShardOf(own, rank, packets, layout);
  TORCH_CHECK(count >= 1, "coset: a shard's sum needs at least one packet");
  // The shard re-encoded as a bucket of its own: the same rows, so packets of the same size.
  const BucketLayout shard = LayoutFor(codec, layout.shard_len, 1);
  TORCH_CHECK(shard.packet_bytes == layout.packet_bytes && shard.shard_len == layout.shard_len,
              "coset: internal error: a re-encoded shard's layout differs from the shard's");
  float* rs = ResidualOrNull(residual, layout.shard_len, "a shard of this bucket");
  at::Tensor result = OutputFor(out, {1, layout.packet_bytes}, at::kByte);
  std::vector<CompressedTensor>& shards = ShardsFor(layout, codec.params(), count + 1);  // terms, then the result
  const std::vector<CompressedTensorView> terms = SumTerms(packets, layout, mine, shards);
  TensorCodec::Feedback in;
  in.x = mine.x;
  in.x_entries = mine.entries;
  in.residual = rs;
  in.entries = layout.shard_len;
  in.sum = true;  // at W = 1: of the own shard alone
  in.terms = terms.data();
  in.count = static_cast<int64_t>(terms.size());
  in.terms_scale = static_cast<float>(scale);
  AtenExecutor executor;
  Check(codec.EncodeWithFeedback(in, shard.shard_shape(), &executor, nullptr, &shards[count]));
  WritePacket(shard, shards[count], result.data_ptr<uint8_t>());
  return result;
}

ExactSumSpec SpecFor(const std::string& config, int64_t world, int64_t bound) {
  const std::shared_ptr<const TensorCodec> held = CodecFor(config);
  const TensorCodec& codec = *held;
  TORCH_CHECK(world >= 1 && world <= (1 << 16), "coset: world must be in 1..65536, got ", world);
  TORCH_CHECK(bound >= 0 && bound <= (1 << 24), "coset: bound must be in 0..2^24, got ", bound);
  return Take(ExactSumSpec::Create(codec.params(), static_cast<int>(world), static_cast<int>(bound)));
}

void CheckScales(const ExactSumSpec& spec, const at::Tensor& scales, int64_t numel) {
  CheckFlatFloat(scales, "scales");
  TORCH_CHECK(scales.numel() == spec.Blocks(numel), "coset: ", scales.numel(), " scales for ", spec.Blocks(numel),
              " blocks of ", spec.block);
}

std::vector<int64_t> ExactSumLayoutOp(int64_t numel, const std::string& config, int64_t world, int64_t bound) {
  TORCH_CHECK(numel >= 0 && numel <= kMaxElements, "coset: numel out of range: ", numel);
  const ExactSumSpec spec = SpecFor(config, world, bound);
  return {spec.Words(numel), spec.Blocks(numel)};
}

at::Tensor BlockAbsMaxOp(const at::Tensor& x, const c10::optional<at::Tensor>& residual, const std::string& config) {
  CheckFlatFloat(x, "x");
  const ExactSumSpec spec = SpecFor(config, 1, 0);
  const float* r = ResidualOrNull(residual, x.numel());
  at::Tensor out = at::empty({spec.Blocks(x.numel())}, at::TensorOptions().dtype(at::kFloat));
  at::parallel_for(0, out.numel(), 64, [&](int64_t begin, int64_t end) {
    BlockAbsMax(spec, x.data_ptr<float>(), r, x.numel(), begin, end, out.data_ptr<float>());
  });
  return out;
}

at::Tensor ExactSumEncode(const at::Tensor& x, const c10::optional<at::Tensor>& residual, const at::Tensor& scales,
                          const std::string& config, int64_t world, int64_t bound,
                          const c10::optional<at::Tensor>& out) {
  CheckFlatFloat(x, "x");
  const ExactSumSpec spec = SpecFor(config, world, bound);
  CheckScales(spec, scales, x.numel());
  float* r = ResidualOrNull(residual, x.numel());
  at::Tensor words = OutputFor(out, {spec.Words(x.numel())}, at::kLong);
  at::parallel_for(0, spec.Units(x.numel()), 256, [&](int64_t begin, int64_t end) {
    QuantizeToWords(spec, x.data_ptr<float>(), r, x.numel(), scales.data_ptr<float>(), begin, end,
                    words.data_ptr<int64_t>());
  });
  return words;
}

at::Tensor ExactSumDecode(const at::Tensor& words, const at::Tensor& scales, const std::string& config, int64_t world,
                          int64_t bound, int64_t numel, const c10::optional<at::Tensor>& out) {
  const ExactSumSpec spec = SpecFor(config, world, bound);
  TORCH_CHECK(numel >= 0 && numel <= kMaxElements, "coset: numel out of range: ", numel);
  TORCH_CHECK(words.device().is_cpu() && words.scalar_type() == at::kLong && words.dim() == 1 &&
                  words.is_contiguous() && words.numel() == spec.Words(numel),
              "coset: words must be a contiguous 1-D int64 CPU tensor of ", spec.Words(numel), " words");
  CheckScales(spec, scales, numel);
  at::Tensor values = OutputFor(out, {numel}, at::kFloat);
  at::parallel_for(0, spec.Units(numel), 256, [&](int64_t begin, int64_t end) {
    WordsToValues(spec, words.data_ptr<int64_t>(), numel, scales.data_ptr<float>(), static_cast<int>(world),
                  1.0f / static_cast<float>(world), begin, end, values.data_ptr<float>());
  });
  return values;
}

}  // namespace

TORCH_LIBRARY_FRAGMENT(coset, m) {
  m.def("bucket_layout(int numel, int parts, str config) -> int[]");
  m.def(
      "bucket_encode(Tensor x, Tensor(a!)? residual, str config, int parts, Tensor(b!)? out=None, int skip=-1) "
      "-> Tensor");
  m.def(
      "bucket_decode(Tensor packets, str config, int numel, int parts, bool sum, float scale, Tensor(a!)? out=None, "
      "Tensor? own=None, int rank=-1) -> Tensor");
  m.def(
      "bucket_reduce_encode(Tensor packets, Tensor(a!)? residual, str config, int numel, int parts, float scale, "
      "Tensor(b!)? out=None, Tensor? own=None, int rank=-1) -> Tensor");
  m.def("exact_sum_layout(int numel, str config, int world, int bound) -> int[]");
  m.def("block_absmax(Tensor x, Tensor? residual, str config) -> Tensor");
  m.def(
      "exact_sum_encode(Tensor x, Tensor(a!)? residual, Tensor scales, str config, int world, int bound, "
      "Tensor(b!)? out=None) -> Tensor");
  m.def(
      "exact_sum_decode(Tensor words, Tensor scales, str config, int world, int bound, int numel, "
      "Tensor(a!)? out=None) -> Tensor");
}

TORCH_LIBRARY_IMPL(coset, CompositeExplicitAutograd, m) {
  m.impl("bucket_layout", &BucketLayoutOp);
  m.impl("exact_sum_layout", &ExactSumLayoutOp);
}

TORCH_LIBRARY_IMPL(coset, CPU, m) {
  m.impl("bucket_encode", &BucketEncode);
  m.impl("bucket_decode", &BucketDecode);
  m.impl("bucket_reduce_encode", &BucketReduceEncode);
  m.impl("block_absmax", &BlockAbsMaxOp);
  m.impl("exact_sum_encode", &ExactSumEncode);
  m.impl("exact_sum_decode", &ExactSumDecode);
}

}  // namespace coset
