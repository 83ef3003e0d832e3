#include "server/config_cache.h"

#include <cstdio>

#include "absl/strings/str_cat.h"
#include "core/status_macros.h"

namespace coset {
namespace {

// "<lattice>-q<q>-M<M>": the code of a configuration, the prefix of its id.
std::string CodeName(const CodecParams& p) { return absl::StrCat(p.lattice.name(), "-q", p.q, "-M", p.M); }

}  // namespace

std::string ConfigCache::ConfigId(const CodecParams& resolved) {
  // FNV-1a over the canonical text form (every field, floats exact).
  const std::string text = ParamsToText(resolved);
  uint64_t h = 1469598103934665603ull;
  for (unsigned char c : text) h = (h ^ c) * 1099511628211ull;
  char hex[17];
  std::snprintf(hex, sizeof(hex), "%016llx", static_cast<unsigned long long>(h));
  return absl::StrCat(CodeName(resolved), "-", hex);
}

int64_t ConfigCache::BytesLocked() const { return lut_bytes_ + GetCodebookCacheStats().bytes; }

int64_t ConfigCache::bytes() const {
  std::lock_guard<std::mutex> lock(mu_);
  return BytesLocked();
}

int64_t ConfigCache::count() const {
  std::lock_guard<std::mutex> lock(mu_);
  return static_cast<int64_t>(configs_.size());
}

std::vector<ConfigCache::Config> ConfigCache::List() const {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<Config> out;
  for (const auto& [id, config] : configs_) out.push_back(config);
  return out;
}

absl::StatusOr<ConfigCache::Config> ConfigCache::Find(const std::string& id) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = configs_.find(id);
  if (it == configs_.end()) {
    return absl::NotFoundError(
        absl::StrCat("no configuration with id '", id.substr(0, 64), "' (RegisterConfig first)"));
  }
  return it->second;
}

std::string ConfigCache::Config::metrics_label() const { return registered ? id : CodeName(codec->params()); }

absl::StatusOr<ConfigCache::Config> ConfigCache::Resolve(const CodecParams& params, bool register_it) {
  COSET_ASSIGN_OR_RETURN(TensorCodec codec, TensorCodec::Create(params));
  const std::string id = ConfigId(codec.params());
  std::lock_guard<std::mutex> lock(mu_);
  if (auto it = configs_.find(id); it != configs_.end()) return it->second;
  if (register_it) {
    // Bounded by count and by bytes (the codebook it uses is already in the process cache).
    if (configs_.size() >= kMaxConfigs || BytesLocked() > max_bytes_) {
      return absl::ResourceExhaustedError(absl::StrCat("cannot register more configurations (", configs_.size(),
                                                       " held, ", BytesLocked(), " bytes of codebooks and LUTs)"));
    }
    Config config{id, std::make_shared<const TensorCodec>(std::move(codec)), true};
    configs_[id] = config;
    return config;
  }
  for (auto it = inline_.begin(); it != inline_.end(); ++it) {
    if (it->id == id) {
      inline_.splice(inline_.begin(), inline_, it);
      return inline_.front();
    }
  }
  inline_.push_front(Config{id, std::make_shared<const TensorCodec>(std::move(codec)), false});
  if (inline_.size() > kMaxInlineConfigs) inline_.pop_back();
  return inline_.front();
}

absl::StatusOr<std::shared_ptr<const TwoSidedLut>> ConfigCache::TwoSided(const Lattice& lattice, int q) {
  const std::tuple<int, int, int> key{static_cast<int>(lattice.kind()), lattice.dim(), q};
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = luts_.find(key);
    if (it != luts_.end()) return it->second;
  }
  COSET_ASSIGN_OR_RETURN(std::shared_ptr<const Codebook> codebook, Codebook::Get(lattice, q));
  COSET_ASSIGN_OR_RETURN(TwoSidedLut built, TwoSidedLut::Build(*codebook, lut_budget_));
  auto lut = std::make_shared<const TwoSidedLut>(std::move(built));
  std::lock_guard<std::mutex> lock(mu_);
  if (auto it = luts_.find(key); it != luts_.end()) return it->second;  // built concurrently
  if (luts_.size() < kMaxConfigs && BytesLocked() + lut->bytes() <= max_bytes_) {
    luts_[key] = lut;
    lut_bytes_ += lut->bytes();
  }
  return lut;
}

}  // namespace coset
