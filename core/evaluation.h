// Rate/distortion measurement of a codec configuration: the numbers behind `cosetctl eval`, the
// beta search and the accuracy benchmarks.
#pragma once

#include <cstdint>
#include <vector>

#include "absl/status/statusor.h"
#include "core/executor.h"
#include "core/tensor_codec.h"

namespace coset {

struct EvalResult {
  double rate_bits_per_entry = 0;    // nominal: M log2 q + H(T) / d
  double stored_bits_per_entry = 0;  // actual serialized size (header, scales, T stream, CRC)
  double mse = 0;                    // per entry
  double snr_db = 0;
  double overload_rate = 0;  // first try (T > 0)
  double beta = 0;
  int64_t samples = 0;
};

// Encodes, serializes, parses and decodes x (shape as given) and compares with the input.
absl::StatusOr<EvalResult> Evaluate(const TensorCodec& codec, const float* x, const std::vector<int64_t>& shape,
                                    Executor* executor = nullptr);

// samples, mse and snr_db of a reconstruction y of x (n values each); the other fields are left 0.
EvalResult MeasureReconstruction(const float* x, const float* y, int64_t n);

// `samples` iid N(0,1) entries (std::mt19937_64 seeded with `seed`), laid out as rows of 1024.
std::vector<float> GaussianSamples(int64_t samples, uint64_t seed);
std::vector<int64_t> SampleShape(int64_t samples);

// The reference beta criterion: over beta_k = start (1 + 0.05 k), k < 40 (start = beta_min, or
// beta_min / 4 for absmax scaling), pick the beta minimising MSE * 2^(2R),
// R = M log2 q + H(T)/d (+ 16/block scale bits when blocks are scaled).
absl::StatusOr<EvalResult> SearchBeta(CodecParams params, int64_t samples, uint64_t seed, Executor* executor = nullptr);

}  // namespace coset
