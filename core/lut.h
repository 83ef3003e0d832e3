// Lookup tables for inner products computed on HNLQ codes (Kaplan & Ordentlich 2025, §4).
//
// rep(b) is the coset representative of symbol b (codebook.h). For two encoded chunks
//   <x_hat, y_hat> = step_x step_y sum_{m, m'} q^(m + m') LUT[b_m(x), b_m'(y)],
// with the two-sided LUT[b, b'] = <rep(b), rep(b')> (q^(2s) entries). Z^n, D_n and E8 have integer
// Gram matrices, so that LUT is exact in the narrowest integer type that holds it; A2's is float.
// The one-sided LUT of a query chunk y is L_y[b] = <y, rep(b)> (q^s floats).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "core/codebook.h"
#include "core/limits.h"

namespace coset {

enum class LutValueType { kInt8, kInt16, kInt32, kFloat32 };
const char* LutValueTypeName(LutValueType type);

class TwoSidedLut {
 public:
  // Fails with RESOURCE_EXHAUSTED, naming the size, when q^(2s) entries exceed `max_bytes`.
  static absl::StatusOr<TwoSidedLut> Build(const Codebook& codebook, int64_t max_bytes = kDefaultLutBudgetBytes);

  LutValueType value_type() const { return type_; }
  int64_t num_symbols() const { return symbols_; }
  int64_t bytes() const;
  // LUT[a, b] as an integer (integral lattices) or as a float (A2).
  int32_t Int(uint32_t a, uint32_t b) const { return ints_[static_cast<size_t>(a) * symbols_ + b]; }
  float Float(uint32_t a, uint32_t b) const { return floats_[static_cast<size_t>(a) * symbols_ + b]; }
  bool integral() const { return type_ != LutValueType::kFloat32; }
  // The whole table, num_symbols x num_symbols row-major, widened: ints when integral(), else
  // floats (the other is empty). What a device copy uploads.
  const std::vector<int32_t>& ints() const { return ints_; }
  const std::vector<float>& floats() const { return floats_; }

 private:
  LutValueType type_ = LutValueType::kInt32;
  int64_t symbols_ = 0;
  // Values are kept widened for simple indexing; value_type() is the narrowest exact type, which
  // is what a packed kernel (and the footprint table) uses.
  std::vector<int32_t> ints_;
  std::vector<float> floats_;
};

// Entries and bytes of the two-sided LUT of (lattice, q) in its narrowest exact type, without
// building it (for the footprint table and budget messages).
struct LutFootprint {
  int64_t entries = 0;
  int64_t bytes = 0;
  LutValueType type = LutValueType::kInt32;
};
absl::StatusOr<LutFootprint> TwoSidedLutFootprint(const Codebook& codebook);

// One-sided LUT of one query chunk y (symbol_dim floats): out[b] = <y, rep(b)> for every symbol.
void BuildOneSidedLut(const Codebook& codebook, const float* y, float* out);
// Bytes of one one-sided LUT; fails with RESOURCE_EXHAUSTED above max_bytes.
absl::StatusOr<int64_t> OneSidedLutBytes(const Codebook& codebook, int64_t max_bytes = kDefaultLutBudgetBytes);

}  // namespace coset
