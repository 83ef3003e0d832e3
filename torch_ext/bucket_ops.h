// The bucket-encoding path shared by the embedded DDP op (ddp_ops.cc) and the one through cosetd
// (daemon_ops.cc): they differ only in who encodes a shard.
#pragma once

#include <ATen/ATen.h>

#include <functional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "core/tensor_codec.h"

namespace coset {

// Encodes one shard (shape {rows, row_len}) into `shard` with `codec`'s parameters.
using ShardEncoder = std::function<absl::Status(const TensorCodec& codec, const float* x,
                                                const std::vector<int64_t>& shape, CompressedTensor* shard)>;

// x + residual (residual optional) cut into `parts` shards, each encoded by `encode` (or, when
// `encode` is empty, in-process with the residual update fused into the encode) and written as a
// bucket packet: uint8 [parts, packet_bytes]. The residual, when given, becomes x + residual minus
// its decoded value (error feedback). packets: where to write them (see ddp_ops.cc OutputFor), or none.
// skip (0..parts-1, or -1 for none): a shard left out (zeros, its residual unchanged).
at::Tensor EncodeBucket(const at::Tensor& x, const c10::optional<at::Tensor>& residual, const std::string& config,
                        int64_t parts, const ShardEncoder& encode, const c10::optional<at::Tensor>& packets = {},
                        int64_t skip = -1);

}  // namespace coset
