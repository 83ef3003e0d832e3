// The CUDA emulation itself (kernels/cuda_emulation.h): small kernels whose results CUDA defines
// (indices, shuffles, barriers, shared memory), the kernel bugs it must stop on, and the runtime
// calls' answers. cuda_codec_emulated_test runs the codec's kernels on it.
#include "kernels/cuda_emulation.h"

#include <algorithm>
#include <cstdint>
#include <numeric>
#include <vector>

#include "gtest/gtest.h"

namespace {

void WriteGlobalIndex(int64_t n, int* out) {
  for (int64_t i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += gridDim.x * blockDim.x) {
    out[i] = static_cast<int>(i);
  }
}

TEST(CudaEmulationTest, GridStrideLoopsCoverEveryItemOnce) {
  std::vector<int> out(10007, -1);
  COSET_LAUNCH(3, 96, 0, nullptr, WriteGlobalIndex)(static_cast<int64_t>(out.size()), out.data());
  for (size_t i = 0; i < out.size(); ++i) ASSERT_EQ(out[i], static_cast<int>(i));
}

// Per lane: the warp sum by __shfl_down_sync, lane 0's value by __shfl_sync, the butterfly max by
// __shfl_xor_sync within groups of 8, the value of lane (l + 3) mod 16 of its half, __all_sync,
// the warp's votes for odd values by __ballot_sync and its half's, and their count (__popc).
constexpr int kShuffleFields = 8;

void Shuffles(const int* in, int* out) {
  const int lane = static_cast<int>(threadIdx.x % 32);
  const int v = in[threadIdx.x];
  int sum = v;
  for (int offset = 16; offset > 0; offset /= 2) sum += __shfl_down_sync(0xFFFFFFFFu, sum, offset);
  int group_max = v;
  for (int offset = 4; offset > 0; offset /= 2)
    group_max = max(group_max, __shfl_xor_sync(0xFFFFFFFFu, group_max, offset, 8));
  const unsigned half = 0xFFFFu << (lane / 16 * 16);
  int* row = out + kShuffleFields * threadIdx.x;
  row[0] = sum;
  row[1] = __shfl_sync(0xFFFFFFFFu, v, 0);
  row[2] = group_max;
  row[3] = __shfl_sync(half, v, lane + 3, 16);
  row[4] = __all_sync(0xFFFFFFFFu, v >= 0);
  const unsigned votes = __ballot_sync(0xFFFFFFFFu, v % 2);
  row[5] = static_cast<int>(votes);
  row[6] = static_cast<int>(__ballot_sync(half, v % 2));
  row[7] = __popc(votes);
}

TEST(CudaEmulationTest, ShufflesGiveCudasResults) {
  std::vector<int> in(64), out(kShuffleFields * 64, -1);
  for (int i = 0; i < 64; ++i) in[static_cast<size_t>(i)] = (i * 37) % 64;
  COSET_LAUNCH(1, 64, 0, nullptr, Shuffles)(in.data(), out.data());
  for (int t = 0; t < 64; ++t) {
    const int warp = t / 32 * 32, lane = t % 32;
    const int* row = out.data() + kShuffleFields * t;
    if (lane == 0) {
      EXPECT_EQ(row[0], std::accumulate(in.begin() + warp, in.begin() + warp + 32, 0)) << t;
    }
    EXPECT_EQ(row[1], in[static_cast<size_t>(warp)]) << t;
    const int group = warp + lane / 8 * 8;
    EXPECT_EQ(row[2], *std::max_element(in.begin() + group, in.begin() + group + 8)) << t;
    EXPECT_EQ(row[3], in[static_cast<size_t>(warp + lane / 16 * 16 + (lane % 16 + 3) % 16)]) << t;
    EXPECT_EQ(row[4], 1) << t;
    unsigned votes = 0, half_votes = 0;
    for (int l = 0; l < 32; ++l) {
      const bool odd = in[static_cast<size_t>(warp + l)] % 2 != 0;
      votes |= static_cast<unsigned>(odd) << l;
      if (l / 16 == lane / 16) half_votes |= static_cast<unsigned>(odd) << l;
    }
    EXPECT_EQ(static_cast<unsigned>(row[5]), votes) << t;
    EXPECT_EQ(static_cast<unsigned>(row[6]), half_votes) << t;
    EXPECT_EQ(row[7], __builtin_popcount(votes)) << t;
    EXPECT_NE(votes, 0u);
    EXPECT_NE(votes, 0xFFFFFFFFu);
  }
}

// A block reverses its part of the array through dynamic shared memory: wrong without the barrier,
// since thread i reads what thread n - 1 - i wrote.
void ReverseThroughShared(const float* in, float* out) {
  float* staged = static_cast<float*>(coset::emu::DynamicShared());
  const unsigned n = blockDim.x, i = threadIdx.x, base = blockIdx.x * n;
  staged[i] = in[base + i];
  __syncthreads();
  out[base + i] = staged[n - 1 - i];
}

TEST(CudaEmulationTest, SyncThreadsOrdersSharedMemory) {
  std::vector<float> in(4 * 128), out(in.size(), -1.0f);
  std::iota(in.begin(), in.end(), 0.0f);
  COSET_LAUNCH(4, 128, 128 * sizeof(float), nullptr, ReverseThroughShared)(in.data(), out.data());
  for (size_t b = 0; b < 4; ++b) {
    for (size_t i = 0; i < 128; ++i) ASSERT_EQ(out[b * 128 + i], in[b * 128 + 127 - i]);
  }
}

void ReadSharedUnwritten(uint32_t* out) {
  out[threadIdx.x] = static_cast<uint32_t*>(coset::emu::DynamicShared())[threadIdx.x];
}

TEST(CudaEmulationTest, SharedMemoryStartsAsGarbage) {
  std::vector<uint32_t> out(32, 0);
  COSET_LAUNCH(1, 32, 32 * 4, nullptr, ReadSharedUnwritten)(out.data());
  for (uint32_t word : out) EXPECT_EQ(word, 0xFFFFFFFFu);
}

TEST(CudaEmulationTest, BytePermIsLibdevices) {
  EXPECT_EQ(__byte_perm(0x03020100u, 0x07060504u, 0x7540), 0x07050400u);
  EXPECT_EQ(__byte_perm(0x000000ABu, 0x4B000000u, 0x7540), 0x4B0000ABu);
  EXPECT_EQ(__byte_perm(0x03020100u, 0x07060504u, 0xF8C9), 0x07000401u);  // a nibble's top bit is not read
}

TEST(CudaEmulationTest, FunnelShiftIsCudas) {
  EXPECT_EQ(__funnelshift_r(0x89ABCDEFu, 0x01234567u, 0), 0x89ABCDEFu);
  EXPECT_EQ(__funnelshift_r(0x89ABCDEFu, 0x01234567u, 8), 0x6789ABCDu);
  EXPECT_EQ(__funnelshift_r(0x89ABCDEFu, 0x01234567u, 31), 0x02468ACFu);
  EXPECT_EQ(__funnelshift_r(0x89ABCDEFu, 0x01234567u, 40), 0x6789ABCDu);  // the shift wraps mod 32
}

// Between barriers each warp counts its two steps (separated by __syncwarp) on a shared counter.
void CountWarpSteps(int* order) {
  int* next = static_cast<int*>(coset::emu::DynamicShared());
  if (threadIdx.x == 0) *next = 0;
  __syncthreads();
  const unsigned lane = threadIdx.x % 32, warp = threadIdx.x / 32;
  for (unsigned step = 0; step < 2; ++step) {
    __syncwarp();
    if (lane == 0) order[2 * warp + step] = (*next)++;
  }
}

// A warp runs on as soon as its collective resolves, so warp 0 takes both steps before warp 1
// takes its first: warps are not kept in step between barriers (as on a GPU), and a kernel that
// reuses shared memory without __syncthreads while other warps still read it gets wrong results
// here (the tensor-core GEMM's reduction without its second barrier does).
TEST(CudaEmulationTest, AWarpRunsAheadBetweenBarriers) {
  std::vector<int> order(4, -1);
  COSET_LAUNCH(1, 64, sizeof(int), nullptr, CountWarpSteps)(order.data());
  EXPECT_EQ(order, (std::vector<int>{0, 1, 2, 3}));
}

// Each lane of two warps gives three words (its thread index, its square, a word of in) and reads
// every lane of its warp's.
void ExchangeWords(const uint32_t* in, uint32_t* out) {
  const uint32_t t = threadIdx.x, mine[3] = {t, t * t, in[t]};
  uint32_t all[32][3];
  coset::emu::WarpExchange(mine, all, sizeof mine);
  for (int l = 0; l < 32; ++l) {
    for (int w = 0; w < 3; ++w) out[(t * 32 + l) * 3 + w] = all[l][w];
  }
}

TEST(CudaEmulationTest, WarpExchangeGivesEveryLaneTheWarps) {
  std::vector<uint32_t> in(64), out(64 * 32 * 3, 0);
  for (uint32_t i = 0; i < 64; ++i) in[i] = 1000 + 7 * i;
  COSET_LAUNCH(1, 64, 0, nullptr, ExchangeWords)(in.data(), out.data());
  for (uint32_t t = 0; t < 64; ++t) {
    for (uint32_t l = 0; l < 32; ++l) {
      const uint32_t from = t / 32 * 32 + l;
      const uint32_t* got = out.data() + (t * 32 + l) * 3;
      ASSERT_EQ(got[0], from) << t << " " << l;
      ASSERT_EQ(got[1], from * from);
      ASSERT_EQ(got[2], in[from]);
    }
  }
}

// Kernel bugs the emulation stops on, where a GPU would give undefined results.
void ShuffleAfterOddLanesExit(int* out) {
  if (threadIdx.x % 2 == 1) return;
  out[threadIdx.x] = __shfl_sync(0xFFFFFFFFu, 1, 0);
}
void DivergentBarrier() {
  if (threadIdx.x < 16) {
    __syncwarp();
  } else {
    __syncthreads();
  }
}
void ReadOutsideTheMask(int* out) { out[threadIdx.x] = __shfl_sync(0x0000FFFFu | (1u << threadIdx.x), 1, 20); }
void ExchangeOfTwoSizes() {
  uint64_t mine = threadIdx.x, all[32];
  coset::emu::WarpExchange(&mine, all, threadIdx.x == 5 ? 4 : 8);
}

void Nothing() {}

TEST(CudaEmulationDeathTest, StopsOnKernelBugs) {
  std::vector<int> out(32);
  // More dynamic shared memory than a kernel gets without opting in (48 KiB), as a GPU refuses it.
  COSET_LAUNCH(1, 32, 48 << 10, nullptr, Nothing)();
  EXPECT_DEATH(COSET_LAUNCH(1, 32, (48 << 10) + 4, nullptr, Nothing)(), "bytes of shared memory");
  EXPECT_DEATH(COSET_LAUNCH(1, 32, 0, nullptr, ShuffleAfterOddLanesExit)(out.data()), "exited");
  EXPECT_DEATH(COSET_LAUNCH(1, 32, 0, nullptr, DivergentBarrier)(), "deadlock in block 0");
  EXPECT_DEATH(COSET_LAUNCH(1, 32, 0, nullptr, ReadOutsideTheMask)(out.data()), "disagree|does not name");
  EXPECT_DEATH(COSET_LAUNCH(1, 32, 0, nullptr, ExchangeOfTwoSizes)(), "disagree");
}

TEST(CudaEmulationTest, RuntimeAnswersAsCudaDoes) {
  void* p = nullptr;
  EXPECT_EQ(cudaMalloc(&p, size_t{1} << 40), cudaErrorMemoryAllocation);  // beyond the emulated device
  EXPECT_EQ(cudaGetLastError(), cudaErrorMemoryAllocation);
  EXPECT_EQ(cudaGetLastError(), cudaSuccess);  // not sticky
  ASSERT_EQ(cudaMalloc(&p, 1000), cudaSuccess);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(p) % 256, 0u);
  EXPECT_EQ(static_cast<uint8_t*>(p)[999], 0xFF);  // uninitialized memory shows
  cudaPointerAttributes attributes;
  ASSERT_EQ(cudaPointerGetAttributes(&attributes, static_cast<uint8_t*>(p) + 999), cudaSuccess);
  EXPECT_EQ(attributes.type, cudaMemoryTypeDevice);
  std::vector<float> host(1024);
  ASSERT_EQ(cudaPointerGetAttributes(&attributes, host.data()), cudaSuccess);
  EXPECT_EQ(attributes.type, cudaMemoryTypeUnregistered);
  ASSERT_EQ(cudaHostRegister(host.data(), 4096, 0), cudaSuccess);
  ASSERT_EQ(cudaPointerGetAttributes(&attributes, host.data() + 1023), cudaSuccess);
  EXPECT_EQ(attributes.type, cudaMemoryTypeHost);
  EXPECT_EQ(cudaHostUnregister(host.data()), cudaSuccess);
  EXPECT_EQ(cudaFree(p), cudaSuccess);
  EXPECT_EQ(cudaFree(p), cudaErrorInvalidValue);
  cudaGetLastError();
}

}  // namespace
