// cosetctl: the coset command-line tool. Every subcommand runs against one Backend (core/backend.h):
// the embedded CPU codec by default, cosetd with --daemon ADDR, a CUDA device in-process with
// --backend cuda. Every subcommand takes --help and
// --json (one JSON object on stdout).
#include <algorithm>
#include <iostream>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "client/commands.h"
#include "client/daemon_backend.h"
#include "common/codec_flags.h"
#include "core/cpu_backend.h"
#include "core/status_macros.h"
#include "core/thread_pool.h"
#include "kernels/cuda_backend.h"

namespace coset {
namespace {

constexpr char kUsage[] = R"(usage: cosetctl <command> [args] [--json]

commands:
  encode IN.npy OUT.coset   compress a float32/float64 .npy (any shape; the last dimension is quantized)
  decode IN.coset OUT.npy   decompress (same shape and dtype as the original)
  info   IN.coset           parameters, shape, bits/entry, overload statistics
  eval                      rate / MSE / SNR on iid N(0,1) samples
  bench                     encode/decode throughput against memcpy, measured in the same run
  bench gemv                LUT GEMV on codes vs OpenBLAS float32 GEMV vs decode + GEMV
  gemv   W.coset X.npy OUT.npy   OUT = X @ decode(W)^T, computed on the codes
  dot    A.coset B.coset    row-wise inner products of two compressed tensors, on the codes

  health                    is the backend serving?   info without a file: the backend's facts

global flag: --daemon ADDR (unix:/path or host:port) runs every command through cosetd instead of
the embedded codec (same results, bit for bit); bench adds the daemon's throughput beside the
in-process numbers; eval --search-beta and bench gemv run in-process only.
TLS to a TCP daemon: --tls-ca CA.pem, and for mutual TLS --tls-cert CERT.pem --tls-key KEY.pem.
global flag: --backend cpu|cuda [--device N] runs in-process on the CPU (default) or on CUDA device N
(encode, decode, quantize and gemv on the device, dot and add-codes on the CPU; same codes as the
CPU, bit for bit); bench adds the device's throughput beside the CPU's.
run `cosetctl <command> --help` for the flags of each command.
)";

struct Command {
  absl::Status (*run)(const CommandContext&);
  std::set<std::string> value_flags;
  std::set<std::string> switches;
  const char* help;
};

std::set<std::string> Union(std::set<std::string> a, const std::set<std::string>& b) {
  a.insert(b.begin(), b.end());
  return a;
}

// Picks the backend (--daemon, --backend cuda, or the embedded CPU codec on --threads threads) and
// runs the command.
absl::Status RunCommand(const Command& command, const CliArgs& args, bool json,
                        const std::map<std::string, std::string>& global) {
  const std::string& daemon_address = global.at("daemon");
  COSET_ASSIGN_OR_RETURN(int64_t threads, args.GetInt("threads", 0));
  if (threads < 0 || threads > 1024)
    return absl::InvalidArgumentError("--threads must be in [0, 1024] (0 = all cores)");
  ThreadPool pool(static_cast<int>(threads));
  std::unique_ptr<Backend> backend;
  const std::string& kind = global.at("backend");
  if (kind != "cpu" && kind != "cuda") return absl::InvalidArgumentError("--backend must be cpu or cuda");
  int device = 0;
  if (!absl::SimpleAtoi(global.at("device"), &device) || device < 0 || device > 1023)
    return absl::InvalidArgumentError("--device must be an integer in [0, 1023]");
  if (kind == "cuda") {
    if (!daemon_address.empty()) return absl::InvalidArgumentError("--backend cuda runs in-process: drop --daemon");
    auto cuda = CudaBackend::Create(device, &pool);
    if (!cuda.ok()) return absl::FailedPreconditionError(absl::StrCat("--backend cuda: ", cuda.status().message()));
    backend = *std::move(cuda);
  } else if (daemon_address.empty()) {
    backend = std::make_unique<CpuBackend>(&pool);
  } else {
    Client::Options options;
    options.address = daemon_address;
    options.tls_ca_file = global.at("tls-ca");
    options.tls_cert_file = global.at("tls-cert");
    options.tls_key_file = global.at("tls-key");
    options.client_kind = "cosetctl";
    COSET_ASSIGN_OR_RETURN(backend, DaemonBackend::Connect(options));
  }
  const CommandContext ctx{args, json, *backend, pool, daemon_address, daemon_address.empty() ? kind : "daemon"};
  return command.run(ctx);
}

}  // namespace

