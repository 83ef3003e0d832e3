#include "core/lut.h"

#include <cmath>
#include <limits>

#include "absl/strings/str_cat.h"

namespace coset {
namespace {

int64_t BytesOf(LutValueType type) {
  switch (type) {
    case LutValueType::kInt8:
      return 1;
    case LutValueType::kInt16:
      return 2;
    case LutValueType::kInt32:
    case LutValueType::kFloat32:
      return 4;
  }
  return 4;
}

double RepDot(const Codebook& cb, uint32_t a, uint32_t b) {
  const float* ra = cb.rep_point(a);
  const float* rb = cb.rep_point(b);
  double s = 0;
  for (int i = 0; i < cb.symbol_dim(); ++i) s += static_cast<double>(ra[i]) * rb[i];
  return s;
}

}  // namespace

const char* LutValueTypeName(LutValueType type) {
  switch (type) {
    case LutValueType::kInt8:
      return "int8";
    case LutValueType::kInt16:
      return "int16";
    case LutValueType::kInt32:
      return "int32";
    case LutValueType::kFloat32:
      return "float32";
  }
  return "?";
}

absl::StatusOr<LutFootprint> TwoSidedLutFootprint(const Codebook& cb) {
  LutFootprint f;
  const double entries = static_cast<double>(cb.num_symbols()) * cb.num_symbols();
  if (entries > 1e15) return absl::ResourceExhaustedError("two-sided LUT size overflows");
  f.entries = static_cast<int64_t>(entries);
  if (cb.lattice().kind() == LatticeKind::kA2) {
    f.type = LutValueType::kFloat32;
  } else {
    // Inner products of representatives are bounded by the largest squared norm.
    double max_norm2 = 0;
    for (int64_t b = 0; b < cb.num_symbols(); ++b) max_norm2 = std::max(max_norm2, RepDot(cb, b, b));
    f.type = max_norm2 <= 127 ? LutValueType::kInt8 : max_norm2 <= 32767 ? LutValueType::kInt16 : LutValueType::kInt32;
  }
  f.bytes = f.entries * BytesOf(f.type);
  return f;
}

int64_t TwoSidedLut::bytes() const { return symbols_ * symbols_ * BytesOf(type_); }

absl::StatusOr<TwoSidedLut> TwoSidedLut::Build(const Codebook& cb, int64_t max_bytes) {
  auto footprint = TwoSidedLutFootprint(cb);
  if (!footprint.ok()) return footprint.status();
  if (footprint->bytes > max_bytes) {
    return absl::ResourceExhaustedError(absl::StrCat(
        "two-sided LUT for ", cb.lattice().name(), " q=", cb.q(), " has ", footprint->entries, " entries (",
        footprint->bytes, " bytes as ", LutValueTypeName(footprint->type), "), over the budget of ", max_bytes,
        " bytes; use the one-sided (query) path or raise the budget"));
  }
  TwoSidedLut lut;
  lut.type_ = footprint->type;
  lut.symbols_ = cb.num_symbols();
  const int64_t n = lut.symbols_;
  if (lut.integral()) {
    lut.ints_.resize(n * n);
  } else {
    lut.floats_.resize(n * n);
  }
  for (int64_t a = 0; a < n; ++a) {
    for (int64_t b = 0; b < n; ++b) {
      const double v = RepDot(cb, a, b);
      if (lut.integral()) {
        lut.ints_[a * n + b] = static_cast<int32_t>(std::llround(v));
      } else {
        lut.floats_[a * n + b] = static_cast<float>(v);
      }
    }
  }
  return lut;
}

void BuildOneSidedLut(const Codebook& cb, const float* y, float* out) {
  const int s = cb.symbol_dim();
  for (int64_t b = 0; b < cb.num_symbols(); ++b) {
    const float* r = cb.rep_point(static_cast<uint32_t>(b));
    float acc = 0.0f;
    for (int i = 0; i < s; ++i) acc += y[i] * r[i];
    out[b] = acc;
  }
}

absl::StatusOr<int64_t> OneSidedLutBytes(const Codebook& cb, int64_t max_bytes) {
  const int64_t bytes = cb.num_symbols() * 4;
  if (bytes > max_bytes) {
    return absl::ResourceExhaustedError(absl::StrCat("one-sided LUT for ", cb.lattice().name(), " q=", cb.q(), " has ",
                                                     cb.num_symbols(), " entries (", bytes,
                                                     " bytes), over the budget of ", max_bytes, " bytes"));
  }
  return bytes;
}

}  // namespace coset
