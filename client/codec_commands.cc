// cosetctl encode / decode / info / eval / bench: the codec, in-process.
#include <cstring>
#include <iostream>

#include "absl/strings/str_cat.h"
#include "client/cli_common.h"
#include "client/coset_client.h"
#include "client/npy.h"
#include "core/evaluation.h"
#include "core/format.h"
#include "core/row_codec.h"
#include "core/status_macros.h"
#include "core/thread_pool.h"

namespace coset {

absl::StatusOr<std::unique_ptr<Client>> DaemonClient() {
  Client::Options o;
  o.address = DaemonAddress();
  return Client::Connect(o);
}

absl::Status CmdEncode(const CliArgs& args, bool json) {
  if (args.positionals().size() != 2) return absl::InvalidArgumentError("usage: cosetctl encode IN.npy OUT.coset [flags]");
  COSET_ASSIGN_OR_RETURN(CodecParams params, CodecParamsFromArgs(args));
  COSET_ASSIGN_OR_RETURN(NpyArray in, ReadNpy(args.positionals()[0]));
  if (!DaemonAddress().empty()) {
    COSET_ASSIGN_OR_RETURN(std::unique_ptr<Client> client, DaemonClient());
    v1::EncodeStats stats;
    COSET_ASSIGN_OR_RETURN(std::string blob, client->Encode(in.data.data(), in.shape, params, &stats));
    COSET_ASSIGN_OR_RETURN(CompressedTensor t, Parse(reinterpret_cast<const uint8_t*>(blob.data()), blob.size()));
    if (in.dtype == DType::kFloat64) {  // the daemon saw float32; record the file's dtype
      t.dtype = DType::kFloat64;
      const std::vector<uint8_t> b = Serialize(t);
      blob.assign(b.begin(), b.end());
    }
    COSET_RETURN_IF_ERROR(WriteFile(args.positionals()[1], blob.data(), blob.size()));
    JsonObject j;
    j.Add("output", args.positionals()[1]).Add("shape", in.shape).Add("bytes", static_cast<int64_t>(blob.size()));
    j.Add("stored_bits_per_entry", stats.stored_bits_per_entry()).Add("daemon", DaemonAddress());
    j.Add("first_try_overload_rate", stats.chunks() ? double(stats.first_try_overloads()) / stats.chunks() : 0.0);
    j.Add("capped_chunks", stats.capped());
    AddParams(j, t.params);
    Emit(json, j, absl::StrCat("wrote ", args.positionals()[1], " via ", DaemonAddress(), ": ", blob.size(), " bytes, ",
                               stats.stored_bits_per_entry(), " bits/entry\n"));
    return absl::OkStatus();
  }
  COSET_ASSIGN_OR_RETURN(TensorCodec codec, TensorCodec::Create(params));
  ThreadPool pool(static_cast<int>(ThreadsFlag(args)));
  EncodeStats stats;
  COSET_ASSIGN_OR_RETURN(CompressedTensor t, codec.Encode(in.data.data(), in.shape, in.dtype, &pool, &stats));
  const std::vector<uint8_t> blob = Serialize(t);
  COSET_RETURN_IF_ERROR(WriteFile(args.positionals()[1], blob.data(), blob.size()));
  JsonObject j;
  j.Add("output", args.positionals()[1]).Add("shape", in.shape).Add("bytes", static_cast<int64_t>(blob.size()));
  j.Add("stored_bits_per_entry", StoredBitsPerEntry(t, blob.size()));
  j.Add("first_try_overload_rate", stats.first_try_overload_rate()).Add("capped_chunks", stats.capped);
  AddParams(j, codec.params());
  Emit(json, j,
       absl::StrCat("wrote ", args.positionals()[1], ": ", blob.size(), " bytes, ", StoredBitsPerEntry(t, blob.size()),
                    " bits/entry, first-try overload ", 100 * stats.first_try_overload_rate(), "%\n"));
  return absl::OkStatus();
}

absl::Status CmdDecode(const CliArgs& args, bool json) {
  if (args.positionals().size() != 2) return absl::InvalidArgumentError("usage: cosetctl decode IN.coset OUT.npy");
  COSET_ASSIGN_OR_RETURN(CompressedTensor t, ReadCoset(args.positionals()[0]));
  std::vector<float> out(t.layout.numel);
  if (!DaemonAddress().empty()) {
    COSET_ASSIGN_OR_RETURN(std::string blob, ReadFile(args.positionals()[0]));
    COSET_ASSIGN_OR_RETURN(std::unique_ptr<Client> client, DaemonClient());
    COSET_RETURN_IF_ERROR(client->Decode(blob, false, &out, nullptr));
  } else {
    ThreadPool pool(static_cast<int>(ThreadsFlag(args)));
    COSET_RETURN_IF_ERROR(DecodeTensor(t, out.data(), &pool));
  }
  COSET_RETURN_IF_ERROR(WriteNpy(args.positionals()[1], t.shape, out.data(), t.dtype));
  JsonObject j;
  j.Add("output", args.positionals()[1]).Add("shape", t.shape).Add("dtype", t.dtype == DType::kFloat64 ? "float64" : "float32");
  Emit(json, j, absl::StrCat("wrote ", args.positionals()[1], ": shape ", ShapeString(t.shape), "\n"));
  return absl::OkStatus();
}

absl::Status CmdInfo(const CliArgs& args, bool json) {
  if (args.positionals().empty() && !DaemonAddress().empty()) {
    COSET_ASSIGN_OR_RETURN(std::unique_ptr<Client> client, DaemonClient());
    COSET_ASSIGN_OR_RETURN(v1::ServerInfoResponse info, client->ServerInfo());
    JsonObject j;
    j.Add("daemon", DaemonAddress()).Add("version", info.version()).Add("backends", info.backends(0));
    j.Add("max_message_bytes", info.limits().max_message_bytes());
    j.Add("max_concurrent_requests", info.limits().max_concurrent_requests());
    j.Add("memory_budget_bytes", info.limits().memory_budget_bytes()).Add("lut_budget_bytes", info.limits().lut_budget_bytes());
    j.Add("configs", static_cast<int64_t>(info.configs_size())).Add("resident_bytes", info.resident_bytes());
    Emit(json, j, absl::StrCat("cosetd ", info.version(), " at ", DaemonAddress(), ": backends ", info.backends(0),
                               ", ", info.configs_size(), " configs, ", info.resident_bytes(), " resident bytes\n"));
    return absl::OkStatus();
  }
  if (args.positionals().size() != 1) return absl::InvalidArgumentError("usage: cosetctl info IN.coset (or --daemon ADDR info)");
  COSET_ASSIGN_OR_RETURN(std::string bytes, ReadFile(args.positionals()[0]));
  COSET_ASSIGN_OR_RETURN(CompressedTensor t, ReadCoset(args.positionals()[0]));
  const OverloadSummary s = SummarizeOverloads(t);
  const Lattice lattice = *Lattice::Parse(t.params.lattice);
  const double nominal = t.params.levels * std::log2(double(t.params.q)) + s.entropy_bits / lattice.dim();
  JsonObject j;
  AddParams(j, t.params);
  j.Add("format_version", static_cast<int>(kFormatVersion)).Add("shape", t.shape);
  j.Add("dtype", t.dtype == DType::kFloat64 ? "float64" : "float32");
  j.Add("padded_last_dim", t.layout.padded_cols).Add("bytes", static_cast<int64_t>(bytes.size()));
  j.Add("rate_bits_per_entry", nominal).Add("stored_bits_per_entry", StoredBitsPerEntry(t, bytes.size()));
  j.Add("chunks", static_cast<int64_t>(t.t.size())).Add("first_try_overload_rate", s.first_try_overload_rate);
  j.Add("t_entropy_bits", s.entropy_bits).Add("t_histogram", s.histogram);
  Emit(json, j,
       absl::StrCat(args.positionals()[0], ": ", t.params.lattice, " q=", t.params.q, " M=", t.params.levels,
                    " beta=", t.params.beta, " alpha=", t.params.alpha, " block=", t.params.block, " scale=",
                    ScaleModeName(t.params.scale), t.params.rotate ? " rotated" : "", "\n  shape ",
                    ShapeString(t.shape), ", ", bytes.size(), " bytes, ", StoredBitsPerEntry(t, bytes.size()),
                    " bits/entry stored (nominal ", nominal, ")\n  first-try overload ",
                    100 * s.first_try_overload_rate, "% of ", t.t.size(), " chunks, H(T) = ", s.entropy_bits, " bits\n"));
  return absl::OkStatus();
}

absl::Status CmdEval(const CliArgs& args, bool json) {
  COSET_ASSIGN_OR_RETURN(CodecParams params, CodecParamsFromArgs(args));
  COSET_ASSIGN_OR_RETURN(int64_t samples, args.GetInt("samples", 1 << 20));
  COSET_ASSIGN_OR_RETURN(int64_t seed, args.GetInt("data-seed", 1));
  if (samples < 1 || samples > (int64_t{1} << 30)) return absl::InvalidArgumentError("--samples must be in [1, 2^30]");
  ThreadPool pool(static_cast<int>(ThreadsFlag(args)));
  EvalResult r;
  if (!DaemonAddress().empty()) {
    // Through the daemon: it encodes and decodes; rate and error are computed here.
    if (args.Switch("search-beta", false)) return absl::InvalidArgumentError("--search-beta runs in-process only");
    COSET_ASSIGN_OR_RETURN(std::unique_ptr<Client> client, DaemonClient());
    const std::vector<float> x = GaussianSamples(samples, static_cast<uint64_t>(seed));
    v1::EncodeStats stats;
    COSET_ASSIGN_OR_RETURN(std::string blob, client->Encode(x.data(), SampleShape(samples), params, &stats));
    COSET_ASSIGN_OR_RETURN(CompressedTensor t, Parse(reinterpret_cast<const uint8_t*>(blob.data()), blob.size()));
    std::vector<float> y;
    COSET_RETURN_IF_ERROR(client->Decode(blob, false, &y, nullptr));
    double err = 0, energy = 0;
    for (int64_t i = 0; i < samples; ++i) {
      err += (double(x[i]) - y[i]) * (double(x[i]) - y[i]);
      energy += double(x[i]) * x[i];
    }
    const OverloadSummary summary = SummarizeOverloads(t);
    r.samples = samples;
    r.rate_bits_per_entry = t.params.levels * std::log2(double(t.params.q)) + summary.entropy_bits / t.layout.dim;
    r.stored_bits_per_entry = StoredBitsPerEntry(t, blob.size());
    r.mse = err / samples;
    r.snr_db = 10 * std::log10(energy / err);
    r.overload_rate = summary.first_try_overload_rate;
    r.beta = t.params.beta;
  } else if (args.Switch("search-beta", false)) {
    COSET_ASSIGN_OR_RETURN(r, SearchBeta(params, samples, static_cast<uint64_t>(seed), &pool));
  } else {
    COSET_ASSIGN_OR_RETURN(TensorCodec codec, TensorCodec::Create(params));
    const std::vector<float> x = GaussianSamples(samples, static_cast<uint64_t>(seed));
    COSET_ASSIGN_OR_RETURN(r, Evaluate(codec, x.data(), SampleShape(samples), &pool));
  }
  JsonObject j;
  j.Add("lattice", params.lattice).Add("q", params.q).Add("M", params.levels).Add("scale", ScaleModeName(params.scale));
  j.Add("samples", r.samples).Add("rate_bits_per_entry", r.rate_bits_per_entry);
  j.Add("stored_bits_per_entry", r.stored_bits_per_entry).Add("mse", r.mse).Add("snr_db", r.snr_db);
  j.Add("overload_rate", r.overload_rate).Add("beta", r.beta);
  Emit(json, j,
       absl::StrCat(params.lattice, " q=", params.q, " M=", params.levels, " beta=", r.beta, ": rate ",
                    r.rate_bits_per_entry, " bits/entry (stored ", r.stored_bits_per_entry, "), MSE ", r.mse,
                    ", SNR ", r.snr_db, " dB, first-try overload ", 100 * r.overload_rate, "%\n"));
  return absl::OkStatus();
}

absl::Status BenchGemv(const CliArgs& args, bool json);  // lut_commands.cc

absl::Status CmdHealth(const CliArgs& args, bool json) {
  if (DaemonAddress().empty()) return absl::InvalidArgumentError("usage: cosetctl --daemon ADDR health");
  (void)args;
  COSET_ASSIGN_OR_RETURN(std::unique_ptr<Client> client, DaemonClient());
  const absl::Status health = client->Health();
  JsonObject j;
  j.Add("daemon", DaemonAddress()).Add("serving", health.ok());
  Emit(json, j, absl::StrCat(DaemonAddress(), health.ok() ? ": SERVING\n" : ": NOT SERVING\n"));
  return health;
}

absl::Status CmdBench(const CliArgs& args, bool json) {
  if (!args.positionals().empty()) {
    if (args.positionals()[0] == "gemv" && args.positionals().size() == 1) return BenchGemv(args, json);
    return absl::InvalidArgumentError("usage: cosetctl bench [gemv] [flags]");
  }
  COSET_ASSIGN_OR_RETURN(CodecParams params, CodecParamsFromArgs(args));
  COSET_ASSIGN_OR_RETURN(int64_t mib, args.GetInt("mib", 64));
  COSET_ASSIGN_OR_RETURN(int64_t reps, args.GetInt("reps", 3));
  if (mib < 1 || mib > 4096 || reps < 1 || reps > 100) return absl::InvalidArgumentError("--mib in [1, 4096], --reps in [1, 100]");
  const int64_t threads = ThreadsFlag(args);
  ThreadPool pool(static_cast<int>(threads));
  COSET_ASSIGN_OR_RETURN(TensorCodec codec, TensorCodec::Create(params));
  const int64_t n = mib * (1 << 20) / 4;
  const std::vector<float> x = GaussianSamples(n, 1);
  const std::vector<int64_t> shape = {n / 4096, 4096};
  std::vector<float> copy(n), y(n);
  // memcpy baseline over the same bytes, split across the same threads.
  const double memcpy_s = BestSeconds(static_cast<int>(reps), [&] {
    pool.ParallelFor(shape[0], [&](int64_t b, int64_t e) {
      std::memcpy(copy.data() + b * 4096, x.data() + b * 4096, (e - b) * 4096 * sizeof(float));
    });
  });
  CompressedTensor t;
  absl::Status status;
  // Steady state, as in a training loop: the output buffers are reused between calls.
  const double encode_s = BestSeconds(static_cast<int>(reps), [&] {
    status = codec.EncodeInto(x.data(), shape, DType::kFloat32, &pool, nullptr, &t);
  });
  COSET_RETURN_IF_ERROR(status);
  double decode_s = BestSeconds(static_cast<int>(reps), [&] { status = codec.Decode(t, y.data(), &pool); });
  COSET_RETURN_IF_ERROR(status);
  double daemon_encode_s = 0, daemon_decode_s = 0;
  if (!DaemonAddress().empty()) {
    // The same work through cosetd (shared memory on a Unix socket), after the in-process numbers.
    COSET_ASSIGN_OR_RETURN(std::unique_ptr<Client> client, DaemonClient());
    std::string blob;
    daemon_encode_s = BestSeconds(static_cast<int>(reps), [&] {
      auto r = client->Encode(x.data(), shape, params);
      if (r.ok()) blob = std::move(*r); else status = r.status();
    });
    COSET_RETURN_IF_ERROR(status);
    std::vector<float> remote;
    daemon_decode_s = BestSeconds(static_cast<int>(reps), [&] { status = client->Decode(blob, false, &remote, nullptr); });
    COSET_RETURN_IF_ERROR(status);
  }
  const double bytes = static_cast<double>(n) * 4;
  JsonObject j;
  AddParams(j, codec.params());
  j.Add("threads", static_cast<int64_t>(pool.concurrency())).Add("simd", ActiveSimdLevel() == SimdLevel::kAvx2 ? "avx2" : "portable");
  j.Add("mib", mib).Add("memcpy_gbps", bytes / memcpy_s / 1e9).Add("encode_gbps", bytes / encode_s / 1e9);
  j.Add("decode_gbps", bytes / decode_s / 1e9).Add("encode_vs_memcpy", memcpy_s / encode_s);
  j.Add("decode_vs_memcpy", memcpy_s / decode_s);
  if (daemon_encode_s > 0) {
    j.Add("daemon", DaemonAddress()).Add("daemon_encode_gbps", bytes / daemon_encode_s / 1e9);
    j.Add("daemon_decode_gbps", bytes / daemon_decode_s / 1e9);
  }
  Emit(json, j,
       absl::StrCat(codec.params().lattice, " q=", params.q, " M=", params.levels, ", ", mib, " MiB float32, ",
                    pool.concurrency(), " thread(s):\n  memcpy ", bytes / memcpy_s / 1e9, " GB/s\n  encode ",
                    bytes / encode_s / 1e9, " GB/s (", 100 * memcpy_s / encode_s, "% of memcpy)\n  decode ",
                    bytes / decode_s / 1e9, " GB/s (", 100 * memcpy_s / decode_s, "% of memcpy)\n",
                    daemon_encode_s > 0 ? absl::StrCat("  through cosetd: encode ", bytes / daemon_encode_s / 1e9,
                                                       " GB/s, decode ", bytes / daemon_decode_s / 1e9, " GB/s\n")
                                        : ""));
  return absl::OkStatus();
}

}  // namespace coset
