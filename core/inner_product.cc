#include "core/inner_product.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <map>
#include <memory>

#include "absl/strings/str_cat.h"
#include "core/block_transform.h"
#include "core/chunk_math.h"
#include "core/row_codec.h"
#include "core/simd/lut_gemm.h"
#include "core/status_macros.h"

namespace coset {

absl::Status CheckSameCode(const CompressedTensor& a, const CompressedTensor& b) {
  if (a.shape != b.shape) return absl::InvalidArgumentError("tensors have different shapes");
  if (a.params.lattice != b.params.lattice || a.params.q != b.params.q || a.params.M != b.params.M) {
    return absl::InvalidArgumentError(absl::StrCat("tensors use different codes (", a.params.lattice.name(),
                                                   " q=", a.params.q, " M=", a.params.M, " vs ",
                                                   b.params.lattice.name(), " q=", b.params.q, " M=", b.params.M, ")"));
  }
  if (a.params.rotate != b.params.rotate ||
      (a.params.rotate && (a.params.seed != b.params.seed || a.params.block != b.params.block))) {
    return absl::FailedPreconditionError("tensors are rotated differently (rotation, seed and block must match)");
  }
  return absl::OkStatus();
}

int64_t ChunkPairLutSum(const Codebook& cb, const TwoSidedLut& lut, int levels, const uint32_t* a, const uint32_t* b) {
  return coset::ChunkPairLutSum<int64_t>(lut.ints().data(), lut.num_symbols(), cb.q(), levels,
                                         cb.lattice().dim() / cb.symbol_dim(), a, b);
}

absl::StatusOr<std::vector<double>> DotRows(const CompressedTensor& a, const CompressedTensor& b, int64_t budget) {
  COSET_ASSIGN_OR_RETURN(std::shared_ptr<const Codebook> cb, Codebook::Get(a.params.lattice, a.params.q));
  COSET_ASSIGN_OR_RETURN(TwoSidedLut lut, TwoSidedLut::Build(*cb, budget));
  return DotRows(a, b, *cb, lut);
}

absl::StatusOr<std::vector<double>> DotRows(const CompressedTensor& a, const CompressedTensor& b,
                                            const Codebook& codebook, const TwoSidedLut& lut) {
  COSET_RETURN_IF_ERROR(TensorCodec::CheckConsistent(a));
  COSET_RETURN_IF_ERROR(TensorCodec::CheckConsistent(b));
  COSET_RETURN_IF_ERROR(CheckSameCode(a, b));
  if (codebook.lattice() != a.params.lattice || codebook.q() != a.params.q ||
      lut.num_symbols() != codebook.num_symbols()) {
    return absl::InvalidArgumentError("codebook or LUT does not match the tensors' code");
  }
  const Codebook* cb = &codebook;
  const Lattice& lattice = codebook.lattice();
  const Layout& l = a.layout;
  const int levels = a.params.M;
  const int per_level = lattice.dim() / lattice.symbol_dim();
  std::vector<double> out(l.rows, 0.0);
  std::vector<uint32_t> sa(l.symbols_per_row), sb(l.symbols_per_row);
  // Exact integer partial sums per (T_a, T_b) inside one block segment, scaled once at its end.
  std::map<std::pair<int, int>, int64_t> int_terms;
  std::map<std::pair<int, int>, double> float_terms;
  for (int64_t r = 0; r < l.rows; ++r) {
    if (!UnpackRowSymbols(a, r, sa.data()) || !UnpackRowSymbols(b, r, sb.data())) {
      return absl::DataLossError(absl::StrCat("packed symbols of row ", r, " are invalid"));
    }
    double row_sum = 0.0;
    int64_t seg_a = -1, seg_b = -1;
    auto flush = [&] {
      if (seg_a < 0) return;
      const double base = static_cast<double>(BlockBase(a, r, seg_a)) * BlockBase(b, r, seg_b);
      for (const auto& [key, v] : int_terms) {
        row_sum += base * RampFactor(a.params, key.first) * RampFactor(b.params, key.second) * static_cast<double>(v);
      }
      for (const auto& [key, v] : float_terms) {
        row_sum += base * RampFactor(a.params, key.first) * RampFactor(b.params, key.second) * v;
      }
      int_terms.clear();
      float_terms.clear();
    };
    for (int64_t c = 0; c < l.chunks_per_row; ++c) {
      const int64_t blk_a = c * l.dim / a.params.block, blk_b = c * l.dim / b.params.block;
      if (blk_a != seg_a || blk_b != seg_b) {
        flush();
        seg_a = blk_a;
        seg_b = blk_b;
      }
      const std::pair<int, int> key(a.t[r * l.chunks_per_row + c], b.t[r * l.chunks_per_row + c]);
      const uint32_t* ca = &sa[c * l.symbols_per_chunk];
      const uint32_t* cb_sym = &sb[c * l.symbols_per_chunk];
      if (lut.integral()) {
        int_terms[key] += coset::ChunkPairLutSum<int64_t>(lut.ints().data(), lut.num_symbols(), cb->q(), levels,
                                                          per_level, ca, cb_sym);
      } else {
        float_terms[key] += coset::ChunkPairLutSum<double>(lut.floats().data(), lut.num_symbols(), cb->q(), levels,
                                                           per_level, ca, cb_sym);
      }
    }
    flush();
    out[r] = row_sum;
  }
  return out;
}

LutMatrix::Path LutMatrix::FirstPath(std::optional<Path> first) {
  return first.value_or(ActiveSimdLevel() >= SimdLevel::kAvx512 ? Path::kCompactCodes : Path::kInt8Lanes);
}

std::optional<int> LutMatrix::CompactZeroSymbol(const CompressedTensor& w, const Codebook& cb) {
  const CodecParams& p = w.params;
  const int64_t chunks_per_block = p.block / w.layout.dim;
  if (p.lattice.kind() != LatticeKind::kD || w.layout.dim != 4 || cb.rep_point_x2_planar_int8().empty() ||
      !cb.q_is_power_of_two() || chunks_per_block % 4 != 0 || chunks_per_block / 4 > kMaxCompactBlockQuads) {
    return std::nullopt;
  }
  // The Horner sum sum_m q^m 2 rep(b_m) is taken on bytes: every partial sum must fit in int8.
  int64_t bound = 0;
  for (int m = 0; m < p.M; ++m) bound = bound * p.q + cb.max_abs_rep_point_x2();
  if (bound > 127) return std::nullopt;
  // Padding chunks hold the symbol of the zero point (decoded weights exactly 0).
  const int8_t* planes = cb.rep_point_x2_planar_int8().data();
  for (int b = 0; b < cb.num_symbols(); ++b) {
    bool zero = true;
    for (int i = 0; i < 4; ++i) zero = zero && planes[i * Codebook::kPlanarTableSize + b] == 0;
    if (zero) return b;
  }
  return std::nullopt;
}

int64_t LutMatrix::BuildBytes(const CompressedTensor& w, std::optional<Path> prefer) {
  const Layout& l = w.layout;
  const Path first = FirstPath(prefer);
  auto count_t_above = [&](int t_max) {
    int64_t n = 0;
    for (uint8_t t : w.t) n += t > t_max;
    return n;
  };
  // Create's row of unpacked symbols, and the one-sided layout it may end with.
  const int64_t scratch = l.symbols_per_row * 4;
  int64_t bytes = scratch + l.rows * (4 * l.symbols_per_row + 4 * l.chunks_per_row);
  auto cb = Codebook::Get(w.params.lattice, w.params.q);
  if (!cb.ok()) return bytes;
  if (first == Path::kCompactCodes && CompactZeroSymbol(w, **cb).has_value()) {
    const int64_t groups = (l.rows + kCompactRows - 1) / kCompactRows * kCompactGroups;
    const int64_t quads = (l.chunks_per_row + 3) / 4;
    return scratch + 4 * Codebook::kPlanarTableSize + groups * quads * (w.params.M * 64 + kCompactLanes) +
           groups / kCompactGroups * l.blocks_per_row * kCompactRows * 4 +
           count_t_above(3) * static_cast<int64_t>(sizeof(RampPatch));
  }
  if (first != Path::kOneSidedLut) {
    // int8-lanes is built in full before its int8 check, and freed if that fails.
    const int64_t groups = (l.rows + 7) / 8;
    bytes = std::max(bytes, scratch + groups * l.chunks_per_row * (l.dim + 1) * 8 + groups * l.blocks_per_row * 32 +
                                count_t_above(7) * static_cast<int64_t>(sizeof(HighT)));
  }
  return bytes;
}

absl::StatusOr<LutMatrix> LutMatrix::Create(const CompressedTensor& w, int64_t budget, std::optional<Path> prefer) {
  const Path first = FirstPath(prefer);
  COSET_RETURN_IF_ERROR(TensorCodec::CheckConsistent(w));
  const Lattice& lattice = w.params.lattice;
  LutMatrix m;
  COSET_ASSIGN_OR_RETURN(m.codebook_, Codebook::Get(lattice, w.params.q));
  m.params_ = w.params;
  m.layout_ = w.layout;
  m.rows_ = w.layout.rows;
  m.cols_ = w.layout.cols;
  // Eight entries: the kernels look T up with one register permute; T > 7 (rare) are corrections.
  for (int t = 0; t < 8; ++t) m.ramp_.push_back(RampFactor(w.params, t));
  if (w.params.rotate) m.rotation_signs_ = RotationSigns(w.params.seed, w.params.block);
  if (first == Path::kCompactCodes) {
    COSET_ASSIGN_OR_RETURN(const bool compact, m.BuildCompact(w));
    if (compact) return m;
  }
  const Layout& l = w.layout;
  const Codebook& cb = *m.codebook_;
  std::vector<uint32_t> symbols(l.symbols_per_row);
  // int8-lanes: doubled lattice points as int8 (exact for D4/E8 when they fit).
  const bool fast_lattice =
      (lattice.kind() == LatticeKind::kD && lattice.dim() == 4) || lattice.kind() == LatticeKind::kE8;
  if (first != Path::kOneSidedLut && fast_lattice && cb.q_is_power_of_two() && !cb.rep_point_x2_int8().empty()) {
    const int d = l.dim;
    m.groups_ = (l.rows + 7) / 8;
    m.points_.assign(m.groups_ * l.chunks_per_row * d * 8, 0);
    m.t_.assign(m.groups_ * l.chunks_per_row * 8, 0);
    m.half_base_.assign(m.groups_ * l.blocks_per_row * 8, 0.0f);
    m.high_t_offsets_.assign(m.groups_ + 1, 0);
    bool fits = true;
    for (int64_t r = 0; r < l.rows && fits; ++r) {
      if (!UnpackRowSymbols(w, r, symbols.data())) return absl::DataLossError(absl::StrCat("row ", r, " is corrupt"));
      const int64_t g = r / 8, lane = r % 8;
      for (int64_t c = 0; c < l.chunks_per_row; ++c) {
        for (int i = 0; i < d; ++i) {
          int32_t acc = 0;
          for (int lv = w.params.M - 1; lv >= 0; --lv) {
            acc = acc * w.params.q + cb.rep_point_x2_int8()[symbols[c * l.symbols_per_chunk + lv] * d + i];
          }
          if (acc < -128 || acc > 127) fits = false;
          m.points_[((g * l.chunks_per_row + c) * d + i) * 8 + lane] = static_cast<int8_t>(acc);
        }
        const uint8_t t = w.t[r * l.chunks_per_row + c];
        m.t_[(g * l.chunks_per_row + c) * 8 + lane] = std::min<uint8_t>(t, 7);
        if (t > 7) {
          m.high_t_.push_back(
              {static_cast<int32_t>(c), static_cast<int32_t>(lane), RampFactor(w.params, t) - m.ramp_[7]});
          ++m.high_t_offsets_[g + 1];
        }
      }
      for (int64_t b = 0; b < l.blocks_per_row; ++b)
        m.half_base_[(g * l.blocks_per_row + b) * 8 + lane] = 0.5f * BlockBase(w, r, b);
    }
    if (fits) {
      // Rows are visited in order, so high_t_ is already grouped; turn counts into offsets.
      for (int64_t g = 0; g < m.groups_; ++g) m.high_t_offsets_[g + 1] += m.high_t_offsets_[g];
      m.path_ = Path::kInt8Lanes;
      return m;
    }
    // Freed, not just cleared: the one-sided layout is built next, and the matrix lives on.
    m.points_ = {};
    m.t_ = {};
    m.half_base_ = {};
    m.high_t_ = {};
    m.high_t_offsets_ = {};
  }
  COSET_RETURN_IF_ERROR(OneSidedLutBytes(cb, budget).status());
  m.symbols_.resize(l.rows * l.symbols_per_row);
  m.steps_.resize(l.rows * l.chunks_per_row);
  for (int64_t r = 0; r < l.rows; ++r) {
    if (!UnpackRowSymbols(w, r, &m.symbols_[r * l.symbols_per_row])) {
      return absl::DataLossError(absl::StrCat("row ", r, " is corrupt"));
    }
    for (int64_t c = 0; c < l.chunks_per_row; ++c) m.steps_[r * l.chunks_per_row + c] = ChunkStep(w, r, c);
  }
  return m;
}

absl::StatusOr<bool> LutMatrix::BuildCompact(const CompressedTensor& w) {
  const Layout& l = w.layout;
  const std::optional<int> zero_symbol = CompactZeroSymbol(w, *codebook_);
  if (!zero_symbol.has_value()) return false;
  const int levels = params_.M;
  // Rows are padded to whole tiles of 64 (the padding decodes to zero weights).
  groups_ = (l.rows + kCompactRows - 1) / kCompactRows * kCompactGroups;
  const int64_t tiles = groups_ / kCompactGroups;
  quads_ = (l.chunks_per_row + 3) / 4;
  codes_.assign(groups_ * quads_ * levels * 64, static_cast<uint8_t>(*zero_symbol));
  t_.assign(groups_ * quads_ * kCompactLanes, 0);
  half_base_.assign(tiles * l.blocks_per_row * kCompactRows, 0.0f);
  patch_offsets_.assign(tiles + 1, 0);
  std::vector<uint32_t> symbols(l.symbols_per_row);
  for (int64_t r = 0; r < l.rows; ++r) {
    if (!UnpackRowSymbols(w, r, symbols.data())) return absl::DataLossError(absl::StrCat("row ", r, " is corrupt"));
    const int64_t g = r / kCompactLanes, lane = r % kCompactLanes, tile = r / kCompactRows, row = r % kCompactRows;
    for (int64_t c = 0; c < l.chunks_per_row; ++c) {
      const int64_t quad = g * quads_ + c / 4;
      for (int m = 0; m < levels; ++m) {
        codes_[(quad * levels + m) * 64 + (c % 4) * kCompactLanes + lane] =
            static_cast<uint8_t>(symbols[c * l.symbols_per_chunk + m]);
      }
      const uint8_t t = w.t[r * l.chunks_per_row + c];
      t_[quad * kCompactLanes + lane] |= static_cast<uint8_t>(std::min<uint8_t>(t, 3) << (2 * (c % 4)));
      if (t > 3) {
        patches_.push_back({static_cast<int32_t>(c), static_cast<int32_t>(row), RampFactor(w.params, t)});
        ++patch_offsets_[tile + 1];
      }
    }
    for (int64_t b = 0; b < l.blocks_per_row; ++b)
      half_base_[(tile * l.blocks_per_row + b) * kCompactRows + row] = 0.5f * BlockBase(w, r, b);
  }
  if (levels == 2) {
    const std::vector<int8_t>& planes = codebook_->rep_point_x2_planar_int8();
    top_planes_.resize(planes.size());
    // Exact: CompactZeroSymbol bounds (q + 1) max |2 rep| by 127.
    for (size_t k = 0; k < planes.size(); ++k) top_planes_[k] = static_cast<int8_t>(planes[k] * params_.q);
  }
  // Rows are visited in order, so patches_ is already grouped by tile; a kernel walks each tile's
  // patches block by block, so they go by chunk within it.
  for (int64_t tile = 0; tile < tiles; ++tile) {
    patch_offsets_[tile + 1] += patch_offsets_[tile];
    std::sort(patches_.begin() + patch_offsets_[tile], patches_.begin() + patch_offsets_[tile + 1],
              [](const RampPatch& a, const RampPatch& b) {
                return a.chunk < b.chunk || (a.chunk == b.chunk && a.row < b.row);
              });
  }
  path_ = Path::kCompactCodes;
  return true;
}

const char* LutMatrix::path_name() const {
  switch (path_) {
    case Path::kCompactCodes:
      return "compact-codes";
    case Path::kInt8Lanes:
      return "int8-lanes";
    case Path::kOneSidedLut:
      return "one-sided-lut";
  }
  return "?";
}

int64_t LutMatrix::packed_bytes() const {
  if (path_ == Path::kOneSidedLut) return static_cast<int64_t>(symbols_.size() * 4 + steps_.size() * 4);
  return static_cast<int64_t>(codes_.size() + top_planes_.size() + points_.size() + t_.size() + half_base_.size() * 4 +
                              high_t_.size() * sizeof(HighT) + patches_.size() * sizeof(RampPatch));
}

void LutMatrix::RotateQueries(const float* x, int64_t batch, int64_t stride, std::vector<float>& padded) const {
  const Layout& l = layout_;
  padded.assign(batch * stride, 0.0f);
  for (int64_t b = 0; b < batch; ++b) {
    float* row = &padded[b * stride];
    std::memcpy(row, x + b * cols_, sizeof(float) * cols_);
    if (rotation_signs_.empty()) continue;
    // <x, R^T v> = <R x, v>: rotate the query forward, block by block, like the encoder.
    for (int64_t begin = 0; begin < l.padded_cols; begin += params_.block) {
      const int64_t end = std::min(l.padded_cols, begin + params_.block);
      RotateForward(rotation_signs_.data(), end - begin, row + begin);
    }
  }
}

void LutMatrix::GemmFast(const float* xq, int64_t batch, float* out, Executor* executor) const {
  const Layout& l = layout_;
  auto group_args = [&](int64_t g) {
    LutGroupArgs args;
    args.dim = l.dim;
    args.chunks = l.chunks_per_row;
    args.chunks_per_block = params_.block / l.dim;
    args.blocks = l.blocks_per_row;
    args.padded_cols = l.padded_cols;
    args.points = &points_[g * l.chunks_per_row * l.dim * 8];
    args.t = &t_[g * l.chunks_per_row * 8];
    args.half_base = &half_base_[g * l.blocks_per_row * 8];
    args.ramp = ramp_.data();
    return args;
  };
  // Group g's high-T corrections on its kernel results (lanes: batch x 8), then into out.
  auto finish = [&](int64_t g, const LutGroupArgs& args, float* lanes) {
    ApplyHighT(args, high_t_.data() + high_t_offsets_[g], high_t_.data() + high_t_offsets_[g + 1], xq, batch, lanes);
    for (int64_t b = 0; b < batch; ++b) {
      for (int lane = 0; lane < 8 && g * 8 + lane < rows_; ++lane) out[b * rows_ + g * 8 + lane] = lanes[b * 8 + lane];
    }
  };
  const LutGroupPairGemmFn pair_kernel = batch >= kLanePairMinBatch ? GetLutGroupPairGemm(ActiveSimdLevel()) : nullptr;
  if (pair_kernel != nullptr) {
    executor->ParallelFor((groups_ + 1) / 2, [&](int64_t p_begin, int64_t p_end) {
      std::vector<float> pair_lanes(batch * 16), lanes(batch * 8);
      for (int64_t p = p_begin; p < p_end; ++p) {
        const int64_t first = 2 * p, last = std::min(first + 1, groups_ - 1);  // an odd last group pairs with itself
        const LutGroupArgs args[2] = {group_args(first), group_args(last)};
        pair_kernel(args[0], args[1], xq, batch, pair_lanes.data());
        for (int64_t g = first; g <= last; ++g) {
          for (int64_t b = 0; b < batch; ++b) {
            std::copy_n(&pair_lanes[b * 16 + 8 * (g - first)], 8, &lanes[b * 8]);
          }
          finish(g, args[g - first], lanes.data());
        }
      }
    });
    return;
  }
  const LutGroupGemmFn kernel = GetLutGroupGemm(ActiveSimdLevel());
  executor->ParallelFor(groups_, [&](int64_t g_begin, int64_t g_end) {
    std::vector<float> lanes(batch * 8);
    for (int64_t g = g_begin; g < g_end; ++g) {
      const LutGroupArgs args = group_args(g);
      kernel(args, xq, batch, lanes.data());
      finish(g, args, lanes.data());
    }
  });
}

void LutMatrix::GemmCompact(const float* xq, int64_t batch, float* out, Executor* executor) const {
  const Layout& l = layout_;
  const CompactTileGemmFn kernel = GetCompactTileGemm(ActiveSimdLevel());
  CompactTileArgs args;
  args.levels = params_.M;
  args.log2_q = codebook_->log2_q();
  args.quads = quads_;
  args.quads_per_block = params_.block / l.dim / 4;
  args.blocks = l.blocks_per_row;
  args.query_stride = quads_ * 16;
  args.group_codes = quads_ * params_.M * 64;
  args.group_t = quads_ * kCompactLanes;
  args.planes = codebook_->rep_point_x2_planar_int8().data();
  args.top_planes = top_planes_.empty() ? nullptr : top_planes_.data();
  args.ramp = ramp_.data();
  executor->ParallelFor(groups_ / kCompactGroups, [&](int64_t tile_begin, int64_t tile_end) {
    std::vector<float> rows(batch * kCompactRows);
    // The panel of one block (64 KB at the default block), 64-byte aligned for the AVX-512
    // kernel's loads and stores; uninitialized: every kernel writes a block's panel before reading it.
    const std::unique_ptr<float[]> scratch(new float[CompactPanelFloats(args.quads_per_block) + 16]);
    float* panel = scratch.get() + (16 - reinterpret_cast<uintptr_t>(scratch.get()) / 4 % 16) % 16;
    for (int64_t tile = tile_begin; tile < tile_end; ++tile) {
      CompactTileArgs at = args;
      at.codes = &codes_[tile * kCompactGroups * args.group_codes];
      at.t = &t_[tile * kCompactGroups * args.group_t];
      at.half_base = &half_base_[tile * l.blocks_per_row * kCompactRows];
      at.patches = patches_.data() + patch_offsets_[tile];
      at.patches_end = patches_.data() + patch_offsets_[tile + 1];
      kernel(at, xq, batch, panel, rows.data());
      const int64_t first = tile * kCompactRows, count = std::min<int64_t>(kCompactRows, rows_ - first);
      for (int64_t b = 0; b < batch; ++b) {
        std::copy(&rows[b * kCompactRows], &rows[b * kCompactRows] + count, out + b * rows_ + first);
      }
    }
  });
}

void LutMatrix::GemmGeneric(const float* xq, int64_t batch, float* out, Executor* executor) const {
  const Layout& l = layout_;
  const Codebook& cb = *codebook_;
  const int s = cb.symbol_dim();
  const int per_level = l.dim / s;
  const int levels = params_.M;
  // One one-sided LUT per (query, chunk, symbol group), then M lookups per row.
  std::vector<float> luts(batch * l.chunks_per_row * per_level * cb.num_symbols());
  for (int64_t b = 0; b < batch; ++b) {
    for (int64_t c = 0; c < l.chunks_per_row; ++c) {
      for (int j = 0; j < per_level; ++j) {
        BuildOneSidedLut(cb, xq + b * l.padded_cols + c * l.dim + j * s,
                         &luts[((b * l.chunks_per_row + c) * per_level + j) * cb.num_symbols()]);
      }
    }
  }
  executor->ParallelFor(rows_, [&](int64_t r_begin, int64_t r_end) {
    for (int64_t r = r_begin; r < r_end; ++r) {
      for (int64_t b = 0; b < batch; ++b) {
        double total = 0.0;
        for (int64_t c = 0; c < l.chunks_per_row; ++c) {
          const uint32_t* sym = &symbols_[r * l.symbols_per_row + c * l.symbols_per_chunk];
          double chunk = 0.0;
          for (int m = levels - 1; m >= 0; --m) {
            double level = 0.0;
            for (int j = 0; j < per_level; ++j) {
              level += luts[((b * l.chunks_per_row + c) * per_level + j) * cb.num_symbols() + sym[m * per_level + j]];
            }
            chunk = chunk * cb.q() + level;
          }
          total += static_cast<double>(steps_[r * l.chunks_per_row + c]) * chunk;
        }
        out[b * rows_ + r] = static_cast<float>(total);
      }
    }
  });
}

absl::Status LutMatrix::Gemm(const float* x, int64_t batch, float* out, Executor* executor) const {
  if (batch < 1 || batch > 4096)
    return absl::InvalidArgumentError(absl::StrCat("batch (=", batch, ") must be in [1, 4096]"));
  if (x == nullptr || out == nullptr) return absl::InvalidArgumentError("null query or output");
  for (int64_t i = 0; i < batch * cols_; ++i) {
    if (!std::isfinite(x[i])) return absl::InvalidArgumentError(absl::StrCat("query[", i, "] is not finite"));
  }
  if (executor == nullptr) executor = InlineExecutor();
  std::vector<float> xq;
  RotateQueries(x, batch, path_ == Path::kCompactCodes ? quads_ * 16 : layout_.padded_cols, xq);
  switch (path_) {
    case Path::kCompactCodes:
      GemmCompact(xq.data(), batch, out, executor);
      break;
    case Path::kInt8Lanes:
      GemmFast(xq.data(), batch, out, executor);
      break;
    case Path::kOneSidedLut:
      GemmGeneric(xq.data(), batch, out, executor);
      break;
  }
  return absl::OkStatus();
}

}  // namespace coset
