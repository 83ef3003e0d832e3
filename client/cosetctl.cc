// cosetctl: the coset command-line tool. Runs the codec in-process.
// Every subcommand takes --help and --json (one JSON object on stdout).
#include <algorithm>
#include <iostream>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "client/cli_common.h"

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

  health                    with --daemon: is cosetd serving?  info without a file: the daemon's limits

global flag: --daemon ADDR (unix:/path or host:port) runs encode, decode, gemv, dot, eval, info and
health through cosetd instead of in-process; bench adds the daemon's throughput beside the
in-process numbers; eval --search-beta and bench gemv run in-process.
run `cosetctl <command> --help` for the flags of each command.
)";

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

}  // namespace

int Main(int argc, char** argv) {
  // --daemon ADDR may stand anywhere; take it out before dispatching.
  std::vector<char*> kept;
  for (int i = 0; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--daemon" && i + 1 < argc) {
      SetDaemonAddress(argv[++i]);
    } else if (a.rfind("--daemon=", 0) == 0) {
      SetDaemonAddress(a.substr(9));
    } else {
      kept.push_back(argv[i]);
    }
  }
  argc = static_cast<int>(kept.size());
  argv = kept.data();
  if (argc < 2 || std::string(argv[1]) == "--help" || std::string(argv[1]) == "-h" || std::string(argv[1]) == "help") {
    std::cout << kUsage;
    return argc < 2 ? 2 : 0;
  }
  const std::map<std::string, Command> commands = {
      {"encode", {&CmdEncode, Union(kCodecFlags, {"threads"}), kCodecSwitches,
                  "usage: cosetctl encode IN.npy OUT.coset [codec flags] [--threads N] [--json]\n"}},
      {"decode", {&CmdDecode, {"threads"}, {}, "usage: cosetctl decode IN.coset OUT.npy [--threads N] [--json]\n"}},
      {"info", {&CmdInfo, {}, {}, "usage: cosetctl info IN.coset [--json]   |   cosetctl --daemon ADDR info\n"}},
      {"health", {&CmdHealth, {}, {}, "usage: cosetctl --daemon ADDR health [--json]\n"}},
      {"eval", {&CmdEval, Union(kCodecFlags, {"samples", "data-seed", "threads"}), Union(kCodecSwitches, {"search-beta"}),
                "usage: cosetctl eval [codec flags] [--samples N] [--data-seed S] [--search-beta] [--json]\n"
                "  iid N(0,1) data; --search-beta runs the reference beta grid and reports the best point\n"}},
      {"bench", {&CmdBench, Union(kCodecFlags, {"mib", "reps", "threads", "n", "k", "batch"}), kCodecSwitches,
                 "usage: cosetctl bench [codec flags] [--mib 64] [--reps 3] [--threads N] [--json]\n"
                 "  encode/decode throughput of N(0,1) float32 data, memcpy of the same bytes as baseline\n"
                 "usage: cosetctl bench gemv [codec flags] [--n 16384] [--k 8192] [--batch 1] [--threads N] [--json]\n"
                 "  LUT GEMV on codes vs OpenBLAS float32 GEMV on the decoded matrix vs decode + GEMV;\n"
                 "  JSON keys lut_ms, fp32_ms, decode_then_fp32_ms, max_abs_err, rel_err\n"}},
      {"gemv", {&CmdGemv, {"threads"}, {}, "usage: cosetctl gemv W.coset X.npy OUT.npy [--threads N] [--json]\n"
                "  X is [K] or [B, K]; OUT = X @ decode(W)^T computed on the codes ([N] or [B, N])\n"}},
      {"dot", {&CmdDot, {"lut-budget"}, {}, "usage: cosetctl dot A.coset B.coset [--lut-budget BYTES] [--json]\n"
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

}  // namespace coset

int main(int argc, char** argv) { return coset::Main(argc, argv); }
