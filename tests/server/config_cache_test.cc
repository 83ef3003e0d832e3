#include "server/config_cache.h"

#include "gtest/gtest.h"

namespace coset {
namespace {

TEST(ConfigCacheTest, SameParametersSameIdAndOneCodec) {
  ConfigCache cache(int64_t{64} << 20, kDefaultLutBudgetBytes);
  CodecParams p;
  const ConfigCache::Config a = *cache.Resolve(p, true);
  const ConfigCache::Config b = *cache.Resolve(p, false);
  EXPECT_EQ(a.id, b.id);
  EXPECT_EQ(a.codec.get(), b.codec.get());
  EXPECT_EQ(a.id.rfind("D4-q4-M2-", 0), 0u) << a.id;
  EXPECT_EQ(cache.Find(a.id)->codec.get(), a.codec.get());
  EXPECT_EQ(cache.Find("nope").status().code(), absl::StatusCode::kNotFound);
  EXPECT_TRUE(a.registered);
  EXPECT_EQ(a.metrics_label(), a.id);
  p.seed = 0;  // a different resolved configuration, a different id, inline
  const ConfigCache::Config inline_config = *cache.Resolve(p, false);
  EXPECT_NE(inline_config.id, a.id);
  EXPECT_FALSE(inline_config.registered);
  EXPECT_EQ(inline_config.metrics_label(), "D4-q4-M2");
  EXPECT_EQ(cache.Find(inline_config.id).status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(cache.count(), 1);  // only registrations count
  EXPECT_EQ(cache.List().size(), 1u);
}

TEST(ConfigCacheInlineTest, InlineConfigurationsNeverCrowdOutRegistrations) {
  ConfigCache cache(int64_t{64} << 20, kDefaultLutBudgetBytes);
  CodecParams p;
  // Before: 256 distinct inline configurations (beta is part of the id) filled the one table for
  // good, and RegisterConfig failed for everyone until restart.
  for (int i = 0; i < 300; ++i) {
    p.beta = 0.1f + 0.001f * static_cast<float>(i);
    ASSERT_TRUE(cache.Resolve(p, false).ok());
  }
  EXPECT_EQ(cache.count(), 0);
  p.beta = 0.05f;
  EXPECT_TRUE(cache.Resolve(p, true).ok());
  // The inline LRU keeps the recent ones: resolving the last again returns the same codec.
  p.beta = 0.1f + 0.001f * 299;
  EXPECT_EQ(cache.Resolve(p, false)->codec.get(), cache.Resolve(p, false)->codec.get());
}

TEST(ConfigCacheTest, CodebooksAreSharedWithTheProcessCache) {
  ConfigCache cache(int64_t{64} << 20, kDefaultLutBudgetBytes);
  CodecParams p;
  p.q = 9;  // a (lattice, q) no other test uses first
  const ConfigCache::Config c = *cache.Resolve(p, true);
  EXPECT_EQ(&c.codec->codebook(), Codebook::Get(p.lattice, 9)->get());
  // bytes() counts the process's codebooks once (no per-configuration copy).
  CodecParams other = p;
  other.beta = 0.3f;
  const int64_t before = cache.bytes();
  ASSERT_TRUE(cache.Resolve(other, true).ok());
  EXPECT_EQ(cache.bytes(), before);
}

TEST(ConfigCacheTest, TwoSidedLutsAreKeptOncePerLatticeAndQ) {
  ConfigCache cache(int64_t{64} << 20, kDefaultLutBudgetBytes);
  const Lattice d4 = Lattice::D4();
  const auto a = *cache.TwoSided(d4, 4);
  const auto b = *cache.TwoSided(d4, 4);
  EXPECT_EQ(a.get(), b.get());
  EXPECT_EQ(cache.TwoSided(*Lattice::Parse("E8"), 4).status().code(), absl::StatusCode::kResourceExhausted);
}

TEST(ConfigCacheTest, AFullCacheRefusesRegistrationButServesOneOffs) {
  ConfigCache cache(0, kDefaultLutBudgetBytes);  // no room at all
  CodecParams p;
  EXPECT_EQ(cache.Resolve(p, true).status().code(), absl::StatusCode::kResourceExhausted);
  const ConfigCache::Config one_off = *cache.Resolve(p, false);
  EXPECT_NE(one_off.codec, nullptr);
  EXPECT_EQ(cache.count(), 0);
}

}  // namespace
}  // namespace coset
