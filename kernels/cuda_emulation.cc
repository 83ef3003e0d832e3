// The CUDA emulation (cuda_emulation.h): thread blocks as fibers, and the CUDA runtime calls of
// kernels/ on host memory.
#include "kernels/cuda_emulation.h"

#include <cublas_api.h>
#include <sys/mman.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/asan_interface.h>
#include <sanitizer/common_interface_defs.h>
#endif

#if !defined(__x86_64__)
#error "the CUDA emulation's fibers switch stacks with x86-64 code"
#endif

// Saves the callee-saved registers, the SSE and x87 control words and the stack pointer of the
// running fiber at *save_sp, and resumes the fiber whose stack pointer is load_sp (System V
// x86-64). Far cheaper than swapcontext, which makes a system call per switch: a block of 256
// threads switches at every collective of every lane.
extern "C" void coset_emu_switch(void** save_sp, void* load_sp);
// A new fiber's first return address: calls r12(rbx) on the fiber's own stack.
extern "C" void coset_emu_fiber_start();
asm(R"(
  .text
  .globl coset_emu_switch
  .type coset_emu_switch, @function
coset_emu_switch:
  pushq %rbp
  pushq %rbx
  pushq %r12
  pushq %r13
  pushq %r14
  pushq %r15
  subq $8, %rsp
  stmxcsr (%rsp)
  fnstcw 4(%rsp)
  movq %rsp, (%rdi)
  movq %rsi, %rsp
  ldmxcsr (%rsp)
  fldcw 4(%rsp)
  addq $8, %rsp
  popq %r15
  popq %r14
  popq %r13
  popq %r12
  popq %rbx
  popq %rbp
  ret
  .size coset_emu_switch, .-coset_emu_switch

  .globl coset_emu_fiber_start
  .type coset_emu_fiber_start, @function
coset_emu_fiber_start:
  movq %rbx, %rdi
  callq *%r12
  ud2
  .size coset_emu_fiber_start, .-coset_emu_fiber_start
)");

