// Adaptive binary range coder (the LZMA design: 11-bit probabilities, shift-5 adaptation) used to
// store the per-chunk overload counters T close to their entropy. T is written in unary, one
// adaptive context per bit position, so a stream that is mostly T = 0 costs far less than one bit
// per chunk.
#pragma once

#include <cstdint>
#include <vector>

#include "absl/status/statusor.h"
#include "core/executor.h"

namespace coset {

// The counters are coded in independent segments of kOverloadSegment values, so large tensors
// code and decode them in parallel (format: core/FORMAT.md).
inline constexpr int64_t kOverloadSegment = int64_t{1} << 20;

// t: values in [0, t_max]. Returns the coded bytes. executor may be null (serial).
std::vector<uint8_t> EncodeOverloadCounts(const uint8_t* t, int64_t count, int t_max, Executor* executor = nullptr);
// Decodes `count` values; fails if the bytes end early or hold a value above t_max.
absl::Status DecodeOverloadCounts(const uint8_t* data, int64_t size, int64_t count, int t_max, uint8_t* t,
                                  Executor* executor = nullptr);

}  // namespace coset
