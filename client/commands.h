// cosetctl's subcommands, each written once against the Backend seam (core/backend.h): the same
// code runs in-process (CpuBackend) or through cosetd (DaemonBackend, with --daemon ADDR), and the
// unit tests drive it with MockBackend.
#pragma once

#include <algorithm>
#include <chrono>
#include <cmath>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "common/cli_args.h"
#include "common/json_writer.h"
#include "core/backend.h"
#include "core/executor.h"
#include "core/tensor_codec.h"

namespace coset {

// What a subcommand runs with. The backend and the executor are chosen by cosetctl's main from
// --daemon, --backend and --threads; commands never create either.
struct CommandContext {
  const CliArgs& args;
  bool json = false;
  Backend& backend;
  Executor& executor;                // local work that is not the backend's (benchmarks, file parsing)
  std::string daemon_address;        // empty when in-process
  std::string backend_name = "cpu";  // "cpu" (the embedded codec), "cuda" (in-process, a device) or "daemon"
  bool in_process() const { return daemon_address.empty(); }
};

std::string ShapeString(const std::vector<int64_t>& shape);
// Prints the JSON object (with --json) or the human-readable text.
void Emit(bool json, const JsonObject& j, const std::string& text);
// The bytes of a file read whole, as a blob for the backend.
inline BlobView ViewOf(const std::string& bytes) {
  return BlobView(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size());
}

// Parses the bytes of a .coset file; errors name the file.
absl::StatusOr<CompressedTensor> ParseCoset(const std::string& path, const std::string& bytes);

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

// Subcommands.
absl::Status CmdEncode(const CommandContext& ctx);
absl::Status CmdDecode(const CommandContext& ctx);
absl::Status CmdInfo(const CommandContext& ctx);
absl::Status CmdEval(const CommandContext& ctx);
absl::Status CmdBench(const CommandContext& ctx);
absl::Status CmdGemv(const CommandContext& ctx);
absl::Status CmdDot(const CommandContext& ctx);
absl::Status CmdHealth(const CommandContext& ctx);

}  // namespace coset
