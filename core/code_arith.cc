#include "core/code_arith.h"

#include <algorithm>
#include <mutex>

#include "absl/strings/str_cat.h"
#include "core/chunk_math.h"
#include "core/status_macros.h"

namespace coset {
namespace {

absl::Status CheckShareScales(const CompressedTensor& a, const CompressedTensor& b) {
  if (a.shape != b.shape) return absl::InvalidArgumentError("codes have different shapes");
  // The field table says which parameters shape the steps (core/params.h, ShareRule).
  if (const CodecField* f = FirstSharedFieldMismatch(a.params, b.params)) {
    return absl::FailedPreconditionError(absl::StrCat("codes have different codec parameters (", f->name, ": ",
                                                      f->get(a.params), " vs ", f->get(b.params),
                                                      "); they must share scales"));
  }
  if (a.scales != b.scales || a.t != b.t) {
    return absl::FailedPreconditionError(
        "codes have different block scales or overload counters; encode them with shared scales first");
  }
  return absl::OkStatus();
}

// Coordinates of the decoded lattice point of every chunk (x_hat / step = G z).
absl::StatusOr<std::vector<int64_t>> PointCoords(const CompressedTensor& t, const Codebook& cb) {
  const Layout& l = t.layout;
  const ChunkCodebook view = cb.view();
  std::vector<int64_t> z(l.rows * l.chunks_per_row * l.dim, 0);
  std::vector<uint32_t> sym(l.symbols_per_row);
  for (int64_t r = 0; r < l.rows; ++r) {
    if (!UnpackRowSymbols(t, r, sym.data())) return absl::DataLossError(absl::StrCat("row ", r, " is corrupt"));
    for (int64_t c = 0; c < l.chunks_per_row; ++c) {
      ChunkPointCoords<0>(view, l.dim, t.params.M, &sym[c * l.symbols_per_chunk],
                          &z[(r * l.chunks_per_row + c) * l.dim]);
    }
  }
  return z;
}

absl::StatusOr<std::shared_ptr<const Codebook>> CodebookOf(const CompressedTensor& t) {
  return Codebook::Get(t.params.lattice, t.params.q);
}

// Rewrites t's symbols from per-chunk coordinates.
void WriteSymbols(const Codebook& cb, std::vector<int64_t> z, CompressedTensor* t) {
  const Layout& l = t->layout;
  int64_t alphabet = cb.num_symbols();
  const SymbolPacking packing(static_cast<uint64_t>(alphabet), l.symbols_per_row);
  std::vector<uint32_t> sym(l.symbols_per_row);
  const ChunkCodebook view = cb.view();
  for (int64_t r = 0; r < l.rows; ++r) {
    for (int64_t c = 0; c < l.chunks_per_row; ++c) {
      EncodePointCoords<0>(view, l.dim, t->params.M, &z[(r * l.chunks_per_row + c) * l.dim],
                           &sym[c * l.symbols_per_chunk]);
    }
    packing.PackRow(sym.data(), &t->symbols[r * t->row_bytes]);
  }
}

// One row of AddCodes (kDim: the chunk dimension, 0 for any): the exact sum of the inputs'
// decoded points in coordinates (sum: chunks_per_row * d values), then per chunk EncodeChunkSum:
// the symbols of its wrap mod modulus = q^M, and with `inexact` whether the exact sum overloads,
// i.e. the result differs from it there. False when an input's row does not unpack.
template <int kDim>
bool SumRow(const std::vector<const CompressedTensor*>& codes, int64_t row, const ChunkCodebook& view, int64_t modulus,
            uint32_t* symbols, int64_t* sum, uint8_t* inexact) {
  const Layout& l = codes[0]->layout;
  const int d = kDim > 0 ? kDim : l.dim, levels = codes[0]->params.M;
  std::fill(sum, sum + l.chunks_per_row * d, 0);
  for (const CompressedTensor* t : codes) {
    if (!UnpackRowSymbols(*t, row, symbols)) return false;
    for (int64_t c = 0; c < l.chunks_per_row; ++c) {
      int64_t point[kDim > 0 ? kDim : kMaxLatticeDim];
      ChunkPointCoords<kDim>(view, d, levels, &symbols[c * l.symbols_per_chunk], point);
      for (int i = 0; i < d; ++i) sum[c * d + i] += point[i];
    }
  }
  for (int64_t c = 0; c < l.chunks_per_row; ++c) {
    const bool over = EncodeChunkSum<kDim>(view, d, levels, modulus, &sum[c * d], &symbols[c * l.symbols_per_chunk],
                                           inexact != nullptr);
    if (inexact != nullptr) inexact[c] = over;
  }
  return true;
}

}  // namespace

absl::StatusOr<CompressedTensor> AddModQ(const CompressedTensor& a, const CompressedTensor& b) {
  COSET_RETURN_IF_ERROR(TensorCodec::CheckConsistent(a));
  COSET_RETURN_IF_ERROR(TensorCodec::CheckConsistent(b));
  COSET_RETURN_IF_ERROR(CheckShareScales(a, b));
  COSET_ASSIGN_OR_RETURN(std::shared_ptr<const Codebook> cb, CodebookOf(a));
  const Layout& l = a.layout;
  const int s = cb->symbol_dim(), q = cb->q();
  const SymbolPacking packing(static_cast<uint64_t>(cb->num_symbols()), l.symbols_per_row);
  CompressedTensor out = a;
  std::vector<uint32_t> sa(l.symbols_per_row), sb(l.symbols_per_row);
  for (int64_t r = 0; r < l.rows; ++r) {
    if (!UnpackRowSymbols(a, r, sa.data()) || !UnpackRowSymbols(b, r, sb.data())) {
      return absl::DataLossError(absl::StrCat("row ", r, " is corrupt"));
    }
    for (int64_t k = 0; k < l.symbols_per_row; ++k) {
      uint32_t x = sa[k], y = sb[k], sum = 0, weight = 1;
      for (int i = 0; i < s; ++i) {
        sum += ((x % q + y % q) % q) * weight;
        x /= q;
        y /= q;
        weight *= q;
      }
      sa[k] = sum;
    }
    packing.PackRow(sa.data(), out.symbols.data() + r * out.row_bytes);
  }
  return out;
}

absl::StatusOr<std::vector<int32_t>> ToCosetVectors(const CompressedTensor& t) {
  COSET_RETURN_IF_ERROR(TensorCodec::CheckConsistent(t));
  COSET_ASSIGN_OR_RETURN(std::shared_ptr<const Codebook> cb, CodebookOf(t));
  COSET_ASSIGN_OR_RETURN(std::vector<int64_t> z, PointCoords(t, *cb));
  int64_t modulus = 1;
  for (int m = 0; m < t.params.M; ++m) modulus *= t.params.q;
  std::vector<int32_t> c(z.size());
  for (size_t i = 0; i < z.size(); ++i) c[i] = static_cast<int32_t>(FloorMod(z[i], modulus));
  return c;
}

absl::Status FromCosetVectors(const int32_t* c, CompressedTensor* t) {
  if (c == nullptr || t == nullptr) return absl::InvalidArgumentError("null argument");
  COSET_RETURN_IF_ERROR(TensorCodec::CheckConsistent(*t));
  COSET_ASSIGN_OR_RETURN(std::shared_ptr<const Codebook> cb, CodebookOf(*t));
  const Layout& l = t->layout;
  std::vector<int64_t> z(c, c + l.rows * l.chunks_per_row * l.dim);
  // Any point of the coset works as the start: Algorithm 1 ends at the representative in C.
  WriteSymbols(*cb, std::move(z), t);
  return absl::OkStatus();
}

absl::Status CheckAddable(const std::vector<const CompressedTensor*>& codes) {
  if (codes.empty()) return absl::InvalidArgumentError("AddCodes needs at least one code");
  for (const CompressedTensor* t : codes) {
    if (t == nullptr) return absl::InvalidArgumentError("AddCodes got a null code");
    COSET_RETURN_IF_ERROR(TensorCodec::CheckConsistent(*t));
    COSET_RETURN_IF_ERROR(CheckShareScales(*codes[0], *t));
  }
  return absl::OkStatus();
}

absl::StatusOr<CompressedTensor> AddCodes(const std::vector<const CompressedTensor*>& codes, SumValidation* validation,
                                          Executor* executor) {
  COSET_RETURN_IF_ERROR(CheckAddable(codes));
  COSET_ASSIGN_OR_RETURN(std::shared_ptr<const Codebook> cb, CodebookOf(*codes[0]));
  int64_t modulus = 1;
  for (int m = 0; m < codes[0]->params.M; ++m) modulus *= codes[0]->params.q;
  CompressedTensor out = *codes[0];
  const Layout& l = out.layout;
  if (validation != nullptr) {
    validation->chunks = l.rows * l.chunks_per_row;
    validation->inexact.assign(validation->chunks, 0);
  }
  const SymbolPacking packing(static_cast<uint64_t>(cb->num_symbols()), l.symbols_per_row);
  const ChunkCodebook view = cb->view();
  // Row by row (rows are independent), so that only a row's sums of the decoded points, in
  // coordinates, are ever held (SumRow; EncodeChunkSum per chunk).
  std::vector<int64_t> corrupt_row;  // where parts stopped: a row of an input did not unpack
  std::mutex corrupt_mu;
  if (executor == nullptr) executor = InlineExecutor();
  executor->ParallelFor(l.rows, [&](int64_t begin, int64_t end) {
    std::vector<uint32_t> symbols(l.symbols_per_row);
    std::vector<int64_t> sum(l.chunks_per_row * l.dim);
    for (int64_t r = begin; r < end; ++r) {
      uint8_t* inexact = validation != nullptr ? &validation->inexact[r * l.chunks_per_row] : nullptr;
      const bool ok = l.dim == 4   ? SumRow<4>(codes, r, view, modulus, symbols.data(), sum.data(), inexact)
                      : l.dim == 8 ? SumRow<8>(codes, r, view, modulus, symbols.data(), sum.data(), inexact)
                                   : SumRow<0>(codes, r, view, modulus, symbols.data(), sum.data(), inexact);
      if (!ok) {
        std::lock_guard<std::mutex> lock(corrupt_mu);
        corrupt_row.push_back(r);
        return;
      }
      packing.PackRow(symbols.data(), &out.symbols[r * out.row_bytes]);
    }
  });
  if (!corrupt_row.empty()) {
    return absl::DataLossError(
        absl::StrCat("row ", *std::min_element(corrupt_row.begin(), corrupt_row.end()), " is corrupt"));
  }
  if (validation != nullptr) {
    validation->inexact_chunks = 0;
    for (uint8_t v : validation->inexact) validation->inexact_chunks += v;
  }
  return out;
}

}  // namespace coset
