#include "core/evaluation.h"

#include <cmath>
#include <random>

#include "core/beta_table.h"
#include "core/format.h"
#include "core/status_macros.h"

namespace coset {

absl::StatusOr<EvalResult> Evaluate(const TensorCodec& codec, const float* x, const std::vector<int64_t>& shape,
                                    Executor* executor) {
  EncodeStats stats;
  COSET_ASSIGN_OR_RETURN(CompressedTensor t, codec.Encode(x, shape, DType::kFloat32, executor, &stats));
  const std::vector<uint8_t> blob = Serialize(t);
  COSET_ASSIGN_OR_RETURN(CompressedTensor parsed, Parse(blob.data(), blob.size()));
  std::vector<float> y(parsed.layout.numel);
  COSET_RETURN_IF_ERROR(codec.Decode(parsed, y.data(), executor));
  EvalResult r = MeasureReconstruction(x, y.data(), static_cast<int64_t>(y.size()));
  r.rate_bits_per_entry = NominalBitsPerEntry(parsed, SummarizeOverloads(parsed));
  r.stored_bits_per_entry = StoredBitsPerEntry(t, blob.size());
  r.overload_rate = stats.first_try_overload_rate();
  r.beta = t.params.beta;
  return r;
}

EvalResult MeasureReconstruction(const float* x, const float* y, int64_t n) {
  double err = 0, energy = 0;
  for (int64_t i = 0; i < n; ++i) {
    const double e = static_cast<double>(x[i]) - y[i];
    err += e * e;
    energy += static_cast<double>(x[i]) * x[i];
  }
  EvalResult r;
  r.samples = n;
  r.mse = n == 0 ? 0.0 : err / static_cast<double>(n);
  r.snr_db = err > 0 ? 10.0 * std::log10(energy / err) : INFINITY;
  return r;
}

std::vector<int64_t> SampleShape(int64_t samples) {
  if (samples % 1024 == 0 && samples >= 1024) return {samples / 1024, 1024};
  return {samples};
}

std::vector<float> GaussianSamples(int64_t samples, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> gauss(0.0f, 1.0f);
  std::vector<float> x(samples);
  for (float& v : x) v = gauss(rng);
  return x;
}

absl::StatusOr<EvalResult> SearchBeta(CodecParams params, int64_t samples, uint64_t seed, Executor* executor) {
  COSET_RETURN_IF_ERROR(ValidateParams(params));
  const Lattice& lattice = params.lattice;
  const std::vector<float> x = GaussianSamples(samples, seed);
  double start = BetaGridMin(lattice, params.q, params.M);
  if (params.scale == ScaleMode::kAbsMax) start /= 4.0;
  EvalResult best;
  double best_cost = INFINITY;
  for (int k = 0; k < 40; ++k) {
    params.beta = static_cast<float>(start * (1.0 + 0.05 * k));
    COSET_ASSIGN_OR_RETURN(TensorCodec codec, TensorCodec::Create(params));
    COSET_ASSIGN_OR_RETURN(EvalResult r, Evaluate(codec, x.data(), SampleShape(samples), executor));
    // R as in the reference: M log2 q + H(T)/d, plus the bf16 scale bits when blocks are scaled.
    const double scale_bits = params.scale == ScaleMode::kNone ? 0.0 : 16.0 / codec.params().block;
    const double cost = r.mse * std::exp2(2.0 * (r.rate_bits_per_entry + scale_bits));
    if (cost < best_cost) {
      best_cost = cost;
      best = r;
    }
  }
  return best;
}

}  // namespace coset
