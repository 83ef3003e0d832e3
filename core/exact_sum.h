// Exact sums of W ranks' quantized gradients (the DDP hook's allreduce_codes mode; README
// "Computing on codes", shared/notes "Exact sums").
//
// Every rank scales each block of its gradient by the same shared scale s (the block's absmax, max-
// reduced over the ranks beforehand), quantizes each d-dim chunk to the nearest lattice point
//     p = Q_L(x / s * range)             (|x / s| <= 1, so every coordinate |y_j| <= range)
// and sends p in integral coordinates (f p: f = 1 for Z^n and D_n, 2 for E8, whose points are
// half-integers), |f p_j| <= bound. Each coordinate is stored offset by `bound` in a field of
// bitwidth(2 W bound) bits, floor(63 / bits) fields per int64 word. Fields never overflow, so an
// integer all-reduce(SUM) of the words adds the W ranks' points exactly, coordinate by coordinate,
// whatever W is; the average is s / (range f W) * (sum - W bound). Nothing shrinks a rank's step as
// W grows: each rank's error is that of W = 1, for log2(W) more bits per entry.
//
// With T = 0 and a point inside the code region, Q_L(y) is exactly HNLQ's decode(encode(y)) (the
// identity x_hat = Q_L(x) - q^M g_M). The default bound is the code region's span, f (q^M - 1)
// ("D4 q=4 M=2: -15..15"): M log2 q + 1 bits per coordinate at W = 1, plus log2 W. A2's points have
// irrational coordinates and are refused.
#pragma once

#include <cstdint>

#include "absl/status/statusor.h"
#include "core/lattice.h"
#include "core/params.h"

namespace coset {

struct ExactSumSpec {
  Lattice lattice = Lattice::D4();
  int dim = 4;
  int coordinate_factor = 1;  // integral coordinates are coordinate_factor * p
  int bound = 0;              // |integral coordinate| <= bound for one rank
  float range = 0.0f;         // x / s is scaled to [-range, range] before Q_L
  int world = 1;
  int bits = 0;             // bits per field: bitwidth(2 world bound)
  int fields_per_word = 0;  // floor(63 / bits), so a word's fields stay below the sign bit
  int block = 0;            // entries per shared scale (the codec's resolved block)
  int64_t unit = 0;         // entries per work unit: a whole number of chunks and of words

  // params: resolved (block > 0); bound 0 = f (q^M - 1), the code region's span.
  static absl::StatusOr<ExactSumSpec> Create(const CodecParams& params, int world, int bound = 0);

  int64_t Blocks(int64_t numel) const { return (numel + block - 1) / block; }
  int64_t Units(int64_t numel) const { return (numel + unit - 1) / unit; }
  int64_t Words(int64_t numel) const { return Units(numel) * (unit / fields_per_word); }
};

// Per block of spec.block entries: max |x + residual| (residual may be null), at least kMinStep.
// Blocks [begin, end); out indexed by block.
void BlockAbsMax(const ExactSumSpec& spec, const float* x, const float* residual, int64_t numel, int64_t begin,
                 int64_t end, float* out);

// Quantizes x + residual (residual may be null) of units [begin, end) into `words`, given the
// shared scales (Blocks(numel) of them). When residual is not null it receives x + residual minus
// its quantized value (error feedback).
void QuantizeToWords(const ExactSumSpec& spec, const float* x, float* residual, int64_t numel, const float* scales,
                     int64_t begin, int64_t end, int64_t* words);

// out[i] = the sum of `summed_ranks` ranks' quantized values (the all-reduced words), times
// `multiplier` (1 / W for the average). Units [begin, end).
void WordsToValues(const ExactSumSpec& spec, const int64_t* words, int64_t numel, const float* scales, int summed_ranks,
                   float multiplier, int64_t begin, int64_t end, float* out);

}  // namespace coset
