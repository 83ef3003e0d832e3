// Parameters of the HNLQ codec and the layout they induce on a tensor.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "core/lattice.h"

namespace coset {

enum class ScaleMode : uint8_t { kNone = 0, kRms = 1, kAbsMax = 2 };
// What happens to a chunk still overloaded after t_max ramp steps (see README "Overload").
enum class CapPolicy : uint8_t { kFail = 0, kZero = 1 };
enum class DType : uint8_t { kFloat32 = 0, kFloat64 = 1 };

inline constexpr int kMaxLevels = 8;      // M: digits of one chunk fit a 64-bit symbol budget per level
inline constexpr int kMaxTMax = 63;       // T is stored in 6 bits of model context, one byte in memory
inline constexpr int kMaxRank = 8;
inline constexpr int64_t kMaxBlock = 1 << 16;
inline constexpr int kDefaultBlock = 256;

struct CodecParams {
  std::string lattice = "D4";
  int q = 4;
  int levels = 2;                      // M
  float beta = 0.0f;                   // 0 = the default for (lattice, q, M, scale) from beta_table.h
  float alpha = 1.0f / 3.0f;           // overload ramp: chunk step grows by 2^alpha per retry
  int block = 0;                       // entries per scale block; 0 = 256 rounded down to a multiple of d
  ScaleMode scale = ScaleMode::kRms;
  bool rotate = false;                 // randomized Hadamard rotation of each block
  uint64_t seed = 0x5eed;              // rotation signs
  int t_max = 31;                      // retries before CapPolicy applies
  CapPolicy on_cap = CapPolicy::kFail;
};

// Checks every field; names the bad one and its value.
absl::Status ValidateParams(const CodecParams& params);

const char* ScaleModeName(ScaleMode mode);
absl::StatusOr<ScaleMode> ParseScaleMode(const std::string& name);

// Where each part of a tensor lives once encoded. Leading dimensions are flattened into rows;
// the last dimension (cols) is padded with zeros to a multiple of the lattice dimension d.
struct Layout {
  int64_t rows = 0;
  int64_t cols = 0;
  int64_t padded_cols = 0;
  int dim = 0;                   // d
  int symbol_dim = 0;            // s: d for A2/D_n/E8, 1 for Z^n
  int64_t chunks_per_row = 0;
  int64_t blocks_per_row = 0;
  int64_t symbols_per_chunk = 0;  // M * d / s
  int64_t symbols_per_row = 0;
  int64_t numel = 0;

  static absl::StatusOr<Layout> Make(const CodecParams& params, const Lattice& lattice,
                                     const std::vector<int64_t>& shape);
};

// Multiplies with overflow detection; false on overflow or a negative operand.
bool CheckedMul(int64_t a, int64_t b, int64_t* out);

}  // namespace coset
