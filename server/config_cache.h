// cosetd's resident codec state: registered and cached configurations (a TensorCodec per resolved
// parameter set, by id) and the two-sided LUTs of code-to-code inner products, by (lattice, q).
// Codebooks are not copied here: every TensorCodec and LUT shares the process-wide codebook cache
// (core/codebook.h), which this class accounts once in bytes(). Thread-safe.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <tuple>
#include <vector>

#include "absl/status/statusor.h"
#include "core/lut.h"
#include "core/tensor_codec.h"

namespace coset {

class ConfigCache {
 public:
  struct Config {
    std::string id;
    std::shared_ptr<const TensorCodec> codec;
  };

  // max_bytes bounds what the cache holds (LUTs and the codebooks it uses); lut_budget_bytes bounds
  // one two-sided LUT.
  ConfigCache(int64_t max_bytes, int64_t lut_budget_bytes) : max_bytes_(max_bytes), lut_budget_(lut_budget_bytes) {}

  // The configuration of `params` (resolved: measured beta, block). Kept when the cache has room;
  // with register_it, a full cache is RESOURCE_EXHAUSTED instead of a one-off configuration.
  absl::StatusOr<Config> Resolve(const CodecParams& params, bool register_it);
  // A configuration kept earlier, by id (NOT_FOUND otherwise).
  absl::StatusOr<Config> Find(const std::string& id) const;
  // The two-sided LUT of (lattice, q), built on first use and kept when it fits.
  absl::StatusOr<std::shared_ptr<const TwoSidedLut>> TwoSided(const Lattice& lattice, int q);

  std::vector<Config> List() const;
  int64_t count() const;
  // Bytes held: two-sided LUTs plus the process's codebooks (each (lattice, q) counted once).
  int64_t bytes() const;

  // "<lattice>-q<q>-M<M>-<16 hex digits>": a hash of the resolved parameters' text form.
  static std::string ConfigId(const CodecParams& resolved);

  // Configurations kept beyond this many are built per request instead.
  static constexpr size_t kMaxConfigs = 256;

 private:
  int64_t BytesLocked() const;

  const int64_t max_bytes_;
  const int64_t lut_budget_;
  mutable std::mutex mu_;
  std::map<std::string, Config> configs_;
  std::map<std::tuple<int, int, int>, std::shared_ptr<const TwoSidedLut>> luts_;  // (kind, dim, q)
  int64_t lut_bytes_ = 0;
};

}  // namespace coset
