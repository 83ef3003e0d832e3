// The device check's cosetd test (scripts/gpu_check.sh): against a cosetd started with
// --backend cuda, checks that encode and decode run on the CUDA backend with the CPU codec's
// bytes and floats, with bad requests (a NaN entry, a corrupt blob) refused in the middle; then
// times a 64 MiB encode and decode through shared memory beside the in-process CPU codec (one
// thread and all cores; and all cores writing the blob, as the daemon does), 3 runs each,
// min/median/max; then GEMV and 16-query GEMM against resident
// weights (InnerProduct by name), checked against decode-then-dot and timed beside the
// in-process CPU LutMatrix. One JSON line.
//
//   cuda_daemon_smoke --daemon unix:/path/cosetd.sock [--expect-backend cuda] [--mib 64]
// (--expect-backend cpu runs the same checks against a CPU daemon, to try the tool without a GPU;
// --mib sizes the timed tensor and the weights, MiB x 64 rows of 4096: smaller for the CUDA
// emulation, whose kernels run on one CPU core.)
#include <algorithm>
#include <chrono>
#include <cmath>
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
#include "core/inner_product.h"
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
  auto args = CliArgs::Parse(std::vector<std::string>(argv + 1, argv + argc), {"daemon", "expect-backend", "mib"}, {});
  if (!args.ok() || args->Get("daemon", "").empty()) return Fail("usage: cuda_daemon_smoke --daemon unix:/path");
  Client::Options options;
  options.address = args->Get("daemon", "");
  auto client = Client::Connect(options);
  if (!client.ok()) return Fail(std::string(client.status().message()));
  auto info = (*client)->GetServerInfo();
  if (!info.ok()) return Fail(std::string(info.status().message()));
  const std::string expected = args->Get("expect-backend", "cuda");
  const absl::StatusOr<int64_t> mib = args->GetInt("mib", 64);
  if (!mib.ok() || *mib < 1 || *mib > 1024) return Fail("--mib must be an integer in [1, 1024]");
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
  // 64 MiB (--mib) through shared memory on the daemon (CUDA) vs the in-process CPU codec.
  const int64_t n = *mib << 18;
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
  // The same codes as resident weights (4096 x 4096 at 64 MiB): InnerProduct on the daemon (on a
  // CUDA daemon the fused kernel, the codes uploaded on the first call and kept) against
  // decode-then-dot here.
  const std::vector<int64_t> w_shape = shape;
  auto w_blob = (*client)->Encode(shared, w_shape, params);
  if (!w_blob.ok()) return Fail(std::string(w_blob.status().message()));
  if (auto put = (*client)->PutTensor("smoke/w", *w_blob, true); !put.ok())
    return Fail(std::string(put.status().message()));
  const CompressedTensor w = *Parse(reinterpret_cast<const uint8_t*>(w_blob->data()), w_blob->size());
  std::vector<float> w_decoded(n);
  if (!codec.Decode(w, w_decoded.data(), &pool).ok()) return Fail("decode of the weights failed");
  JsonObject gemm_first, gemm_kept, cpu_gemm;
  for (const int64_t batch : {int64_t{1}, int64_t{16}}) {
    std::vector<float> queries(batch * w_shape[1]), product;
    for (float& v : queries) v = g(rng);
    std::string path;
    const JsonObject first = Seconds(1, [&] {
      if (!(*client)->Gemm("smoke/w", true, queries.data(), batch, w_shape[1], &product, &path).ok()) product.clear();
    });
    if (product.size() != static_cast<size_t>(batch * w_shape[0]))
      return Fail("InnerProduct on resident weights failed");
    if (expected == "cuda" && path.rfind("cuda-", 0) != 0)  // GemmMethodName: cuda-fused, cuda-decode-cublas
      return Fail("InnerProduct ran on path " + path + ", not on the device");
    for (int64_t b = 0; b < batch; ++b) {
      for (int64_t r = 0; r < w_shape[0]; ++r) {
        double dot = 0, magnitude = 0;
        for (int64_t c = 0; c < w_shape[1]; ++c) {
          const double term = double{queries[b * w_shape[1] + c]} * w_decoded[r * w_shape[1] + c];
          dot += term;
          magnitude += std::abs(term);
        }
        if (std::abs(product[b * w_shape[0] + r] - dot) > 1e-5 * magnitude + 1e-30) {
          return Fail(absl::StrCat("InnerProduct row ", r, " of query ", b, ": ", product[b * w_shape[0] + r],
                                   " vs decode-then-dot ", dot));
        }
      }
    }
    const JsonObject kept =
        Seconds(3, [&] { (void)(*client)->Gemm("smoke/w", true, queries.data(), batch, w_shape[1], &product, &path); });
    const LutMatrix matrix = *LutMatrix::Create(w);
    std::vector<float> cpu_product(batch * w_shape[0]);
    const JsonObject cpu = Seconds(3, [&] { (void)matrix.Gemm(queries.data(), batch, cpu_product.data(), &pool); });
    const std::string key = absl::StrCat("b", batch);
    gemm_first.Add(key, first);
    gemm_kept.Add(key, kept);
    cpu_gemm.Add(key, cpu);
  }
  if (!(*client)->DeleteTensor("smoke/w").ok()) return Fail("DeleteTensor failed");
  CompressedTensor t;
  const JsonObject cpu1 =
      Seconds(3, [&] { (void)codec.EncodeInto(shared, shape, DType::kFloat32, nullptr, nullptr, &t); });
  const JsonObject cpu_all =
      Seconds(3, [&] { (void)codec.EncodeInto(shared, shape, DType::kFloat32, &pool, nullptr, &t); });
  // What the daemon's encode does besides the codec: the blob (the T stream's range coding, in
  // parallel segments) written into memory, as a daemon writes it into the client's region.
  std::vector<uint8_t> serialized(n * 4);
  const JsonObject cpu_blob_all = Seconds(3, [&] {
    (void)codec.EncodeInto(shared, shape, DType::kFloat32, &pool, nullptr, &t);
    SerializeTo(t, PlanSerialization(t, &pool), serialized.data());
  });
  JsonObject j;
  j.Add("bit_exact", true).Add("bad_requests_refused", true).Add("daemon_backend", expected);
  j.Add("mib", *mib).Add("shared_memory", shm);
  j.Add("daemon_encode_s", daemon_encode).Add("daemon_decode_s", daemon_decode);
  j.Add("cpu_encode_1_thread_s", cpu1).Add("cpu_encode_all_cores_s", cpu_all);
  j.Add("cpu_encode_to_blob_all_cores_s", cpu_blob_all);
  j.Add("gemm", absl::StrCat(w_shape[0], " x ", w_shape[1],
                             " resident weights; first call (uploads them), then kept; CPU: LutMatrix, all cores"));
  j.Add("daemon_gemm_first_s", gemm_first).Add("daemon_gemm_kept_s", gemm_kept).Add("cpu_gemm_s", cpu_gemm);
  std::printf("%s\n", j.str().c_str());
  return 0;
}

}  // namespace
}  // namespace coset

int main(int argc, char** argv) { return coset::Main(argc, argv); }
