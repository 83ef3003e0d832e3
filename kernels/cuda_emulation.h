// The CUDA kernels on the CPU, for tests on machines without a GPU (CI): cuda_codec.cu compiled as
// C++ with COSET_CUDA_EMULATION (kernels/BUILD, the *_emulated targets) includes this header
// instead of nvcc's device headers, and cuda_emulation.cc defines the CUDA runtime calls the
// codec makes. A launch runs synchronously: each thread block in turn, its threads as fibers on the
// calling thread, switched only where CUDA synchronizes them (__syncthreads, the warp collectives),
// so the kernels' own index arithmetic, shuffles, masks and shared-memory staging run as written.
// A warp whose collective resolves runs on at once, ahead of the others, as nothing keeps warps in
// step between barriers on a GPU either: a warp that reuses shared memory other warps still read,
// without a __syncthreads between, makes them read its new values. Warp-wide instructions (the
// MMA) have C++ stand-ins that gather the warp's registers (WarpExchange) and follow PTX's layout.
//
// What it checks that the host run of the device steps (device_codec_host.h) does not: the
// kernels' loops, the lanes' and warps' shares of the work, every collective's mask (a lane that
// names a lane which has exited or waits at another collective stops the process with a message,
// where a GPU would be undefined), reads of shared memory nobody wrote (filled with 0xFF bytes: NaN
// floats, large indices), launches of more dynamic shared memory than a kernel gets without
// opting in (48 KiB), and, under the test suite's UBSan, the alignment of every wide load and
// store. What it does not: timing, the memory model (there is no concurrency between threads or
// streams: copies and kernels run in call order, so a missing event wait goes unseen), PTX
// (the asm and intrinsics have C++ stand-ins here), and device memory apart from the host's.
#pragma once

#if !defined(COSET_CUDA_EMULATION)
#error "kernels/cuda_emulation.h is for the COSET_CUDA_EMULATION build of the CUDA sources"
#endif

#include <cuda_runtime_api.h>
#include <vector_functions.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <functional>
#include <tuple>
#include <type_traits>

// After the CUDA headers, which read it: the device branches of core/chunk_math.h and
// kernels/device_codec.h (wide loads, __byte_perm) are the code under test.
#define __CUDA_ARCH__ 900
// A kernel's register budget means nothing here (the CUDA headers define it for nvcc only).
#define __launch_bounds__(...)

namespace coset {
namespace emu {

struct Index3 {
  unsigned int x = 0, y = 0, z = 0;
};

// The calling fiber's thread: its indices and its launch's dimensions.
struct ThreadIndices {
  Index3 thread_idx, block_idx, block_dim, grid_dim;
};
const ThreadIndices& CurrentThread();

// The warp collectives, by kind; value and the result hold up to 8 bytes.
enum class WarpOp { kShuffle, kShuffleDown, kShuffleXor, kAll, kBallot, kSync, kExchange };
uint64_t WarpCollective(WarpOp op, unsigned int mask, uint64_t value, int arg, int width);

// A collective of the whole warp for the emulation of warp-wide instructions (an MMA): each lane
// gives `bytes` bytes at mine and receives every lane's, lane by lane, at all (32 x bytes). One
// rendezvous, where shuffles would take one per word.
void WarpExchange(const void* mine, void* all, int bytes);
void SyncThreads();

// The launch's dynamic shared memory (filled with 0xFF bytes before each block) and its size.
void* DynamicShared();
unsigned int DynamicSharedBytes();

// Runs body once per thread of grid x block threads, block after block (see above); aborts with a
// message on a deadlock or a collective whose lanes disagree. Serialized across host threads.
void Launch(unsigned int grid, unsigned int block, size_t shared_bytes, const std::function<void()>& body);

// COSET_LAUNCH's stand-in for kernel<<<grid, block, shared, stream>>>(args...): the arguments are
// converted to the kernel's parameter types once, and each thread's call copies them, as a GPU's
// threads each see the launch's parameters.
template <typename... Params>
class Launcher {
 public:
  Launcher(unsigned int grid, unsigned int block, size_t shared_bytes, void (*kernel)(Params...))
      : grid_(grid), block_(block), shared_bytes_(shared_bytes), kernel_(kernel) {}
  template <typename... Args>
  void operator()(Args&&... args) const {
    const std::tuple<std::decay_t<Params>...> params(std::forward<Args>(args)...);
    Launch(grid_, block_, shared_bytes_, [&] { std::apply(kernel_, params); });
  }

