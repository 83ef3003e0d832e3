// The entropy coder of the per-chunk overload counters T (format: core/FORMAT.md, "Overload
// counters T"): static-frequency rANS, four interleaved lanes, in independent segments.
//
// Why this design: T is a small alphabet (mostly 0: 73 % of a D4 code's counters, 57 % of an E8
// one's) whose distribution is steady across a segment, so one frequency table per segment costs
// less than adapting (format version 1's adaptive binary coder wrote 1.4 % more bytes for a 64 MiB
// D4 code). Decoding a value is a table lookup, a multiply and an add, with no branch on the data;
// four lanes with streams of their own are four independent dependency chains. The adaptive coder
// took one data-dependent branch per unary bit, and the daemon spent 34 % of its CPU time in it.
#pragma once

#include <cstdint>
#include <vector>

#include "absl/status/statusor.h"
#include "core/executor.h"

namespace coset {

// The counters are coded in independent segments of kOverloadSegment values, so large tensors
// code and decode them in parallel (64 segments for a 64 MiB float32 tensor's D4 code).
inline constexpr int64_t kOverloadSegment = int64_t{1} << 16;

// t: values in [0, t_max]. Returns the coded bytes. executor may be null (serial). histogram (when
// not null) is set to the counts of the values 0..t_max: the coder counts them anyway, so a caller
// that wants them (cosetd's metrics) needs no second pass.
std::vector<uint8_t> EncodeOverloadCounts(const uint8_t* t, int64_t count, int t_max, Executor* executor = nullptr,
                                          std::vector<int64_t>* histogram = nullptr);
// Adds the counts of the values in t[0, n) to histogram[256]: what a segment's frequency table and
// SummarizeOverloads start from.
void CountValues(const uint8_t* t, int64_t n, int64_t* histogram);

// Decodes `count` values; fails (DataLoss) on any stream an encoder could not have written: bytes
// that end early or run over, a frequency table that does not sum to its scale, a value above
// t_max, a lane that does not end in its initial state.
absl::Status DecodeOverloadCounts(const uint8_t* data, int64_t size, int64_t count, int t_max, uint8_t* t,
                                  Executor* executor = nullptr);

}  // namespace coset
