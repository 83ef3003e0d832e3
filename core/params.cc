#include "core/params.h"

#include <cmath>

#include "absl/strings/str_cat.h"

namespace coset {

bool CheckedMul(int64_t a, int64_t b, int64_t* out) {
  if (a < 0 || b < 0) return false;
  return !__builtin_mul_overflow(a, b, out);
}

absl::Status ValidateParams(const CodecParams& p) {
  auto lattice = Lattice::Parse(p.lattice);
  if (!lattice.ok()) return lattice.status();
  if (p.q < lattice->min_q() || p.q > 255) {
    return absl::InvalidArgumentError(absl::StrCat("q (=", p.q, ") must be in [", lattice->min_q(),
                                                   ", 255] for ", lattice->name(),
                                                   lattice->min_q() > 2 ? " (q = 2 never clears overload there)" : ""));
  }
  if (p.levels < 1 || p.levels > kMaxLevels) {
    return absl::InvalidArgumentError(absl::StrCat("M (=", p.levels, ") must be in [1, ", kMaxLevels, "]"));
  }
  // q^M must keep integer coordinates of a chunk well inside int32.
  if (p.levels * std::log2(static_cast<double>(p.q)) > 24.0) {
    return absl::InvalidArgumentError(absl::StrCat("q^M (= ", p.q, "^", p.levels,
                                                   ") exceeds 2^24; lower q or M"));
  }
  if (!(std::isfinite(p.beta) && p.beta >= 0.0f)) {
    return absl::InvalidArgumentError(absl::StrCat("beta (=", p.beta, ") must be finite and > 0 (0 = default)"));
  }
  if (!(std::isfinite(p.alpha) && p.alpha > 0.0f && p.alpha <= 4.0f)) {
    return absl::InvalidArgumentError(absl::StrCat("alpha (=", p.alpha, ") must be in (0, 4]"));
  }
  if (p.block != 0 && (p.block < lattice->dim() || p.block > kMaxBlock || p.block % lattice->dim() != 0)) {
    return absl::InvalidArgumentError(absl::StrCat("block (=", p.block, ") must be a multiple of the lattice dimension (",
                                                   lattice->dim(), ") in [", lattice->dim(), ", ", kMaxBlock, "]"));
  }
  if (p.t_max < 0 || p.t_max > kMaxTMax) {
    return absl::InvalidArgumentError(absl::StrCat("t_max (=", p.t_max, ") must be in [0, ", kMaxTMax, "]"));
  }
  if (static_cast<int>(p.scale) > 2) {
    return absl::InvalidArgumentError(absl::StrCat("scale mode ", static_cast<int>(p.scale), " is unknown"));
  }
  if (static_cast<int>(p.on_cap) > 1) {
    return absl::InvalidArgumentError(absl::StrCat("cap policy ", static_cast<int>(p.on_cap), " is unknown"));
  }
  return absl::OkStatus();
}

const char* ScaleModeName(ScaleMode mode) {
  switch (mode) {
    case ScaleMode::kNone:
      return "none";
    case ScaleMode::kRms:
      return "rms";
    case ScaleMode::kAbsMax:
      return "absmax";
  }
  return "?";
}

absl::StatusOr<ScaleMode> ParseScaleMode(const std::string& name) {
  if (name == "none") return ScaleMode::kNone;
  if (name == "rms") return ScaleMode::kRms;
  if (name == "absmax") return ScaleMode::kAbsMax;
  return absl::InvalidArgumentError(absl::StrCat("scale (='", name, "') must be rms, absmax or none"));
}

absl::StatusOr<Layout> Layout::Make(const CodecParams& params, const Lattice& lattice,
                                    const std::vector<int64_t>& shape) {
  if (shape.size() > static_cast<size_t>(kMaxRank)) {
    return absl::InvalidArgumentError(absl::StrCat("rank (=", shape.size(), ") must be at most ", kMaxRank));
  }
  if (params.block <= 0) return absl::InvalidArgumentError("block must be resolved (> 0) before layout");
  Layout l;
  l.rows = 1;
  l.cols = shape.empty() ? 1 : shape.back();
  for (size_t i = 0; i < shape.size(); ++i) {
    if (shape[i] < 0) return absl::InvalidArgumentError(absl::StrCat("shape[", i, "] (=", shape[i], ") is negative"));
    if (i + 1 < shape.size() && !CheckedMul(l.rows, shape[i], &l.rows)) {
      return absl::InvalidArgumentError("shape has too many elements");
    }
  }
  if (!CheckedMul(l.rows, l.cols, &l.numel) || l.numel > (int64_t{1} << 40)) {
    return absl::InvalidArgumentError("tensor has more than 2^40 elements");
  }
  l.dim = lattice.dim();
  l.symbol_dim = lattice.symbol_dim();
  l.padded_cols = (l.cols + l.dim - 1) / l.dim * l.dim;
  l.chunks_per_row = l.padded_cols / l.dim;
  l.blocks_per_row = (l.padded_cols + params.block - 1) / params.block;
  l.symbols_per_chunk = static_cast<int64_t>(params.levels) * (l.dim / l.symbol_dim);
  l.symbols_per_row = l.chunks_per_row * l.symbols_per_chunk;
  return l;
}

}  // namespace coset
