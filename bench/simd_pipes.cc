// How many 512-bit operations one core retires per cycle, alone and mixed: the ceiling every
// AVX-512 kernel here is measured against (README, "GEMV/GEMM on compressed weights": the op count
// of a decoder times this ceiling bounds its speed). Each class runs as 12 independent streams
// (enough to cover every latency); the clock comes from a chain of dependent scalar additions (one
// cycle each). Pairs and triples interleave the classes one for one. The instructions are inline
// assembly, so the unit is built for the baseline ISA and refuses to run without AVX-512 VBMI.
//
//   bazel run -c opt //bench:simd_pipes [-- --json]
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "common/json_writer.h"

namespace {

constexpr int64_t kIterations = 20'000'000;

template <class Body>
double BestSeconds(Body body) {
  double best = 1e30;
  for (int run = 0; run < 3; ++run) {
    const auto start = std::chrono::steady_clock::now();
    body();
    best = std::min(best, std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
  }
  return best;
}

// Cycles per second from 12 dependent scalar additions per iteration.
double ClockHz() {
  const double seconds = BestSeconds([] {
    uint64_t x = 0;
    for (int64_t k = 0; k < kIterations; ++k) {
      asm volatile(
          "add $1, %0\n add $1, %0\n add $1, %0\n add $1, %0\n add $1, %0\n add $1, %0\n"
          "add $1, %0\n add $1, %0\n add $1, %0\n add $1, %0\n add $1, %0\n add $1, %0\n"
          : "+r"(x));
    }
  });
  return 12.0 * kIterations / seconds;
}

// One instruction of each class, writing zmm register R (12 streams: R = 0..11), reading zmm20 and
// zmm21 (and, for the broadcast FMA, a float in memory).
#define COSET_FMA(R) "vfmadd231ps %%zmm21, %%zmm20, %%zmm" #R "\n"
#define COSET_FMA_BCAST(R) "vfmadd231ps (%0)%{1to16%}, %%zmm20, %%zmm" #R "\n"
#define COSET_MUL(R) "vmulps %%zmm21, %%zmm20, %%zmm" #R "\n"
#define COSET_CVT(R) "vcvtdq2ps %%zmm20, %%zmm" #R "\n"
#define COSET_WIDEN(R) "vpmovsxbd %%xmm20, %%zmm" #R "\n"
#define COSET_PERMB(R) "vpermb %%zmm21, %%zmm20, %%zmm" #R "\n"
#define COSET_PERMT2B(R) "vpermt2b %%zmm21, %%zmm20, %%zmm" #R "\n"
#define COSET_SHIFT(R) "vpsrad $3, %%zmm20, %%zmm" #R "\n"
#define COSET_ADD(R) "vpaddd %%zmm21, %%zmm20, %%zmm" #R "\n"
#define COSET_CLOBBERS "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7", "xmm8", "xmm9", "xmm10", "xmm11"
// Classes in turn over the 12 streams: A B C A B C ... (a pair is A B A B ..., a single A A A ...).
#define COSET_CYCLE3(A, B, C) A(0) B(1) C(2) A(3) B(4) C(5) A(6) B(7) C(8) A(9) B(10) C(11)
#define COSET_CYCLE2(A, B) A(0) B(1) A(2) B(3) A(4) B(5) A(6) B(7) A(8) B(9) A(10) B(11)
#define COSET_LOOP(BODY)                                                                     \
  [](const float* mem) {                                                                     \
    for (int64_t k = 0; k < kIterations; ++k) asm volatile(BODY::"r"(mem) : COSET_CLOBBERS); \
  }
#define COSET_ONE(A) COSET_LOOP(COSET_CYCLE2(A, A))
#define COSET_TWO(A, B) COSET_LOOP(COSET_CYCLE2(A, B))
#define COSET_THREE(A, B, C) COSET_LOOP(COSET_CYCLE3(A, B, C))

struct Mix {
  const char* name;
  void (*run)(const float*);
};

const Mix kMixes[] = {
    {"fma", COSET_ONE(COSET_FMA)},
    {"fma_broadcast_from_memory", COSET_ONE(COSET_FMA_BCAST)},
    {"mul", COSET_ONE(COSET_MUL)},
    {"convert_int_to_float", COSET_ONE(COSET_CVT)},
    {"widen_bytes", COSET_ONE(COSET_WIDEN)},
    {"vpermb", COSET_ONE(COSET_PERMB)},
    {"vpermt2b", COSET_ONE(COSET_PERMT2B)},
    {"shift", COSET_ONE(COSET_SHIFT)},
    {"int_add", COSET_ONE(COSET_ADD)},
    {"fma+mul", COSET_TWO(COSET_FMA, COSET_MUL)},
    {"fma+vpermb", COSET_TWO(COSET_FMA, COSET_PERMB)},
    {"fma+widen", COSET_TWO(COSET_FMA, COSET_WIDEN)},
    {"fma+convert", COSET_TWO(COSET_FMA, COSET_CVT)},
    {"vpermb+widen", COSET_TWO(COSET_PERMB, COSET_WIDEN)},
    {"vpermb+convert", COSET_TWO(COSET_PERMB, COSET_CVT)},
    {"convert+shift", COSET_TWO(COSET_CVT, COSET_SHIFT)},
    {"fma+vpermb+convert", COSET_THREE(COSET_FMA, COSET_PERMB, COSET_CVT)},
    {"fma+widen+convert", COSET_THREE(COSET_FMA, COSET_WIDEN, COSET_CVT)},
};

}  // namespace

int main(int argc, char** argv) {
  const bool json = argc > 1 && std::strcmp(argv[1], "--json") == 0;
  if (!__builtin_cpu_supports("avx512f") || !__builtin_cpu_supports("avx512vbmi")) {
    std::fprintf(stderr, "simd_pipes: this CPU has no AVX-512 VBMI; nothing to measure\n");
    return 1;
  }
  alignas(64) static const float kOne[16] = {1.0f};
  const double hz = ClockHz();
  coset::JsonObject out;
  out.Add("clock_ghz", hz / 1e9);
  std::vector<std::string> rows;
  coset::JsonObject per_cycle;
  for (const Mix& mix : kMixes) {
    const double seconds = BestSeconds([&] { mix.run(kOne); });
    const double ops_per_cycle = 12.0 * kIterations / seconds / hz;
    per_cycle.Add(mix.name, ops_per_cycle);
    if (!json) std::printf("%-28s %.2f zmm ops per cycle\n", mix.name, ops_per_cycle);
  }
  out.Add("zmm_ops_per_cycle", per_cycle);
  if (json) {
    std::printf("%s\n", out.str().c_str());
  } else {
    std::printf("clock %.2f GHz (dependent scalar additions)\n", hz / 1e9);
  }
  return 0;
}
