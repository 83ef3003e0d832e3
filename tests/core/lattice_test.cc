#include "core/lattice.h"

#include <random>

#include "core/codebook.h"
#include "gtest/gtest.h"

namespace coset {
namespace {

const char* kLattices[] = {"Z1", "Z3", "Z4", "Z8", "A2", "D3", "D4", "D5", "D8", "E8"};

double Dist2(const std::vector<double>& a, const double* b) {
  double s = 0;
  for (size_t i = 0; i < a.size(); ++i) s += (a[i] - b[i]) * (a[i] - b[i]);
  return s;
}

// Solves G c = y for real coordinates c (Gaussian elimination on a copy of G).
std::vector<double> RealCoords(const Lattice& l, const double* y) {
  const int d = l.dim();
  std::vector<double> a(d * (d + 1));
  for (int r = 0; r < d; ++r) {
    for (int c = 0; c < d; ++c) a[r * (d + 1) + c] = l.generator()[c * d + r];
    a[r * (d + 1) + d] = y[r];
  }
  for (int c = 0; c < d; ++c) {
    int piv = c;
    for (int r = c; r < d; ++r) {
      if (std::fabs(a[r * (d + 1) + c]) > std::fabs(a[piv * (d + 1) + c])) piv = r;
    }
    for (int k = 0; k <= d; ++k) std::swap(a[c * (d + 1) + k], a[piv * (d + 1) + k]);
    for (int r = 0; r < d; ++r) {
      if (r == c) continue;
      const double f = a[r * (d + 1) + c] / a[c * (d + 1) + c];
      for (int k = 0; k <= d; ++k) a[r * (d + 1) + k] -= f * a[c * (d + 1) + k];
    }
  }
  std::vector<double> out(d);
  for (int r = 0; r < d; ++r) out[r] = a[r * (d + 1) + d] / a[r * (d + 1) + r];
  return out;
}

TEST(LatticeTest, ParseRejectsUnknownNamesAndDimensions) {
  EXPECT_FALSE(Lattice::Parse("X4").ok());
  EXPECT_FALSE(Lattice::Parse("E7").ok());
  EXPECT_FALSE(Lattice::Parse("D2").ok());
  EXPECT_FALSE(Lattice::Parse("Z0").ok());
  EXPECT_FALSE(Lattice::Parse("A3").ok());
  EXPECT_FALSE(Lattice::Parse("D4x").ok());
  EXPECT_EQ(Lattice::Parse("Z")->name(), "Z1");
  EXPECT_EQ(Lattice::Parse("d4")->name(), "D4");
}

TEST(LatticeTest, GeneratorsHaveTheExpectedDeterminant) {
  // |det G| = covolume: Z^n 1, A2 sqrt(3)/2, D_n 2, E8 1.
  for (const char* name : kLattices) {
    const Lattice l = *Lattice::Parse(name);
    const int d = l.dim();
    std::vector<double> a(l.generator());
    double det = 1.0;
    for (int c = 0; c < d; ++c) {
      int piv = c;
      for (int r = c; r < d; ++r) {
        if (std::fabs(a[c * d + r]) > std::fabs(a[c * d + piv])) piv = r;
      }
      if (piv != c) {
        for (int k = 0; k < d; ++k) std::swap(a[k * d + c], a[k * d + piv]);
        det = -det;
      }
      det *= a[c * d + c];
      for (int r = c + 1; r < d; ++r) {
        const double f = a[c * d + r] / a[c * d + c];
        for (int k = c; k < d; ++k) a[k * d + r] -= f * a[k * d + c];
      }
    }
    double want = 1.0;
    if (l.kind() == LatticeKind::kA2) want = std::sqrt(3.0) / 2.0;
    if (l.kind() == LatticeKind::kD) want = 2.0;
    EXPECT_NEAR(std::fabs(det), want, 1e-12) << name;
  }
}

TEST(LatticeTest, NearestIsIdempotentOnLatticePoints) {
  std::mt19937 rng(1);
  std::uniform_int_distribution<int> coord(-20, 20);
  for (const char* name : kLattices) {
    const Lattice l = *Lattice::Parse(name);
    for (int trial = 0; trial < 2000; ++trial) {
      int32_t z[kMaxLatticeDim], back[kMaxLatticeDim];
      double p[kMaxLatticeDim];
      float pf[kMaxLatticeDim];
      for (int i = 0; i < l.dim(); ++i) z[i] = coord(rng);
      l.Point(z, p);
      l.Nearest(p, back);
      for (int i = 0; i < l.dim(); ++i) ASSERT_EQ(back[i], z[i]) << name;
      for (int i = 0; i < l.dim(); ++i) pf[i] = static_cast<float>(p[i]);
      if (l.kind() != LatticeKind::kA2) {  // A2 points are irrational; float rounding moves them
        l.Nearest(pf, back);
        for (int i = 0; i < l.dim(); ++i) ASSERT_EQ(back[i], z[i]) << name;
      }
    }
  }
}

TEST(LatticeTest, NearestMatchesBruteForceSearch) {
  std::mt19937 rng(2);
  std::normal_distribution<double> gauss(0.0, 3.0);
  for (const char* name : kLattices) {
    const Lattice l = *Lattice::Parse(name);
    const int d = l.dim();
    const int trials = d >= 8 ? 60 : 400;
    for (int trial = 0; trial < trials; ++trial) {
      std::vector<double> y(d);
      for (double& v : y) v = gauss(rng);
      int32_t z[kMaxLatticeDim];
      double p[kMaxLatticeDim];
      l.Nearest(y.data(), z);
      l.Point(z, p);
      const double got = Dist2(y, p);
      // Brute force over every integer coordinate vector within +-2 of the real coordinates.
      const std::vector<double> c = RealCoords(l, y.data());
      const int span = d >= 8 ? 3 : 5;
      std::vector<int> offset(d, 0);
      double best = 1e300;
      int64_t total = 1;
      for (int i = 0; i < d; ++i) total *= span;
      for (int64_t k = 0; k < total; ++k) {
        int64_t rest = k;
        int32_t cand[kMaxLatticeDim];
        for (int i = 0; i < d; ++i) {
          cand[i] = static_cast<int32_t>(std::floor(c[i])) + static_cast<int32_t>(rest % span) - (span - 1) / 2 +
                    (span == 3 ? 0 : 0);
          rest /= span;
        }
        double q[kMaxLatticeDim];
        l.Point(cand, q);
        best = std::min(best, Dist2(y, q));
      }
      ASSERT_LE(got, best + 1e-9) << name << " trial " << trial;
    }
  }
}

TEST(LatticeTest, FloatAndDoubleKernelsAgreeAwayFromTies) {
  std::mt19937 rng(3);
  std::normal_distribution<float> gauss(0.0f, 5.0f);
  for (const char* name : kLattices) {
    const Lattice l = *Lattice::Parse(name);
    for (int trial = 0; trial < 2000; ++trial) {
      float yf[kMaxLatticeDim];
      double yd[kMaxLatticeDim];
      for (int i = 0; i < l.dim(); ++i) yd[i] = yf[i] = gauss(rng);
      int32_t a[kMaxLatticeDim], b[kMaxLatticeDim];
      l.Nearest(yf, a);
      l.Nearest(yd, b);
      for (int i = 0; i < l.dim(); ++i) ASSERT_EQ(a[i], b[i]) << name;
    }
  }
}

TEST(LatticeTest, D4TieExampleIsResolvedTheSameWayUnderTranslation) {
  // (1/3, 1/3, 0, -2/3) is equidistant from 0 and (1, 0, 0, -1) (reference note).
  const Lattice d4 = *Lattice::Parse("D4");
  const double y[4] = {1.0 / 3, 1.0 / 3, 0.0, -2.0 / 3};
  int32_t z[4];
  NearestWithTieRule(d4, y, z);
  double p[4];
  d4.Point(z, p);
  const bool is_zero = p[0] == 0 && p[1] == 0 && p[2] == 0 && p[3] == 0;
  const bool is_other = p[0] == 1 && p[1] == 0 && p[2] == 0 && p[3] == -1;
  EXPECT_TRUE(is_zero || is_other);
  // Equivariance: translating by any lattice point translates the answer.
  const int32_t shifts[3][4] = {{1, 0, 0, 0}, {3, -2, 5, 1}, {-4, 7, 0, -3}};
  for (const auto& s : shifts) {
    double lam[4], ys[4], ps[4];
    d4.Point(s, lam);
    for (int i = 0; i < 4; ++i) ys[i] = y[i] + lam[i];
    int32_t zs[4];
    NearestWithTieRule(d4, ys, zs);
    d4.Point(zs, ps);
    for (int i = 0; i < 4; ++i) EXPECT_DOUBLE_EQ(ps[i], p[i] + lam[i]);
  }
}

TEST(LatticeParseTest, ErrorsDoNotEchoLongNames) {
  const auto r = Lattice::Parse(std::string(8192, 'E'));  // a client's 8 KB lattice name
  ASSERT_FALSE(r.ok());
  EXPECT_LT(r.status().message().size(), 120u);
}

}  // namespace
}  // namespace coset
