// The device check's cosetd test (scripts/gpu_check.sh): against a cosetd started with
// --backend cuda, checks that encode and decode run on the CUDA backend with the CPU codec's
// bytes and floats, with bad requests (a NaN entry, a corrupt blob) refused in the middle; then
// times a 64 MiB encode and decode through shared memory beside the in-process CPU codec (one
// thread and all cores), 3 runs each, min/median/max. One JSON line.
//
//   cuda_daemon_smoke --daemon unix:/path/cosetd.sock [--expect-backend cuda]
// (--expect-backend cpu runs the same checks against a CPU daemon, to try the tool without a GPU.)
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "client/coset_client.h"
#include "common/cli_args.h"
#include "common/json_writer.h"
#include "core/format.h"
#include "core/tensor_codec.h"
#include "core/thread_pool.h"

namespace coset {
namespace {

int Fail(const std::string& why) {
  std::fprintf(stderr, "cuda_daemon_smoke: %s\n", why.c_str());
  return 1;
}

// Seconds of each of `runs` calls of fn, as min / median / max.
template <class Fn>
JsonObject Seconds(int runs, Fn fn) {
  std::vector<double> s;
  for (int i = 0; i < runs; ++i) {
    const auto t0 = std::chrono::steady_clock::now();
    fn();
    s.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  }
  return Spread(s);
}

// Bad requests in the middle of good ones: an entry that is NaN (refused, naming it, as the CPU
// codec words it) and a blob with a flipped byte (refused by its checksum). Empty when both are
// refused and the daemon still answers; else what went wrong.
std::string RefusesBadRequests(Client& client, const CodecParams& params, const std::vector<int64_t>& shape) {
  std::vector<float> x(shape[0] * shape[1], 1.0f);
  x[x.size() / 3] = std::numeric_limits<float>::quiet_NaN();
  auto refused = client.Encode(x.data(), shape, params);
  if (refused.ok()) return "a tensor with a NaN entry was encoded";
  if (refused.status().message().find("NaN") == std::string_view::npos) {
    return "a NaN entry was refused without saying so: " + std::string(refused.status().message());
  }
  x[x.size() / 3] = 1.0f;
  auto blob = client.Encode(x.data(), shape, params);
  if (!blob.ok()) return "a good request after a refused one failed: " + std::string(blob.status().message());
  std::string corrupt = *blob;
  corrupt[corrupt.size() / 2] = static_cast<char>(corrupt[corrupt.size() / 2] ^ 0x5A);
  std::vector<float> out;
  std::vector<int64_t> out_shape;
  if (client.Decode(corrupt, false, &out, &out_shape).ok()) return "a corrupt blob was decoded";
  return "";
}

int Main(int argc, char** argv) {
  auto args = CliArgs::Parse(std::vector<std::string>(argv + 1, argv + argc), {"daemon", "expect-backend"}, {});
  if (!args.ok() || args->Get("daemon", "").empty()) return Fail("usage: cuda_daemon_smoke --daemon unix:/path");
  Client::Options options;
  options.address = args->Get("daemon", "");
  auto client = Client::Connect(options);
  if (!client.ok()) return Fail(std::string(client.status().message()));
  auto info = (*client)->GetServerInfo();
  if (!info.ok()) return Fail(std::string(info.status().message()));
  const std::string expected = args->Get("expect-backend", "cuda");
  if (info->backends.empty() || info->backends[0] != expected) return Fail("the daemon does not serve on " + expected);
  const CodecParams params;
  const TensorCodec codec = *TensorCodec::Create(params);
  // Bit-exactness: a tensor with padded rows (1000 entries) and one of whole blocks, both
  // lattices' default code; between them, bad requests the daemon must refuse and survive.
  bool first = true;
  for (const std::vector<int64_t>& shape : {std::vector<int64_t>{64, 1000}, std::vector<int64_t>{512, 4096}}) {
    if (!first) {
      const std::string why = RefusesBadRequests(**client, params, shape);
      if (!why.empty()) return Fail(why);
    }
    first = false;
    std::mt19937 rng(7);
    std::normal_distribution<float> g;
    std::vector<float> x(shape[0] * shape[1]);
    for (float& v : x) v = g(rng);
    auto blob = (*client)->Encode(x.data(), shape, params);
    if (!blob.ok()) return Fail(std::string(blob.status().message()));
    const CompressedTensor cpu = *codec.Encode(x.data(), shape);
    const std::vector<uint8_t> cpu_blob = Serialize(cpu);
    if (*blob != std::string(cpu_blob.begin(), cpu_blob.end())) return Fail("CUDA blob differs from the CPU codec's");
    std::vector<float> decoded, cpu_decoded(x.size());
    std::vector<int64_t> decoded_shape;
    if (!(*client)->Decode(*blob, false, &decoded, &decoded_shape).ok() || !codec.Decode(cpu, cpu_decoded.data()).ok())
      return Fail("decode failed");
    if (decoded != cpu_decoded) return Fail("CUDA decode differs from the CPU codec's");
  }
  // 64 MiB through shared memory on the daemon (CUDA) vs the in-process CPU codec.
  const int64_t n = int64_t{16} << 20;
  const std::vector<int64_t> shape = {n / 4096, 4096};
  float* shared = (*client)->AllocateShared(n);
  if (shared == nullptr) return Fail("no shared memory (needs a Unix socket address)");
  std::mt19937 rng(1);
  std::normal_distribution<float> g;
  for (int64_t i = 0; i < n; ++i) shared[i] = g(rng);
  std::string blob;
  const JsonObject daemon_encode = Seconds(3, [&] { blob = *(*client)->Encode(shared, shape, params); });
  const bool shm = (*client)->used_shared_memory();
  std::vector<float> out;
  std::vector<int64_t> out_shape;
  const JsonObject daemon_decode = Seconds(3, [&] { (void)(*client)->Decode(blob, false, &out, &out_shape); });
  ThreadPool pool(0);
  CompressedTensor t;
  const JsonObject cpu1 =
      Seconds(3, [&] { (void)codec.EncodeInto(shared, shape, DType::kFloat32, nullptr, nullptr, &t); });
  const JsonObject cpu_all =
      Seconds(3, [&] { (void)codec.EncodeInto(shared, shape, DType::kFloat32, &pool, nullptr, &t); });
  JsonObject j;
  j.Add("bit_exact", true).Add("bad_requests_refused", true).Add("daemon_backend", expected);
  j.Add("mib", 64).Add("shared_memory", shm);
  j.Add("daemon_encode_s", daemon_encode).Add("daemon_decode_s", daemon_decode);
  j.Add("cpu_encode_1_thread_s", cpu1).Add("cpu_encode_all_cores_s", cpu_all);
  std::printf("%s\n", j.str().c_str());
  return 0;
}

}  // namespace
}  // namespace coset

int main(int argc, char** argv) { return coset::Main(argc, argv); }
