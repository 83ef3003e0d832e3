// cosetctl: the coset command-line tool. Runs the codec in-process.
//
//   cosetctl encode IN.npy OUT.coset [codec flags]     cosetctl decode IN.coset OUT.npy
//   cosetctl info IN.coset                             cosetctl eval --lattice L --q Q --M M ...
//   cosetctl bench [--lattice L --q Q --M M --mib N --threads T]
// Every subcommand takes --help and --json (one JSON object on stdout).
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <iostream>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "client/cli_args.h"
#include "client/json_writer.h"
#include "client/npy.h"
#include "core/evaluation.h"
#include "core/format.h"
#include "core/row_codec.h"
#include "core/status_macros.h"
#include "core/thread_pool.h"

namespace coset {
namespace {

const std::set<std::string> kCodecFlags = {"lattice", "q", "M", "beta", "alpha", "block", "scale", "seed", "t-max", "on-cap"};
const std::set<std::string> kCodecSwitches = {"rotate"};

constexpr char kUsage[] = R"(usage: cosetctl <command> [args] [--json]

commands:
  encode IN.npy OUT.coset   compress a float32/float64 .npy (any shape; the last dimension is quantized)
  decode IN.coset OUT.npy   decompress (same shape and dtype as the original)
  info   IN.coset           parameters, shape, bits/entry, overload statistics
  eval                      rate / MSE / SNR on iid N(0,1) samples
  bench                     encode/decode throughput against memcpy, measured in the same run

run `cosetctl <command> --help` for the flags of each command.
)";

constexpr char kCodecHelp[] = R"(codec flags:
  --lattice L      Zn (n<=16), A2, Dn (3<=n<=16), E8            [D4]
  --q Q            nesting ratio, >= 2 for Z^n, >= 3 otherwise  [4]
  --M M            levels, 1..8                                  [2]
  --beta B         step relative to the block scale; 0 = measured default for (L, q, M, scale)
  --alpha A        overload ramp exponent: step *= 2^A per retry [0.333333]
  --block N        entries per scale block (multiple of d); 0 = 256 rounded to d
  --scale S        rms | absmax | none (none: one global beta, the paper's setting) [rms]
  --rotate/--no-rotate   randomized Hadamard rotation per block  [off]
  --seed S         rotation seed                                  [24301]
  --t-max T        ramp retries before the cap policy applies     [31]
  --on-cap P       fail | zero: what a chunk still overloaded at t-max does [fail]
)";

absl::StatusOr<CodecParams> CodecParamsFromArgs(const CliArgs& args) {
  CodecParams p;
  p.lattice = args.Get("lattice", p.lattice);
  COSET_ASSIGN_OR_RETURN(int64_t q, args.GetInt("q", p.q));
  COSET_ASSIGN_OR_RETURN(int64_t m, args.GetInt("M", p.levels));
  COSET_ASSIGN_OR_RETURN(double beta, args.GetDouble("beta", p.beta));
  COSET_ASSIGN_OR_RETURN(double alpha, args.GetDouble("alpha", p.alpha));
  COSET_ASSIGN_OR_RETURN(int64_t block, args.GetInt("block", p.block));
  COSET_ASSIGN_OR_RETURN(int64_t seed, args.GetInt("seed", static_cast<int64_t>(p.seed)));
  COSET_ASSIGN_OR_RETURN(int64_t t_max, args.GetInt("t-max", p.t_max));
  COSET_ASSIGN_OR_RETURN(p.scale, ParseScaleMode(args.Get("scale", "rms")));
  const std::string on_cap = args.Get("on-cap", "fail");
  if (on_cap != "fail" && on_cap != "zero") return absl::InvalidArgumentError("--on-cap must be fail or zero");
  p.on_cap = on_cap == "zero" ? CapPolicy::kZero : CapPolicy::kFail;
  auto in_int = [](int64_t v) { return v >= -(int64_t{1} << 30) && v <= (int64_t{1} << 30); };
  if (!in_int(q) || !in_int(m) || !in_int(block) || !in_int(t_max)) {
    return absl::InvalidArgumentError("an integer flag is out of range");
  }
  p.q = static_cast<int>(q);
  p.levels = static_cast<int>(m);
  p.beta = static_cast<float>(beta);
  p.alpha = static_cast<float>(alpha);
  p.block = static_cast<int>(block);
  p.seed = static_cast<uint64_t>(seed);
  p.t_max = static_cast<int>(t_max);
  p.rotate = args.Switch("rotate", false);
  COSET_RETURN_IF_ERROR(ValidateParams(p));
  return p;
}

void AddParams(JsonObject& j, const CodecParams& p) {
  j.Add("lattice", p.lattice).Add("q", p.q).Add("M", p.levels).Add("beta", static_cast<double>(p.beta));
  j.Add("alpha", static_cast<double>(p.alpha)).Add("block", p.block).Add("scale", ScaleModeName(p.scale));
  j.Add("rotate", p.rotate).Add("seed", static_cast<int64_t>(p.seed)).Add("t_max", p.t_max);
  j.Add("on_cap", p.on_cap == CapPolicy::kZero ? "zero" : "fail");
}

std::string ShapeString(const std::vector<int64_t>& shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) absl::StrAppend(&s, i ? ", " : "", shape[i]);
  return s + "]";
}

