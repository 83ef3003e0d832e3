// The device check's benchmark (bench/cuda_codec_bench) built on the CUDA emulation, run at small
// sizes: its own checks (the run and packed kernels' codes and floats against the per-chunk
// kernels', the pipelined host path's results against the whole path's, the GEMM methods against
// cuBLAS in float32, DotRows against its host run) pass and every section reports, so a GPU
// session does not find it broken. Its times are the emulation's and mean nothing.
#include <sys/wait.h>

#include <cstdio>
#include <cstdlib>
#include <string>
#include <utility>

#include "gtest/gtest.h"

namespace {

// The benchmark's exit status and output with `flags` (after the small sizes' flags).
std::pair<int, std::string> RunBench(const std::string& flags) {
  const char* srcdir = std::getenv("TEST_SRCDIR");
  const std::string command = std::string(srcdir != nullptr ? srcdir : ".") +
                              "/coset/bench/cuda_codec_bench_emulated --mib 4 --runs 1 --shrink 32 " + flags + " 2>&1";
  FILE* pipe = popen(command.c_str(), "r");
  if (pipe == nullptr) return {-1, "popen failed"};
  std::string out;
  char buffer[4096];
  for (size_t n; (n = fread(buffer, 1, sizeof buffer, pipe)) > 0;) out.append(buffer, n);
  const int status = pclose(pipe);
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, out};
}

TEST(CudaCodecBenchEmulatedTest, EverySectionRunsAndItsChecksPass) {
  const auto [code, out] = RunBench("");
  EXPECT_EQ(code, 0) << out;
  for (const char* section :
       {"\"lattice\":\"D4\"", "\"lattice\":\"E8\"", "\"host_path\":\"D4 q=4 M=2, 2 MiB", "\"dot_rows\"",
        "\"kernel\":\"tensor-cores\"", "\"kernel\":\"packed\"", "\"kernel\":\"runs\"",
        "\"kernel\":\"runs-half-points\"", "\"kernel\":\"per-chunk\"", "\"kernel\":\"decode-cublas\""}) {
    EXPECT_NE(out.find(section), std::string::npos) << section << " missing from\n" << out;
  }
  // Both codes' run paths, float32 and bf16 (read by the single-pass encode, stored by the
  // decodes), agree with the per-chunk kernels.
  for (const char* check : {"\"runs_same_as_per_chunk\":true", "\"runs_bf16_one_pass\":true",
                            "\"runs_bf16_decode_direct\":true", "\"runs_bf16_same_as_per_chunk\":true"}) {
    size_t found = 0;
    for (size_t at = out.find(check); at != std::string::npos; at = out.find(check, at + 1)) ++found;
    EXPECT_EQ(found, 2u) << check << " in\n" << out;
  }
}

// The device check runs a section, and a GEMM method, per process: only those lines come out
// (the tensor-core kernel's: D4's, and E8's on the codes uploaded with half points, for batches of
// 16 and 64), and a name it does not know is refused with exit 2.
TEST(CudaCodecBenchEmulatedTest, RunsTheSectionsAndMethodsAskedFor) {
  const auto [code, out] = RunBench("--sections dot,gemm --gemm-methods tensor-cores");
  EXPECT_EQ(code, 0) << out;
  EXPECT_NE(out.find("\"dot_rows\""), std::string::npos) << out;
  for (const char* lattice : {"D4", "E8"}) {
    const std::string line = std::string("\"gemm\":\"") + lattice + " q=4 M=2\",\"kernel\":\"tensor-cores\"";
    size_t found = 0;
    for (size_t at = out.find(line); at != std::string::npos; at = out.find(line, at + 1)) ++found;
    EXPECT_EQ(found, lattice[0] == 'D' ? 6u : 2u) << line << " in\n" << out;
  }
  for (const char* absent :
       {"\"lattice\"", "\"host_path\"", "\"kernel\":\"packed\"", "\"kernel\":\"per-chunk\"", "\"kernel\":\"runs"}) {
    EXPECT_EQ(out.find(absent), std::string::npos) << absent << " in\n" << out;
  }
  EXPECT_EQ(RunBench("--sections gemm,encode").first, 2);
  EXPECT_EQ(RunBench("--gemm-methods fused").first, 2);
}

}  // namespace
