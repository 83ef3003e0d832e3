#include "server/metrics.h"

#include <algorithm>

namespace coset {

Metrics::Metrics() : registry_(std::make_shared<prometheus::Registry>()) {
  requests_ = &prometheus::BuildCounter()
                   .Name("coset_requests_total")
                   .Help("RPCs by method, status code, client kind and backend (cpu or cuda)")
                   .Register(*registry_);
  bytes_in_ = &prometheus::BuildCounter()
                   .Name("coset_request_bytes_total")
                   .Help("Request payload bytes by method")
                   .Register(*registry_);
  bytes_out_ = &prometheus::BuildCounter()
                    .Name("coset_response_bytes_total")
                    .Help("Response payload bytes by method")
                    .Register(*registry_);
  latency_ = &prometheus::BuildHistogram()
                  .Name("coset_request_duration_seconds")
                  .Help("RPC latency by method, client kind and backend (cpu or cuda)")
                  .Register(*registry_);
  raw_bytes_ = &prometheus::BuildCounter()
                    .Name("coset_encoded_raw_bytes_total")
                    .Help("Raw bytes encoded (in the tensors' own dtypes), by configuration")
                    .Register(*registry_);
  saved_bytes_ = &prometheus::BuildCounter()
                      .Name("coset_bytes_saved_total")
                      .Help("Raw bytes (in the tensors' own dtypes) minus compressed bytes, by configuration")
                      .Register(*registry_);
  chunks_ = &prometheus::BuildCounter()
                 .Name("coset_chunks_total")
                 .Help("Chunks encoded, by configuration")
                 .Register(*registry_);
  overloads_ = &prometheus::BuildCounter()
                    .Name("coset_overload_chunks_total")
                    .Help("Chunks that overloaded on the first try (T > 0), by configuration")
                    .Register(*registry_);
  capped_ =
      &prometheus::BuildCounter()
           .Name("coset_capped_chunks_total")
           .Help("Chunks that reached t_max (zeroed or refused by the cap policy: clipped data), by configuration")
           .Register(*registry_);
  t_values_ = &prometheus::BuildCounter()
                   .Name("coset_overload_t_total")
                   .Help("Chunks by overload counter T (T >= 8 counted as 8+), by configuration")
                   .Register(*registry_);
  inflight_ =
      &prometheus::BuildGauge().Name("coset_inflight_requests").Help("RPCs being served").Register(*registry_).Add({});
  resident_bytes_ = &prometheus::BuildGauge()
                         .Name("coset_resident_tensor_bytes")
                         .Help("Bytes of resident compressed tensors")
                         .Register(*registry_)
                         .Add({});
  resident_tensors_ = &prometheus::BuildGauge()
                           .Name("coset_resident_tensors")
                           .Help("Resident compressed tensors")
                           .Register(*registry_)
                           .Add({});
  lut_cache_bytes_ = &prometheus::BuildGauge()
                          .Name("coset_lut_cache_bytes")
                          .Help("Bytes of codebooks and repacked LUT matrices kept resident")
                          .Register(*registry_)
                          .Add({});
  shm_regions_ = &prometheus::BuildGauge()
                      .Name("coset_shm_regions")
                      .Help("Shared-memory regions registered by clients")
                      .Register(*registry_)
                      .Add({});
  shm_bytes_ = &prometheus::BuildGauge()
                    .Name("coset_shm_bytes")
                    .Help("Bytes of registered shared-memory regions")
                    .Register(*registry_)
                    .Add({});
  shm_page_locked_bytes_ =
      &prometheus::BuildGauge()
           .Name("coset_shm_page_locked_bytes")
           .Help("Bytes of registered shared-memory regions page-locked for the CUDA backend's pipelined staging")
           .Register(*registry_)
           .Add({});
  codebook_bytes_ = &prometheus::BuildGauge()
                         .Name("coset_codebook_bytes")
                         .Help("Bytes of codebook tables and two-sided LUTs kept resident")
                         .Register(*registry_)
                         .Add({});
  memory_budget_bytes_ = &prometheus::BuildGauge()
                              .Name("coset_memory_budget_bytes")
                              .Help("The daemon's memory budget (--memory-budget)")
                              .Register(*registry_)
                              .Add({});
  memory_used_bytes_ = &prometheus::BuildGauge()
                            .Name("coset_memory_used_bytes")
                            .Help("Bytes charged to the memory budget: resident state plus requests' reservations")
                            .Register(*registry_)
                            .Add({});
  device_memory_budget_bytes_ = &prometheus::BuildGauge()
                                     .Name("coset_device_memory_budget_bytes")
                                     .Help("Device memory the CUDA backend may hold (--device-memory-budget)")
                                     .Register(*registry_)
                                     .Add({});
  device_memory_used_bytes_ =
      &prometheus::BuildGauge()
           .Name("coset_device_memory_used_bytes")
           .Help("Device memory the CUDA backend holds: codebook tables, resident weights and requests' staging")
           .Register(*registry_)
           .Add({});
  resident_device_bytes_ =
      &prometheus::BuildGauge()
           .Name("coset_resident_device_bytes")
           .Help("Device memory of resident tensors' codes kept on the CUDA device for the fused GEMM")
           .Register(*registry_)
           .Add({});
  configs_ = &prometheus::BuildGauge()
                  .Name("coset_registered_configs")
                  .Help("Registered codec configurations")
                  .Register(*registry_)
                  .Add({});
}

void Metrics::RecordRequest(const std::string& method, const std::string& code, const std::string& client,
                            const std::string& backend, double seconds, double bytes_in, double bytes_out) {
  requests_->Add({{"method", method}, {"code", code}, {"client", client}, {"backend", backend}}).Increment();
  bytes_in_->Add({{"method", method}}).Increment(bytes_in);
  bytes_out_->Add({{"method", method}}).Increment(bytes_out);
  static const prometheus::Histogram::BucketBoundaries kBuckets = {1e-5, 3e-5, 1e-4, 3e-4, 1e-3, 3e-3, 1e-2,
                                                                   3e-2, 0.1,  0.3,  1.0,  3.0,  10.0};
  latency_->Add({{"method", method}, {"client", client}, {"backend", backend}}, kBuckets).Observe(seconds);
}

std::string Metrics::ConfigLabel(const std::string& config) {
  std::lock_guard<std::mutex> lock(labels_mu_);
  if (config_labels_.count(config)) return config;
  if (config_labels_.size() >= kMaxConfigLabels) return "other";
  config_labels_.insert(config);
  return config;
}

void Metrics::RecordEncode(const std::string& config_name, double raw_bytes, double compressed_bytes, double chunks,
                           double first_try_overloads, double capped, const std::vector<int64_t>& t_histogram) {
  const std::string config = ConfigLabel(config_name);
  raw_bytes_->Add({{"config", config}}).Increment(raw_bytes);
  saved_bytes_->Add({{"config", config}}).Increment(std::max(0.0, raw_bytes - compressed_bytes));
  chunks_->Add({{"config", config}}).Increment(chunks);
  overloads_->Add({{"config", config}}).Increment(first_try_overloads);
  capped_->Add({{"config", config}}).Increment(capped);
  int64_t high = 0;
  for (size_t t = 0; t < t_histogram.size(); ++t) {
    if (t < 8) {
      if (t_histogram[t] > 0) t_values_->Add({{"config", config}, {"t", std::to_string(t)}}).Increment(t_histogram[t]);
    } else {
      high += t_histogram[t];
    }
  }
  if (high > 0) t_values_->Add({{"config", config}, {"t", "8+"}}).Increment(high);
}

}  // namespace coset