int Main(int argc, char** argv) {
  // The global flags (--daemon ADDR and its TLS files) may stand anywhere; take them out before
  // dispatching.
  std::map<std::string, std::string> global = {{"daemon", ""},  {"tls-ca", ""},     {"tls-cert", ""},
                                               {"tls-key", ""}, {"backend", "cpu"}, {"device", "0"}};
  std::vector<char*> kept;
  for (int i = 0; i < argc; ++i) {
    const std::string a = argv[i];
    bool taken = false;
    for (auto& [name, value] : global) {
      const std::string flag = "--" + name;
      if (a == flag && i + 1 < argc) {
        value = argv[++i];
        taken = true;
      } else if (a.rfind(flag + "=", 0) == 0) {
        value = a.substr(flag.size() + 1);
        taken = true;
      }
      if (taken) break;
    }
    if (!taken) kept.push_back(argv[i]);
  }
  argc = static_cast<int>(kept.size());
  argv = kept.data();
  if (argc < 2 || std::string(argv[1]) == "--help" || std::string(argv[1]) == "-h" || std::string(argv[1]) == "help") {
    std::cout << kUsage;
    return argc < 2 ? 2 : 0;
  }
  const std::set<std::string> codec_flags = CodecValueFlags();
  const std::set<std::string> codec_switches = CodecSwitches();
  const std::map<std::string, Command> commands = {
      {"encode",
       {&CmdEncode, Union(codec_flags, {"threads"}), codec_switches,
        "usage: cosetctl encode IN.npy OUT.coset [codec flags] [--threads N] [--json]\n"}},
      {"decode", {&CmdDecode, {"threads"}, {}, "usage: cosetctl decode IN.coset OUT.npy [--threads N] [--json]\n"}},
      {"info", {&CmdInfo, {}, {}, "usage: cosetctl info [IN.coset] [--json]   (no file: the backend's facts)\n"}},
      {"health", {&CmdHealth, {}, {}, "usage: cosetctl [--daemon ADDR] health [--json]\n"}},
      {"eval",
       {&CmdEval, Union(codec_flags, {"samples", "data-seed", "threads"}), Union(codec_switches, {"search-beta"}),
        "usage: cosetctl eval [codec flags] [--samples N] [--data-seed S] [--search-beta] [--json]\n"
        "  iid N(0,1) data; --search-beta runs the reference beta grid and reports the best point\n"}},
      {"bench",
       {&CmdBench, Union(codec_flags, {"mib", "reps", "threads", "n", "k", "batch", "runs", "layout"}), codec_switches,
        "usage: cosetctl bench [codec flags] [--mib 64] [--reps 3] [--threads N] [--json]\n"
        "  encode/decode throughput of N(0,1) float32 data, memcpy of the same bytes as baseline\n"
        "usage: cosetctl bench gemv [codec flags] [--n 16384] [--k 8192] [--batch 1 (<= 256)] [--threads N]\n"
        "         [--runs 3] [--reps 3] [--layout auto|compact-codes|int8-lanes|one-sided-lut] [--json]\n"
        "  LUT GEMV/GEMM on codes vs OpenBLAS float32 GEMV/GEMM on the decoded matrix vs decode + GEMV/GEMM;\n"
        "  JSON keys lut_ms, fp32_ms, decode_then_fp32_ms, speedup_vs_fp32, speedup_vs_decode_then_fp32,\n"
        "  lut_read_gbps, stream_read_gbps (each {min, median, max} over the runs), path,\n"
        "  resident_bits_per_entry, max_abs_err, rel_err\n"}},
      {"gemv",
       {&CmdGemv,
        {"threads"},
        {},
        "usage: cosetctl gemv W.coset X.npy OUT.npy [--threads N] [--json]\n"
        "  X is [K] or [B, K]; OUT = X @ decode(W)^T computed on the codes ([N] or [B, N])\n"}},
      {"dot",
       {&CmdDot,
        {"lut-budget"},
        {},
        "usage: cosetctl dot A.coset B.coset [--lut-budget BYTES] [--json]\n"
        "  row-wise inner products of two compressed tensors of the same shape (two-sided LUT)\n"}},
  };
  const auto it = commands.find(argv[1]);
  if (it == commands.end()) {
    std::cerr << "cosetctl: unknown command '" << argv[1] << "'\n" << kUsage;
    return 2;
  }
  std::vector<std::string> rest(argv + 2, argv + argc);
  if (std::find(rest.begin(), rest.end(), "--help") != rest.end()) {
    std::cout << it->second.help;
    if (it->second.value_flags.count("lattice")) std::cout << CodecFlagsHelp();
    return 0;
  }
  auto args = CliArgs::Parse(rest, it->second.value_flags, Union(it->second.switches, {"json"}));
  const bool json = args.ok() && args->Switch("json", false);
  absl::Status status = args.status();
  if (status.ok()) status = RunCommand(it->second, *args, json, global);
  if (!status.ok()) {
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

}  // namespace coset

int main(int argc, char** argv) { return coset::Main(argc, argv); }
