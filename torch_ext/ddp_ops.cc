// torch.ops.coset operators of the DDP hook (coset_torch.ddp): each direction of each mode is one
// call, threaded over the bucket on torch's intra-op threads, with no per-entry Python work.
//
//   coset::bucket_layout(int numel, int parts, str config) -> int[]   [shard_len, packet_bytes]
//   coset::bucket_encode(Tensor x, Tensor(a!)? residual, str config, int parts) -> Tensor
//       uint8 [parts, packet_bytes] (core/FORMAT.md "Bucket packets"); residual: error feedback
//   coset::bucket_decode(Tensor packets, str config, int numel, int parts, bool sum, float scale)
//       sum: packets [k, P] of one shard -> scale * their sum, float32 [shard_len]
//       else: packets [parts, P], shard i in row i -> scale * the bucket, float32 [numel]
//   coset::block_absmax(Tensor x, Tensor? residual, str config) -> Tensor   (per scale block)
//   coset::exact_sum_encode(Tensor x, Tensor(a!)? residual, Tensor scales, str config, int world,
//       int bound) -> Tensor   int64 words (core/exact_sum.h)
//   coset::exact_sum_decode(Tensor words, Tensor scales, str config, int world, int bound,
//       int numel) -> Tensor   float32 [numel], the average of the world's summed words
//
// x, residual: contiguous 1-D float32 CPU tensors of the bucket's size (the CUDA kernels register
// the same schemas for the CUDA key).
#include <ATen/ATen.h>
#include <torch/library.h>

#include <algorithm>
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

// The error-feedback residual (x's size, updated in place), or null when none was given.
float* ResidualOrNull(const c10::optional<at::Tensor>& residual, const at::Tensor& x) {
  if (!residual.has_value() || !residual->defined()) return nullptr;
  CheckFlatFloat(*residual, "residual");
  TORCH_CHECK(residual->numel() == x.numel(), "coset: residual has ", residual->numel(), " entries, x has ", x.numel());
  return residual->data_ptr<float>();
}

// Buffers of one calling thread, kept between calls: the hook calls these ops with buckets of the
// same sizes every step, and fresh bucket-sized vectors cost a page fault per 4 KiB each time (a
// third of a step's hook time before). They hold at most a bucket's g, one decoded shard and the
// coded shards of the largest bucket seen, per thread.
struct BucketScratch {
  std::vector<float> g;
  std::vector<float> decoded;
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

}  // namespace

at::Tensor EncodeBucket(const at::Tensor& x, const c10::optional<at::Tensor>& residual, const std::string& config,
                        int64_t parts, const ShardEncoder& encode) {
  CheckFlatFloat(x, "x");
  float* rs = ResidualOrNull(residual, x);
  const std::shared_ptr<const TensorCodec> held = CodecFor(config);
  const TensorCodec& codec = *held;
  const BucketLayout layout = LayoutFor(codec, x.numel(), parts);
  const int64_t n = x.numel(), padded = parts * layout.shard_len;
  BucketScratch& scratch = ThreadScratch();
  // g = x + residual, zero-padded to whole shards.
  std::vector<float>& g = scratch.g;
  g.resize(padded);
  std::fill(g.begin() + n, g.end(), 0.0f);
  // The pointers are copied into the lambda: read through captured references they could alias the
  // stores, and the loop stayed scalar (a fifth of a small bucket's encode).
  at::parallel_for(0, n, 1 << 16, [xs = x.data_ptr<float>(), rs, gs = g.data()](int64_t begin, int64_t end) {
    if (rs != nullptr) {
      for (int64_t i = begin; i < end; ++i) gs[i] = xs[i] + rs[i];
    } else {
      std::memcpy(gs + begin, xs + begin, sizeof(float) * (end - begin));
    }
  });
  at::Tensor out = at::empty({parts, layout.packet_bytes}, at::TensorOptions().dtype(at::kByte));
  // Every shard is encoded before any residual changes: an encoder that fails part-way (cosetd)
  // leaves the residual as it was, so the caller can retry in-process.
  std::vector<CompressedTensor>& shards = ShardsFor(layout, codec.params(), parts);
  for (int64_t p = 0; p < parts; ++p) {
    Check(encode(codec, g.data() + p * layout.shard_len, layout.shard_shape(), &shards[p]));
    WritePacket(layout, shards[p], out.data_ptr<uint8_t>() + p * layout.packet_bytes);
  }
  if (rs != nullptr) {
    AtenExecutor executor;
    std::vector<float>& decoded = scratch.decoded;
    decoded.resize(layout.shard_len);
    for (int64_t p = 0; p < parts; ++p) {
      // residual = g - decoded (g + (-1) * decoded: the same float), fused into the decode; the
      // shard cut at numel goes through the scratch row and keeps its first entries.
      const int64_t first = p * layout.shard_len, last = std::min(n, first + layout.shard_len);
      const bool whole = last - first == layout.shard_len;
      Check(codec.Decode(shards[p], whole ? rs + first : decoded.data(), &executor,
                         TensorCodec::Epilogue{g.data() + first, -1.0f}));
      if (!whole) std::memcpy(rs + first, decoded.data(), sizeof(float) * (last - first));
    }
  }
  return out;
}