 private:
  unsigned int grid_, block_;
  size_t shared_bytes_;
  void (*kernel_)(Params...);
};

template <typename T>
uint64_t ToWord(T value) {
  static_assert(sizeof(T) <= 8 && std::is_trivially_copyable<T>::value, "a register value");
  uint64_t word = 0;
  std::memcpy(&word, &value, sizeof(T));
  return word;
}

template <typename T>
T FromWord(uint64_t word) {
  T value;
  std::memcpy(&value, &word, sizeof(T));
  return value;
}

}  // namespace emu
}  // namespace coset

#define threadIdx (::coset::emu::CurrentThread().thread_idx)
#define blockIdx (::coset::emu::CurrentThread().block_idx)
#define blockDim (::coset::emu::CurrentThread().block_dim)
#define gridDim (::coset::emu::CurrentThread().grid_dim)

template <typename T>
T __shfl_sync(unsigned int mask, T value, int src_lane, int width = 32) {
  return coset::emu::FromWord<T>(
      coset::emu::WarpCollective(coset::emu::WarpOp::kShuffle, mask, coset::emu::ToWord(value), src_lane, width));
}
template <typename T>
T __shfl_down_sync(unsigned int mask, T value, unsigned int delta, int width = 32) {
  return coset::emu::FromWord<T>(coset::emu::WarpCollective(coset::emu::WarpOp::kShuffleDown, mask,
                                                            coset::emu::ToWord(value), static_cast<int>(delta), width));
}
template <typename T>
T __shfl_xor_sync(unsigned int mask, T value, int lane_mask, int width = 32) {
  return coset::emu::FromWord<T>(
      coset::emu::WarpCollective(coset::emu::WarpOp::kShuffleXor, mask, coset::emu::ToWord(value), lane_mask, width));
}
inline int __all_sync(unsigned int mask, int predicate) {
  return static_cast<int>(coset::emu::WarpCollective(coset::emu::WarpOp::kAll, mask, predicate != 0, 0, 32));
}
inline unsigned int __ballot_sync(unsigned int mask, int predicate) {
  return static_cast<unsigned int>(
      coset::emu::WarpCollective(coset::emu::WarpOp::kBallot, mask, predicate != 0, 0, 32));
}
inline int __popc(unsigned int x) { return __builtin_popcount(x); }
inline void __syncwarp(unsigned int mask = 0xFFFFFFFFu) {
  coset::emu::WarpCollective(coset::emu::WarpOp::kSync, mask, 0, 0, 32);
}
inline void __syncthreads() { coset::emu::SyncThreads(); }

// No concurrency between fibers: a plain add is atomic here.
template <typename T>
T atomicAdd(T* address, T value) {
  const T old = *address;
  *address = old + value;
  return old;
}

// CUDA's integer max of device code.
inline unsigned int max(unsigned int a, unsigned int b) { return a > b ? a : b; }
inline int max(int a, int b) { return a > b ? a : b; }

inline float __uint_as_float(unsigned int bits) { return coset::emu::FromWord<float>(bits); }
inline float __fmaf_rn(float a, float b, float c) { return std::fma(a, b, c); }
// result byte i = byte (selector >> 4 i) & 7 of the eight bytes {y, x}, x the low word (libdevice's
// __nv_byte_perm: the selector nibbles' top bits are not read).
inline unsigned int __byte_perm(unsigned int x, unsigned int y, unsigned int selector) {
  const uint64_t bytes = static_cast<uint64_t>(y) << 32 | x;
  unsigned int result = 0;
  for (int i = 0; i < 4; ++i) {
    const unsigned int index = selector >> (4 * i) & 7u;
    result |= (static_cast<unsigned int>(bytes >> (8 * index)) & 0xFFu) << (8 * i);
  }
  return result;
}
// The low word of {hi, lo} >> (shift mod 32) (CUDA's wrapping funnel shift).
inline unsigned int __funnelshift_r(unsigned int lo, unsigned int hi, unsigned int shift) {
  return static_cast<unsigned int>((static_cast<uint64_t>(hi) << 32 | lo) >> (shift & 31u));
}

// Two blocks of any kernel at a time on the emulation's one multiprocessor, so that the kernels
// sized by it (ResidentGridFor) loop grid-stride too.
template <typename... Params>
cudaError_t cudaOccupancyMaxActiveBlocksPerMultiprocessor(int* blocks, void (*)(Params...), int, size_t) {
  *blocks = 2;
  return cudaSuccess;
}

// kernel<<<grid, block, shared, stream>>>(args...), spelled so that both builds read it.
#define COSET_LAUNCH(grid, block, shared, stream, ...) \
  (static_cast<void>(stream), ::coset::emu::Launcher(grid, block, shared, __VA_ARGS__))
