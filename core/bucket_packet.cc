#include "core/bucket_packet.h"

#include <algorithm>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "core/status_macros.h"
#include "core/symbol_packing.h"

namespace coset {
namespace {

int64_t RoundUp(int64_t value, int64_t multiple) { return (value + multiple - 1) / multiple * multiple; }

}  // namespace

absl::StatusOr<BucketLayout> BucketLayout::Make(const CodecParams& params, int64_t numel, int parts) {
  COSET_RETURN_IF_ERROR(ValidateParams(params));
  if (params.block <= 0) return absl::InvalidArgumentError("bucket layout needs resolved parameters (block > 0)");
  if (parts < 1) return absl::InvalidArgumentError(absl::StrCat("parts must be >= 1, got ", parts));
  if (numel < 0 || numel > kMaxElements) {
    return absl::InvalidArgumentError(absl::StrCat("bucket of ", numel, " entries is out of range"));
  }
  BucketLayout l;
  l.numel = numel;
  l.parts = parts;
  const int64_t per_part = std::max<int64_t>(1, (numel + parts - 1) / parts);
  // Rows of about kPacketRowEntries, whole scale blocks each; a small shard is one row.
  const int64_t full_row = RoundUp(kPacketRowEntries, params.block);
  l.row_len = per_part <= full_row ? RoundUp(per_part, params.block) : full_row;
  l.shard_len = RoundUp(per_part, l.row_len);
  l.t_bits = BitWidth(params.t_max);
  COSET_ASSIGN_OR_RETURN(Layout shard, Layout::Make(params, l.shard_shape()));
  const SymbolPacking packing = PackingOf(params, shard);
  l.scale_bytes = params.scale == ScaleMode::kNone ? 0 : 2 * shard.rows * shard.blocks_per_row;
  l.t_bytes = (shard.rows * shard.chunks_per_row * l.t_bits + 7) / 8;
  l.symbol_bytes = shard.rows * packing.row_bytes();
  l.packet_bytes = l.scale_bytes + l.t_bytes + l.symbol_bytes;
  return l;
}

absl::StatusOr<CompressedTensor> ShardTensor(const BucketLayout& layout, const CodecParams& params) {
  CompressedTensor t;
  t.params = params;
  t.shape = layout.shard_shape();
  COSET_ASSIGN_OR_RETURN(t.layout, Layout::Make(params, t.shape));
  t.row_bytes = PackingOf(params, t.layout).row_bytes();
  t.scales.resize(layout.scale_bytes / 2);
  t.t.resize(t.layout.rows * t.layout.chunks_per_row);
  t.symbols.resize(layout.symbol_bytes);
  return t;
}

void WritePacket(const BucketLayout& layout, const CompressedTensor& shard, uint8_t* out) {
  // Scales: bf16 little-endian (the hosts we build for are little-endian, as the blob format).
  std::memcpy(out, shard.scales.data(), layout.scale_bytes);
  uint8_t* t_out = out + layout.scale_bytes;
  std::memset(t_out, 0, layout.t_bytes);
  if (layout.t_bits > 0) {
    int64_t bit = 0;
    for (const uint8_t t : shard.t) {
      // A counter never straddles more than two bytes (t_bits <= 6).
      const uint32_t v = static_cast<uint32_t>(t) << (bit & 7);
      t_out[bit >> 3] |= static_cast<uint8_t>(v);
      if ((bit & 7) + layout.t_bits > 8) t_out[(bit >> 3) + 1] |= static_cast<uint8_t>(v >> 8);
      bit += layout.t_bits;
    }
  }
  std::memcpy(t_out + layout.t_bytes, shard.symbols.data(), layout.symbol_bytes);
}

absl::Status ReadPacket(const BucketLayout& layout, const uint8_t* data, int64_t size, CompressedTensor* shard) {
  if (size != layout.packet_bytes) {
    return absl::InvalidArgumentError(
        absl::StrCat("bucket packet has ", size, " bytes; this layout needs ", layout.packet_bytes));
  }
  shard->scales.resize(layout.scale_bytes / 2);
  std::memcpy(shard->scales.data(), data, layout.scale_bytes);
  const uint8_t* t_in = data + layout.scale_bytes;
  const uint32_t mask = (1u << layout.t_bits) - 1;
  int64_t bit = 0;
  for (uint8_t& t : shard->t) {
    uint32_t v = 0;
    if (layout.t_bits > 0) {
      v = t_in[bit >> 3] >> (bit & 7);
      if ((bit & 7) + layout.t_bits > 8) v |= static_cast<uint32_t>(t_in[(bit >> 3) + 1]) << (8 - (bit & 7));
      v &= mask;
      bit += layout.t_bits;
    }
    if (v > static_cast<uint32_t>(shard->params.t_max)) {
      return absl::DataLossError(
          absl::StrCat("bucket packet: overload counter ", v, " exceeds t_max ", shard->params.t_max));
    }
    t = static_cast<uint8_t>(v);
  }
  shard->symbols.resize(layout.symbol_bytes);
  std::memcpy(shard->symbols.data(), t_in + layout.t_bytes, layout.symbol_bytes);
  return absl::OkStatus();
}

}  // namespace coset
