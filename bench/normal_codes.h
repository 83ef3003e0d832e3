// The start the T-ladder models share (overload_norm_bound, ladder_schedule): the default codec's
// codes (q=4, M=2, rms blocks) of N(0,1) rows, the same rows in every tool and run.
#pragma once

#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "core/status_macros.h"
#include "core/tensor_codec.h"

namespace coset {

// rows x cols N(0,1) entries (mt19937, seed 1) and their codes.
struct NormalRows {
  std::vector<float> x;
  CompressedTensor codes;
};

// NormalRows encoded on the lattice called `lattice`; an unknown lattice or a failed encode is the
// error.
inline absl::StatusOr<NormalRows> EncodeNormalRows(const std::string& lattice, int64_t rows, int64_t cols) {
  CodecParams p;
  COSET_ASSIGN_OR_RETURN(p.lattice, Lattice::Parse(lattice));
  COSET_ASSIGN_OR_RETURN(const TensorCodec codec, TensorCodec::Create(p));
  NormalRows out;
  out.x.resize(rows * cols);
  std::mt19937 rng(1);
  std::normal_distribution<float> normal;
  for (float& v : out.x) v = normal(rng);
  COSET_ASSIGN_OR_RETURN(out.codes, codec.Encode(out.x.data(), {rows, cols}));
  return out;
}

}  // namespace coset