namespace {

absl::Status EncodeEmbedded(const TensorCodec& codec, const float* x, const std::vector<int64_t>& shape,
                            CompressedTensor* shard) {
  AtenExecutor executor;
  return codec.EncodeInto(x, shape, DType::kFloat32, &executor, nullptr, shard);
}

std::vector<int64_t> BucketLayoutOp(int64_t numel, int64_t parts, const std::string& config) {
  const BucketLayout layout = LayoutFor(*CodecFor(config), numel, parts);
  return {layout.shard_len, layout.packet_bytes};
}

at::Tensor BucketEncode(const at::Tensor& x, const c10::optional<at::Tensor>& residual, const std::string& config,
                        int64_t parts) {
  return EncodeBucket(x, residual, config, parts, &EncodeEmbedded);
}

at::Tensor BucketDecode(const at::Tensor& packets, const std::string& config, int64_t numel, int64_t parts, bool sum,
                        double scale) {
  TORCH_CHECK(
      packets.device().is_cpu() && packets.scalar_type() == at::kByte && packets.dim() == 2 && packets.is_contiguous(),
      "coset: packets must be a contiguous 2-D uint8 CPU tensor [count, packet_bytes]");
  const std::shared_ptr<const TensorCodec> held = CodecFor(config);
  const TensorCodec& codec = *held;
  const BucketLayout layout = LayoutFor(codec, numel, parts);
  TORCH_CHECK(packets.size(1) == layout.packet_bytes, "coset: packets have ", packets.size(1),
              " bytes each; a shard of this bucket has ", layout.packet_bytes);
  TORCH_CHECK(sum || packets.size(0) == parts, "coset: ", packets.size(0), " packets for a bucket of ", parts,
              " shards");
  const int64_t count = packets.size(0);
  // Every entry is written below (a sum starts from the first packet; shards tile the bucket).
  const int64_t out_len = sum ? layout.shard_len : numel;
  at::Tensor out = count == 0 ? at::zeros({out_len}, at::TensorOptions().dtype(at::kFloat))
                              : at::empty({out_len}, at::TensorOptions().dtype(at::kFloat));
  float* o = out.data_ptr<float>();
  CompressedTensor& shard = ShardsFor(layout, codec.params(), 1)[0];
  AtenExecutor executor;
  std::vector<float>& decoded = ThreadScratch().decoded;
  decoded.resize(layout.shard_len);
  const float s = static_cast<float>(scale);
  for (int64_t k = 0; k < count; ++k) {
    Check(ReadPacket(layout, packets.data_ptr<uint8_t>() + k * layout.packet_bytes, layout.packet_bytes, &shard));
    // sum: accumulate into the shard; else shard k lands at k * shard_len, cut at numel. A first
    // term is 0 + s * v, the float a zeroed output accumulating it held (-0 becomes +0).
    const int64_t first = sum ? 0 : k * layout.shard_len;
    const int64_t last = sum ? layout.shard_len : std::min(numel, first + layout.shard_len);
    const bool accumulate = sum && k > 0;
    if (last - first == layout.shard_len) {  // a whole shard: decoded and scaled (and summed) in one pass
      Check(codec.Decode(shard, o + first, &executor, TensorCodec::Epilogue{accumulate ? o + first : nullptr, s}));
      continue;
    }
    // The shard cut at numel (never a sum): decoded and scaled in the scratch row, then its first
    // entries copied.
    Check(codec.Decode(shard, decoded.data(), &executor, TensorCodec::Epilogue{nullptr, s}));
    std::memcpy(o + first, decoded.data(), sizeof(float) * (last - first));
  }
  return out;
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

at::Tensor BlockAbsMaxOp(const at::Tensor& x, const c10::optional<at::Tensor>& residual, const std::string& config) {
  CheckFlatFloat(x, "x");
  const ExactSumSpec spec = SpecFor(config, 1, 0);
  const float* r = ResidualOrNull(residual, x);
  at::Tensor out = at::empty({spec.Blocks(x.numel())}, at::TensorOptions().dtype(at::kFloat));
  at::parallel_for(0, out.numel(), 64, [&](int64_t begin, int64_t end) {
    BlockAbsMax(spec, x.data_ptr<float>(), r, x.numel(), begin, end, out.data_ptr<float>());
  });
  return out;
}

at::Tensor ExactSumEncode(const at::Tensor& x, const c10::optional<at::Tensor>& residual, const at::Tensor& scales,
                          const std::string& config, int64_t world, int64_t bound) {
  CheckFlatFloat(x, "x");
  const ExactSumSpec spec = SpecFor(config, world, bound);
  CheckScales(spec, scales, x.numel());
  float* r = ResidualOrNull(residual, x);
  at::Tensor words = at::empty({spec.Words(x.numel())}, at::TensorOptions().dtype(at::kLong));
  at::parallel_for(0, spec.Units(x.numel()), 256, [&](int64_t begin, int64_t end) {
    QuantizeToWords(spec, x.data_ptr<float>(), r, x.numel(), scales.data_ptr<float>(), begin, end,
                    words.data_ptr<int64_t>());
  });
  return words;
}

at::Tensor ExactSumDecode(const at::Tensor& words, const at::Tensor& scales, const std::string& config, int64_t world,
                          int64_t bound, int64_t numel) {
  const ExactSumSpec spec = SpecFor(config, world, bound);
  TORCH_CHECK(numel >= 0 && numel <= kMaxElements, "coset: numel out of range: ", numel);
  TORCH_CHECK(words.device().is_cpu() && words.scalar_type() == at::kLong && words.dim() == 1 &&
                  words.is_contiguous() && words.numel() == spec.Words(numel),
              "coset: words must be a contiguous 1-D int64 CPU tensor of ", spec.Words(numel), " words");
  CheckScales(spec, scales, numel);
  at::Tensor out = at::empty({numel}, at::TensorOptions().dtype(at::kFloat));
  at::parallel_for(0, spec.Units(numel), 256, [&](int64_t begin, int64_t end) {
    WordsToValues(spec, words.data_ptr<int64_t>(), numel, scales.data_ptr<float>(), static_cast<int>(world),
                  1.0f / static_cast<float>(world), begin, end, out.data_ptr<float>());
  });
  return out;
}

}  // namespace

TORCH_LIBRARY_FRAGMENT(coset, m) {
  m.def("bucket_layout(int numel, int parts, str config) -> int[]");
  m.def("bucket_encode(Tensor x, Tensor(a!)? residual, str config, int parts) -> Tensor");
  m.def("bucket_decode(Tensor packets, str config, int numel, int parts, bool sum, float scale) -> Tensor");
  m.def("block_absmax(Tensor x, Tensor? residual, str config) -> Tensor");
  m.def("exact_sum_encode(Tensor x, Tensor(a!)? residual, Tensor scales, str config, int world, int bound) -> Tensor");
  m.def("exact_sum_decode(Tensor words, Tensor scales, str config, int world, int bound, int numel) -> Tensor");
}

TORCH_LIBRARY_IMPL(coset, CompositeExplicitAutograd, m) { m.impl("bucket_layout", &BucketLayoutOp); }

TORCH_LIBRARY_IMPL(coset, CPU, m) {
  m.impl("bucket_encode", &BucketEncode);
  m.impl("bucket_decode", &BucketDecode);
  m.impl("block_absmax", &BlockAbsMaxOp);
  m.impl("exact_sum_encode", &ExactSumEncode);
  m.impl("exact_sum_decode", &ExactSumDecode);
}

}  // namespace coset
