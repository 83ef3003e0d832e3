// Every Prometheus metric cosetd exports, in one place (README "Metrics" lists the same names).
#pragma once

#include <memory>
#include <mutex>
#include <set>
#include <string>

#include "prometheus/counter.h"
#include "prometheus/family.h"
#include "prometheus/gauge.h"
#include "prometheus/histogram.h"
#include "prometheus/registry.h"

namespace coset {

class Metrics {
 public:
  Metrics();

  std::shared_ptr<prometheus::Registry> registry() const { return registry_; }

  // One finished RPC: method name, canonical status code name, client kind (proto/client_kind.h,
  // already bounded), the backend its codec work ran on ("cpu" or "cuda"), latency, bytes in/out.
  void RecordRequest(const std::string& method, const std::string& code, const std::string& client,
                     const std::string& backend, double seconds, double bytes_in, double bytes_out);
  // One encode: raw bytes (in the tensor's dtype), compressed bytes, chunks, chunks needing T > 0, chunks that
  // reached t_max (capped: zeroed or refused, i.e. clipped data), T histogram.
  // At most kMaxConfigLabels distinct `config` label values are exported; later ones are pooled
  // under "other", so no client can grow the series count without bound.
  void RecordEncode(const std::string& config, double raw_bytes, double compressed_bytes, double chunks,
                    double first_try_overloads, double capped, const std::vector<int64_t>& t_histogram);
  prometheus::Gauge& inflight() { return *inflight_; }
  prometheus::Gauge& resident_bytes() { return *resident_bytes_; }
  prometheus::Gauge& resident_tensors() { return *resident_tensors_; }
  prometheus::Gauge& lut_cache_bytes() { return *lut_cache_bytes_; }
  prometheus::Gauge& configs() { return *configs_; }
  prometheus::Gauge& shm_regions() { return *shm_regions_; }
  prometheus::Gauge& codebook_bytes() { return *codebook_bytes_; }
  prometheus::Gauge& shm_bytes() { return *shm_bytes_; }
  prometheus::Gauge& shm_page_locked_bytes() { return *shm_page_locked_bytes_; }
  prometheus::Gauge& memory_budget_bytes() { return *memory_budget_bytes_; }
  prometheus::Gauge& memory_used_bytes() { return *memory_used_bytes_; }
  prometheus::Gauge& device_memory_budget_bytes() { return *device_memory_budget_bytes_; }
  prometheus::Gauge& device_memory_used_bytes() { return *device_memory_used_bytes_; }
  prometheus::Gauge& resident_device_bytes() { return *resident_device_bytes_; }

  static constexpr size_t kMaxConfigLabels = 64;

 private:
  std::string ConfigLabel(const std::string& config);

  std::mutex labels_mu_;
  std::set<std::string> config_labels_;
  std::shared_ptr<prometheus::Registry> registry_;
  prometheus::Family<prometheus::Counter>* requests_;
  prometheus::Family<prometheus::Counter>* bytes_in_;
  prometheus::Family<prometheus::Counter>* bytes_out_;
  prometheus::Family<prometheus::Histogram>* latency_;
  prometheus::Family<prometheus::Counter>* raw_bytes_;
  prometheus::Family<prometheus::Counter>* saved_bytes_;
  prometheus::Family<prometheus::Counter>* chunks_;
  prometheus::Family<prometheus::Counter>* overloads_;
  prometheus::Family<prometheus::Counter>* capped_;
  prometheus::Family<prometheus::Counter>* t_values_;
  prometheus::Gauge* inflight_;
  prometheus::Gauge* resident_bytes_;
  prometheus::Gauge* resident_tensors_;
  prometheus::Gauge* lut_cache_bytes_;
  prometheus::Gauge* configs_;
  prometheus::Gauge* shm_regions_;
  prometheus::Gauge* codebook_bytes_;
  prometheus::Gauge* shm_bytes_;
  prometheus::Gauge* shm_page_locked_bytes_;
  prometheus::Gauge* memory_budget_bytes_;
  prometheus::Gauge* memory_used_bytes_;
  prometheus::Gauge* device_memory_budget_bytes_;
  prometheus::Gauge* device_memory_used_bytes_;
  prometheus::Gauge* resident_device_bytes_;
};

}  // namespace coset
