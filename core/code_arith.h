// Arithmetic on HNLQ codes: the linear (mod q^M) view of Kaplan & Ordentlich 2025 (arXiv 2505.13164)
// and README "Computing on codes".
//
// Every function here combines codes that share their scales: identical parameters, shape,
// per-block scales and overload counters T, so every chunk has the same step in all inputs.
// Mismatches are refused with FAILED_PRECONDITION.
#pragma once

#include <cstdint>
#include <vector>

#include "absl/status/statusor.h"
#include "core/tensor_codec.h"

namespace coset {

// Digit-wise addition mod q, level by level. Exact in A_q: level m of the result is the coset
// representative of rep(b_m) + rep(b'_m) (mod qL). It is NOT real addition after decoding: carries
// between levels are lost. Use AddCodes for sums that decode to the sum.
absl::StatusOr<CompressedTensor> AddModQ(const CompressedTensor& a, const CompressedTensor& b);

// The linear view: for each chunk, c = G^-1 (x_hat / step) mod q^M, an integer vector in
// [0, q^M)^d. The q^(Md) decodable points form a complete set of representatives of L / q^M L,
// so this is a bijection. Output: rows * chunks_per_row * d values.
absl::StatusOr<std::vector<int32_t>> ToCosetVectors(const CompressedTensor& tensor);
// The inverse: rewrites tensor's symbols so that every chunk decodes to the representative of
// coset c (in C, the decodable set) at the tensor's existing steps. c: rows * chunks * d values
// (any integers; taken mod q^M).
absl::Status FromCosetVectors(const int32_t* c, CompressedTensor* tensor);

struct SumValidation {
  int64_t chunks = 0;
  int64_t inexact_chunks = 0;    // chunks whose decoded sum != the sum of decoded inputs
  std::vector<uint8_t> inexact;  // per chunk (rows * chunks_per_row): 1 where not exact
};

// Sum of W >= 1 codes in the linear view: integer coset vectors added with wrap-around mod q^M,
// then mapped back to a code. The result decodes to exactly the sum of the decoded inputs in every
// chunk where that sum is itself a decodable point (it does not overload); elsewhere it decodes to
// the sum's representative mod q^M L, a large error. With `validation`, every such chunk is
// reported (leave headroom, e.g. a larger beta, for sums of many workers). Works row by row,
// holding one row's sums per thread; executor (optional) sums parts of the rows in parallel.
absl::StatusOr<CompressedTensor> AddCodes(const std::vector<const CompressedTensor*>& codes,
                                          SumValidation* validation = nullptr, Executor* executor = nullptr);

// AddCodes' checks of its inputs, for other implementations of it (the GPU's): at least one code,
// none null, each consistent (TensorCodec::CheckConsistent), all sharing scales with the first.
absl::Status CheckAddable(const std::vector<const CompressedTensor*>& codes);

}  // namespace coset
