#include "core/lattice.h"

#include <cctype>
#include <charconv>

#include "absl/strings/str_cat.h"

namespace coset {

absl::StatusOr<Lattice> Lattice::Parse(std::string_view name) {
  if (name.empty()) return absl::InvalidArgumentError("lattice name is empty");
  const char letter = static_cast<char>(std::toupper(static_cast<unsigned char>(name[0])));
  const std::string_view digits = name.substr(1);
  int dim = 0;
  if (!digits.empty()) {
    auto [ptr, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), dim);
    if (ec != std::errc() || ptr != digits.data() + digits.size()) {
      return absl::InvalidArgumentError(
          absl::StrCat("unknown lattice '", std::string(name.substr(0, 64)), "' (expected Zn, A2, Dn or E8)"));
    }
  }
  switch (letter) {
    case 'Z':
      return Create(LatticeKind::kZ, digits.empty() ? 1 : dim);
    case 'A':
      return Create(LatticeKind::kA2, dim);
    case 'D':
      return Create(LatticeKind::kD, dim);
    case 'E':
      return Create(LatticeKind::kE8, dim);
    default:
      return absl::InvalidArgumentError(
          absl::StrCat("unknown lattice '", std::string(name.substr(0, 64)), "' (expected Zn, A2, Dn or E8)"));
  }
}

absl::StatusOr<Lattice> Lattice::Create(LatticeKind kind, int dim) {
  switch (kind) {
    case LatticeKind::kZ:
      if (dim < 1 || dim > kMaxLatticeDim) {
        return absl::InvalidArgumentError(absl::StrCat("Z^n needs 1 <= n <= ", kMaxLatticeDim, " (got n = ", dim, ")"));
      }
      break;
    case LatticeKind::kA2:
      if (dim != 2) return absl::InvalidArgumentError(absl::StrCat("A2 has dimension 2 (got ", dim, ")"));
      break;
    case LatticeKind::kD:
      if (dim < 3 || dim > kMaxLatticeDim) {
        return absl::InvalidArgumentError(absl::StrCat("D_n needs 3 <= n <= ", kMaxLatticeDim, " (got n = ", dim, ")"));
      }
      break;
    case LatticeKind::kE8:
      if (dim != 8) return absl::InvalidArgumentError(absl::StrCat("E8 has dimension 8 (got ", dim, ")"));
      break;
    default:
      return absl::InvalidArgumentError(absl::StrCat("unknown lattice kind ", static_cast<int>(kind)));
  }
  return Lattice(kind, dim);
}

Lattice::Lattice(LatticeKind kind, int dim) : kind_(kind), dim_(dim), generator_(dim * dim, 0.0) {
  auto g = [this](int row, int col) -> double& { return generator_[col * dim_ + row]; };
  switch (kind) {
    case LatticeKind::kZ:
      for (int i = 0; i < dim; ++i) g(i, i) = 1.0;
      break;
    case LatticeKind::kA2:
      g(0, 0) = 1.0;
      g(0, 1) = 0.5;
      g(1, 1) = std::sqrt(3.0) / 2.0;
      break;
    case LatticeKind::kD:
      g(0, 0) = -1.0;
      g(1, 0) = -1.0;
      g(0, 1) = 1.0;
      g(1, 1) = -1.0;
      for (int k = 2; k < dim; ++k) {
        g(k - 1, k) = 1.0;
        g(k, k) = -1.0;
      }
      break;
    case LatticeKind::kE8:
      g(0, 0) = 2.0;
      for (int k = 1; k < 7; ++k) {
        g(k - 1, k) = -1.0;
        g(k, k) = 1.0;
      }
      for (int i = 0; i < 8; ++i) g(i, 7) = 0.5;
      break;
  }
}

std::string Lattice::name() const {
  switch (kind_) {
    case LatticeKind::kZ:
      return absl::StrCat("Z", dim_);
    case LatticeKind::kA2:
      return "A2";
    case LatticeKind::kD:
      return absl::StrCat("D", dim_);
    case LatticeKind::kE8:
      return "E8";
  }
  return "?";
}

double Lattice::second_moment() const {
  switch (kind_) {
    case LatticeKind::kZ:
      return 1.0 / 12.0;
    case LatticeKind::kA2:
      return 5.0 / 72.0;
    case LatticeKind::kD:
      // sigma^2 = G(D_n) * vol^(2/n) with vol = 2. D4 is exact (G = 0.0766032); other n reuse D4's
      // normalized moment, an approximation that only positions the beta search grid.
      return dim_ == 4 ? 0.10833 : 0.0766032 * std::pow(2.0, 2.0 / dim_);
    case LatticeKind::kE8:
      return 0.071682;
  }
  return 0.0;
}

void Lattice::Point(const int32_t* z, double* p) const {
  for (int r = 0; r < dim_; ++r) {
    double acc = 0.0;
    for (int c = 0; c < dim_; ++c) acc += generator_[c * dim_ + r] * z[c];
    p[r] = acc;
  }
}

}  // namespace coset
