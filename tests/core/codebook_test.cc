#include "core/codebook.h"

#include "core/tensor_codec.h"
#include "gtest/gtest.h"

namespace coset {
namespace {

struct Config {
  const char* lattice;
  int q;
};

TEST(CodebookTest, RefusesQBelowTheLatticeMinimumAndOversizeTables) {
  EXPECT_EQ(Codebook::Get(*Lattice::Parse("D4"), 2).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Codebook::Get(*Lattice::Parse("E8"), 2).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(Codebook::Get(*Lattice::Parse("Z1"), 2).ok());
  const auto big = Codebook::Get(*Lattice::Parse("E8"), 8);
  ASSERT_FALSE(big.ok());
  EXPECT_NE(big.status().message().find("exceeds"), std::string::npos);
}

TEST(CodebookTest, RepresentativesAreCosetMembersInsideTheClosedCell) {
  for (const Config& c : {Config{"Z1", 2}, Config{"Z1", 5}, Config{"A2", 3}, Config{"A2", 4}, Config{"D4", 3},
                          Config{"D4", 4}, Config{"D4", 8}, Config{"E8", 3}, Config{"E8", 4}}) {
    const Lattice lattice = *Lattice::Parse(c.lattice);
    const auto cb = *Codebook::Get(lattice, c.q);
    const int s = cb->symbol_dim();
    const Lattice sym = lattice.kind() == LatticeKind::kZ ? *Lattice::Parse("Z1") : lattice;
    for (int64_t b = 0; b < cb->num_symbols(); ++b) {
      const int32_t* rc = cb->rep_coords(static_cast<uint32_t>(b));
      int64_t rest = b;
      for (int i = 0; i < s; ++i) {
        const int digit = static_cast<int>(rest % c.q);
        rest /= c.q;
        ASSERT_EQ(((rc[i] % c.q) + c.q) % c.q, digit) << c.lattice << " q=" << c.q << " b=" << b;
      }
      // Inside the closed cell qV: 0 is a nearest point of rep / q (distance ties allowed).
      double p[kMaxLatticeDim], y[kMaxLatticeDim], nearest[kMaxLatticeDim];
      sym.Point(rc, p);
      for (int i = 0; i < s; ++i) y[i] = p[i] / c.q;
      int32_t z[kMaxLatticeDim];
      sym.Nearest(y, z);
      sym.Point(z, nearest);
      double d0 = 0, dn = 0;
      for (int i = 0; i < s; ++i) {
        d0 += y[i] * y[i];
        dn += (y[i] - nearest[i]) * (y[i] - nearest[i]);
        ASSERT_FLOAT_EQ(cb->rep_point(static_cast<uint32_t>(b))[i], static_cast<float>(p[i]));
      }
      ASSERT_LE(d0, dn + 1e-12) << c.lattice << " q=" << c.q << " b=" << b;
    }
    const int32_t* zero = cb->rep_coords(0);
    for (int i = 0; i < s; ++i) EXPECT_EQ(zero[i], 0);
  }
}

}  // namespace
}  // namespace coset

namespace coset {
namespace {

TEST(CodebookCacheTest, OneSharedCopyPerLatticeAndQ) {
  const Lattice d4 = *Lattice::Parse("D4");
  const auto a = *Codebook::Get(d4, 5);
  const int64_t builds = GetCodebookCacheStats().builds;
  const auto b = *Codebook::Get(d4, 5);
  EXPECT_EQ(a.get(), b.get());  // the same tables, not a copy
  EXPECT_EQ(GetCodebookCacheStats().builds, builds);
  const auto c = *Codebook::Get(d4, 6);
  EXPECT_NE(a.get(), c.get());
  EXPECT_EQ(GetCodebookCacheStats().builds, builds + 1);
  EXPECT_GE(GetCodebookCacheStats().bytes, a->bytes() + c->bytes());
  // Build makes a fresh one outside the cache, with the same contents.
  const auto fresh = *Codebook::Build(d4, 5);
  EXPECT_NE(fresh.get(), a.get());
  EXPECT_EQ(fresh->rep_points(), a->rep_points());
}

TEST(CodebookCacheTest, CodecsShareTheCachedCodebook) {
  CodecParams p;
  p.q = 7;
  const TensorCodec one = *TensorCodec::Create(p);
  const TensorCodec two = *TensorCodec::Create(p);
  EXPECT_EQ(&one.codebook(), &two.codebook());
}

}  // namespace
}  // namespace coset
