// The codec field table (core/params.h): one entry per CodecParams member, validation from its
// ranges, the exact text form, and the "same scales" rule of code arithmetic.
#include "core/params.h"

#include <set>

#include "gtest/gtest.h"

namespace coset {
namespace {

TEST(CodecFieldsTest, EveryFieldOnceWithTheDocumentedNames) {
  std::vector<std::string> names;
  std::set<std::string> unique;
  for (const CodecField& f : CodecFields()) {
    names.push_back(f.name);
    EXPECT_TRUE(unique.insert(f.name).second) << f.name << " twice";
  }
  // The documented fields, in this order (new fields may follow).
  const std::vector<std::string> documented = {"lattice", "q",      "M",    "beta",  "alpha", "block",
                                               "scale",   "rotate", "seed", "t_max", "on_cap"};
  ASSERT_GE(names.size(), documented.size());
  EXPECT_EQ(std::vector<std::string>(names.begin(), names.begin() + documented.size()), documented);
  for (const CodecField& f : CodecFields()) {
    EXPECT_EQ(FindCodecField(f.name), &f);
    EXPECT_STRNE(f.help, "") << f.name;
    // Every default is valid text for its own field.
    CodecParams p;
    EXPECT_TRUE(f.set(f.DefaultText(), &p).ok()) << f.name;
    EXPECT_EQ(f.get(p), f.DefaultText()) << f.name;
  }
  EXPECT_EQ(FindCodecField("levels"), nullptr);
}

TEST(CodecFieldsTest, DefaultsAreTheCodecParamsDefaults) {
  const CodecParams p;
  EXPECT_EQ(FindCodecField("lattice")->DefaultText(), "D4");
  EXPECT_EQ(FindCodecField("q")->DefaultText(), "4");
  EXPECT_EQ(FindCodecField("M")->DefaultText(), "2");
  EXPECT_EQ(FindCodecField("scale")->DefaultText(), "rms");
  EXPECT_EQ(FindCodecField("seed")->DefaultText(), "24301");
  EXPECT_EQ(FindCodecField("t_max")->DefaultText(), "31");
  EXPECT_EQ(FindCodecField("on_cap")->DefaultText(), "fail");
  EXPECT_TRUE(ValidateParams(p).ok());
}

TEST(CodecFieldsTest, EnumNamesFollowTheEnumNumbers) {
  const CodecField* scale = FindCodecField("scale");
  ASSERT_NE(scale->enum_names, nullptr);
  for (ScaleMode m : {ScaleMode::kNone, ScaleMode::kRms, ScaleMode::kAbsMax}) {
    EXPECT_STREQ((*scale->enum_names)[static_cast<int>(m)], ScaleModeName(m));
    EXPECT_EQ(*ParseScaleMode(ScaleModeName(m)), m);
  }
  const CodecField* on_cap = FindCodecField("on_cap");
  EXPECT_STREQ((*on_cap->enum_names)[static_cast<int>(CapPolicy::kZero)], "zero");
  EXPECT_STREQ((*on_cap->enum_names)[static_cast<int>(CapPolicy::kFail)], "fail");
}

TEST(ParamsTextTest, RoundTripsEveryFieldExactly) {
  CodecParams p;
  p.lattice = *Lattice::Parse("E8");
  p.q = 5;
  p.M = 3;
  p.beta = 0.1234567f;
  p.alpha = 0.3f;
  p.block = 64;
  p.scale = ScaleMode::kAbsMax;
  p.rotate = true;
  p.seed = 0;  // a real seed, not "unset"
  p.t_max = 7;
  p.on_cap = CapPolicy::kZero;
  const std::string text = ParamsToText(p);
  const CodecParams back = *ParamsFromText(text);
  EXPECT_EQ(ParamsToText(back), text);
  EXPECT_EQ(back.beta, p.beta);  // bit-exact float
  EXPECT_EQ(back.alpha, p.alpha);
  EXPECT_EQ(back.seed, 0u);
  EXPECT_EQ(FirstSharedFieldMismatch(p, back), nullptr);
}

TEST(ParamsTextTest, SubsetsTakeDefaultsAndErrorsNameTheField) {
  const CodecParams p = *ParamsFromText("q=3, M=1");
  EXPECT_EQ(p.q, 3);
  EXPECT_EQ(p.M, 1);
  EXPECT_EQ(p.lattice, Lattice::D4());
  EXPECT_TRUE(ParamsFromText("").ok());
  auto expect_error = [](const std::string& text, const std::string& fragment) {
    const auto r = ParamsFromText(text);
    ASSERT_FALSE(r.ok()) << text;
    EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_NE(r.status().message().find(fragment), std::string::npos) << r.status().message();
  };
  expect_error("levels=2", "unknown codec field 'levels'");
  expect_error("q=4,q=5", "q is repeated");
  expect_error("q", "needs name=value");
  expect_error("q=four", "q (='four') must be an integer");
  expect_error("beta=x", "beta (='x') must be a number");
  expect_error("rotate=maybe", "rotate (='maybe') must be true or false");
  expect_error("scale=loud", "scale (='loud') must be one of none, rms, absmax");
  expect_error("seed=-1", "seed (='-1') must be an unsigned integer");
  expect_error("lattice=E9", "E8 has dimension 8");
  expect_error("M=9", "M (=9) must be in [1, 8]");
  expect_error("t_max=64", "t_max (=64) must be in [0, 63]");
  expect_error("alpha=0", "alpha (=0) must be in");
  expect_error("q=2", "q (=2) must be in [3, 255] for D4");
  expect_error("lattice=E8,q=8", "codebook symbols for E8");
  expect_error("block=6", "block (=6) must be a multiple of the lattice dimension");
  expect_error("q=255,M=4", "exceeds 2^24");
  // Before: accepted, and every chunk silently decoded to zero.
  expect_error("beta=1e-38,scale=none", "beta (=9.99999935e-39) must be 0 (the measured default) or in");
  expect_error("beta=1e38", "must be 0 (the measured default) or in [1e-06, 1e+06] for scale rms");
  expect_error("beta=1e-7,scale=absmax", "for scale absmax");
  EXPECT_TRUE(ParamsFromText("beta=1e-12,scale=none").ok());
  EXPECT_TRUE(ParamsFromText("beta=0.25,scale=rms").ok());
}

TEST(SharedFieldsTest, OnlyStepShapingFieldsMustMatch) {
  CodecParams a, b;
  b.t_max = 3;
  b.on_cap = CapPolicy::kZero;
  b.seed = 1;  // rotation off: the seed is not used
  EXPECT_EQ(FirstSharedFieldMismatch(a, b), nullptr);
  a.rotate = b.rotate = true;
  ASSERT_NE(FirstSharedFieldMismatch(a, b), nullptr);
  EXPECT_STREQ(FirstSharedFieldMismatch(a, b)->name, "seed");
  b = a;
  b.beta = 0.5f;
  EXPECT_STREQ(FirstSharedFieldMismatch(a, b)->name, "beta");
}

TEST(CheckedNumelTest, RefusesNegativeOverflowingAndTooLargeShapes) {
  EXPECT_EQ(*CheckedNumel({}), 1);
  EXPECT_EQ(*CheckedNumel({3, 0, 5}), 0);
  EXPECT_EQ(CheckedNumel({2, -1}).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(CheckedNumel({1, 2, 3, 4, 5, 6, 7, 8, 9}).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(CheckedNumel({int64_t{1} << 40, int64_t{1} << 40}).status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(CheckedNumel({100}, 99).status().code(), absl::StatusCode::kResourceExhausted);
}

TEST(LayoutTest, PadsTheLastDimensionAndCountsChunksAndBlocks) {
  CodecParams p;
  p.block = 8;
  const Layout l = *Layout::Make(p, {3, 2, 10});
  EXPECT_EQ(l.rows, 6);
  EXPECT_EQ(l.cols, 10);
  EXPECT_EQ(l.padded_cols, 12);
  EXPECT_EQ(l.chunks_per_row, 3);
  EXPECT_EQ(l.blocks_per_row, 2);
  EXPECT_EQ(l.symbols_per_chunk, 2);
  EXPECT_EQ(l.numel, 60);
  // An empty last dimension still checks the leading ones.
  EXPECT_EQ(Layout::Make(p, {int64_t{1} << 40, int64_t{1} << 40, 0}).status().code(),
            absl::StatusCode::kResourceExhausted);
  p.block = 0;
  EXPECT_FALSE(Layout::Make(p, {4}).ok());  // block must be resolved first
}

}  // namespace
}  // namespace coset
