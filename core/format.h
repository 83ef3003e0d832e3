// The compressed-tensor format (`.coset` blobs), version 2. The spec is core/FORMAT.md; this is
// its only implementation. Little-endian throughout, CRC-32C over everything before the trailer.
#pragma once

#include <cstdint>
#include <vector>

#include "absl/status/statusor.h"
#include "core/limits.h"
#include "core/tensor_codec.h"

namespace coset {

inline constexpr char kFormatMagic[4] = {'C', 'S', 'E', 'T'};
inline constexpr uint16_t kFormatVersion = 2;

// executor (optional) codes the overload-counter segments in parallel (kOverloadSegment counters each).
std::vector<uint8_t> Serialize(const CompressedTensor& tensor, Executor* executor = nullptr);

// Two-step serialization into caller-owned memory (e.g. a shared-memory region), without an
// intermediate buffer: the overload-counter stream first, then the blob.
struct SerializationPlan {
  std::vector<uint8_t> t_stream;
  std::vector<int64_t> t_histogram;  // counts of T = 0..t_max: SummarizeOverloads' histogram, counted on the way
  size_t size = 0;                   // bytes of the blob
};
// executor (optional) codes the overload-counter segments in parallel.
SerializationPlan PlanSerialization(const CompressedTensor& tensor, Executor* executor = nullptr);
// out: plan.size bytes.
void SerializeTo(const CompressedTensor& tensor, const SerializationPlan& plan, uint8_t* out);

// Shape and dtype from a blob's header, without decoding its sections (checks magic, version
// and sizes only; Parse validates everything).
struct BlobHeader {
  std::vector<int64_t> shape;
  int64_t numel = 0;
  DType dtype = DType::kFloat32;
  // What Parse allocates for a blob that passes its checks (scales, one counter per chunk, symbols):
  // from the section table and the shape, which Parse checks against each other before allocating.
  // 0 when the header is too short to tell.
  int64_t parsed_bytes = 0;
};
absl::StatusOr<BlobHeader> PeekHeader(const uint8_t* data, size_t size);

// Parses and fully validates a blob: magic, version, checksum, every field and section size.
// Truncated, corrupted or wrong-version input returns an error naming what is wrong.
absl::StatusOr<CompressedTensor> Parse(const uint8_t* data, size_t size, Executor* executor = nullptr);
// The same into *out, reusing the capacity of its buffers (every byte of the result is written).
// On failure *out holds no tensor.
absl::Status ParseInto(const uint8_t* data, size_t size, Executor* executor, CompressedTensor* out);

// Bits on disk per original entry of a serialized tensor.
double StoredBitsPerEntry(const CompressedTensor& tensor, size_t blob_size);

}  // namespace coset
