// Inner products computed on HNLQ codes, without decoding (Kaplan & Ordentlich 2025, §4).
//
// All scales are handled: per-block scale, beta, the overload ramp 2^(alpha T) and the rotation
// (an orthonormal map, so codes rotated with the same seed and block keep their inner products and
// a float query is rotated forward once). Results equal decode-then-dot up to float rounding.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <vector>

#include "absl/status/statusor.h"
#include "core/executor.h"
#include "core/lut.h"
#include "core/tensor_codec.h"

namespace coset {

// Whether DotRows can pair a with b: the same shape, lattice, q and M, and the same rotation
// (INVALID_ARGUMENT or FAILED_PRECONDITION, saying what differs).
absl::Status CheckSameCode(const CompressedTensor& a, const CompressedTensor& b);

// code . code: row-wise <decode(a)[r], decode(b)[r]> for two tensors of the same shape, lattice,
// q and M (scales, beta, alpha and block may differ; rotation must match). Per chunk pair the
// two-sided LUT gives an exact integer sum_{m,m'} q^(m+m') LUT[b_m, b'_m'] (M^2 lookups); integers
// are accumulated exactly per (block, T_a, T_b) and scaled once per block.
absl::StatusOr<std::vector<double>> DotRows(const CompressedTensor& a, const CompressedTensor& b,
                                            int64_t lut_budget_bytes = kDefaultLutBudgetBytes);
// The same with a prebuilt codebook and two-sided LUT (kept resident by the daemon per configuration).
absl::StatusOr<std::vector<double>> DotRows(const CompressedTensor& a, const CompressedTensor& b,
                                            const Codebook& codebook, const TwoSidedLut& lut);

// The exact integer term of one chunk pair: sum_{m,m'} q^(m+m') LUT[a_m, b_m'] over the chunk's
// symbols (levels * d / s each, level-major). Exposed for the parity tests.
int64_t ChunkPairLutSum(const Codebook& codebook, const TwoSidedLut& lut, int levels, const uint32_t* a,
                        const uint32_t* b);

// A code matrix [N, K] prepared for products with float queries (the inference path for
// compressed weights): out[b, n] = <x[b], decode(W)[n]>. Three resident layouts, the first that
// applies from the one Create starts at (core/simd/lut_gemm.h has the kernels and their exact
// arithmetic):
//  - compact-codes (D4 with at most 256 symbols per level, q a power of two, blocks of a multiple of
//    16 entries): the stored symbols as they are, one byte per level and chunk (4 bits per entry at
//    q = 4, M = 2), T in 2 bits per chunk, the block bases alongside, rows in tiles of 64; codes are
//    decoded in registers (AVX-512 VBMI byte permutes; AVX2/portable table reads into a panel) and
//    every query of a tile reuses each decoded weight while it is in a register.
//  - int8-lanes (other D4 and E8 with q a power of two): groups of 8 rows holding 2 x (lattice
//    point) as int8 per coordinate and lane, plus T per chunk; the kernel keeps 8 rows in a
//    register, converts each coordinate once and reuses it for every query.
//  - one-sided-lut (every other configuration): one one-sided LUT per query chunk (q^s floats,
//    within the LUT budget), M lookups per chunk and row.
// Each fast path has an AVX2 (and compact-codes an AVX-512) kernel bit-identical to its portable twin.
class LutMatrix {
 public:
  // In the order Create tries them.
  enum class Path { kCompactCodes, kInt8Lanes, kOneSidedLut };
  // The first layout at or after `first` that applies to w's configuration. Without `first`:
  // compact-codes where the AVX-512 kernel runs (ActiveSimdLevel() at this call), int8-lanes
  // elsewhere, whose AVX2 kernel reads int8 weights directly while compact-codes would decode
  // its bytes with scalar table reads there. kInt8Lanes also suits a single-query service on
  // AVX-512 that can spend ~2.2x the memory (README, "GEMV/GEMM on compressed weights").
  static absl::StatusOr<LutMatrix> Create(const CompressedTensor& w, int64_t lut_budget_bytes = kDefaultLutBudgetBytes,
                                          std::optional<Path> first = std::nullopt);
  // At least the bytes Create(w, ..., first) allocates at its peak, from the shapes and T values
  // alone (row padding and high-T lists included): what a server reserves before building.
  static int64_t BuildBytes(const CompressedTensor& w, std::optional<Path> first = std::nullopt);

