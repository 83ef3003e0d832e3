// cosetd's resident codec state: registered configurations (a TensorCodec per resolved parameter
// set, by id, kept until restart), a small LRU of inline configurations (requests that carry their
// parameters; they can never crowd out registrations), and the two-sided LUTs of code-to-code inner
// products, by (lattice, q).
// Codebooks are not copied here: every TensorCodec and LUT shares the process-wide codebook cache
// (core/codebook.h), which this class accounts once in bytes(). Thread-safe.
#pragma once

#include <cstdint>
#include <list>
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
    bool registered = false;
    // The label of this configuration in metrics: its id when registered, else "<lattice>-q<q>-M<M>"
    // (inline parameters are unbounded in number; their metrics are pooled per code).
    std::string metrics_label() const;
  };

  // max_bytes bounds what the cache holds (LUTs and the codebooks it uses); lut_budget_bytes bounds
  // one two-sided LUT.
  ConfigCache(int64_t max_bytes, int64_t lut_budget_bytes) : max_bytes_(max_bytes), lut_budget_(lut_budget_bytes) {}

  // The configuration of `params` (resolved: measured beta, block). A registered one is returned as
  // such. With register_it it is registered (RESOURCE_EXHAUSTED when kMaxConfigs are held or the byte
  // bound is reached); without, it comes from the inline LRU (kMaxInlineConfigs, least recently used
  // out first), never filling the registered table.
  absl::StatusOr<Config> Resolve(const CodecParams& params, bool register_it);
  // A registered configuration, by id (NOT_FOUND otherwise).
  absl::StatusOr<Config> Find(const std::string& id) const;
  // The two-sided LUT of (lattice, q), built on first use and kept when it fits.
  absl::StatusOr<std::shared_ptr<const TwoSidedLut>> TwoSided(const Lattice& lattice, int q);

  // Registered configurations.
  std::vector<Config> List() const;
  int64_t count() const;
  // Bytes held: two-sided LUTs plus the process's codebooks (each (lattice, q) counted once).
  int64_t bytes() const;

  // "<lattice>-q<q>-M<M>-<16 hex digits>": a hash of the resolved parameters' text form.
  static std::string ConfigId(const CodecParams& resolved);

  static constexpr size_t kMaxConfigs = 256;       // registered
  static constexpr size_t kMaxInlineConfigs = 64;  // inline LRU

 private:
  int64_t BytesLocked() const;

  const int64_t max_bytes_;
  const int64_t lut_budget_;
  mutable std::mutex mu_;
  std::map<std::string, Config> configs_;                                         // registered
  std::list<Config> inline_;                                                      // most recently used first
  std::map<std::tuple<int, int, int>, std::shared_ptr<const TwoSidedLut>> luts_;  // (kind, dim, q)
  int64_t lut_bytes_ = 0;
};

}  // namespace coset