namespace coset {
namespace emu {
namespace {

constexpr int kWarpSize = 32;
constexpr size_t kFiberStackBytes = 256 << 10;  // kernels keep little on the stack; ASan's frames are larger
constexpr size_t kGuardBytes = 4096;            // a stack overflow faults instead of overwriting a neighbour

[[noreturn]] void Fail(const std::string& what) {
  std::fprintf(stderr, "CUDA emulation: %s\n", what.c_str());
  std::fflush(stderr);
  std::abort();
}

// A stack pointer to resume at, and (under ASan) the stack it lies in.
struct Context {
  void* sp = nullptr;
  void* fake_stack = nullptr;
  const void* stack_bottom = nullptr;
  size_t stack_size = 0;
};

void SwitchTo(Context* from, Context* to, bool from_ends) {
#if defined(__SANITIZE_ADDRESS__)
  __sanitizer_start_switch_fiber(from_ends ? nullptr : &from->fake_stack, to->stack_bottom, to->stack_size);
#else
  (void)from_ends;
#endif
  coset_emu_switch(&from->sp, to->sp);
#if defined(__SANITIZE_ADDRESS__)
  // Back in `from`: what it switched from is the scheduler's stack or a fiber's; only the
  // scheduler's bounds are unknown in advance, and the fibers always come back to it.
  __sanitizer_finish_switch_fiber(from->fake_stack, nullptr, nullptr);
#endif
}

struct Lane {
  enum class State { kRunnable, kAtWarpOp, kAtBarrier, kDone };
  Context context;
  State state = State::kRunnable;
  WarpOp op = WarpOp::kSync;
  unsigned int mask = 0;
  uint64_t value = 0, result = 0;
  int arg = 0, width = kWarpSize;
  void* receive = nullptr;  // WarpExchange's: value points at what the lane gives, arg is its size
};

// The launch being run (one at a time: g_launch_mutex) and its current block.
struct Run {
  const std::function<void()>* body = nullptr;
  unsigned int grid = 0, block = 0;
  std::vector<ThreadIndices> indices;  // per thread of the block
  std::vector<Lane> lanes;
  std::vector<uint8_t> shared;  // dynamic shared memory (std::vector's buffer: 16-byte aligned)
  Context scheduler;
  int current = -1;
};

std::mutex g_launch_mutex;
Run* g_run = nullptr;

// Stacks for the fibers, mapped once and reused by every launch.
struct Stacks {
  std::vector<uint8_t*> bases;
  uint8_t* Get(size_t i) {
    while (bases.size() <= i) {
      void* p = mmap(nullptr, kFiberStackBytes + kGuardBytes, PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
      if (p == MAP_FAILED) Fail("cannot map a fiber stack");
      mprotect(p, kGuardBytes, PROT_NONE);
      bases.push_back(static_cast<uint8_t*>(p) + kGuardBytes);
    }
    return bases[i];
  }
};
Stacks g_stacks;

std::string Describe(const Lane& lane, int index) {
  static const char* const kOps[] = {"__shfl_sync",   "__shfl_down_sync", "__shfl_xor_sync",      "__all_sync",
                                     "__ballot_sync", "__syncwarp",       "a warp exchange (MMA)"};
  char line[160];
  switch (lane.state) {
    case Lane::State::kAtWarpOp:
      std::snprintf(line, sizeof line, "thread %d at %s(mask 0x%08x)", index, kOps[static_cast<int>(lane.op)],
                    lane.mask);
      break;
    case Lane::State::kAtBarrier:
      std::snprintf(line, sizeof line, "thread %d at __syncthreads", index);
      break;
    case Lane::State::kDone:
      std::snprintf(line, sizeof line, "thread %d exited", index);
      break;
    case Lane::State::kRunnable:
      std::snprintf(line, sizeof line, "thread %d runnable", index);
      break;
  }
  return line;
}

std::string Where(const Run& run) {
  const ThreadIndices& t = run.indices[static_cast<size_t>(run.current)];
  return "block " + std::to_string(t.block_idx.x) + " of " + std::to_string(run.grid) + ", thread " +
         std::to_string(t.thread_idx.x) + " of " + std::to_string(run.block);
}

void FiberMain(void* arg) {
  Run* run = static_cast<Run*>(arg);
#if defined(__SANITIZE_ADDRESS__)
  __sanitizer_finish_switch_fiber(nullptr, &run->scheduler.stack_bottom, &run->scheduler.stack_size);
#endif
  (*run->body)();
  Lane& me = run->lanes[static_cast<size_t>(run->current)];
  me.state = Lane::State::kDone;
  SwitchTo(&me.context, &run->scheduler, /*from_ends=*/true);
  Fail("an exited thread was resumed");
}

// The stack of a new fiber: what coset_emu_switch pops (control words, r15 .. rbp) and returns to,
// so that it starts in FiberMain(run) with the stack aligned as a call would leave it.
void* NewFiberStack(uint8_t* base, Run* run) {
#if defined(__SANITIZE_ADDRESS__)
  ASAN_UNPOISON_MEMORY_REGION(base, kFiberStackBytes);  // frames of an earlier launch's fibers
#endif
  uint64_t* top = reinterpret_cast<uint64_t*>(base + kFiberStackBytes);  // 16-byte aligned
  uint64_t* sp = top - 8;
  uint32_t mxcsr;
  uint16_t fpu_control;
  asm volatile("stmxcsr %0" : "=m"(mxcsr));
  asm volatile("fnstcw %0" : "=m"(fpu_control));
  sp[0] = mxcsr | static_cast<uint64_t>(fpu_control) << 32;
  sp[1] = 0;                                                   // r15
  sp[2] = 0;                                                   // r14
  sp[3] = 0;                                                   // r13
  sp[4] = reinterpret_cast<uint64_t>(&FiberMain);              // r12: the function
  sp[5] = reinterpret_cast<uint64_t>(run);                     // rbx: its argument
  sp[6] = 0;                                                   // rbp
  sp[7] = reinterpret_cast<uint64_t>(&coset_emu_fiber_start);  // the return address
  return sp;
}

bool InMask(unsigned int mask, int lane) { return (mask >> lane & 1u) != 0; }

// After lane `index` stopped at a warp collective: if every lane its mask names is there too (the
// same collective, the same mask), each gets its result and runs again (returns true).
bool TryResolveWarp(Run& run, int index) {
  const Lane& arrived = run.lanes[static_cast<size_t>(index)];
  const int warp_first = index / kWarpSize * kWarpSize;
  for (int l = 0; l < kWarpSize; ++l) {
    if (!InMask(arrived.mask, l)) continue;
    const int other = warp_first + l;
    if (other >= static_cast<int>(run.lanes.size())) {
      Fail(Where(run) + ": " + Describe(arrived, index) + " names a thread the block does not have");
    }
    const Lane& lane = run.lanes[static_cast<size_t>(other)];
    if (lane.state == Lane::State::kRunnable || lane.state == Lane::State::kAtBarrier) return false;  // not there
    if (lane.state == Lane::State::kDone) {
      Fail(Where(run) + ": " + Describe(arrived, index) + " names thread " + std::to_string(other) +
           ", which has exited");
    }
    if (lane.op != arrived.op || lane.mask != arrived.mask || lane.width != arrived.width ||
        (lane.op == WarpOp::kExchange && lane.arg != arrived.arg)) {
      Fail(Where(run) + ": the threads of one mask disagree: " + Describe(arrived, index) + ", " +
           Describe(lane, other));
    }
  }
  auto value_of = [&](int l, int src) {
    if (!InMask(arrived.mask, src)) {
      Fail(Where(run) + ": lane " + std::to_string(l) + " reads lane " + std::to_string(src) +
           ", which its mask does not name: " + Describe(arrived, index));
    }
    return run.lanes[static_cast<size_t>(warp_first + src)].value;
  };
  uint64_t all = 1, ballot = 0;
  for (int l = 0; l < kWarpSize; ++l) {
    if (!InMask(arrived.mask, l)) continue;
    const bool vote = run.lanes[static_cast<size_t>(warp_first + l)].value != 0;
    all &= vote;
    ballot |= static_cast<uint64_t>(vote) << l;
  }
  for (int l = 0; l < kWarpSize; ++l) {
    if (!InMask(arrived.mask, l)) continue;
    Lane& lane = run.lanes[static_cast<size_t>(warp_first + l)];
    const int width = lane.width, segment = l / width * width;
    switch (lane.op) {
      case WarpOp::kShuffle:
        lane.result = value_of(l, segment + ((lane.arg % width) + width) % width);
        break;
      case WarpOp::kShuffleDown:
        lane.result = l % width + lane.arg < width ? value_of(l, l + lane.arg) : lane.value;
        break;
      case WarpOp::kShuffleXor: {
        const int src = l ^ lane.arg;  // a later group's lane gives the caller its own value
        lane.result = src / width > l / width ? lane.value : value_of(l, src);
        break;
      }
      case WarpOp::kAll:
        lane.result = all;
        break;
      case WarpOp::kBallot:
        lane.result = ballot;
        break;
      case WarpOp::kSync:
        lane.result = 0;
        break;
      case WarpOp::kExchange:
        for (int src = 0; src < kWarpSize; ++src) {
          std::memcpy(static_cast<uint8_t*>(lane.receive) + src * lane.arg,
                      reinterpret_cast<const void*>(value_of(l, src)), static_cast<size_t>(lane.arg));
        }
        lane.result = 0;
        break;
    }
  }
  for (int l = 0; l < kWarpSize; ++l) {
    if (InMask(arrived.mask, l)) run.lanes[static_cast<size_t>(warp_first + l)].state = Lane::State::kRunnable;
  }
  return true;
}

// __syncthreads: released once every thread that has not exited is there.
void TryReleaseBarrier(Run& run) {
  bool any = false;
  for (const Lane& lane : run.lanes) {
    if (lane.state == Lane::State::kRunnable || lane.state == Lane::State::kAtWarpOp) return;
    any |= lane.state == Lane::State::kAtBarrier;
  }
  if (!any) return;
  for (Lane& lane : run.lanes) {
    if (lane.state == Lane::State::kAtBarrier) lane.state = Lane::State::kRunnable;
  }
}

// A thread that exits while a lane of its warp waits for it at a collective: undefined on a GPU.
void CheckExit(Run& run, int index) {
  const int warp_first = index / kWarpSize * kWarpSize;
  for (int l = 0; l < kWarpSize && warp_first + l < static_cast<int>(run.lanes.size()); ++l) {
    const Lane& lane = run.lanes[static_cast<size_t>(warp_first + l)];
    if (lane.state == Lane::State::kAtWarpOp && InMask(lane.mask, index % kWarpSize)) {
      Fail(Where(run) + ": thread " + std::to_string(index) + " exited while " + Describe(lane, warp_first + l) +
           " waits for it");
    }
  }
}

void RunBlock(Run& run, unsigned int block_index) {
  const size_t n = run.block;
  run.lanes.assign(n, Lane());
  run.indices.assign(n, ThreadIndices());
  for (size_t i = 0; i < n; ++i) {
    ThreadIndices& t = run.indices[i];
    t.thread_idx.x = static_cast<unsigned int>(i);
    t.block_idx.x = block_index;
    t.block_dim = Index3{run.block, 1, 1};
    t.grid_dim = Index3{run.grid, 1, 1};
    Context& c = run.lanes[i].context;
    c.stack_bottom = g_stacks.Get(i);
    c.stack_size = kFiberStackBytes;
    c.sp = NewFiberStack(g_stacks.Get(i), &run);
  }
  // Shared memory starts as garbage on a GPU: 0xFF bytes make a read before a write show (NaN
  // floats, out-of-range symbols and T values).
  std::fill(run.shared.begin(), run.shared.end(), uint8_t{0xFF});
  size_t done = 0;
  while (done < n) {
    bool ran = false;
    for (int64_t i = 0; i < static_cast<int64_t>(n); ++i) {
      Lane& lane = run.lanes[static_cast<size_t>(i)];
      if (lane.state != Lane::State::kRunnable) continue;
      ran = true;
      run.current = static_cast<int>(i);
      SwitchTo(&run.scheduler, &lane.context, /*from_ends=*/false);
      switch (lane.state) {
        case Lane::State::kDone:
          ++done;
          CheckExit(run, static_cast<int>(i));
          TryReleaseBarrier(run);
          break;
        case Lane::State::kAtWarpOp:
          // A warp whose collective resolves runs on at once, ahead of the warps after it: on a GPU
          // nothing keeps warps in step between barriers, and a sweep over the threads would (a
          // warp reusing shared memory that others still read, without __syncthreads, would pass).
          if (TryResolveWarp(run, static_cast<int>(i))) i = i / kWarpSize * kWarpSize - 1;
          break;
        case Lane::State::kAtBarrier:
          TryReleaseBarrier(run);
          break;
        case Lane::State::kRunnable:
          Fail("a thread stopped without waiting for anything");
      }
    }
    if (!ran && done < n) {
      std::string states;
      for (size_t i = 0; i < n; ++i) {
        if (run.lanes[i].state != Lane::State::kDone) states += "\n  " + Describe(run.lanes[i], static_cast<int>(i));
      }
      Fail("deadlock in block " + std::to_string(block_index) + ":" + states);
    }
  }
  run.current = -1;
}

// Stops the calling fiber until the scheduler resumes it.
void Wait(Run& run) {
  Lane& me = run.lanes[static_cast<size_t>(run.current)];
  SwitchTo(&me.context, &run.scheduler, /*from_ends=*/false);
}

Run& Running(const char* what) {
  if (g_run == nullptr || g_run->current < 0) Fail(std::string(what) + " called outside a kernel");
  return *g_run;
}

}  // namespace

const ThreadIndices& CurrentThread() {
  Run& run = Running("threadIdx");
  return run.indices[static_cast<size_t>(run.current)];
}

uint64_t WarpCollective(WarpOp op, unsigned int mask, uint64_t value, int arg, int width) {
  Run& run = Running("a warp collective");
  const int lane_index = run.current % kWarpSize;
  if (!InMask(mask, lane_index)) Fail(Where(run) + ": a warp collective whose mask leaves out its caller");
  if (width <= 0 || width > kWarpSize || (width & (width - 1)) != 0) Fail(Where(run) + ": width not a power of 2");
  Lane& me = run.lanes[static_cast<size_t>(run.current)];
  me.state = Lane::State::kAtWarpOp;
  me.op = op;
  me.mask = mask;
  me.value = value;
  me.arg = arg;
  me.width = width;
  Wait(run);
  return me.result;
}

void WarpExchange(const void* mine, void* all, int bytes) {
  Run& run = Running("a warp exchange");
  run.lanes[static_cast<size_t>(run.current)].receive = all;
  WarpCollective(WarpOp::kExchange, 0xFFFFFFFFu, reinterpret_cast<uint64_t>(mine), bytes, kWarpSize);
}

void SyncThreads() {
  Run& run = Running("__syncthreads");
  run.lanes[static_cast<size_t>(run.current)].state = Lane::State::kAtBarrier;
  Wait(run);
}

void* DynamicShared() {
  Run& run = Running("dynamic shared memory");
  return run.shared.data();
}

unsigned int DynamicSharedBytes() { return static_cast<unsigned int>(Running("dynamic shared memory").shared.size()); }

void Launch(unsigned int grid, unsigned int block, size_t shared_bytes, const std::function<void()>& body) {
  if (grid == 0 || block == 0 || block > 1024)
    Fail("launch of " + std::to_string(grid) + " x " + std::to_string(block));
  // A GPU refuses a launch of more than 48 KiB of dynamic shared memory unless the kernel opted in
  // (cudaFuncSetAttribute, which the codec's kernels never call).
  if (shared_bytes > (48u << 10)) Fail("launch asks for " + std::to_string(shared_bytes) + " bytes of shared memory");
  std::lock_guard<std::mutex> lock(g_launch_mutex);
  Run run;
  run.body = &body;
  run.grid = grid;
  run.block = block;
  run.shared.resize(shared_bytes);
  g_run = &run;
  for (unsigned int b = 0; b < grid; ++b) RunBlock(run, b);
  g_run = nullptr;
}

}  // namespace emu
}  // namespace coset

// --- The CUDA runtime calls of kernels/, on host memory -----------------------------------------
// Synchronous: every copy, set and launch has finished when its call returns, so streams and
// events only order what is already ordered. Device memory is host memory from the emulated
// device's budget (kDeviceBytes), filled with 0xFF bytes as cudaMalloc leaves it uninitialized.
namespace {

constexpr size_t kDeviceBytes = size_t{8} << 30;

struct Memory {
  std::mutex mutex;
  std::map<const void*, size_t> device;  // cudaMalloc'd: start -> bytes
  std::map<const void*, size_t> locked;  // cudaHostAlloc'd or registered
  size_t device_in_use = 0;
  cudaError_t last_error = cudaSuccess;
};
Memory& Mem() {
  static Memory* memory = new Memory;  // never destroyed: static destructors may still free
  return *memory;
}

cudaError_t Fails(cudaError_t error) {
  Mem().last_error = error;
  return error;
}

// What an event holds: when it was recorded (work before it has finished by then).
struct Event {
  std::chrono::steady_clock::time_point at = std::chrono::steady_clock::now();
};

bool Within(const std::map<const void*, size_t>& ranges, const void* p) {
  auto it = ranges.upper_bound(p);
  if (it == ranges.begin()) return false;
  --it;
  return static_cast<const uint8_t*>(p) < static_cast<const uint8_t*>(it->first) + it->second;
}

}  // namespace

cudaError_t cudaDriverGetVersion(int* version) {
  *version = CUDART_VERSION;
  return cudaSuccess;
}
cudaError_t cudaRuntimeGetVersion(int* version) {
  *version = CUDART_VERSION;
  return cudaSuccess;
}
cudaError_t cudaGetDeviceCount(int* count) {
  *count = 1;
  return cudaSuccess;
}
cudaError_t cudaSetDevice(int device) { return device == 0 ? cudaSuccess : Fails(cudaErrorInvalidDevice); }
cudaError_t cudaGetDevice(int* device) {
  *device = 0;
  return cudaSuccess;
}
cudaError_t cudaGetDeviceProperties(cudaDeviceProp* prop, int device) {
  if (device != 0) return Fails(cudaErrorInvalidDevice);
  std::memset(prop, 0, sizeof(*prop));
  std::snprintf(prop->name, sizeof(prop->name), "coset CUDA emulation (CPU)");
  prop->major = 9;
  prop->minor = 0;
  prop->totalGlobalMem = kDeviceBytes;
  prop->multiProcessorCount = 1;
  prop->warpSize = 32;
  return cudaSuccess;
}
// One multiprocessor: GridFor's grids of eight blocks, so every grid-stride loop goes round.
cudaError_t cudaDeviceGetAttribute(int* value, cudaDeviceAttr attr, int device) {
  if (device != 0 || attr != cudaDevAttrMultiProcessorCount) return Fails(cudaErrorInvalidValue);
  *value = 1;
  return cudaSuccess;
}
cudaError_t cudaGetLastError() {
  const cudaError_t error = Mem().last_error;
  Mem().last_error = cudaSuccess;
  return error;
}
const char* cudaGetErrorName(cudaError_t error) {
  switch (error) {
    case cudaSuccess:
      return "cudaSuccess";
    case cudaErrorMemoryAllocation:
      return "cudaErrorMemoryAllocation";
    case cudaErrorInvalidValue:
      return "cudaErrorInvalidValue";
    case cudaErrorInvalidDevice:
      return "cudaErrorInvalidDevice";
    default:
      return "cudaError (emulated)";
  }
}
const char* cudaGetErrorString(cudaError_t error) { return cudaGetErrorName(error); }

cudaError_t cudaMalloc(void** p, size_t bytes) {
  Memory& m = Mem();
  std::lock_guard<std::mutex> lock(m.mutex);
  *p = nullptr;
  const size_t rounded = (std::max<size_t>(bytes, 1) + 255) / 256 * 256;
  if (bytes > kDeviceBytes || rounded > kDeviceBytes - m.device_in_use) return Fails(cudaErrorMemoryAllocation);
  void* memory = std::aligned_alloc(256, rounded);  // cudaMalloc's alignment
  if (memory == nullptr) return Fails(cudaErrorMemoryAllocation);
  std::memset(memory, 0xFF, rounded);
  m.device[memory] = rounded;
  m.device_in_use += rounded;
  *p = memory;
  return cudaSuccess;
}
cudaError_t cudaFree(void* p) {
  if (p == nullptr) return cudaSuccess;
  Memory& m = Mem();
  std::lock_guard<std::mutex> lock(m.mutex);
  auto it = m.device.find(p);
  if (it == m.device.end()) return Fails(cudaErrorInvalidValue);
  m.device_in_use -= it->second;
  m.device.erase(it);
  std::free(p);
  return cudaSuccess;
}
cudaError_t cudaHostAlloc(void** p, size_t bytes, unsigned int /*flags*/) {
  Memory& m = Mem();
  std::lock_guard<std::mutex> lock(m.mutex);
  const size_t rounded = (std::max<size_t>(bytes, 1) + 4095) / 4096 * 4096;
  *p = std::aligned_alloc(4096, rounded);
  if (*p == nullptr) return Fails(cudaErrorMemoryAllocation);
  m.locked[*p] = bytes;
  return cudaSuccess;
}
cudaError_t cudaMallocHost(void** p, size_t bytes) { return cudaHostAlloc(p, bytes, cudaHostAllocDefault); }
cudaError_t cudaFreeHost(void* p) {
  Memory& m = Mem();
  std::lock_guard<std::mutex> lock(m.mutex);
  if (m.locked.erase(p) == 0) return Fails(cudaErrorInvalidValue);
  std::free(p);
  return cudaSuccess;
}
cudaError_t cudaHostRegister(void* p, size_t bytes, unsigned int /*flags*/) {
  Memory& m = Mem();
  std::lock_guard<std::mutex> lock(m.mutex);
  if (p == nullptr || bytes == 0 || Within(m.locked, p)) return Fails(cudaErrorInvalidValue);
  m.locked[p] = bytes;
  return cudaSuccess;
}
cudaError_t cudaHostUnregister(void* p) {
  Memory& m = Mem();
  std::lock_guard<std::mutex> lock(m.mutex);
  return m.locked.erase(p) == 1 ? cudaSuccess : Fails(cudaErrorInvalidValue);
}
cudaError_t cudaPointerGetAttributes(cudaPointerAttributes* attributes, const void* p) {
  Memory& m = Mem();
  std::lock_guard<std::mutex> lock(m.mutex);
  std::memset(attributes, 0, sizeof(*attributes));
  attributes->type = Within(m.device, p)   ? cudaMemoryTypeDevice
                     : Within(m.locked, p) ? cudaMemoryTypeHost
                                           : cudaMemoryTypeUnregistered;
  return cudaSuccess;
}
cudaError_t cudaMemcpyAsync(void* dst, const void* src, size_t bytes, cudaMemcpyKind /*kind*/, cudaStream_t) {
  if (bytes != 0) std::memmove(dst, src, bytes);
  return cudaSuccess;
}
cudaError_t cudaMemsetAsync(void* p, int value, size_t bytes, cudaStream_t) {
  if (bytes != 0) std::memset(p, value, bytes);
  return cudaSuccess;
}
cudaError_t cudaStreamCreateWithFlags(cudaStream_t* stream, unsigned int /*flags*/) {
  *stream = reinterpret_cast<cudaStream_t>(new char);  // a distinct handle
  return cudaSuccess;
}
cudaError_t cudaStreamDestroy(cudaStream_t stream) {
  delete reinterpret_cast<char*>(stream);
  return cudaSuccess;
}
cudaError_t cudaStreamSynchronize(cudaStream_t) { return cudaSuccess; }
cudaError_t cudaStreamWaitEvent(cudaStream_t, cudaEvent_t, unsigned int) { return cudaSuccess; }
cudaError_t cudaEventCreateWithFlags(cudaEvent_t* event, unsigned int /*flags*/) {
  *event = reinterpret_cast<cudaEvent_t>(new Event);
  return cudaSuccess;
}
cudaError_t cudaEventCreate(cudaEvent_t* event) { return cudaEventCreateWithFlags(event, 0); }
cudaError_t cudaEventDestroy(cudaEvent_t event) {
  delete reinterpret_cast<Event*>(event);
  return cudaSuccess;
}
cudaError_t cudaEventRecord(cudaEvent_t event, cudaStream_t) {
  reinterpret_cast<Event*>(event)->at = std::chrono::steady_clock::now();
  return cudaSuccess;
}
// The host time between the records: the emulation's, which says nothing of a GPU's.
cudaError_t cudaEventElapsedTime(float* ms, cudaEvent_t start, cudaEvent_t end) {
  *ms =
      std::chrono::duration<float, std::milli>(reinterpret_cast<Event*>(end)->at - reinterpret_cast<Event*>(start)->at)
          .count();
  return cudaSuccess;
}
cudaError_t cudaEventSynchronize(cudaEvent_t) { return cudaSuccess; }

// --- cuBLAS's entry points that kernels/cublas.cc binds, on the CPU -------------------------------
// GemmEx for float32 and bfloat16 operands with float32 accumulation (the codec's decode-then-cuBLAS
// GEMM and its tests), summed in double over k in order: within float rounding of cuBLAS.
namespace {

float LoadElement(const void* p, cudaDataType type, int64_t i) {
  if (type == CUDA_R_32F) return static_cast<const float*>(p)[i];
  const uint32_t bits = static_cast<uint32_t>(static_cast<const uint16_t*>(p)[i]) << 16;
  float value;
  std::memcpy(&value, &bits, 4);
  return value;
}

void StoreElement(float value, cudaDataType type, void* p, int64_t i) {
  if (type == CUDA_R_32F) {
    static_cast<float*>(p)[i] = value;
    return;
  }
  uint32_t bits;
  std::memcpy(&bits, &value, 4);
  if (std::isnan(value)) {
    bits = 0x7FC00000u;
  } else {
    bits += 0x7FFFu + (bits >> 16 & 1u);  // round to nearest, ties to even
  }
  static_cast<uint16_t*>(p)[i] = static_cast<uint16_t>(bits >> 16);
}

}  // namespace

cublasStatus_t cublasCreate_v2(cublasHandle_t* handle) {
  *handle = reinterpret_cast<cublasHandle_t>(new char);
  return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasDestroy_v2(cublasHandle_t handle) {
  delete reinterpret_cast<char*>(handle);
  return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasSetStream_v2(cublasHandle_t, cudaStream_t) { return CUBLAS_STATUS_SUCCESS; }
cublasStatus_t cublasGemmEx(cublasHandle_t, cublasOperation_t transa, cublasOperation_t transb, int m, int n, int k,
                            const void* alpha, const void* a, cudaDataType a_type, int lda, const void* b,
                            cudaDataType b_type, int ldb, const void* beta, void* c, cudaDataType c_type, int ldc,
                            cublasComputeType_t compute, cublasGemmAlgo_t) {
  for (cudaDataType type : {a_type, b_type, c_type}) {
    if (type != CUDA_R_32F && type != CUDA_R_16BF) return CUBLAS_STATUS_NOT_SUPPORTED;
  }
  if (compute != CUBLAS_COMPUTE_32F || (transa != CUBLAS_OP_N && transa != CUBLAS_OP_T) ||
      (transb != CUBLAS_OP_N && transb != CUBLAS_OP_T)) {
    return CUBLAS_STATUS_NOT_SUPPORTED;
  }
  if (m < 0 || n < 0 || k < 0) return CUBLAS_STATUS_INVALID_VALUE;
  const float scale = *static_cast<const float*>(alpha), keep = *static_cast<const float*>(beta);
  for (int64_t j = 0; j < n; ++j) {
    for (int64_t i = 0; i < m; ++i) {
      double sum = 0.0;
      for (int64_t l = 0; l < k; ++l) {
        const float x = LoadElement(a, a_type, transa == CUBLAS_OP_N ? i + l * lda : l + i * lda);
        const float y = LoadElement(b, b_type, transb == CUBLAS_OP_N ? l + j * ldb : j + l * ldb);
        sum += static_cast<double>(x) * y;
      }
      float value = scale * static_cast<float>(sum);
      if (keep != 0.0f) value += keep * LoadElement(c, c_type, i + j * ldc);
      StoreElement(value, c_type, c, i + j * ldc);
    }
  }
  return CUBLAS_STATUS_SUCCESS;
}
