// cosetd throughput and latency, measured against the in-process codec in the same run:
//  - encode of a 64 MiB float32 tensor: in-process vs through the daemon over shared memory vs
//    through plain gRPC bytes (Unix socket);
//  - 4 KiB encode round trips over the Unix socket: p50 / p99 latency.
// Starts its own cosetd (the built binary) on a private socket.
//   bazel run -c opt //client:client_benchmark [-- --json]
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include "client/coset_client.h"
#include "common/json_writer.h"
#include "core/evaluation.h"
#include "core/format.h"
#include "tests/integration/daemon_fixture.h"

namespace coset {
namespace {

template <typename Fn>
double Best(int reps, Fn&& fn) {
  double best = 1e30;
  for (int i = 0; i < reps; ++i) {
    const auto t0 = std::chrono::steady_clock::now();
    fn();
    best = std::min(best, std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  }
  return best;
}

int Run(const std::string& dir, bool json) {
  Daemon daemon(dir);
  if (!daemon.Start()) {
    std::fprintf(stderr, "cosetd did not start (build //server:cosetd)\n");
    return 1;
  }
  const int64_t n = int64_t{16} << 20;  // 64 MiB of float32
  const std::vector<float> x = GaussianSamples(n, 1);
  const std::vector<int64_t> shape = {n / 4096, 4096};
  const TensorCodec codec = *TensorCodec::Create(CodecParams{});
  CompressedTensor t;
  const double in_process =
      Best(3, [&] { (void)codec.EncodeInto(x.data(), shape, DType::kFloat32, nullptr, nullptr, &t); });
  // The daemon returns a serialized blob; this in-process baseline produces the same bytes.
  std::vector<uint8_t> blob_buffer;
  const double in_process_blob = Best(3, [&] {
    (void)codec.EncodeInto(x.data(), shape, DType::kFloat32, nullptr, nullptr, &t);
    const SerializationPlan plan = PlanSerialization(t);
    blob_buffer.resize(plan.size);
    SerializeTo(t, plan, blob_buffer.data());
  });
  Client::Options shm_options;
  shm_options.address = daemon.unix_address();
  shm_options.max_message_bytes = int64_t{1} << 30;
  auto shm_client = *Client::Connect(shm_options);
  Client::Options bytes_options = shm_options;
  bytes_options.shm_threshold_bytes = 0;
  auto bytes_client = *Client::Connect(bytes_options);
  (void)shm_client->Encode(x.data(), shape, CodecParams{});  // registers the region once
  bool shm_used = false;
  const double via_shm_copy = Best(3, [&] {
    (void)shm_client->Encode(x.data(), shape, CodecParams{});
    shm_used = shm_client->used_shared_memory();
  });
  // Zero copy: the tensor is produced in the shared region (AllocateShared), as a trainer would.
  float* shared = shm_client->AllocateShared(n);
  double via_shm = via_shm_copy;
  if (shared != nullptr) {
    std::copy(x.begin(), x.end(), shared);
    via_shm = Best(3, [&] {
      (void)shm_client->Encode(shared, shape, CodecParams{});
      shm_used = shm_used && shm_client->used_shared_memory();
    });
  }
  // Plain gRPC bytes: the 64 MiB payload is serialized into protobuf and copied through the socket.
  double via_bytes = -1;
  {
    auto r = bytes_client->Encode(x.data(), shape, CodecParams{});
    if (r.ok()) via_bytes = Best(3, [&] { (void)bytes_client->Encode(x.data(), shape, CodecParams{}); });
  }
  // Small-request latency: 4 KiB (1024 floats) encodes over the Unix socket.
  const std::vector<float> small = GaussianSamples(1024, 2);
  std::vector<double> lat;
  for (int i = 0; i < 2000; ++i) {
    const auto t0 = std::chrono::steady_clock::now();
    (void)bytes_client->Encode(small.data(), {1024}, CodecParams{});
    lat.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  }
  std::sort(lat.begin(), lat.end());
  const double p50 = lat[lat.size() / 2], p99 = lat[lat.size() * 99 / 100];
  const double gb = n * 4 / 1e9;
  JsonObject j;
  j.Add("tensor_mib", int64_t{64}).Add("in_process_gbps", gb / in_process).Add("shm_gbps", gb / via_shm);
  j.Add("in_process_blob_gbps", gb / in_process_blob).Add("shm_vs_in_process_blob", in_process_blob / via_shm);
  j.Add("shm_with_copy_gbps", gb / via_shm_copy).Add("shm_with_copy_vs_in_process", in_process / via_shm_copy);
  j.Add("grpc_bytes_gbps", via_bytes > 0 ? gb / via_bytes : 0.0).Add("shm_vs_in_process", in_process / via_shm);
  j.Add("grpc_bytes_vs_in_process", via_bytes > 0 ? in_process / via_bytes : 0.0).Add("shm_used", shm_used);
  j.Add("small_4kib_p50_us", p50 * 1e6).Add("small_4kib_p99_us", p99 * 1e6);
  if (json) {
    std::printf("%s\n", j.str().c_str());
  } else {
    std::printf(
        "encode 64 MiB float32 (D4 q=4 M=2):\n  in-process codec only      %.3f GB/s\n"
        "  in-process codec + blob    %.3f GB/s\n  cosetd via shm, zero copy  %.3f GB/s (%.0f%% of codec only, %.0f%% "
        "of codec + blob)\n"
        "  cosetd via shm, + memcpy   %.3f GB/s (%.0f%% of codec only)\n"
        "  cosetd via gRPC bytes      %.3f GB/s (%.0f%% of codec only)\n4 KiB encode over the Unix socket: p50 %.0f "
        "us, p99 %.0f us\n",
        gb / in_process, gb / in_process_blob, gb / via_shm, 100 * in_process / via_shm,
        100 * in_process_blob / via_shm, gb / via_shm_copy, 100 * in_process / via_shm_copy,
        via_bytes > 0 ? gb / via_bytes : 0.0, via_bytes > 0 ? 100 * in_process / via_bytes : 0.0, p50 * 1e6, p99 * 1e6);
  }
  daemon.Stop();
  return 0;
}

int Main(int argc, char** argv) {
  const bool json = argc > 1 && std::string(argv[1]) == "--json";
  char tmpl[] = "/tmp/cosetd-bench-XXXXXX";
  const std::string dir = mkdtemp(tmpl);
  const int code = Run(dir, json);  // the daemon is stopped when Run returns
  std::filesystem::remove_all(dir);
  return code;
}

}  // namespace
}  // namespace coset

int main(int argc, char** argv) { return coset::Main(argc, argv); }
