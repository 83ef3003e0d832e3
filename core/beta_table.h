// Default beta per (lattice, q, M, scale mode), measured by //bench:beta_search with the
// reference criterion (Kaplan & Ordentlich's grid beta_k = beta_min (1 + 0.05 k), k < 40,
// minimising MSE * 2^(2R) on N(0,1) data, R = total stored bits per entry).
#pragma once

#include "core/lattice.h"
#include "core/params.h"

namespace coset {

// beta_min = sqrt(d / (d + 2)) / (q^M sqrt(sigma2_L)), the bottom of the reference grid.
double BetaGridMin(const Lattice& lattice, int q, int levels);

// The measured default; configurations outside the table fall back to kFallbackBetaRatio * beta_min
// (see README "Choosing beta"). For scale == absmax, betas are relative to the block's absmax.
float DefaultBeta(const Lattice& lattice, int q, int levels, ScaleMode scale);
bool HasMeasuredBeta(const Lattice& lattice, int q, int levels, ScaleMode scale);

// Median of (table beta / beta_min) over the measured rms entries.
inline constexpr double kFallbackBetaRatio = 1.3;

}  // namespace coset
