#include "core/bucket_packet.h"

#include <algorithm>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "core/simd/dispatch.h"
#include "core/simd/wire_kernels.h"
#include "core/status_macros.h"
#include "core/symbol_packing.h"

namespace coset {
namespace {

// Eight counters of `bits` bits (1..6), packed little-endian in the low 8 * bits bits of a word,
// to and from one counter per byte: SWAR shifts, no per-counter loop. 3 bits (the DDP hook's
// t_max = 7) spreads 24 bits to 2 x 12, 4 x 6 and 8 x 3.
uint64_t UnpackCounters(uint64_t packed, int bits) {
  if (bits == 3) {
    uint64_t x = packed & 0xFFFFFFull;
    x = (x | (x << 20)) & 0x00000FFF00000FFFull;
    x = (x | (x << 10)) & 0x003F003F003F003Full;
    return (x | (x << 5)) & 0x0707070707070707ull;
  }
  uint64_t out = 0;
  const uint64_t mask = (uint64_t{1} << bits) - 1;
  for (int j = 0; j < 8; ++j) out |= ((packed >> (j * bits)) & mask) << (8 * j);
  return out;
}

uint64_t PackCounters(uint64_t bytes, int bits) {
  if (bits == 3) {
    uint64_t x = bytes & 0x0707070707070707ull;
    x = (x | (x >> 5)) & 0x003F003F003F003Full;
    x = (x | (x >> 10)) & 0x00000FFF00000FFFull;
    return (x | (x >> 20)) & 0xFFFFFFull;
  }
  uint64_t out = 0;
  for (int j = 0; j < 8; ++j) out |= ((bytes >> (8 * j)) & 0xFF) << (j * bits);
  return out;
}

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
  // Rows of about kPacketRowEntries, whole scale blocks each; a small shard is one row, a large one
  // takes long rows. The threshold is a multiple of the short row, so a shard of short rows is never
  // past it: a shard re-encoded as a bucket of its own (reduce_scatter) keeps the same rows.
  const int64_t full_row = RoundUp(kPacketRowEntries, params.block);
  const int64_t long_row = kLongRowFactor * full_row;
  if (per_part > kLongRowsMin * long_row) {
    l.row_len = long_row;
  } else {
    l.row_len = per_part <= full_row ? RoundUp(per_part, params.block) : full_row;
  }
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

absl::Status ShapeShardTensor(const BucketLayout& layout, const CodecParams& params, CompressedTensor* t) {
  t->params = params;
  t->shape = layout.shard_shape();
  COSET_ASSIGN_OR_RETURN(t->layout, Layout::Make(params, t->shape));
  t->row_bytes = PackingOf(params, t->layout).row_bytes();
  t->scales.resize(layout.scale_bytes / 2);
  t->t.resize(t->layout.rows * t->layout.chunks_per_row);
  t->symbols.resize(layout.symbol_bytes);
  return absl::OkStatus();
}

absl::StatusOr<CompressedTensor> ShardTensor(const BucketLayout& layout, const CodecParams& params) {
  CompressedTensor t;
  COSET_RETURN_IF_ERROR(ShapeShardTensor(layout, params, &t));
  return t;
}

void WritePacket(const BucketLayout& layout, const CompressedTensor& shard, uint8_t* out) {
  // Scales: bf16 little-endian (the hosts we build for are little-endian, as the blob format).
  std::memcpy(out, shard.scales.data(), layout.scale_bytes);
  uint8_t* t_out = out + layout.scale_bytes;
  std::memset(t_out, 0, layout.t_bytes);
  if (layout.t_bits > 0) {
    const int bits = layout.t_bits;
    const int64_t count = static_cast<int64_t>(shard.t.size());
    // Eight counters fill exactly `bits` bytes: whole groups go through one 64-bit word (64 at a
    // time with AVX-512).
    int64_t k = 0;
    if (ActiveSimdLevel() >= SimdLevel::kAvx512) {
      k = count / 64 * 64;
      avx512::PackCounters(shard.t.data(), count / 64, bits, t_out);
    }
    for (; k + 8 <= count; k += 8) {
      uint64_t word;
      std::memcpy(&word, shard.t.data() + k, 8);
      word = PackCounters(word, bits);
      uint8_t* at = t_out + k / 8 * bits;
      for (int b = 0; b < bits; ++b) at[b] = static_cast<uint8_t>(word >> (8 * b));  // little-endian
    }
    for (int64_t bit = k * bits; k < count; ++k, bit += bits) {
      // A counter never straddles more than two bytes (t_bits <= 6).
      const uint32_t v = static_cast<uint32_t>(shard.t[k]) << (bit & 7);
      t_out[bit >> 3] |= static_cast<uint8_t>(v);
      if ((bit & 7) + bits > 8) t_out[(bit >> 3) + 1] |= static_cast<uint8_t>(v >> 8);
    }
  }
  std::memcpy(t_out + layout.t_bytes, shard.symbols.data(), layout.symbol_bytes);
}

absl::StatusOr<CompressedTensorView> ReadPacketInPlace(const BucketLayout& layout, const uint8_t* data, int64_t size,
                                                       CompressedTensor* shard) {
  if (size != layout.packet_bytes) {
    return absl::InvalidArgumentError(
        absl::StrCat("bucket packet has ", size, " bytes; this layout needs ", layout.packet_bytes));
  }
  shard->scales.resize(layout.scale_bytes / 2);
  std::memcpy(shard->scales.data(), data, layout.scale_bytes);
  const uint8_t* t_in = data + layout.scale_bytes;
  const int bits = layout.t_bits;
  const uint32_t mask = (1u << bits) - 1;
  const int64_t count = static_cast<int64_t>(shard->t.size());
  uint8_t* t = shard->t.data();
  // Whole groups of eight counters from one 64-bit word (see WritePacket), then the rest.
  int64_t k = 0;
  uint32_t largest = 0;
  if (bits > 0 && ActiveSimdLevel() >= SimdLevel::kAvx512) {
    // 64 counters per step (the portable SWAR loop below was a fifth of a gathered packet's decode).
    k = count / 64 * 64;
    largest = avx512::UnpackCounters(t_in, count / 64, bits, t);
  }
  if (bits > 0) {
    uint64_t over = 0;  // bit 7 of byte j set when counter j of some group exceeds t_max
    const uint64_t above = 0x0101010101010101ull * static_cast<uint64_t>(0x7F - shard->params.t_max);
    for (; k + 8 <= count; k += 8) {
      // `bits` bytes, little-endian (byte loads: a variable-length memcpy would be a libc call).
      const uint8_t* at = t_in + k / 8 * bits;
      uint64_t word = 0;
      for (int b = 0; b < bits; ++b) word |= static_cast<uint64_t>(at[b]) << (8 * b);
      word = UnpackCounters(word, bits);
      over |= word + above;  // bytes <= 63 and t_max <= 63: no carry between bytes
      std::memcpy(t + k, &word, 8);
    }
    if ((over & 0x8080808080808080ull) != 0) largest = *std::max_element(t, t + k);
  }
  for (int64_t bit = k * bits; k < count; ++k, bit += bits) {
    uint32_t v = 0;
    if (bits > 0) {
      v = t_in[bit >> 3] >> (bit & 7);
      if ((bit & 7) + bits > 8) v |= static_cast<uint32_t>(t_in[(bit >> 3) + 1]) << (8 - (bit & 7));
      v &= mask;
    }
    largest = std::max(largest, v);
    t[k] = static_cast<uint8_t>(v);
  }
  if (largest > static_cast<uint32_t>(shard->params.t_max)) {
    return absl::DataLossError(
        absl::StrCat("bucket packet: overload counter ", largest, " exceeds t_max ", shard->params.t_max));
  }
  CompressedTensorView view(*shard);
  view.t_checked = true;
  // The symbols in place, unless decoding would read them as misaligned 16-bit words.
  const uint8_t* symbols = t_in + layout.t_bytes;
  const SymbolPacking packing = PackingOf(shard->params, shard->layout);
  if (packing.bits_per_symbol_if_pow2() == 16 && reinterpret_cast<uintptr_t>(symbols) % alignof(uint16_t) != 0) {
    shard->symbols.assign(symbols, symbols + layout.symbol_bytes);
    symbols = shard->symbols.data();
  }
  view.symbols = absl::MakeConstSpan(symbols, layout.symbol_bytes);
  return view;
}

absl::Status ReadPacket(const BucketLayout& layout, const uint8_t* data, int64_t size, CompressedTensor* shard) {
  COSET_ASSIGN_OR_RETURN(const CompressedTensorView view, ReadPacketInPlace(layout, data, size, shard));
  if (view.symbols.data() != shard->symbols.data()) shard->symbols.assign(view.symbols.begin(), view.symbols.end());
  return absl::OkStatus();
}

}  // namespace coset
