// cosetctl encode / decode / info / eval / health / bench: the codec through the chosen backend.
#include <cstring>
#include <iostream>

#include "absl/strings/str_cat.h"
#include "client/commands.h"
#include "client/npy.h"
#include "common/codec_flags.h"
#include "core/evaluation.h"
#include "core/format.h"
#include "core/simd/dispatch.h"
#include "core/status_macros.h"

namespace coset {

absl::Status CmdEncode(const CommandContext& ctx) {
  const CliArgs& args = ctx.args;
  if (args.positionals().size() != 2)
    return absl::InvalidArgumentError("usage: cosetctl encode IN.npy OUT.coset [flags]");
  COSET_ASSIGN_OR_RETURN(CodecParams params, CodecParamsFromArgs(args));
  COSET_ASSIGN_OR_RETURN(NpyArray in, ReadNpy(args.positionals()[0]));
  COSET_ASSIGN_OR_RETURN(EncodeResult r, ctx.backend.Encode(in.data.data(), in.shape, params, in.dtype));
  COSET_RETURN_IF_ERROR(WriteFile(args.positionals()[1], r.blob.data(), r.blob.size()));
  // The resolved parameters (the measured beta, the block) as the blob records them.
  COSET_ASSIGN_OR_RETURN(CompressedTensor t, Parse(r.blob.data(), r.blob.size(), &ctx.executor));
  const double bits = StoredBitsPerEntry(t, r.blob.size());
  JsonObject j;
  j.Add("output", args.positionals()[1]).Add("shape", in.shape).Add("bytes", static_cast<int64_t>(r.blob.size()));
  j.Add("stored_bits_per_entry", bits);
  j.Add("first_try_overload_rate", r.stats.first_try_overload_rate()).Add("capped_chunks", r.stats.capped);
  if (!ctx.in_process()) j.Add("daemon", ctx.daemon_address);
  AddParams(j, t.params);
  Emit(ctx.json, j,
       absl::StrCat("wrote ", args.positionals()[1], ctx.in_process() ? "" : " via " + ctx.daemon_address, ": ",
                    r.blob.size(), " bytes, ", bits, " bits/entry, first-try overload ",
                    100 * r.stats.first_try_overload_rate(), "%\n"));
  return absl::OkStatus();
}

absl::Status CmdDecode(const CommandContext& ctx) {
  const CliArgs& args = ctx.args;
  if (args.positionals().size() != 2) return absl::InvalidArgumentError("usage: cosetctl decode IN.coset OUT.npy");
  COSET_ASSIGN_OR_RETURN(std::string blob, ReadFile(args.positionals()[0]));
  auto header = PeekHeader(ViewOf(blob).data(), blob.size());
  if (!header.ok()) {
    return absl::Status(header.status().code(), absl::StrCat(args.positionals()[0], ": ", header.status().message()));
  }
  std::vector<float> out(header->numel);
  COSET_RETURN_IF_ERROR(ctx.backend.Decode(ViewOf(blob), out.data()));
  COSET_RETURN_IF_ERROR(WriteNpy(args.positionals()[1], header->shape, out.data(), header->dtype));
  JsonObject j;
  j.Add("output", args.positionals()[1]).Add("shape", header->shape);
  j.Add("dtype", DTypeName(header->dtype));
  Emit(ctx.json, j, absl::StrCat("wrote ", args.positionals()[1], ": shape ", ShapeString(header->shape), "\n"));
  return absl::OkStatus();
}

absl::Status CmdInfo(const CommandContext& ctx) {
  const CliArgs& args = ctx.args;
  if (args.positionals().empty()) {
    // The backend itself: the embedded CPU codec, or the daemon's version and limits.
    COSET_ASSIGN_OR_RETURN(BackendInfo info, ctx.backend.Info());
    JsonObject j;
    j.Add("backend", info.name);
    std::string text = absl::StrCat("backend ", info.name, ": ", info.description, "\n");
    for (const auto& [key, value] : info.details) {
      j.Add(key, value);
      absl::StrAppend(&text, "  ", key, " ", value, "\n");
    }
    Emit(ctx.json, j, text);
    return absl::OkStatus();
  }
  if (args.positionals().size() != 1) return absl::InvalidArgumentError("usage: cosetctl info [IN.coset]");
  // A file is described from its own bytes: the same answer whatever the backend.
  COSET_ASSIGN_OR_RETURN(std::string bytes, ReadFile(args.positionals()[0]));
  COSET_ASSIGN_OR_RETURN(CompressedTensor t, ParseCoset(args.positionals()[0], bytes));
  const OverloadSummary s = SummarizeOverloads(t);
  const double nominal = NominalBitsPerEntry(t, s);
  JsonObject j;
  AddParams(j, t.params);
  j.Add("format_version", static_cast<int>(kFormatVersion)).Add("shape", t.shape);
  j.Add("dtype", DTypeName(t.dtype));
  j.Add("padded_last_dim", t.layout.padded_cols).Add("bytes", static_cast<int64_t>(bytes.size()));
  j.Add("rate_bits_per_entry", nominal).Add("stored_bits_per_entry", StoredBitsPerEntry(t, bytes.size()));
  j.Add("chunks", static_cast<int64_t>(t.t.size())).Add("first_try_overload_rate", s.first_try_overload_rate);
  j.Add("t_entropy_bits", s.entropy_bits).Add("t_histogram", s.histogram);
  Emit(ctx.json, j,
       absl::StrCat(args.positionals()[0], ": ", ParamsToText(t.params), "\n  shape ", ShapeString(t.shape), ", ",
                    bytes.size(), " bytes, ", StoredBitsPerEntry(t, bytes.size()), " bits/entry stored (nominal ",
                    nominal, ")\n  first-try overload ", 100 * s.first_try_overload_rate, "% of ", t.t.size(),
                    " chunks, H(T) = ", s.entropy_bits, " bits\n"));
  return absl::OkStatus();
}

absl::Status CmdEval(const CommandContext& ctx) {
  const CliArgs& args = ctx.args;
  COSET_ASSIGN_OR_RETURN(CodecParams params, CodecParamsFromArgs(args));
  COSET_ASSIGN_OR_RETURN(int64_t samples, args.GetInt("samples", 1 << 20));
  COSET_ASSIGN_OR_RETURN(int64_t seed, args.GetInt("data-seed", 1));
  if (samples < 1 || samples > (int64_t{1} << 30)) return absl::InvalidArgumentError("--samples must be in [1, 2^30]");
  EvalResult r;
  if (args.Switch("search-beta", false)) {
    // The reference grid search encodes 40 times: a core routine, run in-process only.
    if (!ctx.in_process()) return absl::InvalidArgumentError("--search-beta runs in-process only");
    COSET_ASSIGN_OR_RETURN(r, SearchBeta(params, samples, static_cast<uint64_t>(seed), &ctx.executor));
  } else {
    // The backend encodes and decodes; rate and error are measured here from its blob and output.
    const std::vector<float> x = GaussianSamples(samples, static_cast<uint64_t>(seed));
    COSET_ASSIGN_OR_RETURN(EncodeResult encoded,
                           ctx.backend.Encode(x.data(), SampleShape(samples), params, DType::kFloat32));
    COSET_ASSIGN_OR_RETURN(CompressedTensor t, Parse(encoded.blob.data(), encoded.blob.size(), &ctx.executor));
    std::vector<float> y(samples);
    COSET_RETURN_IF_ERROR(ctx.backend.Decode(BlobView(encoded.blob), y.data()));
    r = MeasureReconstruction(x.data(), y.data(), samples);
    const OverloadSummary summary = SummarizeOverloads(t);
    r.rate_bits_per_entry = NominalBitsPerEntry(t, summary);
    r.stored_bits_per_entry = StoredBitsPerEntry(t, encoded.blob.size());
    r.overload_rate = summary.first_try_overload_rate;
    r.beta = t.params.beta;
  }
  JsonObject j;
  j.Add("lattice", params.lattice.name())
      .Add("q", params.q)
      .Add("M", params.M)
      .Add("scale", ScaleModeName(params.scale));
  j.Add("samples", r.samples).Add("rate_bits_per_entry", r.rate_bits_per_entry);
  j.Add("stored_bits_per_entry", r.stored_bits_per_entry).Add("mse", r.mse).Add("snr_db", r.snr_db);
  j.Add("overload_rate", r.overload_rate).Add("beta", r.beta);
  Emit(ctx.json, j,
       absl::StrCat(params.lattice.name(), " q=", params.q, " M=", params.M, " beta=", r.beta, ": rate ",
                    r.rate_bits_per_entry, " bits/entry (stored ", r.stored_bits_per_entry, "), MSE ", r.mse, ", SNR ",
                    r.snr_db, " dB, first-try overload ", 100 * r.overload_rate, "%\n"));
  return absl::OkStatus();
}

absl::Status CmdHealth(const CommandContext& ctx) {
  const absl::Status health = ctx.backend.Health();
  const std::string where = ctx.in_process() ? std::string("in-process") : ctx.daemon_address;
  JsonObject j;
  j.Add("backend", where).Add("serving", health.ok());
  if (!ctx.in_process()) j.Add("daemon", ctx.daemon_address);
  Emit(ctx.json, j, absl::StrCat(where, health.ok() ? ": SERVING\n" : ": NOT SERVING\n"));
  return health;
}

absl::Status BenchGemv(const CommandContext& ctx);  // lut_commands.cc

// bench: the codec's own throughput (TensorCodec in-process, output buffers reused as in a
// training loop) against memcpy of the same bytes, plus, with --daemon, the same work through the
// backend (gRPC + shared memory).
absl::Status CmdBench(const CommandContext& ctx) {
  const CliArgs& args = ctx.args;
  if (!args.positionals().empty()) {
    if (args.positionals()[0] == "gemv" && args.positionals().size() == 1) return BenchGemv(ctx);
    return absl::InvalidArgumentError("usage: cosetctl bench [gemv] [flags]");
  }
  COSET_ASSIGN_OR_RETURN(CodecParams params, CodecParamsFromArgs(args));
  COSET_ASSIGN_OR_RETURN(int64_t mib, args.GetInt("mib", 64));
  COSET_ASSIGN_OR_RETURN(int64_t reps, args.GetInt("reps", 3));
  if (mib < 1 || mib > 4096 || reps < 1 || reps > 100)
    return absl::InvalidArgumentError("--mib in [1, 4096], --reps in [1, 100]");
  Executor& pool = ctx.executor;
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
  const double encode_s = BestSeconds(
      static_cast<int>(reps), [&] { status = codec.EncodeInto(x.data(), shape, DType::kFloat32, &pool, nullptr, &t); });
  COSET_RETURN_IF_ERROR(status);
  double decode_s = BestSeconds(static_cast<int>(reps), [&] { status = codec.Decode(t, y.data(), &pool); });
  COSET_RETURN_IF_ERROR(status);
  double backend_encode_s = 0, backend_decode_s = 0;
  if (ctx.backend_name != "cpu") {
    // The same work through the backend (cosetd or a CUDA device), after the CPU codec's numbers.
    std::vector<uint8_t> blob;
    backend_encode_s = BestSeconds(static_cast<int>(reps), [&] {
      auto r = ctx.backend.Encode(x.data(), shape, params, DType::kFloat32);
      if (r.ok()) {
        blob = std::move(r->blob);
      } else {
        status = r.status();
      }
    });
    COSET_RETURN_IF_ERROR(status);
    backend_decode_s =
        BestSeconds(static_cast<int>(reps), [&] { status = ctx.backend.Decode(BlobView(blob), y.data()); });
    COSET_RETURN_IF_ERROR(status);
  }
  const double bytes = static_cast<double>(n) * 4;
  JsonObject j;
  AddParams(j, codec.params());
  j.Add("threads", static_cast<int64_t>(pool.concurrency())).Add("simd", SimdLevelName(ActiveSimdLevel()));
  j.Add("mib", mib).Add("memcpy_gbps", bytes / memcpy_s / 1e9).Add("encode_gbps", bytes / encode_s / 1e9);
  j.Add("decode_gbps", bytes / decode_s / 1e9).Add("encode_vs_memcpy", memcpy_s / encode_s);
  j.Add("decode_vs_memcpy", memcpy_s / decode_s);
  if (backend_encode_s > 0) {
    if (!ctx.in_process()) j.Add("daemon", ctx.daemon_address);
    j.Add(ctx.backend_name + "_encode_gbps", bytes / backend_encode_s / 1e9);
    j.Add(ctx.backend_name + "_decode_gbps", bytes / backend_decode_s / 1e9);
  }
  Emit(ctx.json, j,
       absl::StrCat(codec.params().lattice.name(), " q=", params.q, " M=", params.M, ", ", mib, " MiB float32, ",
                    pool.concurrency(), " thread(s):\n  memcpy ", bytes / memcpy_s / 1e9, " GB/s\n  encode ",
                    bytes / encode_s / 1e9, " GB/s (", 100 * memcpy_s / encode_s, "% of memcpy)\n  decode ",
                    bytes / decode_s / 1e9, " GB/s (", 100 * memcpy_s / decode_s, "% of memcpy)\n",
                    backend_encode_s > 0 ? absl::StrCat(ctx.in_process() ? "  on cuda (host to device to host): encode "
                                                                         : "  through cosetd: encode ",
                                                        bytes / backend_encode_s / 1e9, " GB/s, decode ",
                                                        bytes / backend_decode_s / 1e9, " GB/s\n")
                                         : ""));
  return absl::OkStatus();
}

}  // namespace coset
