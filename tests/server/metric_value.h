// Reading a metric of Metrics (server/metrics.h) the way Prometheus collects it, for tests.
#pragma once

#include <map>
#include <string>

#include "server/metrics.h"

namespace coset {

// The value of a counter or gauge sample of `family` whose labels include `labels`; -1 if none.
inline double MetricValue(const Metrics& m, const std::string& family,
                          const std::map<std::string, std::string>& labels = {}) {
  for (const prometheus::MetricFamily& f : m.registry()->Collect()) {
    if (f.name != family) continue;
    for (const prometheus::ClientMetric& c : f.metric) {
      bool match = true;
      for (const auto& [k, v] : labels) {
        bool found = false;
        for (const prometheus::ClientMetric::Label& l : c.label) found = found || (l.name == k && l.value == v);
        match = match && found;
      }
      if (!match) continue;
      if (f.type == prometheus::MetricType::Counter) return c.counter.value;
      if (f.type == prometheus::MetricType::Gauge) return c.gauge.value;
      if (f.type == prometheus::MetricType::Histogram) return static_cast<double>(c.histogram.sample_count);
    }
  }
  return -1;
}

}  // namespace coset
