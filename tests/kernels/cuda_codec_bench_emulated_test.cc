// The device check's benchmark (bench/cuda_codec_bench) built on the CUDA emulation, run at small
// sizes: its own checks (the run and packed kernels' codes and floats against the per-chunk
// kernels', the pipelined host path's results against the whole path's, the GEMM methods against
// cuBLAS in float32, DotRows against its host run) pass and every section reports, so a GPU
// session does not find it broken. Its times are the emulation's and mean nothing.
#include <sys/wait.h>

#include <cstdio>
#include <cstdlib>
#include <string>

#include "gtest/gtest.h"

namespace {

TEST(CudaCodecBenchEmulatedTest, EverySectionRunsAndItsChecksPass) {
  const char* srcdir = std::getenv("TEST_SRCDIR");
  const std::string command = std::string(srcdir != nullptr ? srcdir : ".") +
                              "/coset/bench/cuda_codec_bench_emulated --mib 4 --runs 1 --shrink 32 2>&1";
  FILE* pipe = popen(command.c_str(), "r");
  ASSERT_NE(pipe, nullptr);
  std::string out;
  char buffer[4096];
  for (size_t n; (n = fread(buffer, 1, sizeof buffer, pipe)) > 0;) out.append(buffer, n);
  const int status = pclose(pipe);
  ASSERT_TRUE(WIFEXITED(status)) << out;
  EXPECT_EQ(WEXITSTATUS(status), 0) << out;
  for (const char* section : {"\"lattice\":\"D4\"", "\"lattice\":\"E8\"", "\"host_path\":\"D4 q=4 M=2, 2 MiB",
                              "\"dot_rows\"", "\"kernel\":\"tensor-cores\"", "\"kernel\":\"packed\"",
                              "\"kernel\":\"runs\"", "\"kernel\":\"per-chunk\"", "\"kernel\":\"decode-cublas\""}) {
    EXPECT_NE(out.find(section), std::string::npos) << section << " missing from\n" << out;
  }
}

}  // namespace
