// The one metrics list: names, labels and values as Prometheus collects them.
#include "server/metrics.h"

#include "gtest/gtest.h"
#include "proto/client_kind.h"
#include "tests/server/metric_value.h"

namespace coset {
namespace {

TEST(MetricsTest, RequestsAreCountedByMethodCodeAndClientKind) {
  Metrics m;
  m.RecordRequest("Encode", "OK", "torch", "cpu", 0.002, 100, 40);
  m.RecordRequest("Encode", "OK", "torch", "cuda", 0.004, 100, 40);
  m.RecordRequest("Encode", "INVALID_ARGUMENT", "python", "cpu", 0.001, 10, 0);
  // One series per backend the codec work ran on.
  EXPECT_EQ(MetricValue(m, "coset_requests_total",
                        {{"method", "Encode"}, {"code", "OK"}, {"client", "torch"}, {"backend", "cpu"}}),
            1);
  EXPECT_EQ(MetricValue(m, "coset_requests_total",
                        {{"method", "Encode"}, {"code", "OK"}, {"client", "torch"}, {"backend", "cuda"}}),
            1);
  EXPECT_EQ(MetricValue(m, "coset_requests_total", {{"code", "OK"}, {"client", "python"}}), -1);
  EXPECT_EQ(
      MetricValue(m, "coset_request_duration_seconds", {{"method", "Encode"}, {"client", "torch"}, {"backend", "cpu"}}),
      1);
  EXPECT_EQ(MetricValue(m, "coset_request_duration_seconds",
                        {{"method", "Encode"}, {"client", "torch"}, {"backend", "cuda"}}),
            1);
  EXPECT_EQ(MetricValue(m, "coset_requests_total", {{"method", "Encode"}, {"code", "INVALID_ARGUMENT"}}), 1);
  EXPECT_EQ(MetricValue(m, "coset_request_bytes_total", {{"method", "Encode"}}), 210);
  EXPECT_EQ(MetricValue(m, "coset_response_bytes_total", {{"method", "Encode"}}), 80);
}

TEST(MetricsTest, ClientKindsAreAFixedList) {
  EXPECT_EQ(ClientKindLabel("torch"), "torch");
  EXPECT_EQ(ClientKindLabel("cosetctl"), "cosetctl");
  EXPECT_EQ(ClientKindLabel(""), "other");
  EXPECT_EQ(ClientKindLabel("torch2"), "other");  // no client can add series
}

TEST(MetricsTest, EncodesCountBytesSavedOverloadsAndTheTDistribution) {
  Metrics m;
  std::vector<int64_t> histogram(32, 0);
  histogram[0] = 90;
  histogram[1] = 6;
  histogram[9] = 4;  // pooled as 8+
  m.RecordEncode("D4-q4-M2-x", 4000, 600, 100, 10, 2, histogram);
  EXPECT_EQ(MetricValue(m, "coset_encoded_raw_bytes_total", {{"config", "D4-q4-M2-x"}}), 4000);
  EXPECT_EQ(MetricValue(m, "coset_bytes_saved_total", {{"config", "D4-q4-M2-x"}}), 3400);
  EXPECT_EQ(MetricValue(m, "coset_chunks_total", {{"config", "D4-q4-M2-x"}}), 100);
  EXPECT_EQ(MetricValue(m, "coset_overload_chunks_total", {{"config", "D4-q4-M2-x"}}), 10);
  EXPECT_EQ(MetricValue(m, "coset_capped_chunks_total", {{"config", "D4-q4-M2-x"}}), 2);
  EXPECT_EQ(MetricValue(m, "coset_overload_t_total", {{"t", "1"}}), 6);
  EXPECT_EQ(MetricValue(m, "coset_overload_t_total", {{"t", "8+"}}), 4);
  m.inflight().Set(3);
  EXPECT_EQ(MetricValue(m, "coset_inflight_requests"), 3);
  m.memory_budget_bytes().Set(1000);
  m.memory_used_bytes().Set(250);
  EXPECT_EQ(MetricValue(m, "coset_memory_budget_bytes"), 1000);
  EXPECT_EQ(MetricValue(m, "coset_memory_used_bytes"), 250);
  m.device_memory_budget_bytes().Set(4096);
  m.device_memory_used_bytes().Set(1024);
  EXPECT_EQ(MetricValue(m, "coset_device_memory_budget_bytes"), 4096);
  EXPECT_EQ(MetricValue(m, "coset_device_memory_used_bytes"), 1024);
  m.resident_device_bytes().Set(512);
  EXPECT_EQ(MetricValue(m, "coset_resident_device_bytes"), 512);
}

TEST(MetricsTest, ConfigLabelsAreBoundedAgainstCardinalityFloods) {
  Metrics m;
  // Before: a label per distinct configuration, never removed (2,000 betas: 12,107 series).
  for (int i = 0; i < 2000; ++i) m.RecordEncode("config-" + std::to_string(i), 40, 6, 1, 0, 0, {1});
  size_t series = 0;
  for (const prometheus::MetricFamily& f : m.registry()->Collect()) {
    if (f.name == "coset_chunks_total") series = f.metric.size();
  }
  EXPECT_EQ(series, Metrics::kMaxConfigLabels + 1);  // the first ones, then "other"
  EXPECT_EQ(MetricValue(m, "coset_chunks_total", {{"config", "other"}}), 2000 - Metrics::kMaxConfigLabels);
  EXPECT_EQ(MetricValue(m, "coset_chunks_total", {{"config", "config-0"}}), 1);
}

}  // namespace
}  // namespace coset
