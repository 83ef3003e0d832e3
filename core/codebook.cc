#include "core/codebook.h"

#include <algorithm>
#include <cmath>
#include <list>
#include <map>
#include <mutex>
#include <tuple>

#include "absl/strings/str_cat.h"

namespace coset {
namespace {

// sqrt of the first 16 primes: linearly independent over the rationals, so <ε c, v> != 0 for every
// nonzero lattice difference v, and no two candidates stay tied.
constexpr double kTieDirection[kMaxLatticeDim] = {
    1.4142135623730951, 1.7320508075688772, 2.2360679774997898, 2.6457513110645907,
    3.3166247903554000, 3.6055512754639891, 4.1231056256176606, 4.3588989435406740,
    4.7958315233127191, 5.3851648071345037, 5.5677643628300215, 6.0827625302982193,
    6.4031242374328485, 6.5574385243020004, 6.8556546004010439, 7.2801098892805181};
constexpr double kTieEpsilon = 1e-9;

// The process-wide codebook cache: least recently used first out, bounded by count and bytes.
class CodebookCache {
 public:
  static CodebookCache& Instance() {
    static CodebookCache* cache = new CodebookCache();  // never destroyed: used until exit
    return *cache;
  }

  absl::StatusOr<std::shared_ptr<const Codebook>> Get(const Lattice& lattice, int q) {
    const Key key{static_cast<int>(lattice.kind()), lattice.dim(), q};
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (auto hit = Find(key)) return hit;
    }
    // Built outside the lock (E8 q = 5 takes ~0.1 s); a concurrent build of the same key loses to
    // the first one inserted, so the cache never holds two copies.
    auto built = Codebook::Build(lattice, q);
    if (!built.ok()) return built.status();
    std::lock_guard<std::mutex> lock(mu_);
    if (auto hit = Find(key)) return hit;
    ++builds_;
    lru_.push_front({key, *built});
    index_[key] = lru_.begin();
    bytes_ += (*built)->bytes();
    while (lru_.size() > 1 &&
           (static_cast<int64_t>(lru_.size()) > kCodebookCacheEntries || bytes_ > kCodebookCacheBytes)) {
      bytes_ -= lru_.back().codebook->bytes();
      index_.erase(lru_.back().key);
      lru_.pop_back();
    }
    return *built;
  }

  CodebookCacheStats Stats() {
    std::lock_guard<std::mutex> lock(mu_);
    return {static_cast<int64_t>(lru_.size()), bytes_, builds_};
  }

 private:
  using Key = std::tuple<int, int, int>;  // lattice kind, dimension, q
  struct Entry {
    Key key;
    std::shared_ptr<const Codebook> codebook;
  };
  std::shared_ptr<const Codebook> Find(const Key& key) {
    auto it = index_.find(key);
    if (it == index_.end()) return nullptr;
    lru_.splice(lru_.begin(), lru_, it->second);  // most recently used first
    return it->second->codebook;
  }

  std::mutex mu_;
  std::list<Entry> lru_;
  std::map<Key, std::list<Entry>::iterator> index_;
  int64_t bytes_ = 0;
  int64_t builds_ = 0;
};

}  // namespace

absl::StatusOr<std::shared_ptr<const Codebook>> Codebook::Get(const Lattice& lattice, int q) {
  return CodebookCache::Instance().Get(lattice, q);
}

CodebookCacheStats GetCodebookCacheStats() { return CodebookCache::Instance().Stats(); }

void NearestWithTieRule(const Lattice& lattice, const double* y, int32_t* z) {
  double perturbed[kMaxLatticeDim];
  for (int i = 0; i < lattice.dim(); ++i) perturbed[i] = y[i] + kTieEpsilon * kTieDirection[i];
  lattice.Nearest(perturbed, z);
}

absl::StatusOr<std::shared_ptr<const Codebook>> Codebook::Build(const Lattice& lattice, int q) {
  if (q < lattice.min_q()) {
    return absl::InvalidArgumentError(
        absl::StrCat("q (=", q, ") must be at least ", lattice.min_q(), " for ", lattice.name(),
                     lattice.min_q() > 2 ? " (q = 2 overloads 50-94% of chunks and never clears)" : ""));
  }
  if (q > kMaxQ) return absl::InvalidArgumentError(absl::StrCat("q (=", q, ") must be at most ", kMaxQ));
  const int s = lattice.symbol_dim();
  const double symbols = std::pow(static_cast<double>(q), s);
  if (symbols > static_cast<double>(kMaxCodebookSymbols)) {
    return absl::InvalidArgumentError(absl::StrCat("q^", s, " (= ", symbols, ") codebook symbols for ", lattice.name(),
                                                   " q=", q, " exceeds the limit of ", kMaxCodebookSymbols,
                                                   "; use a smaller q or lattice"));
  }
  return std::shared_ptr<const Codebook>(new Codebook(lattice, q));
}