void Emit(bool json, const JsonObject& j, const std::string& text) {
  if (json) {
    std::cout << j.str() << std::endl;
  } else {
    std::cout << text;
  }
}

int64_t ThreadsFlag(const CliArgs& args) {
  auto t = args.GetInt("threads", 0);
  return t.ok() ? *t : 0;
}

absl::Status CmdEncode(const CliArgs& args, bool json) {
  if (args.positionals().size() != 2) return absl::InvalidArgumentError("usage: cosetctl encode IN.npy OUT.coset [flags]");
  COSET_ASSIGN_OR_RETURN(CodecParams params, CodecParamsFromArgs(args));
  COSET_ASSIGN_OR_RETURN(NpyArray in, ReadNpy(args.positionals()[0]));
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

absl::StatusOr<CompressedTensor> ReadCoset(const std::string& path) {
  COSET_ASSIGN_OR_RETURN(std::string bytes, ReadFile(path));
  auto t = Parse(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size());
  if (!t.ok()) return absl::Status(t.status().code(), absl::StrCat(path, ": ", t.status().message()));
  return t;
}

absl::Status CmdDecode(const CliArgs& args, bool json) {
  if (args.positionals().size() != 2) return absl::InvalidArgumentError("usage: cosetctl decode IN.coset OUT.npy");
  COSET_ASSIGN_OR_RETURN(CompressedTensor t, ReadCoset(args.positionals()[0]));
  std::vector<float> out(t.layout.numel);
  ThreadPool pool(static_cast<int>(ThreadsFlag(args)));
  COSET_RETURN_IF_ERROR(DecodeTensor(t, out.data(), &pool));
  COSET_RETURN_IF_ERROR(WriteNpy(args.positionals()[1], t.shape, out.data(), t.dtype));
  JsonObject j;
  j.Add("output", args.positionals()[1]).Add("shape", t.shape).Add("dtype", t.dtype == DType::kFloat64 ? "float64" : "float32");
  Emit(json, j, absl::StrCat("wrote ", args.positionals()[1], ": shape ", ShapeString(t.shape), "\n"));
  return absl::OkStatus();
}

absl::Status CmdInfo(const CliArgs& args, bool json) {
  if (args.positionals().size() != 1) return absl::InvalidArgumentError("usage: cosetctl info IN.coset");
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
  if (args.Switch("search-beta", false)) {
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

// Best-of-`reps` wall time of fn, in seconds.
template <typename Fn>
double BestSeconds(int reps, Fn&& fn) {
  double best = INFINITY;
  for (int i = 0; i < reps; ++i) {
    const auto t0 = std::chrono::steady_clock::now();
    fn();
    best = std::min(best, std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  }
  return best;
}

absl::Status CmdBench(const CliArgs& args, bool json) {
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
  const double decode_s = BestSeconds(static_cast<int>(reps), [&] { status = codec.Decode(t, y.data(), &pool); });
  COSET_RETURN_IF_ERROR(status);
  const double bytes = static_cast<double>(n) * 4;
  JsonObject j;
  AddParams(j, codec.params());
  j.Add("threads", static_cast<int64_t>(pool.concurrency())).Add("simd", ActiveSimdLevel() == SimdLevel::kAvx2 ? "avx2" : "portable");
  j.Add("mib", mib).Add("memcpy_gbps", bytes / memcpy_s / 1e9).Add("encode_gbps", bytes / encode_s / 1e9);
  j.Add("decode_gbps", bytes / decode_s / 1e9).Add("encode_vs_memcpy", memcpy_s / encode_s);
  j.Add("decode_vs_memcpy", memcpy_s / decode_s);
  Emit(json, j,
       absl::StrCat(codec.params().lattice, " q=", params.q, " M=", params.levels, ", ", mib, " MiB float32, ",
                    pool.concurrency(), " thread(s):\n  memcpy ", bytes / memcpy_s / 1e9, " GB/s\n  encode ",
                    bytes / encode_s / 1e9, " GB/s (", 100 * memcpy_s / encode_s, "% of memcpy)\n  decode ",
                    bytes / decode_s / 1e9, " GB/s (", 100 * memcpy_s / decode_s, "% of memcpy)\n"));
  return absl::OkStatus();
}

struct Command {
  absl::Status (*run)(const CliArgs&, bool);
  std::set<std::string> value_flags;
  std::set<std::string> switches;
  const char* help;
};

std::set<std::string> Union(std::set<std::string> a, const std::set<std::string>& b) {
  a.insert(b.begin(), b.end());
  return a;
}

int Main(int argc, char** argv) {
  if (argc < 2 || std::string(argv[1]) == "--help" || std::string(argv[1]) == "-h" || std::string(argv[1]) == "help") {
    std::cout << kUsage;
    return argc < 2 ? 2 : 0;
  }
  const std::map<std::string, Command> commands = {
      {"encode", {&CmdEncode, Union(kCodecFlags, {"threads"}), kCodecSwitches,
                  "usage: cosetctl encode IN.npy OUT.coset [codec flags] [--threads N] [--json]\n"}},
      {"decode", {&CmdDecode, {"threads"}, {}, "usage: cosetctl decode IN.coset OUT.npy [--threads N] [--json]\n"}},
      {"info", {&CmdInfo, {}, {}, "usage: cosetctl info IN.coset [--json]\n"}},
      {"eval", {&CmdEval, Union(kCodecFlags, {"samples", "data-seed", "threads"}), Union(kCodecSwitches, {"search-beta"}),
                "usage: cosetctl eval [codec flags] [--samples N] [--data-seed S] [--search-beta] [--json]\n"
                "  iid N(0,1) data; --search-beta runs the reference beta grid and reports the best point\n"}},
      {"bench", {&CmdBench, Union(kCodecFlags, {"mib", "reps", "threads"}), kCodecSwitches,
                 "usage: cosetctl bench [codec flags] [--mib 64] [--reps 3] [--threads N] [--json]\n"
                 "  encode/decode throughput of N(0,1) float32 data, memcpy of the same bytes as baseline\n"}},
  };
  const auto it = commands.find(argv[1]);
  if (it == commands.end()) {
    std::cerr << "cosetctl: unknown command '" << argv[1] << "'\n" << kUsage;
    return 2;
  }
  std::vector<std::string> rest(argv + 2, argv + argc);
  if (std::find(rest.begin(), rest.end(), "--help") != rest.end()) {
    std::cout << it->second.help;
    if (it->second.value_flags.count("lattice")) std::cout << kCodecHelp;
    return 0;
  }
  auto args = CliArgs::Parse(rest, it->second.value_flags, Union(it->second.switches, {"json"}));
  absl::Status status = args.ok() ? it->second.run(*args, args->Switch("json", false)) : args.status();
  if (!status.ok()) {
    const bool json = args.ok() && args->Switch("json", false);
    if (json) {
      JsonObject j;
      j.Add("error", std::string(status.message())).Add("code", absl::StatusCodeToString(status.code()));
      std::cout << j.str() << std::endl;
    }
    std::cerr << "cosetctl " << argv[1] << ": " << status.message() << "\n";
    return 1;
  }
  return 0;
}

}  // namespace
}  // namespace coset

int main(int argc, char** argv) { return coset::Main(argc, argv); }
