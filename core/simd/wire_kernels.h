// AVX-512 kernels of the DDP wire forms: core/exact_sum.cc (exact integer sums) and
// core/bucket_packet.cc (packets' overload counters), picked at run time through simd/dispatch.h.
// Each gives exactly what the portable loops give (tests/core/exact_sum_test.cc and
// bucket_packet_test.cc run every level the CPU has).
#pragma once

#include <cstdint>

namespace coset {
namespace avx512 {

// D4 lattice points of v = x + residual (x + 0.0f without one) for the first n entries of one
// scale block, n counted from a chunk boundary: y = v * to_lattice (NaN read as 0), the nearest D4
// point (exact_sum.cc's rounding and parity rule), clamped to +-bound, into points[0, RoundUp(n, 4))
// (entries past n are zeros of the last chunk); residual[0, n) (if not null) = v - point *
// from_lattice. 16 entries (four chunks, one per 128-bit lane) per step, masked at the end.
void QuantizeD4Run(const float* x, float* residual, int64_t n, float to_lattice, float from_lattice, int32_t bound,
                   int32_t* points);

// values[i] = field i of the packed words minus offset, for the whole groups of eight words among
// count entries (count a multiple of F = 63 / bits), fields of bits <= 8; returns the entries done
// (the caller unpacks the rest). A multishift takes each word's fields out as bytes, a byte permute
// puts eight words' fields in order.
int64_t UnpackFields(const int64_t* words, int64_t count, int bits, int32_t offset, int32_t* values);

// Unpacks `groups` groups of 64 counters of `bits` bits (1..8), packed little-endian (8 * bits
// bytes per group), one counter per byte into out; returns the largest counter. VBMI: a byte
// permute gives each 64-bit lane the `bits` bytes of its eight counters, a multishift takes the
// eight fields out.
uint8_t UnpackCounters(const uint8_t* in, int64_t groups, int bits, uint8_t* out);

// The inverse for bits 1..6: `groups` groups of 64 counters (one per byte, each below 2^bits) into
// 8 * bits bytes each. Multiply-adds join neighbours (2 -> 4 -> 8 counters per lane), a byte
// permute packs each 64-bit lane's `bits` bytes.
void PackCounters(const uint8_t* in, int64_t groups, int bits, uint8_t* out);

}  // namespace avx512
}  // namespace coset
