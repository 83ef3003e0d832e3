// Bucket packets: the fixed-size wire form of a gradient bucket, or of one shard of it, for the
// collectives of the DDP hook (core/FORMAT.md "Bucket packets").
//
// A `.coset` blob range-codes its overload counters T, so its length is known only after encoding;
// a collective needs every rank's length up front, which costs a blocking size exchange per
// bucket. A packet stores T in a fixed number of bits instead and leaves out the header (every rank
// knows the codec parameters and the bucket's size), so its length follows from (numel, parts,
// params) alone and ranks allocate their receive buffers before they encode.
//
// Layout of a bucket of `numel` floats cut into `parts` shards: each shard holds shard_len
// consecutive entries (the last one zero-padded), coded as a [shard_len / row_len, row_len] tensor
// whose rows are encoded independently (threads over rows).
#pragma once

#include <cstdint>
#include <vector>

#include "absl/status/statusor.h"
#include "core/tensor_codec.h"

namespace coset {

// Entries per coded row of a packet, before rounding up to a multiple of the scale block.
inline constexpr int64_t kPacketRowEntries = 1024;
// Shards of more than kLongRowsMin long rows (kLongRowFactor x the rows above: 4096 entries, 512 KiB
// of floats in all at D4's block) are coded in long rows. Each row's fixed work (the overload
// ramp's retry rounds gather a row's overloaded chunks into batches of 16; the decoders' per-row
// set-up) is then spread over 4 x the entries: the DDP hook's ops on a 46 MB bucket ran 10-18 %
// faster, on the MLP's 0.94 MB 9 %. Smaller shards keep the short rows, so that rounding a shard
// up to whole rows never pads more than 1/32 of it.
inline constexpr int64_t kLongRowFactor = 4;
inline constexpr int64_t kLongRowsMin = 32;

struct BucketLayout {
  int64_t numel = 0;      // entries of the bucket
  int parts = 1;          // shards
  int64_t row_len = 0;    // entries per coded row (a multiple of the scale block)
  int64_t shard_len = 0;  // entries per shard (a multiple of row_len)
  int t_bits = 0;         // bits per overload counter: bitwidth(t_max)
  int64_t scale_bytes = 0, t_bytes = 0, symbol_bytes = 0;
  int64_t packet_bytes = 0;  // per shard

  std::vector<int64_t> shard_shape() const { return {shard_len / row_len, row_len}; }
  // params must be resolved (TensorCodec::params()); parts >= 1; numel >= 0.
  static absl::StatusOr<BucketLayout> Make(const CodecParams& params, int64_t numel, int parts);
};

// Writes a coded shard (shape layout.shard_shape()) as a packet of layout.packet_bytes bytes.
void WritePacket(const BucketLayout& layout, const CompressedTensor& shard, uint8_t* out);

// Reads a packet of `size` bytes into `shard`, whose params, shape, layout and row_bytes are
// already those of a layout.shard_shape() tensor (ShardTensor below); the sections are resized.
// Fails on a wrong size or a counter above t_max (decode then checks the symbols).
absl::Status ReadPacket(const BucketLayout& layout, const uint8_t* data, int64_t size, CompressedTensor* shard);
// The same without copying the symbols, a packet's largest section: the scales and counters are
// read into `shard` as above, and the view returned reads the symbols in place from `data`, which
// must outlive it (a sum of the W packets a rank receives decodes straight from its receive buffer).
absl::StatusOr<CompressedTensorView> ReadPacketInPlace(const BucketLayout& layout, const uint8_t* data, int64_t size,
                                                       CompressedTensor* shard);

// An empty coded shard of this layout, ready for EncodeInto or ReadPacket.
absl::StatusOr<CompressedTensor> ShardTensor(const BucketLayout& layout, const CodecParams& params);
// The same in place: `t` takes this layout's metadata and section sizes, keeping its sections'
// capacity (the DDP hook reuses its shards from call to call).
absl::Status ShapeShardTensor(const BucketLayout& layout, const CodecParams& params, CompressedTensor* t);

}  // namespace coset