  // int8-lanes: a chunk whose T exceeds 7. The kernels use ramp[7] for it (one register permute
  // looks T up) and a scalar pass adds the difference afterwards (core/simd/lut_gemm.h).
  struct HighT {
    int32_t chunk;
    int32_t lane;
    float extra;  // ramp[T] - ramp[7]
  };
  // compact-codes: a chunk whose T exceeds 3 (what its 2-bit field holds). Its weights in a decoded
  // panel are rewritten with ramp[T] before any query reads them, so the arithmetic is that of ramp[T].
  struct RampPatch {
    int32_t chunk;
    int32_t row;  // in its tile of 64 rows
    float ramp;   // ramp[T]
  };

  int64_t rows() const { return rows_; }
  int64_t cols() const { return cols_; }
  Path path() const { return path_; }
  bool fast_path() const { return path_ != Path::kOneSidedLut; }
  // "compact-codes", "int8-lanes" or "one-sided-lut" (metrics, JSON, RPC replies).
  const char* path_name() const;
  int64_t packed_bytes() const;

  // x: batch x cols floats (row-major); out: batch x rows floats. batch >= 1.
  absl::Status Gemm(const float* x, int64_t batch, float* out, Executor* executor = nullptr) const;

 private:
  LutMatrix() = default;
  // Rotated queries, zero-padded to `stride` floats each (>= the layout's padded columns).
  void RotateQueries(const float* x, int64_t batch, int64_t stride, std::vector<float>& padded) const;
  void GemmFast(const float* xq, int64_t batch, float* out, Executor* executor) const;
  void GemmCompact(const float* xq, int64_t batch, float* out, Executor* executor) const;
  // Builds the compact-codes layout; false (and nothing kept) when the configuration has none.
  absl::StatusOr<bool> BuildCompact(const CompressedTensor& w);
  // The layout Create starts from: `first`, or the default for the active SIMD level.
  static Path FirstPath(std::optional<Path> first);
  // Whether w's configuration has a compact-codes layout (the zero point's symbol, when it has).
  static std::optional<int> CompactZeroSymbol(const CompressedTensor& w, const Codebook& codebook);
  void GemmGeneric(const float* xq, int64_t batch, float* out, Executor* executor) const;

  std::shared_ptr<const Codebook> codebook_;
  CodecParams params_;
  Layout layout_;
  int64_t rows_ = 0, cols_ = 0;
  Path path_ = Path::kOneSidedLut;
  std::vector<float> ramp_;
  std::vector<float> rotation_signs_;
  // int8-lanes: groups of 8 rows. points_[g][c][i][lane] int8, t_[g][c][lane], half_base_[g][b][lane]
  // = 0.5 * scale * beta (0 for zero blocks). compact-codes: groups of 16 rows (a multiple of 4),
  // codes_[g][quad][level][j][lane], t_[g][quad][lane] (2-bit fields), half_base_[tile of 4
  // groups][b][row], patches_ grouped by tile and sorted by chunk within a tile.
  int64_t groups_ = 0;
  int64_t quads_ = 0;
  std::vector<uint8_t> codes_;
  // M = 2: the codebook's planes times q, so a kernel sums the two levels with one byte add.
  std::vector<int8_t> top_planes_;
  std::vector<int8_t> points_;
  std::vector<uint8_t> t_;
  std::vector<float> half_base_;
  std::vector<HighT> high_t_;            // sorted by group
  std::vector<int64_t> high_t_offsets_;  // group g owns high_t_[offsets[g], offsets[g + 1])
  std::vector<RampPatch> patches_;
  std::vector<int64_t> patch_offsets_;  // tile owns patches_[offsets[tile], offsets[tile + 1])
  // Generic path: unpacked symbols [row][symbols_per_row] and steps [row][chunk].
  std::vector<uint32_t> symbols_;
  std::vector<float> steps_;
};

}  // namespace coset
