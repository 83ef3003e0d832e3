// How busy a warp's lanes keep on the T ladders, by schedule (a model, for the GPU encode's
// design; kernels/README.md "Single-pass encode"). It encodes N(0,1) rows with the default codec
// (D4 or E8, q=4, M=2) on the CPU, takes each chunk's final T (a chunk takes T + 1 steps), prints
// the distribution of T, then replays the steps through two schedules of a 32-lane warp, where a
// step costs the warp one turn whichever of its lanes take one:
//   lists (EncodeTilesKernel): every chunk of a tile of `tile` chunks takes step 0, 32 at a time,
//     then the chunks still climbing take step t, 32 at a time, for t = 1, 2, ...;
//   own ladders (EncodeRunsKernel's lanes): each lane walks its runs of four chunks one step per
//     turn, and the warp meets after every `runs` runs per lane (the longest lane sets the turns).
// Printed per schedule: the share of the warp's lane-turns that take a step (1 = no lane idles).
//
//   bazel run -c opt //bench:ladder_schedule [-- D4|E8 ...]
#include <algorithm>
#include <cstdio>
#include <string>
#include <vector>

#include "bench/normal_codes.h"

namespace coset {
namespace {

constexpr int64_t kRows = 256, kCols = 8192;
constexpr int kLanes = 32, kRunChunks = 4;
constexpr int64_t kTileEntries = 2048;  // device::kTileEntries: a tile's most entries

// Lists over tiles of `tile` chunks: the lane-turns that take a step over all the lane-turns.
double ListsBusy(const std::vector<int>& steps, int64_t tile) {
  int64_t busy = 0, turns = 0;
  for (size_t first = 0; first + tile <= steps.size(); first += tile) {
    for (int t = 0;; ++t) {
      int64_t climbing = 0;
      for (int64_t i = 0; i < tile; ++i) climbing += steps[first + i] > t;
      if (climbing == 0) break;
      busy += climbing;
      turns += (climbing + kLanes - 1) / kLanes;
    }
  }
  return static_cast<double>(busy) / (kLanes * static_cast<double>(turns));
}

// Own ladders: lane l takes runs l, l + 32, ... of each group of 32 * `runs` runs; the group's
// turns are its longest lane's steps.
double OwnLaddersBusy(const std::vector<int>& steps, int64_t runs) {
  const int64_t all_runs = static_cast<int64_t>(steps.size()) / kRunChunks;
  int64_t busy = 0, turns = 0;
  for (int64_t group = 0; group + kLanes * runs <= all_runs; group += kLanes * runs) {
    int64_t longest = 0;
    for (int lane = 0; lane < kLanes; ++lane) {
      int64_t lane_steps = 0;
      for (int64_t k = 0; k < runs; ++k) {
        for (int c = 0; c < kRunChunks; ++c) lane_steps += steps[(group + lane + kLanes * k) * kRunChunks + c];
      }
      busy += lane_steps;
      longest = std::max(longest, lane_steps);
    }
    turns += longest;
  }
  return static_cast<double>(busy) / (kLanes * static_cast<double>(turns));
}

int Run(const std::string& lattice_name) {
  const absl::StatusOr<NormalRows> rows = EncodeNormalRows(lattice_name, kRows, kCols);
  if (!rows.ok()) {
    std::fprintf(stderr, "%s\n", std::string(rows.status().message()).c_str());
    return 1;
  }
  const CompressedTensor& coded = rows->codes;
  std::vector<int> steps(coded.t.size());
  std::vector<int64_t> at_t(64);
  for (size_t i = 0; i < steps.size(); ++i) {
    steps[i] = coded.t[i] + 1;
    ++at_t[coded.t[i]];
  }
  std::printf("%s q=4 M=2, %zu chunks of N(0,1) rows: T =", lattice_name.c_str(), steps.size());
  for (int t = 0; t < 64; ++t) {
    if (at_t[t] > 0) std::printf(" %d: %.2f%%", t, 100.0 * at_t[t] / steps.size());
  }
  std::printf("\n");
  const int dim = coded.params.lattice.dim();
  const int64_t chunks_per_block = 256 / dim;
  for (int64_t blocks : {1, 2, 4, 8, 16}) {
    const int64_t tile = blocks * chunks_per_block;
    if (tile * dim > kTileEntries) break;
    std::printf("  lists, tiles of %lld chunks: %.3f busy\n", static_cast<long long>(tile), ListsBusy(steps, tile));
  }
  for (int64_t runs : {1, 2, 4, 8, 16, 64}) {
    std::printf("  own ladders, meeting every %lld runs per lane: %.3f busy\n", static_cast<long long>(runs),
                OwnLaddersBusy(steps, runs));
  }
  return 0;
}

}  // namespace
}  // namespace coset

int main(int argc, char** argv) {
  std::vector<std::string> lattices;
  for (int i = 1; i < argc; ++i) lattices.push_back(argv[i]);
  if (lattices.empty()) lattices = {"D4", "E8"};
  int rc = 0;
  for (const std::string& name : lattices) rc |= coset::Run(name);
  return rc;
}
