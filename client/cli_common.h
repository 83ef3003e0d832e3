// Shared pieces of cosetctl's subcommands: codec flags, JSON output, file helpers, timing.
#pragma once

#include <algorithm>
#include <chrono>
#include <cmath>
#include <set>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "client/cli_args.h"
#include "client/json_writer.h"
#include "core/tensor_codec.h"

namespace coset {

extern const std::set<std::string> kCodecFlags;
extern const std::set<std::string> kCodecSwitches;
extern const char kCodecHelp[];

absl::StatusOr<CodecParams> CodecParamsFromArgs(const CliArgs& args);
void AddParams(JsonObject& j, const CodecParams& p);
std::string ShapeString(const std::vector<int64_t>& shape);
// Prints the JSON object (with --json) or the human-readable text.
void Emit(bool json, const JsonObject& j, const std::string& text);
int64_t ThreadsFlag(const CliArgs& args);
absl::StatusOr<CompressedTensor> ReadCoset(const std::string& path);

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

// The daemon address from --daemon, or "" for in-process.
const std::string& DaemonAddress();
void SetDaemonAddress(const std::string& address);

// Subcommands: (args, json) -> status.
absl::Status CmdEncode(const CliArgs& args, bool json);
absl::Status CmdDecode(const CliArgs& args, bool json);
absl::Status CmdInfo(const CliArgs& args, bool json);
absl::Status CmdEval(const CliArgs& args, bool json);
absl::Status CmdBench(const CliArgs& args, bool json);
absl::Status CmdGemv(const CliArgs& args, bool json);
absl::Status CmdDot(const CliArgs& args, bool json);
absl::Status CmdHealth(const CliArgs& args, bool json);

}  // namespace coset