Codebook::Codebook(const Lattice& lattice, int q) : lattice_(lattice), q_(q), symbol_dim_(lattice.symbol_dim()) {
  num_symbols_ = 1;
  for (int i = 0; i < symbol_dim_; ++i) num_symbols_ *= q;
  while ((1 << log2_q_) < q) ++log2_q_;
  rep_coords_.resize(num_symbols_ * symbol_dim_);
  rep_point_.resize(num_symbols_ * symbol_dim_);
  // Z^n codes per coordinate with Z1's table; the other lattices code whole chunks.
  const Lattice symbol_lattice = lattice.kind() == LatticeKind::kZ ? *Lattice::Create(LatticeKind::kZ, 1) : lattice;
  int32_t b[kMaxLatticeDim], zq[kMaxLatticeDim];
  double gb[kMaxLatticeDim], rep_ambient[kMaxLatticeDim];
  for (int64_t symbol = 0; symbol < num_symbols_; ++symbol) {
    int64_t rest = symbol;
    for (int i = 0; i < symbol_dim_; ++i) {
      b[i] = static_cast<int32_t>(rest % q);
      rest /= q;
    }
    symbol_lattice.Point(b, gb);
    for (int i = 0; i < symbol_dim_; ++i) gb[i] /= q;
    NearestWithTieRule(symbol_lattice, gb, zq);
    int32_t* rc = &rep_coords_[symbol * symbol_dim_];
    for (int i = 0; i < symbol_dim_; ++i) rc[i] = b[i] - q * zq[i];
    symbol_lattice.Point(rc, rep_ambient);
    for (int i = 0; i < symbol_dim_; ++i) rep_point_[symbol * symbol_dim_ + i] = static_cast<float>(rep_ambient[i]);
  }
  if (lattice.kind() != LatticeKind::kA2) {
    const bool fits =
        std::all_of(rep_point_.begin(), rep_point_.end(), [](float v) { return std::fabs(2 * v) <= 127; });
    if (fits) {
      rep_point_x2_int8_.resize(rep_point_.size());
      for (size_t i = 0; i < rep_point_.size(); ++i) {
        rep_point_x2_int8_[i] = static_cast<int8_t>(2 * rep_point_[i]);
        max_abs_rep_point_x2_ = std::max<int32_t>(max_abs_rep_point_x2_, std::abs(rep_point_x2_int8_[i]));
      }
      if (num_symbols_ <= kPlanarTableSize) {
        rep_point_x2_planar_int8_.assign(symbol_dim_ * kPlanarTableSize, 0);
        for (int64_t symbol = 0; symbol < num_symbols_; ++symbol) {
          for (int i = 0; i < symbol_dim_; ++i) {
            rep_point_x2_planar_int8_[i * kPlanarTableSize + symbol] = rep_point_x2_int8_[symbol * symbol_dim_ + i];
          }
        }
      }
    }
  }
  for (float v : rep_point_) max_abs_rep_point_ = std::max(max_abs_rep_point_, std::fabs(v));
  for (int32_t v : rep_coords_) max_abs_rep_coord_ = std::max(max_abs_rep_coord_, std::abs(v));
  const bool fits_int8 =
      std::all_of(rep_coords_.begin(), rep_coords_.end(), [](int32_t v) { return v >= -128 && v <= 127; });
  if (fits_int8) {
    const int words = (symbol_dim_ + 3) / 4;
    rep_coords_int8x4_.assign(num_symbols_ * words, 0);
    for (int64_t symbol = 0; symbol < num_symbols_; ++symbol) {
      for (int i = 0; i < symbol_dim_; ++i) {
        const uint32_t byte = static_cast<uint8_t>(static_cast<int8_t>(rep_coords_[symbol * symbol_dim_ + i]));
        uint32_t& word = reinterpret_cast<uint32_t&>(rep_coords_int8x4_[symbol * words + i / 4]);
        word |= byte << (8 * (i % 4));
      }
    }
    if (num_symbols_ <= kPlanarTableSize) {
      rep_coords_planar_int8_.assign(symbol_dim_ * kPlanarTableSize, 0);
      for (int64_t symbol = 0; symbol < num_symbols_; ++symbol) {
        for (int i = 0; i < symbol_dim_; ++i) {
          rep_coords_planar_int8_[i * kPlanarTableSize + symbol] =
              static_cast<int8_t>(rep_coords_[symbol * symbol_dim_ + i]);
        }
      }
    }
  }
}

}  // namespace coset
