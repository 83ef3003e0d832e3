// The codec's CUDA kernels: maps of device_codec.h's steps onto threads, so the per-block and
// per-chunk work is the code the CPU tests run. Sixteen lanes per (row, block) for the block
// scales (each one of BlockRms's partial sums, in the CPU's order: the sum's order is part of the
// format); a lane per chunk for the T ladder (a step at a time) and for decoding; a warp per weight
// row for GEMM on codes. Kernels loop grid-stride over their items (GridFor), so that a block's
// staging of the codebook table in shared memory (StageTable) serves many of them.
#if defined(COSET_CUDA_EMULATION)
#include "kernels/cuda_emulation.h"  // first: the CPU's stand-ins for CUDA's device side (tests)
#endif
#include "kernels/cuda_codec.h"

#if !defined(COSET_CUDA_EMULATION)
#define COSET_LAUNCH(grid, block, shared, stream, ...) __VA_ARGS__<<<grid, block, shared, stream>>>
#endif

namespace coset {
namespace device {
namespace {

constexpr int kThreads = 256;
constexpr int kWarp = 32;
// Shared memory a kernel may take without opting in: the codebook table is staged there when it fits
// (D4 q=4: 4 KiB), else read from global memory (E8 q=4: 2 MiB, served by L2).
constexpr int64_t kMaxStagedTableBytes = 48 << 10;

// Thread blocks for `items` work items in a grid-stride loop: enough to fill the device several
// times over, few enough that each block's staging of the codebook table is paid for by many items.
unsigned int GridFor(int64_t items, int items_per_block = kThreads) {
  int device = 0, sms = 132;
  if (cudaGetDevice(&device) == cudaSuccess) cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, device);
  const int64_t wanted = (items + items_per_block - 1) / items_per_block;
  const int64_t cap = int64_t{sms} * 8;
  return static_cast<unsigned int>(wanted < cap ? wanted : cap);
}

// Thread blocks of warps_per_block warps for a kernel with an item per warp (`items`) whose blocks
// take much shared memory: no more than the device holds at once, so that no second, partial wave
// of them leaves most of it idle while it runs (the kernel loops grid-stride over the rest).
template <typename Kernel>
unsigned int ResidentGridFor(Kernel kernel, int64_t items, int warps_per_block, size_t shared) {
  int resident = 0;
  if (cudaOccupancyMaxActiveBlocksPerMultiprocessor(&resident, kernel, warps_per_block * kWarp, shared) !=
          cudaSuccess ||
      resident < 1) {
    resident = 1;
  }
  int device = 0, sms = 132;
  if (cudaGetDevice(&device) == cudaSuccess) cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, device);
  const int64_t wanted = (items + warps_per_block - 1) / warps_per_block;
  const int64_t cap = int64_t{sms} * resident;
  return static_cast<unsigned int>(wanted < cap ? wanted : cap);
}

// Whether a run path may read or write the codes at t and symbols with its wide accesses (RunCodes:
// a run's T bytes with one 32-bit access, its symbols with one of up to 16 bytes). Rows of whole
// runs keep every run on those boundaries when the buffers start on them, as cudaMalloc's do.
bool RunBuffersAligned(const void* t, const void* symbols) {
  return reinterpret_cast<uintptr_t>(t) % 4 == 0 && reinterpret_cast<uintptr_t>(symbols) % 16 == 0;
}

// Shared-memory bytes for a kernel that stages a table of `entries` 4-byte values (0: not staged).
size_t StagedBytes(int64_t entries) {
  const int64_t bytes = 4 * entries;
  return bytes <= kMaxStagedTableBytes ? static_cast<size_t>(bytes) : 0;
}

// The launch's dynamic shared memory, 16-byte aligned (the run path's wide loads), and its size.
__device__ uint32_t* DynamicShared() {
#if defined(COSET_CUDA_EMULATION)
  return static_cast<uint32_t*>(emu::DynamicShared());
#else
  extern __shared__ __align__(16) uint32_t dynamic_shared[];
  return dynamic_shared;
#endif
}

__device__ unsigned int DynamicSharedBytes() {
#if defined(COSET_CUDA_EMULATION)
  return emu::DynamicSharedBytes();
#else
  unsigned int bytes = 0;
  asm("mov.u32 %0, %%dynamic_smem_size;" : "=r"(bytes));
  return bytes;
#endif
}

// The codebook table `table` (entries 4-byte values) copied into this block's shared memory, at
// word offset_words, when the launch gave it room, else `table` itself: the table every later read
// goes to. Every thread of the block must call it (it synchronizes the block).
template <typename T>
__device__ const T* StageTable(const T* table, int64_t entries, int64_t offset_words = 0) {
  if (static_cast<int64_t>(DynamicSharedBytes()) < 4 * (offset_words + entries)) return table;
  T* staged = reinterpret_cast<T*>(DynamicShared() + offset_words);
  for (int64_t i = threadIdx.x; i < entries; i += blockDim.x) staged[i] = table[i];
  __syncthreads();
  return staged;
}

// The packed paths' table (PackedApplies) in shared memory, replicated 32 times: entry s of lane
// l's copy at word 32 s + l, so that every lane reads its own bank. table(s) reads the calling
// lane's copy. Every thread of the block must call it (it synchronizes the block); the launch
// gives it PackedReplicaBytes of shared memory.
struct PackedReplica {
  const uint32_t* lane_copy;
  __device__ uint32_t operator()(uint32_t symbol) const { return lane_copy[symbol * kWarp]; }
};

COSET_HD int64_t PackedReplicaWords(const DeviceCodec& c) { return CodebookTableEntries(c) / 4 * kWarp; }

size_t PackedReplicaBytes(const DeviceCodec& c) {
  return static_cast<size_t>(4 * PackedReplicaWords(c));  // 32 KiB at most (256 symbols)
}

__device__ PackedReplica StagePackedTable(const DeviceCodec& c) {
  uint32_t* replicas = DynamicShared();
  for (int64_t i = threadIdx.x; i < PackedReplicaWords(c); i += blockDim.x) replicas[i] = c.packed_points[i / kWarp];
  __syncthreads();
  return PackedReplica{replicas + threadIdx.x % kWarp};
}

// Sixteen lanes per (row, block), so that the block's reads are coalesced: lane 0 pads and rotates
// the block when the codec needs it (BlockInput), the lanes check and sum their strided parts of
// it (BlockScaleLanes), lane 0 stores the scale.
constexpr int kBlockLanes = kRmsParts;

// The raw scale of the block v[0, n) (BlockRms or BlockAbsMax; 0 without scales) into *raw, taken
// by the kBlockLanes lanes of `mask` (lane: the caller's place among them), each checking and
// summing its strided part of v: for rms one of BlockRms's partial sums in the CPU's order (the
// sum's order is part of the format), for absmax an integer max (exact in any order). Returns
// false, in every lane, when an entry is NaN or Inf. Every lane of mask must call it.
__device__ bool BlockScaleLanes(const DeviceCodec& c, const float* v, int64_t n, int lane, unsigned mask, float* raw) {
  bool finite = true;
  for (int64_t k = lane; k < n; k += kBlockLanes) finite &= !IsNonFiniteBits(v[k]);
  if (!__all_sync(mask, finite)) return false;
  *raw = 0.0f;
  if (c.scale == kScaleRms) {
    const double part = BlockRmsPart(v, n, lane);
    double parts[kRmsParts];
    for (int k = 0; k < kRmsParts; ++k) parts[k] = __shfl_sync(mask, part, k, kBlockLanes);
    *raw = BlockRmsFromParts(parts, n);
  } else if (c.scale == kScaleAbsMax) {
    uint32_t m = 0;
    for (int64_t k = lane; k < n; k += kBlockLanes) m = max(m, AbsBits(v[k]));
    for (int offset = kBlockLanes / 2; offset > 0; offset /= 2) m = max(m, __shfl_xor_sync(mask, m, offset));
    *raw = BitsToFloat(m);
  }
  return true;
}

// The lanes of this thread's group of kBlockLanes in its warp, as a mask.
__device__ unsigned BlockLanesMask() { return 0xFFFFu << (threadIdx.x % kWarp / kBlockLanes * kBlockLanes); }

__global__ void PrepareBlocksKernel(DeviceCodec c, BlockSlice slice, const float* x, float* work, float* base,
                                    uint16_t* scales, EncodeCounters* counters) {
  const int lane = static_cast<int>(threadIdx.x % kBlockLanes);
  const unsigned mask = BlockLanesMask();
  const int64_t step = static_cast<int64_t>(gridDim.x) * (blockDim.x / kBlockLanes);
  for (int64_t i =
           slice.begin + static_cast<int64_t>(blockIdx.x) * (blockDim.x / kBlockLanes) + threadIdx.x / kBlockLanes;
       i < slice.end; i += step) {
    const int64_t r = DivIndex(i, c.blocks_per_row), b = i - r * c.blocks_per_row;
    const int64_t n = BlockEnd(c, b) - b * c.block;
    float* work_row = work == nullptr ? nullptr : work + r * c.padded_cols;
    const float* v = ReadsInPlace(c) ? x + r * c.cols + b * c.block : work_row + b * c.block;
    if (!ReadsInPlace(c)) {
      if (lane == 0) BlockInput(c, x + r * c.cols, b, work_row);
      __syncwarp(mask);
    }
    float raw = 0.0f;
    const bool finite = BlockScaleLanes(c, v, n, lane, mask, &raw);
    if (lane != 0) continue;
    if (!finite) {
      // The codes are dropped (the CPU codec reports the input). A base step of 0 sends the
      // block's chunks down the zero-block path, not up the ladder on whatever the scratch held.
      atomicAdd(&counters->refused_blocks, 1u);
      base[r * c.blocks_per_row + b] = 0.0f;
      continue;
    }
    base[r * c.blocks_per_row + b] =
        StoreBlockScale(c, raw, b, scales == nullptr ? nullptr : scales + r * c.blocks_per_row);
  }
}

// A lane's counts of chunks with T > 0 and capped chunks into the encode's counters: one atomic per
// warp for the whole loop (a third of the chunks overload, all on one counter). Every lane calls it.
__device__ void CountEncode(unsigned long long over, unsigned long long capped, EncodeCounters* counters) {
  for (int offset = kWarp / 2; offset > 0; offset /= 2) {
    over += __shfl_down_sync(0xFFFFFFFFu, over, offset);
    capped += __shfl_down_sync(0xFFFFFFFFu, capped, offset);
  }
  if (threadIdx.x % kWarp == 0) {
    if (over != 0) atomicAdd(&counters->first_try_overloads, over);
    if (capped != 0) atomicAdd(&counters->capped, capped);
  }
}

// Each lane walks the T ladders of its chunks one step per iteration and moves on to its next
// chunk as soon as one ends, so that a chunk that climbs the ladder does not hold the other lanes of
// its warp (a third of the chunks overload at T = 0; run chunk by chunk, every warp would take as
// many steps as its worst lane). The steps and their order per chunk are EncodeChunkAt's.
template <int kDim, typename SymbolT>
__global__ void EncodeChunksKernel(DeviceCodec c, BlockSlice slice, const float* x, const float* work,
                                   const float* base, uint8_t* t, uint8_t* symbols, EncodeCounters* counters) {
  c.codebook.rep_coords = StageTable(c.codebook.rep_coords, CodebookTableEntries(c));
  const IndexRange chunks = SliceChunks(c, slice);
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  unsigned long long over = 0, capped = 0;
  float chunk_x[kDim > 0 ? kDim : kMaxLatticeDim];
  float chunk_base = 0.0f;
  int64_t chunk = 0;
  SymbolT* s = nullptr;
  uint8_t* t_row = nullptr;
  int step = 0;
  for (int64_t i = chunks.begin + static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x, next = i;
       i < chunks.end;) {
    if (next == i) {  // a new chunk: its place, base step and values
      const int64_t r = DivIndex(i, c.chunks_per_row);
      chunk = i - r * c.chunks_per_row;
      chunk_base = base[r * c.blocks_per_row + BlockOfChunk(c, chunk)];
      s = reinterpret_cast<SymbolT*>(symbols + RowSymbolsOffsetBytes(c, r)) + chunk * c.symbols_per_chunk;
      t_row = t + r * c.chunks_per_row;
      const float* row = ReadsInPlace(c) ? x + r * c.cols : work + r * c.padded_cols;
      if (chunk_base != 0.0f) LoadChunk<kDim>(row + chunk * c.dim, c.dim, chunk_x);
      step = 0;
      next = i + stride;
    }
    const bool overloads = chunk_base != 0.0f && EncodeChunkStep<kDim>(c, chunk_x, chunk_base, step, s);
    if (overloads && step < c.t_max) {
      ++step;
      continue;
    }
    const int t_chunk = FinishChunk(c, chunk, chunk_base == 0.0f, overloads ? -1 : step, s, t_row);
    over += t_chunk != 0;
    capped += t_chunk < 0;
    i = next;
  }
  CountEncode(over, capped, counters);
}

// The run path's encode (RunsApply): EncodeChunksKernel's lane-by-lane ladders over runs of
// kRunChunks chunks of one block: a run's block base is read once, its chunks' values one chunk at
// a time as the lane reaches them, and its T bytes and symbols are gathered in registers
// (RunCodes) and stored with one 32-bit and one 8- or 16-byte store when its last chunk ends. The
// steps and their order per chunk are EncodeRunAt's.
template <class Kernel, int kDim, typename SymbolT>
__global__ void EncodeRunsKernel(DeviceCodec c, BlockSlice slice, const float* x, const float* work, const float* base,
                                 uint8_t* t, uint8_t* symbols, EncodeCounters* counters) {
  c.codebook.rep_coords = StageTable(c.codebook.rep_coords, CodebookTableEntries(c));
  const IndexRange chunks = SliceChunks(c, slice);  // whole blocks: whole runs
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  unsigned long long over = 0, capped = 0;
  float chunk_x[kDim];
  float run_base = 0.0f;
  const float* row = nullptr;
  int64_t first = 0;
  SymbolT* symbols_row = nullptr;
  uint8_t* t_row = nullptr;
  RunCodes<SymbolT> codes;  // every run's kRunChunks chunks shift the last run's out
  int k = 0, step = 0;
  for (int64_t i = chunks.begin / kRunChunks + static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x, next = i;
       i < chunks.end / kRunChunks;) {
    if (next == i) {  // a new run: its place, base step and first chunk's values
      const int64_t r = DivIndex(i * kRunChunks, c.chunks_per_row);
      first = i * kRunChunks - r * c.chunks_per_row;
      run_base = base[r * c.blocks_per_row + BlockOfChunk(c, first)];
      symbols_row = reinterpret_cast<SymbolT*>(symbols + RowSymbolsOffsetBytes(c, r));
      t_row = t + r * c.chunks_per_row;
      row = ReadsInPlace(c) ? x + r * c.cols : work + r * c.padded_cols;
      if (run_base != 0.0f) LoadChunk<kDim>(row + first * kDim, kDim, chunk_x);
      k = 0;
      step = 0;
      next = i + stride;
    }
    SymbolT s[kRunLevels * kDim] = {};  // room for Z^n's symbol per coordinate: compiled, never taken
    const bool overloads = run_base != 0.0f && EncodeRunStep<Kernel, kDim>(c, chunk_x, run_base, step, s);
    if (overloads && step < c.t_max) {
      ++step;
      continue;
    }
    const int t_chunk = FinishRunChunk(c, run_base == 0.0f, overloads ? -1 : step, s, &codes);
    over += t_chunk != 0;
    capped += t_chunk < 0;
    if (++k < kRunChunks) {  // the run's next chunk
      step = 0;
      if (run_base != 0.0f) LoadChunk<kDim>(row + (first + k) * kDim, kDim, chunk_x);
      continue;
    }
    codes.Store(first, t_row, symbols_row);
    i = next;
  }
  CountEncode(over, capped, counters);
}

// The single-pass encode (TilesApply: the run path's codecs, read in place): x is read from memory
// once, where PrepareBlocksKernel and an encode kernel after it read it twice. A warp per tile of
// whole blocks (TileBlocks, up to kTileEntries entries) copies the tile into its shared memory,
// four entries per lane and load, widened to float32 (LoadFourAsFloats: any input dtype); its two
// half-warps take the tile's block scales from there (BlockScaleLanes, a block each at a time);
// then its lanes take one step of the T ladder for every chunk of the tile, and step after step
// for the chunks that still overload, which a warp-wide ballot packs into a list the lanes share
// out anew each step (AppendPending), so that no lane waits on another's ladder for more than a
// step. The steps and their order per chunk are EncodeRunAt's.
constexpr int kTileMaxBlocks = 16;
constexpr int kTileWarps = 4;

// A warp's tile in shared memory: its entries, its blocks' base steps and its list of chunks still
// climbing (chunk | block << kTileBlockShift, both counted from the tile's first).
struct TileShared {
  float x[kTileEntries];
  float base[kTileMaxBlocks];
  uint16_t pending[kTileEntries / 4];  // a chunk has at least four entries
};
constexpr int kTileBlockShift = 9;  // kTileEntries / 4 chunks at most
static_assert(kTileEntries / 4 <= (1 << kTileBlockShift) && kTileMaxBlocks << kTileBlockShift <= 0x10000,
              "a list entry fits 16 bits");
static_assert(sizeof(TileShared) % 16 == 0, "each warp's tile starts on a 16-byte boundary");

COSET_HD int64_t TileBlocks(const DeviceCodec& c) {
  const int64_t fit = kTileEntries / c.block;
  return fit < kTileMaxBlocks ? fit : kTileMaxBlocks;
}

// Shared memory of a launch of EncodeTilesKernel: the warps' tiles, then the codebook table where
// both fit in the 48 KiB a launch may take without opting in (D4 q=4's 4 KiB does).
size_t TileSharedBytes(const DeviceCodec& c) {
  const int64_t tiles = kTileWarps * static_cast<int64_t>(sizeof(TileShared));
  const int64_t table = 4 * CodebookTableEntries(c);
  return static_cast<size_t>(tiles + table <= kMaxStagedTableBytes ? tiles + table : tiles);
}

// One step of chunk `chunk` of a tile (block `block` of the tile, chunk first + chunk of the
// tensor's rows * chunks_per_row) at ramp step t. Returns true when it overloads below t_max (it
// then takes step t + 1 later); else finishes it (FinishChunk: T and symbols stored, counted into
// over and capped).
template <class Kernel, int kDim, typename SymbolT>
__device__ bool TileChunkStep(const DeviceCodec& c, const TileShared& tile, int chunk, int block, int t, int64_t first,
                              uint8_t* t_all, uint8_t* symbols, unsigned long long* over, unsigned long long* capped) {
  const float base = tile.base[block];
  SymbolT s[kRunLevels * kDim] = {};  // room for Z^n's symbol per coordinate: compiled, never taken
  bool overloads = false;
  if (base != 0.0f) {
    float x[kDim];
    LoadAlignedChunk<kDim>(tile.x + chunk * kDim, x);
    overloads = EncodeRunStep<Kernel, kDim>(c, x, base, t, s);
  }
  if (overloads && t < c.t_max) return true;
  const int64_t g = first + chunk;
  const int t_chunk = FinishChunk<kRunLevels>(c, g, base == 0.0f, overloads ? -1 : t, s, t_all);
  // The two symbols with one store, level 0 first (the rows' little-endian order).
  using Pair = std::conditional_t<sizeof(SymbolT) == 1, uint16_t, uint32_t>;
  static_assert(kRunLevels == 2, "a pair of symbols per chunk");
  *reinterpret_cast<Pair*>(symbols + g * sizeof(Pair)) =
      static_cast<Pair>(s[0] | static_cast<uint32_t>(s[1]) << (8 * sizeof(SymbolT)));
  *over += t_chunk != 0;
  *capped += t_chunk < 0;
  return false;
}

// Appends `entry` to the tile's list at count (the entries of the lanes before this one first)
// where `again`; returns the list's new size. Every lane of the warp must call it.
__device__ int AppendPending(TileShared& tile, bool again, uint16_t entry, int count) {
  const unsigned votes = __ballot_sync(0xFFFFFFFFu, again);
  const unsigned before = votes & ((1u << (threadIdx.x % kWarp)) - 1u);
  if (again) tile.pending[count + __popc(before)] = entry;
  return count + __popc(votes);
}

template <class Kernel, int kDim, typename SymbolT>
__global__ void __launch_bounds__(kTileWarps* kWarp)
    EncodeTilesKernel(DeviceCodec c, BlockSlice slice, const void* x, uint8_t dtype, uint16_t* scales, uint8_t* t,
                      uint8_t* symbols, EncodeCounters* counters) {
  const int warp = static_cast<int>(threadIdx.x / kWarp), lane = static_cast<int>(threadIdx.x % kWarp);
  TileShared& tile = reinterpret_cast<TileShared*>(DynamicShared())[warp];
  c.codebook.rep_coords = StageTable(c.codebook.rep_coords, CodebookTableEntries(c),
                                     kTileWarps * static_cast<int64_t>(sizeof(TileShared)) / 4);
  const int64_t tile_blocks = TileBlocks(c);
  const int64_t tiles = (slice.end - slice.begin + tile_blocks - 1) / tile_blocks;
  // Where every block is whole (no short last block in a row), chunk k of a tile is in its block
  // k / chunks_per_block.
  const bool whole_blocks = c.padded_cols == c.blocks_per_row * c.block;
  unsigned long long over = 0, capped = 0;
  for (int64_t k = static_cast<int64_t>(blockIdx.x) * kTileWarps + warp; k < tiles;
       k += static_cast<int64_t>(gridDim.x) * kTileWarps) {
    const int64_t end = slice.begin + (k + 1) * tile_blocks;
    const BlockSlice items{slice.begin + k * tile_blocks, end < slice.end ? end : slice.end};
    const IndexRange entries = SliceEntries(c, items), chunks = SliceChunks(c, items);
    // The tile's entries, four per lane and load (entries.begin is a multiple of d), as float32.
    for (int64_t i = 4 * lane; i < entries.size(); i += 4 * kWarp) {
      float four[4];
      LoadFourAsFloats(x, dtype, entries.begin + i, four);
      StoreChunk<4>(four, 4, tile.x + i);
    }
    __syncwarp();
    // Its block scales, a block per half-warp at a time.
    const int half = lane / kBlockLanes;
    for (int64_t j = half; j < items.end - items.begin; j += kWarp / kBlockLanes) {
      const int64_t item = items.begin + j;
      const int64_t r = DivIndex(item, c.blocks_per_row), b = item - r * c.blocks_per_row;
      float raw = 0.0f;
      const bool finite = BlockScaleLanes(c, tile.x + (FirstEntryOfBlockItem(c, item) - entries.begin),
                                          BlockEnd(c, b) - b * c.block, lane % kBlockLanes, BlockLanesMask(), &raw);
      if (lane % kBlockLanes != 0) continue;
      if (!finite) atomicAdd(&counters->refused_blocks, 1u);
      tile.base[j] =
          finite ? StoreBlockScale(c, raw, b, scales == nullptr ? nullptr : scales + r * c.blocks_per_row) : 0.0f;
    }
    __syncwarp();
    // Step 0 of every chunk, then step t of those still climbing.
    int pending = 0;
    for (int64_t from = 0; from < chunks.size(); from += kWarp) {
      const int chunk = static_cast<int>(from) + lane;
      bool again = false;
      int block = 0;
      if (chunk < chunks.size()) {
        const int64_t g = chunks.begin + chunk, r = whole_blocks ? 0 : DivIndex(g, c.chunks_per_row);
        block = static_cast<int>(whole_blocks
                                     ? BlockOfChunk(c, chunk)
                                     : r * c.blocks_per_row + BlockOfChunk(c, g - r * c.chunks_per_row) - items.begin);
        again =
            TileChunkStep<Kernel, kDim, SymbolT>(c, tile, chunk, block, 0, chunks.begin, t, symbols, &over, &capped);
      }
      pending = AppendPending(tile, again, static_cast<uint16_t>(chunk | block << kTileBlockShift), pending);
    }
    for (int step = 1; pending > 0; ++step) {
      __syncwarp();  // the list is written before it is read
      int next = 0;  // and rewritten in place: an entry goes no later than the one it came from
      for (int from = 0; from < pending; from += kWarp) {
        const int e = from + lane;
        const uint16_t entry = e < pending ? tile.pending[e] : 0;
        __syncwarp();  // every lane has read its entry before any is overwritten
        const bool again = e < pending && TileChunkStep<Kernel, kDim, SymbolT>(
                                              c, tile, entry & ((1 << kTileBlockShift) - 1), entry >> kTileBlockShift,
                                              step, chunks.begin, t, symbols, &over, &capped);
        next = AppendPending(tile, again, entry, next);
      }
      pending = next;
    }
    __syncwarp();  // the tile's entries are read before the next tile's overwrite them
  }
  CountEncode(over, capped, counters);
}

template <int kDim, typename SymbolT>
__global__ void DecodeChunksKernel(DeviceCodec c, BlockSlice slice, const uint16_t* scales, const uint8_t* t,
                                   const uint8_t* symbols, float* work, float* out) {
  c.codebook.rep_point = StageTable(c.codebook.rep_point, CodebookTableEntries(c));
  const IndexRange chunks = SliceChunks(c, slice);
  for (int64_t i = chunks.begin + static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < chunks.end;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t r = DivIndex(i, c.chunks_per_row), chunk = i - r * c.chunks_per_row;
    float* row = ReadsInPlace(c) ? out + r * c.cols : work + r * c.padded_cols;
    DecodeChunkAt<kDim>(c, scales == nullptr ? nullptr : scales + r * c.blocks_per_row, t + r * c.chunks_per_row,
                        reinterpret_cast<const SymbolT*>(symbols + RowSymbolsOffsetBytes(c, r)), chunk, row);
  }
}

// Where the run and packed decodes write row r: the caller's rows, of dtype, when ReadsInPlace;
// else the float32 work rows that FinishBlocksKernel then turns into them.
struct DecodedRow {
  void* row;
  uint8_t dtype;
};
__device__ DecodedRow DecodedRowAt(const DeviceCodec& c, float* work, void* out, uint8_t dtype, int64_t r) {
  if (!ReadsInPlace(c)) return {work + r * c.padded_cols, kDTypeFloat32};
  return {static_cast<uint8_t*>(out) + ElementBytes(dtype) * r * c.cols, dtype};
}

// The run decode's float32 stores through shared memory (kRunTileWords words per block): a lane's
// run is 64 or 128 contiguous bytes, so a warp storing its lanes' runs in place touches 32 lines
// per 16-byte store (a wavefront each); its 32 runs are contiguous in the output, so through a
// tile the warp stores them in 16-byte pieces at consecutive addresses (512 bytes, 4 wavefronts,
// a store). A lane's run in the tile is padded by 16 bytes: the lanes' 16-byte writes start 4
// banks apart, and the pieces' reads 4 words apart per run, so neither conflicts beyond its 4
// passes.
template <int kDim>
constexpr int kRunTileStride = (kRunChunks * kDim) + 4;  // words per lane

template <int kDim>
constexpr int64_t kRunTileWords = int64_t{kThreads} * kRunTileStride<kDim>;

// The run path's decode (RunsApply): a thread per run of kRunChunks chunks (DecodeRunValues: one
// load of their T bytes, one of their symbols, the block base once), grid-stride, a warp's runs
// consecutive. Float32 rows on 16-byte boundaries (the work rows, or the caller's read in place)
// take the warp's stores through its tile in shared memory (kRunTileStride); typed rows, each
// lane's own stores (DecodeRunAt).
template <int kDim, typename SymbolT>
__global__ void DecodeRunsKernel(DeviceCodec c, BlockSlice slice, const uint16_t* scales, const uint8_t* t,
                                 const uint8_t* symbols, float* work, void* out, uint8_t dtype) {
  c.codebook.rep_point = StageTable(c.codebook.rep_point, CodebookTableEntries(c), kRunTileWords<kDim>);
  const IndexRange chunks = SliceChunks(c, slice);  // whole blocks: whole runs
  const int64_t runs_per_row = c.chunks_per_row / kRunChunks, end = chunks.end / kRunChunks;
  constexpr int kRunFloats = kRunChunks * kDim, kStride = kRunTileStride<kDim>;
  // Where the rows are float32 (DecodedRowAt's), run i's floats at floats + i kRunFloats: rows of
  // whole runs, one after another (the work rows are padded_cols apart, rows read in place cols,
  // both whole runs of floats).
  const DecodedRow first_row = DecodedRowAt(c, work, out, dtype, 0);
  float* const floats = first_row.dtype == kDTypeFloat32 ? static_cast<float*>(first_row.row) : nullptr;
  const bool tiled = floats != nullptr && reinterpret_cast<uintptr_t>(floats) % 16 == 0;
  const int lane = static_cast<int>(threadIdx.x % kWarp);
  float* const tile = reinterpret_cast<float*>(DynamicShared()) + (threadIdx.x - lane) * kStride;
  for (int64_t warp_first =
           chunks.begin / kRunChunks + static_cast<int64_t>(blockIdx.x) * blockDim.x + (threadIdx.x - lane);
       warp_first < end; warp_first += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t i = warp_first + lane;
    if (i < end) {
      const int64_t r = DivIndex(i, runs_per_row);
      const uint16_t* scales_row = scales == nullptr ? nullptr : scales + r * c.blocks_per_row;
      const auto* symbols_row = reinterpret_cast<const SymbolT*>(symbols + RowSymbolsOffsetBytes(c, r));
      if (tiled) {
        float v[kRunFloats];
        DecodeRunValues<kDim>(c, scales_row, t + r * c.chunks_per_row, symbols_row, i - r * runs_per_row, v);
        StoreChunk<kRunFloats>(v, kRunFloats, tile + lane * kStride);
      } else {
        const DecodedRow row = DecodedRowAt(c, work, out, dtype, r);
        DecodeRunAt<kDim>(c, scales_row, t + r * c.chunks_per_row, symbols_row, i - r * runs_per_row, row.row,
                          row.dtype);
      }
    }
    if (tiled) {  // the same on every lane of the grid
      __syncwarp();
      const int64_t runs = end - warp_first < kWarp ? end - warp_first : kWarp;
      for (int piece = lane; piece < runs * (kRunFloats / 4); piece += kWarp) {
        const int run = piece / (kRunFloats / 4), at = piece % (kRunFloats / 4);
        float four[4];
        LoadChunk<4>(tile + run * kStride + 4 * at, 4, four);
        StoreChunk<4>(four, 4, floats + warp_first * kRunFloats + 4 * piece);
      }
      __syncwarp();  // the tile is read before the next runs overwrite it
    }
  }
}

// The packed decode (PackedApplies): a thread per chunk, grid-stride (consecutive lanes write
// consecutive chunks), each chunk's point from the replicated packed table (DecodePackedChunkAt).
__global__ void DecodePackedKernel(DeviceCodec c, BlockSlice slice, const uint16_t* scales, const uint8_t* t,
                                   const uint8_t* symbols, float* work, void* out, uint8_t dtype) {
  const PackedReplica table = StagePackedTable(c);
  const IndexRange chunks = SliceChunks(c, slice);
  for (int64_t i = chunks.begin + static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < chunks.end;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t r = DivIndex(i, c.chunks_per_row);
    const DecodedRow row = DecodedRowAt(c, work, out, dtype, r);
    DecodePackedChunkAt(c, table, scales == nullptr ? nullptr : scales + r * c.blocks_per_row, t + r * c.chunks_per_row,
                        symbols + RowSymbolsOffsetBytes(c, r), i - r * c.chunks_per_row, row.row, row.dtype);
  }
}

__global__ void FinishBlocksKernel(DeviceCodec c, BlockSlice slice, float* work, float* out) {
  for (int64_t i = slice.begin + static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < slice.end;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t r = DivIndex(i, c.blocks_per_row), b = i - r * c.blocks_per_row;
    FinishDecodedBlock(c, work + r * c.padded_cols, b, out + r * c.cols);
  }
}

__global__ void PrepareQueriesKernel(DeviceCodec c, const float* queries, int64_t batch, float* padded) {
  const int64_t items = batch * c.blocks_per_row;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < items;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t q = i / c.blocks_per_row, b = i % c.blocks_per_row;
    PadAndRotateBlock(c, queries + q * c.cols, b, padded + q * c.padded_cols);
  }
}

// A warp per (weight row, kQueries queries), rows in a grid-stride loop: each lane decodes every
// 32nd chunk of the row in registers and dots it with the queries; the lanes' sums meet by shuffles.
template <int kDim, int kQueries, typename SymbolT>
__global__ void GemmKernel(DeviceCodec c, const uint16_t* scales, const uint8_t* t, const uint8_t* symbols,
                           const float* padded, int64_t batch, float* out) {
  c.codebook.rep_point = StageTable(c.codebook.rep_point, CodebookTableEntries(c));
  const int lane = static_cast<int>(threadIdx.x % kWarp);
  const int64_t warps = static_cast<int64_t>(gridDim.x) * (blockDim.x / kWarp);
  const int64_t groups = (batch + kQueries - 1) / kQueries;
  for (int64_t item = static_cast<int64_t>(blockIdx.x) * (blockDim.x / kWarp) + threadIdx.x / kWarp;
       item < c.rows * groups; item += warps) {
    const int64_t n = item % c.rows, first = item / c.rows * kQueries;
    const int queries = static_cast<int>(batch - first < kQueries ? batch - first : kQueries);
    const uint16_t* scales_row = scales == nullptr ? nullptr : scales + n * c.blocks_per_row;
    const uint8_t* t_row = t + n * c.chunks_per_row;
    const SymbolT* symbols_row = reinterpret_cast<const SymbolT*>(symbols + RowSymbolsOffsetBytes(c, n));
    const float* queries_first = padded + first * c.padded_cols;
    float acc[kQueries] = {};
    // A GEMV unrolls so that the loads of several chunks are in flight at once (it is latency-bound);
    // with more queries the unrolled loop's registers would halve the warps an SM holds (measured).
#pragma unroll(kQueries == 1 ? 4 : 1)
    for (int64_t chunk = lane; chunk < c.chunks_per_row; chunk += kWarp) {
      AccumulateChunkDots<kDim, kQueries>(c, scales_row, t_row, symbols_row, chunk, queries_first, queries, acc);
    }
    for (int q = 0; q < kQueries; ++q) {
      for (int offset = kWarp / 2; offset > 0; offset /= 2) acc[q] += __shfl_down_sync(0xFFFFFFFFu, acc[q], offset);
    }
    for (int q = 0; q < kQueries; ++q) {
      if (lane == 0 && q < queries) out[(first + q) * c.rows + n] = acc[q];
    }
  }
}

// The grid-stride loop of the GEMM kernels that give a warp kRows weight rows and kQueries
// queries: consecutive warps take consecutive row groups of the same queries, which stay in L1.
// For each item, sums(first_row, queries_first, queries, acc) adds this lane's part of the item's
// dot products into acc (zeroed); the lanes' sums then meet by shuffles (the tree WarpTreeSum
// mirrors on the host) and lane 0 stores the rows and queries that exist.
template <int kQueries, int kRows, class Sums>
__device__ void ForEachWarpItem(const DeviceCodec& c, const float* padded, int64_t batch, float* out, Sums&& sums) {
  const int lane = static_cast<int>(threadIdx.x % kWarp);
  const int64_t warps = static_cast<int64_t>(gridDim.x) * (blockDim.x / kWarp);
  const int64_t row_groups = (c.rows + kRows - 1) / kRows;
  const int64_t items = row_groups * ((batch + kQueries - 1) / kQueries);
  for (int64_t item = static_cast<int64_t>(blockIdx.x) * (blockDim.x / kWarp) + threadIdx.x / kWarp; item < items;
       item += warps) {
    const int64_t first_row = item % row_groups * kRows, first = item / row_groups * kQueries;
    const int queries = static_cast<int>(batch - first < kQueries ? batch - first : kQueries);
    float acc[kRows][kQueries] = {};
    sums(first_row, padded + first * c.padded_cols, queries, acc);
    for (int r = 0; r < kRows; ++r) {
      for (int q = 0; q < kQueries; ++q) {
        for (int offset = kWarp / 2; offset > 0; offset /= 2)
          acc[r][q] += __shfl_down_sync(0xFFFFFFFFu, acc[r][q], offset);
      }
    }
    if (lane == 0) {
      for (int r = 0; r < kRows; ++r) {
        for (int q = 0; q < kQueries; ++q) {
          if (first_row + r < c.rows && q < queries) out[(first + q) * c.rows + first_row + r] = acc[r][q];
        }
      }
    }
  }
}

// The half-point table in shared memory (the launch gives it StagedBytes(kHalfPointEntries)):
// table(o) reads the word at byte offset o, a shared-memory load at a 32-bit address (a generic
// load at a 64-bit one would take the address arithmetic of the generic pointer per lookup). Every
// thread of the block must call StageHalfTable (it synchronizes the block).
struct HalfTableInShared {
  __device__ uint32_t operator()(uint32_t offset) const {
    return *reinterpret_cast<const uint32_t*>(reinterpret_cast<const char*>(DynamicShared()) + offset);
  }
};

__device__ HalfTableInShared StageHalfTable(const uint32_t* table) {
  uint32_t* staged = DynamicShared();
  for (int i = threadIdx.x; i < kHalfPointEntries; i += blockDim.x) staged[i] = table[i];
  __syncthreads();
  return HalfTableInShared();
}

// The run path (RunsApply): a warp per (kRows weight rows, kQueries queries) (ForEachWarpItem);
// lane l takes runs l, l + 32, ... of every row of its group (AccumulateRunDots: one 32-bit load
// of a run's T, one 8- or 16-byte load of its symbols, and the rows' loads independent of each
// other, so that several are in flight per lane). kHalves (HalvesApply, given HalfPointCodes: d = 8,
// 16-bit symbols): each chunk's codebook rows from the half-point table staged in shared memory
// (4 KiB) instead of the codebook table (2 MiB for E8 q=4: L2), read through the run's half-point
// indices (one 16-byte and one 4-byte load) instead of its symbols (AccumulateHalfRunDots: the same
// floats, so the same sums).
template <int kDim, int kQueries, int kRows, typename SymbolT, bool kHalves>
__global__ void GemmRunsKernel(DeviceCodec c, const uint16_t* scales, const uint8_t* t, const uint8_t* symbols,
                               HalfPointCodes halves, const float* padded, int64_t batch, float* out) {
  [[maybe_unused]] HalfTableInShared half_table;
  if constexpr (kHalves) {
    half_table = StageHalfTable(halves.table);
  } else {
    c.codebook.rep_point = StageTable(c.codebook.rep_point, CodebookTableEntries(c));
  }
  const int lane = static_cast<int>(threadIdx.x % kWarp);
  const int64_t runs = c.chunks_per_row / kRunChunks;
  ForEachWarpItem<kQueries, kRows>(
      c, padded, batch, out,
      [&](int64_t first_row, const float* queries_first, int queries, float(&acc)[kRows][kQueries]) {
        for (int64_t run = lane; run < runs; run += kWarp) {
#pragma unroll
          for (int r = 0; r < kRows; ++r) {
            // A short last group repeats its last row (results dropped): no branch per run.
            const int64_t n = first_row + r < c.rows ? first_row + r : c.rows - 1;
            const uint16_t* scales_row = scales == nullptr ? nullptr : scales + n * c.blocks_per_row;
            if constexpr (kHalves) {
              AccumulateHalfRunDots<kQueries>(c, half_table, halves.bias, scales_row, t + n * c.chunks_per_row,
                                              halves.head + n * runs * kHalfIndexHeadWords, halves.tail + n * runs, run,
                                              queries_first, queries, acc[r]);
            } else {
              AccumulateRunDots<kDim, kQueries>(c, scales_row, t + n * c.chunks_per_row,
                                                reinterpret_cast<const SymbolT*>(symbols + RowSymbolsOffsetBytes(c, n)),
                                                run, queries_first, queries, acc[r]);
            }
          }
        }
      });
}

// The packed GEMM (CompactOverloadsApply: D4's default code, T in two bits): a warp per (kRows
// weight rows, kQueries queries) (ForEachWarpItem); lane l takes chunks l, l + 32, ... of every
// row of its group (AccumulateCompactChunkDots, the table replicated in shared memory:
// StagePackedTable), so that a warp's query, T and symbol loads are each one coalesced stretch, the
// query chunks loaded once for the group's rows; then escapes l, l + 32, ... of each row
// (AccumulatePackedEscapeDots: the chunks whose T is 3 or more, ~2 % of them). The chunk loop is
// unrolled so that several chunks' loads are in flight; not with 16 queries, whose chunks' query
// values would take the registers (GemmKernel's measured lesson).
template <int kQueries, int kRows>
__global__ void __launch_bounds__(kThreads, 2)
    GemmPackedKernel(DeviceCodec c, const uint16_t* scales, CompactOverloads compact, const uint8_t* symbols,
                     const float* padded, int64_t batch, float* out) {
  const PackedReplica table = StagePackedTable(c);
  const int lane = static_cast<int>(threadIdx.x % kWarp);
  const int64_t words_per_row = CompactWordsPerRow(c);
  ForEachWarpItem<kQueries, kRows>(
      c, padded, batch, out,
      [&](int64_t first_row, const float* queries_first, int queries, float(&acc)[kRows][kQueries]) {
        // A short last group repeats its last row (results dropped): no branch per chunk.
        auto row = [&](int r) { return first_row + r < c.rows ? first_row + r : c.rows - 1; };
        auto scales_row = [&](int64_t n) { return scales == nullptr ? nullptr : scales + n * c.blocks_per_row; };
#pragma unroll(kQueries == kMaxDotQueries ? 1 : 4)
        for (int64_t chunk = lane; chunk < c.chunks_per_row; chunk += kWarp) {
          const int64_t block = BlockOfChunk(c, chunk);
          float x[4 * kQueries];
#pragma unroll
          for (int j = 0; j < kQueries; ++j) {
            if (j == 0 || j < queries) LoadAlignedChunk<4>(queries_first + j * c.padded_cols + 4 * chunk, x + 4 * j);
          }
#pragma unroll
          for (int r = 0; r < kRows; ++r) {
            const int64_t n = row(r);
            AccumulateCompactChunkDots<kQueries>(c, table, scales_row(n), compact.words + n * words_per_row,
                                                 symbols + RowSymbolsOffsetBytes(c, n), chunk, block, x, queries,
                                                 acc[r]);
          }
        }
        for (int r = 0; r < kRows; ++r) {
          const int64_t n = row(r);
#pragma unroll 1
          for (uint32_t e = compact.escape_begin[n] + lane; e < compact.escape_begin[n + 1]; e += kWarp) {
            AccumulatePackedEscapeDots<kQueries>(c, table, scales_row(n), symbols + RowSymbolsOffsetBytes(c, n),
                                                 compact.escapes[e], queries_first, queries, acc[r]);
          }
        }
      });
}

// d += a b, one warp-wide MMA of shape m16n8k16 (bf16 operands, float32 sums): a holds rows of a
// 16 x 16 matrix A, b columns of a 16 x 8 matrix B, d a 16 x 8 tile of results, in PTX's fragment
// layout: lane l = 4 g + p holds A[g][2p, 2p + 1] (a[0]), A[g + 8][2p, 2p + 1] (a[1]), A[g][2p + 8,
// 2p + 9] (a[2]), A[g + 8][2p + 8, 2p + 9] (a[3]); B[2p, 2p + 1][g] (b[0]), B[2p + 8, 2p + 9][g]
// (b[1]); D[g][2p, 2p + 1] (d[0], d[1]), D[g + 8][2p, 2p + 1] (d[2], d[3]); a register's lower k
// in its low half. Every lane of the warp must call it. The emulation gathers the warp's registers
// (emu::WarpExchange) and sums each lane's row and column in k order (the hardware's order is its
// own: results agree to float rounding, not bit for bit).
__device__ void MmaBf16(float* d, const uint32_t* a, const uint32_t* b) {
#if defined(COSET_CUDA_EMULATION)
  const int lane = static_cast<int>(threadIdx.x % kWarp), g = lane / 4, p = lane % 4;
  uint32_t mine[6] = {a[0], a[1], a[2], a[3], b[0], b[1]}, all[kWarp][6];
  emu::WarpExchange(mine, all, sizeof mine);
  // A's rows g and g + 8 and B's columns 2p and 2p + 1, by k: lane 4 r + s holds k = 2 s, 2 s + 1
  // and 2 s + 8, 2 s + 9 of A's row r (+ 8) and of B's column r.
  auto half = [](uint32_t word, int i) { return Bf16ToFloat(static_cast<uint16_t>(word >> (16 * i))); };
  float rows[2][16], cols[2][16];
  for (int s = 0; s < 4; ++s) {
    for (int i = 0; i < 2; ++i) {
      for (int h = 0; h < 2; ++h) {
        rows[h][2 * s + i] = half(all[4 * g + s][h], i);
        rows[h][2 * s + 8 + i] = half(all[4 * g + s][2 + h], i);
        cols[h][2 * s + i] = half(all[4 * (2 * p + h) + s][4], i);
        cols[h][2 * s + 8 + i] = half(all[4 * (2 * p + h) + s][5], i);
      }
    }
  }
  for (int e = 0; e < 4; ++e) {
    float sum = 0.0f;
    for (int k = 0; k < 16; ++k) sum += rows[e / 2][k] * cols[e % 2][k];  // bf16 products: exact
    d[e] += sum;
  }
#else
  asm volatile(
      "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, "
      "{%0, %1, %2, %3};"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
#endif
}

// The tensor-core kernel's quads (kTensorStepQuads) of D4's packed codes (TensorCoresApply): a
// quad is a chunk. A lane's row state for its four chunks of a step: one 8-byte load of their
// symbols, one 4-byte load of their T, their block's base step.
struct PackedQuads {
  struct Row {
    uint32_t codes[2], t_bytes;
    float base;
  };
  PackedReplica table;

  COSET_HD static int64_t TableWords(const DeviceCodec& c) { return PackedReplicaWords(c); }
  // Every thread of the block must call it (it synchronizes the block).
  __device__ static PackedQuads Stage(const DeviceCodec& c, const HalfPointCodes& /*halves*/) {
    return PackedQuads{StagePackedTable(c)};
  }
  __device__ Row Load(const DeviceCodec& c, const uint16_t* scales_row, const uint8_t* t, const uint8_t* symbols,
                      const HalfPointCodes& /*halves*/, int64_t n, int64_t first_quad) const {
    Row row;
    LoadWords<2>(symbols + RowSymbolsOffsetBytes(c, n) + 2 * first_quad, row.codes);
    LoadWords<1>(t + n * c.chunks_per_row + first_quad, &row.t_bytes);
    row.base = BlockBaseAt(c, scales_row, BlockOfChunk(c, first_quad));
    return row;
  }
  __device__ void Decode(const DeviceCodec& c, const Row& row, int j, float* w) const {
    DecodePackedQuadChunk(c, table, row.codes, row.t_bytes, row.base, j, w);
  }
};

// The quads of half points (HalvesTensorCoresApply: E8 and D8 at q = 4, given HalfPointCodes): a
// quad is half a chunk, a lane's four quads of a step the halves of two chunks of a run (a pair).
// Its row state: the run's index words (one 16-byte and one 4-byte load, as the run path's GEMV
// reads them) shifted to the pair's (PairHalfIndexWords), the run's T word shifted likewise, the
// block's base step.
struct HalfQuads {
  struct Row {
    uint32_t words[kHalfIndexWordsPerRun], t_bytes;
    float base;
  };
  HalfTableInShared table;
  float bytes_offset;

  COSET_HD static int64_t TableWords(const DeviceCodec& /*c*/) { return kHalfPointEntries; }
  __device__ static HalfQuads Stage(const DeviceCodec& c, const HalfPointCodes& halves) {
    return HalfQuads{StageHalfTable(halves.table), HalfPointBytesOffset(c, halves.bias)};
  }
  __device__ Row Load(const DeviceCodec& c, const uint16_t* scales_row, const uint8_t* t, const uint8_t* /*symbols*/,
                      const HalfPointCodes& halves, int64_t n, int64_t first_quad) const {
    const int64_t first = first_quad / 2, runs = c.chunks_per_row / kRunChunks, run = first / kRunChunks;
    const int pair = static_cast<int>(first / 2 % 2);
    uint32_t run_words[kHalfIndexWordsPerRun], run_t;
    LoadWords<kHalfIndexHeadWords>(halves.head + (n * runs + run) * kHalfIndexHeadWords, run_words);
    LoadWords<1>(halves.tail + n * runs + run, run_words + kHalfIndexHeadWords);
    LoadWords<1>(t + n * c.chunks_per_row + run * kRunChunks, &run_t);
    Row row;
    PairHalfIndexWords(run_words, pair, row.words);
    row.t_bytes = run_t >> (16 * pair);
    row.base = BlockBaseAt(c, scales_row, BlockOfChunk(c, first));
    return row;
  }
  __device__ void Decode(const DeviceCodec& c, const Row& row, int j, float* w) const {
    DecodeHalfQuad(c, table, bytes_offset, row.words, row.t_bytes, row.base, j, w);
  }
};

// The tensor-core GEMM (TensorCoresServe, batches of more than 4 queries) on Quads (PackedQuads,
// HalfQuads): a thread block per (kRowTiles x 16 weight rows, kQueryTiles x 8 queries),
// grid-stride over those items. Its warps split the rows' steps of kTensorStepQuads quads (warp w
// takes steps w, w + 8, ...); in a step, lane 4 g + p takes quads 4 p .. 4 p + 3 of the step in
// rows g and g + 8 of each row tile (Quads::Load, then Quads::Decode per quad) and of queries g of
// each query tile: four 16-byte loads of each query. Quad j of the four is MMA j's k = 16, its four
// values in the A registers' k = 2p, 2p + 1 (a[0], a[1]) and 2p + 8, 2p + 9 (a[2], a[3]), and the
// query's in B's (a sum over k does not care which k is which, so long as A and B agree). Each
// (row tile, query tile, quad) takes six MMAs, one per kept limb product (ChunkLimbWords); the
// warps' sums meet in shared memory (after the Quads' table) in warp order, so the results do
// not depend on timing.
template <class Quads, int kRowTiles, int kQueryTiles>
__global__ void __launch_bounds__(kThreads, 2)
    GemmTensorCoresKernel(DeviceCodec c, const uint16_t* scales, const uint8_t* t, const uint8_t* symbols,
                          HalfPointCodes halves, const float* padded, int64_t batch, float* out) {
  const Quads quads = Quads::Stage(c, halves);
  constexpr int kPartials = kRowTiles * kQueryTiles * 4 * kWarp;  // one warp's sums, float by float
  float* partials = reinterpret_cast<float*>(DynamicShared() + Quads::TableWords(c));
  const int lane = static_cast<int>(threadIdx.x % kWarp), warp = static_cast<int>(threadIdx.x / kWarp);
  const int warps = static_cast<int>(blockDim.x / kWarp), g = lane / 4, p = lane % 4;
  constexpr int kRows = 16 * kRowTiles, kQueries = 8 * kQueryTiles;
  const int64_t row_groups = (c.rows + kRows - 1) / kRows;
  const int64_t items = row_groups * ((batch + kQueries - 1) / kQueries);
  const int64_t quads_per_row = c.padded_cols / 4, steps = quads_per_row / kTensorStepQuads;
  for (int64_t item = blockIdx.x; item < items; item += gridDim.x) {
    const int64_t first_row = item % row_groups * kRows, first_query = item / row_groups * kQueries;
    // This lane's rows (g and g + 8 of each tile) and queries (g of each tile); a short group
    // repeats its last row or query (results dropped).
    int64_t rows[2 * kRowTiles], queries[kQueryTiles];
    for (int i = 0; i < 2 * kRowTiles; ++i) {
      const int64_t n = first_row + 8 * i + g;
      rows[i] = n < c.rows ? n : c.rows - 1;
    }
    for (int i = 0; i < kQueryTiles; ++i) {
      const int64_t q = first_query + 8 * i + g;
      queries[i] = q < batch ? q : batch - 1;
    }
    float acc[kRowTiles][kQueryTiles][4] = {};
    for (int64_t step = warp; step < steps; step += warps) {
      const int64_t first = step * kTensorStepQuads + 4 * p;  // this lane's first quad
      typename Quads::Row row_codes[2 * kRowTiles];
#pragma unroll
      for (int i = 0; i < 2 * kRowTiles; ++i) {
        const uint16_t* scales_row = scales == nullptr ? nullptr : scales + rows[i] * c.blocks_per_row;
        row_codes[i] = quads.Load(c, scales_row, t, symbols, halves, rows[i], first);
      }
#pragma unroll
      for (int j = 0; j < 4; ++j) {
        uint32_t b[kQueryTiles][3][2];
#pragma unroll
        for (int i = 0; i < kQueryTiles; ++i) {
          float x[4];
          LoadAlignedChunk<4>(padded + queries[i] * c.padded_cols + 4 * (first + j), x);
          ChunkLimbWords(x, b[i]);
        }
#pragma unroll
        for (int r = 0; r < kRowTiles; ++r) {
          float w[2][4];
          uint32_t words[2][3][2];
          for (int h = 0; h < 2; ++h) {
            quads.Decode(c, row_codes[2 * r + h], j, w[h]);
            ChunkLimbWords(w[h], words[h]);
          }
          uint32_t a[3][4];
          for (int l = 0; l < 3; ++l) {
            a[l][0] = words[0][l][0], a[l][1] = words[1][l][0], a[l][2] = words[0][l][1], a[l][3] = words[1][l][1];
          }
#pragma unroll
          for (int i = 0; i < kQueryTiles; ++i) {
            // The smaller products first: they reach the sum before the large ones round it.
            MmaBf16(acc[r][i], a[2], b[i][0]);
            MmaBf16(acc[r][i], a[0], b[i][2]);
            MmaBf16(acc[r][i], a[1], b[i][1]);
            MmaBf16(acc[r][i], a[1], b[i][0]);
            MmaBf16(acc[r][i], a[0], b[i][1]);
            MmaBf16(acc[r][i], a[0], b[i][0]);
          }
        }
      }
    }
    float* mine = partials + warp * kPartials;
    for (int r = 0; r < kRowTiles; ++r) {
      for (int i = 0; i < kQueryTiles; ++i) {
        for (int e = 0; e < 4; ++e) mine[((r * kQueryTiles + i) * 4 + e) * kWarp + lane] = acc[r][i][e];
      }
    }
    __syncthreads();
    for (int k = static_cast<int>(threadIdx.x); k < kPartials; k += static_cast<int>(blockDim.x)) {
      float sum = 0.0f;
      for (int w = 0; w < warps; ++w) sum += partials[w * kPartials + k];
      // k = ((r kQueryTiles + i) 4 + e) 32 + lane: d[e] of that lane's tile (r, i) (MmaBf16's layout).
      const int from = k % kWarp, e = k / kWarp % 4, tile = k / kWarp / 4;
      const int64_t n = first_row + 16 * (tile / kQueryTiles) + 8 * (e / 2) + from / 4;
      const int64_t q = first_query + 8 * (tile % kQueryTiles) + 2 * (from % 4) + e % 2;
      if (n < c.rows && q < batch) out[q * c.rows + n] = sum;
    }
    __syncthreads();  // the partials are the next item's
  }
}

// A thread per chunk of the sum (AddChunkCodes), grid-stride; the codebook's basis coordinates in
// shared memory when they fit.
template <int kDim, typename SymbolT>
__global__ void AddCodesKernel(DeviceCodec c, const SymbolT* const* inputs, int w, SymbolT* out, uint8_t* inexact) {
  c.codebook.rep_coords = StageTable(c.codebook.rep_coords, CodebookTableEntries(c));
  const int64_t items = c.rows * c.chunks_per_row;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < items;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const bool overloads = AddChunkCodes<kDim>(c, inputs, w, i, inexact != nullptr, out);
    if (inexact != nullptr) inexact[i] = overloads;
  }
}

// A warp per row r of a and b (rows in a grid-stride loop): lane l sums the terms of chunks l, l + 32, ...
// (ChunkPairDot), and the lanes' sums meet in the tree WarpTreeSum mirrors on the host.
template <typename SymbolT, typename LutT>
__global__ void DotRowsKernel(DeviceCodec a, const uint16_t* scales_a, const uint8_t* t_a, const uint8_t* symbols_a,
                              DeviceCodec b, const uint16_t* scales_b, const uint8_t* t_b, const uint8_t* symbols_b,
                              PairLut<LutT> lut, double* out) {
  const int lane = static_cast<int>(threadIdx.x % kWarp);
  const int64_t warps = static_cast<int64_t>(gridDim.x) * (blockDim.x / kWarp);
  for (int64_t r = static_cast<int64_t>(blockIdx.x) * (blockDim.x / kWarp) + threadIdx.x / kWarp; r < a.rows;
       r += warps) {
    const uint16_t* row_scales_a = scales_a == nullptr ? nullptr : scales_a + r * a.blocks_per_row;
    const uint16_t* row_scales_b = scales_b == nullptr ? nullptr : scales_b + r * b.blocks_per_row;
    const SymbolT* row_a = reinterpret_cast<const SymbolT*>(symbols_a + RowSymbolsOffsetBytes(a, r));
    const SymbolT* row_b = reinterpret_cast<const SymbolT*>(symbols_b + RowSymbolsOffsetBytes(b, r));
    double acc = 0.0;
    for (int64_t chunk = lane; chunk < a.chunks_per_row; chunk += kWarp) {
      acc += ChunkPairDot(a, row_scales_a, t_a + r * a.chunks_per_row, row_a, b, row_scales_b,
                          t_b + r * b.chunks_per_row, row_b, lut, chunk);
    }
    for (int offset = kWarp / 2; offset > 0; offset /= 2) acc += __shfl_down_sync(0xFFFFFFFFu, acc, offset);
    if (lane == 0) out[r] = acc;
  }
}

__global__ void ToFloatKernel(const void* src, uint8_t dtype, int64_t n, float* dst) {
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    dst[i] = ElementToFloat(src, dtype, i);
  }
}

__global__ void FromFloatKernel(const float* src, int64_t n, uint8_t dtype, void* dst) {
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    FloatToElement(src[i], dtype, dst, i);
  }
}

// The run path's GEMM, on half points where halves.table is given (kDim 8, SymbolT uint16_t).
template <int kDim, int kQueries, int kRows, typename SymbolT>
void LaunchGemmRuns(const DeviceCodec& c, const uint16_t* scales, const uint8_t* t, const uint8_t* symbols,
                    const HalfPointCodes& halves, const float* padded, int64_t batch, float* out, cudaStream_t stream) {
  const int64_t warps = (c.rows + kRows - 1) / kRows * ((batch + kQueries - 1) / kQueries);
  const unsigned int grid = GridFor(warps, kThreads / kWarp);
  if constexpr (kDim == 8 && std::is_same_v<SymbolT, uint16_t>) {
    if (halves.table != nullptr) {
      COSET_LAUNCH(grid, kThreads, StagedBytes(kHalfPointEntries), stream,
                   GemmRunsKernel<kDim, kQueries, kRows, SymbolT, true>)
      (c, scales, t, symbols, halves, padded, batch, out);
      return;
    }
  }
  COSET_LAUNCH(grid, kThreads, StagedBytes(CodebookTableEntries(c)), stream,
               GemmRunsKernel<kDim, kQueries, kRows, SymbolT, false>)
  (c, scales, t, symbols, halves, padded, batch, out);
}

template <int kQueries, int kRows>
void LaunchGemmPacked(const DeviceCodec& c, const uint16_t* scales, const CompactOverloads& compact,
                      const uint8_t* symbols, const float* padded, int64_t batch, float* out, cudaStream_t stream) {
  const int64_t warps = (c.rows + kRows - 1) / kRows * ((batch + kQueries - 1) / kQueries);
  COSET_LAUNCH(GridFor(warps, kThreads / kWarp), kThreads, PackedReplicaBytes(c), stream,
               GemmPackedKernel<kQueries, kRows>)
  (c, scales, compact, symbols, padded, batch, out);
}

template <class Quads, int kRowTiles, int kQueryTiles>
void LaunchGemmTensorCores(const DeviceCodec& c, const uint16_t* scales, const uint8_t* t, const uint8_t* symbols,
                           const HalfPointCodes& halves, const float* padded, int64_t batch, float* out,
                           cudaStream_t stream) {
  const int64_t items =
      (c.rows + 16 * kRowTiles - 1) / (16 * kRowTiles) * ((batch + 8 * kQueryTiles - 1) / (8 * kQueryTiles));
  // The quads' table and each warp's partial sums (48 KiB at most: no opt-in needed).
  const size_t shared = sizeof(uint32_t) * Quads::TableWords(c) +
                        sizeof(float) * (kThreads / kWarp) * kRowTiles * kQueryTiles * 4 * kWarp;
  COSET_LAUNCH(GridFor(items, 1), kThreads, shared, stream, GemmTensorCoresKernel<Quads, kRowTiles, kQueryTiles>)
  (c, scales, t, symbols, halves, padded, batch, out);
}

// The tensor-core GEMM on Quads: two row tiles per item (each query value's limbs serve 32 rows);
// one query tile up to 8 queries, else two.
template <class Quads>
void LaunchGemmTensorCores(const DeviceCodec& c, const uint16_t* scales, const uint8_t* t, const uint8_t* symbols,
                           const HalfPointCodes& halves, const float* padded, int64_t batch, float* out,
                           cudaStream_t stream) {
  if (batch <= 8) {
    LaunchGemmTensorCores<Quads, 2, 1>(c, scales, t, symbols, halves, padded, batch, out, stream);
  } else {
    LaunchGemmTensorCores<Quads, 2, 2>(c, scales, t, symbols, halves, padded, batch, out, stream);
  }
}

}  // namespace

bool EncodesInOnePass(const DeviceCodec& c, const void* x, const uint8_t* t, const void* symbols, KernelPath path) {
  return UsesRuns(c, path) && TilesApply(c) && RunBuffersAligned(t, symbols) &&
         reinterpret_cast<uintptr_t>(x) % 16 == 0;
}

cudaError_t LaunchEncodeTyped(const DeviceCodec& c, const void* x, uint8_t dtype, uint16_t* scales, uint8_t* t,
                              void* symbols, EncodeCounters* counters, cudaStream_t stream, BlockSlice slice,
                              KernelPath path) {
  if (!EncodesInOnePass(c, x, t, symbols, path)) return cudaErrorInvalidValue;
  slice = ClampSlice(c, slice);
  if (c.rows * c.cols == 0 || slice.begin == slice.end) return cudaSuccess;
  const int64_t tiles = (slice.end - slice.begin + TileBlocks(c) - 1) / TileBlocks(c);
  const size_t shared = TileSharedBytes(c);
  WithRunTypes(c, [&](auto dim, auto symbol) {
    WithRunLattice<dim()>(c, [&](auto kernel) {
      const auto tile_kernel = EncodeTilesKernel<decltype(kernel), dim(), decltype(symbol)>;
      COSET_LAUNCH(ResidentGridFor(tile_kernel, tiles, kTileWarps, shared), kTileWarps * kWarp, shared, stream,
                   tile_kernel)
      (c, slice, x, dtype, scales, t, static_cast<uint8_t*>(symbols), counters);
    });
  });
  return cudaGetLastError();
}

cudaError_t LaunchEncode(const DeviceCodec& c, const float* x, float* work, float* base, uint16_t* scales, uint8_t* t,
                         void* symbols, EncodeCounters* counters, cudaStream_t stream, BlockSlice slice,
                         KernelPath path) {
  slice = ClampSlice(c, slice);
  if (c.rows * c.cols == 0 || slice.begin == slice.end) return cudaSuccess;
  if (EncodesInOnePass(c, x, t, symbols, path)) {
    return LaunchEncodeTyped(c, x, kDTypeFloat32, scales, t, symbols, counters, stream, slice, path);
  }
  uint8_t* codes = static_cast<uint8_t*>(symbols);
  COSET_LAUNCH(GridFor(slice.end - slice.begin, kThreads / kBlockLanes), kThreads, 0, stream, PrepareBlocksKernel)
  (c, slice, x, work, base, scales, counters);
  const int64_t chunks = SliceChunks(c, slice).size();
  const size_t shared = StagedBytes(CodebookTableEntries(c));
  if (UsesRuns(c, path) && RunBuffersAligned(t, symbols)) {
    WithRunTypes(c, [&](auto dim, auto symbol) {
      WithRunLattice<dim()>(c, [&](auto kernel) {
        COSET_LAUNCH(GridFor(chunks / kRunChunks), kThreads, shared, stream,
                     EncodeRunsKernel<decltype(kernel), dim(), decltype(symbol)>)
        (c, slice, x, work, base, t, codes, counters);
      });
    });
  } else {
    WithChunkTypes(c, [&](auto dim, auto symbol) {
      COSET_LAUNCH(GridFor(chunks), kThreads, shared, stream, EncodeChunksKernel<dim(), decltype(symbol)>)
      (c, slice, x, work, base, t, codes, counters);
    });
  }
  return cudaGetLastError();
}

namespace {

// LaunchDecode into out of dtype: float32 for any codec; another dtype where DecodesTyped.
cudaError_t LaunchDecodeAs(const DeviceCodec& c, const uint16_t* scales, const uint8_t* t, const void* symbols,
                           float* work, void* out, uint8_t dtype, cudaStream_t stream, BlockSlice slice,
                           KernelPath path) {
  slice = ClampSlice(c, slice);
  if (c.rows * c.cols == 0 || slice.begin == slice.end) return cudaSuccess;
  const int64_t chunks = SliceChunks(c, slice).size();
  const size_t shared = StagedBytes(CodebookTableEntries(c));
  const uint8_t* codes = static_cast<const uint8_t*>(symbols);
  if (RunPath(path) && PackedApplies(c) && RunBuffersAligned(t, symbols)) {
    COSET_LAUNCH(GridFor(chunks), kThreads, PackedReplicaBytes(c), stream, DecodePackedKernel)
    (c, slice, scales, t, codes, work, out, dtype);
  } else if (UsesRuns(c, path) && RunBuffersAligned(t, symbols)) {
    WithRunTypes(c, [&](auto dim, auto symbol) {
      // The warps' tiles, then the codebook table where both fit.
      const size_t tiles = sizeof(float) * kRunTileWords<dim()>;
      const size_t with_table = tiles + 4 * CodebookTableEntries(c);
      COSET_LAUNCH(GridFor(chunks / kRunChunks), kThreads,
                   with_table <= static_cast<size_t>(kMaxStagedTableBytes) ? with_table : tiles, stream,
                   DecodeRunsKernel<dim(), decltype(symbol)>)
      (c, slice, scales, t, codes, work, out, dtype);
    });
  } else {
    WithChunkTypes(c, [&](auto dim, auto symbol) {
      COSET_LAUNCH(GridFor(chunks), kThreads, shared, stream, DecodeChunksKernel<dim(), decltype(symbol)>)
      (c, slice, scales, t, codes, work, static_cast<float*>(out));
    });
  }
  if (!ReadsInPlace(c)) {
    COSET_LAUNCH(GridFor(slice.end - slice.begin), kThreads, 0, stream, FinishBlocksKernel)
    (c, slice, work, static_cast<float*>(out));
  }
  return cudaGetLastError();
}

}  // namespace

bool DecodesTyped(const DeviceCodec& c, const uint8_t* t, const void* symbols, const void* out, KernelPath path) {
  return RunPath(path) && ReadsInPlace(c) && (PackedApplies(c) || RunsApply(c)) && RunBuffersAligned(t, symbols) &&
         reinterpret_cast<uintptr_t>(out) % 16 == 0;
}

cudaError_t LaunchDecodeTyped(const DeviceCodec& c, const uint16_t* scales, const uint8_t* t, const void* symbols,
                              void* out, uint8_t dtype, cudaStream_t stream, BlockSlice slice, KernelPath path) {
  if (!DecodesTyped(c, t, symbols, out, path)) return cudaErrorInvalidValue;
  return LaunchDecodeAs(c, scales, t, symbols, nullptr, out, dtype, stream, slice, path);
}

cudaError_t LaunchDecode(const DeviceCodec& c, const uint16_t* scales, const uint8_t* t, const void* symbols,
                         float* work, float* out, cudaStream_t stream, BlockSlice slice, KernelPath path) {
  return LaunchDecodeAs(c, scales, t, symbols, work, out, kDTypeFloat32, stream, slice, path);
}

cudaError_t LaunchToFloat(const void* src, uint8_t dtype, int64_t n, float* dst, cudaStream_t stream) {
  if (n == 0) return cudaSuccess;
  COSET_LAUNCH(GridFor(n), kThreads, 0, stream, ToFloatKernel)(src, dtype, n, dst);
  return cudaGetLastError();
}

cudaError_t LaunchFromFloat(const float* src, int64_t n, uint8_t dtype, void* dst, cudaStream_t stream) {
  if (n == 0) return cudaSuccess;
  COSET_LAUNCH(GridFor(n), kThreads, 0, stream, FromFloatKernel)(src, n, dtype, dst);
  return cudaGetLastError();
}

cudaError_t LaunchAddCodes(const DeviceCodec& c, const void* const* inputs, int w, void* out, uint8_t* inexact,
                           cudaStream_t stream) {
  if (c.rows * c.chunks_per_row == 0) return cudaSuccess;
  WithChunkTypes(c, [&](auto dim, auto symbol) {
    using SymbolT = decltype(symbol);
    COSET_LAUNCH(GridFor(c.rows * c.chunks_per_row), kThreads, StagedBytes(CodebookTableEntries(c)), stream,
                 AddCodesKernel<dim(), SymbolT>)
    (c, reinterpret_cast<const SymbolT* const*>(inputs), w, static_cast<SymbolT*>(out), inexact);
  });
  return cudaGetLastError();
}

cudaError_t LaunchDotRows(const DeviceCodec& a, const uint16_t* scales_a, const uint8_t* t_a, const void* symbols_a,
                          const DeviceCodec& b, const uint16_t* scales_b, const uint8_t* t_b, const void* symbols_b,
                          const void* lut, bool lut_integral, double* out, cudaStream_t stream) {
  if (a.rows == 0) return cudaSuccess;
  int64_t symbols = 1;
  for (int i = 0; i < a.codebook.symbol_dim; ++i) symbols *= a.codebook.q;
  const unsigned int grid = GridFor(a.rows, kThreads / kWarp);
  const uint8_t* codes_a = static_cast<const uint8_t*>(symbols_a);
  const uint8_t* codes_b = static_cast<const uint8_t*>(symbols_b);
  WithSymbolType(a.symbol_bytes, [&](auto symbol) {
    using SymbolT = decltype(symbol);
    if (lut_integral) {
      COSET_LAUNCH(grid, kThreads, 0, stream, DotRowsKernel<SymbolT, int32_t>)
      (a, scales_a, t_a, codes_a, b, scales_b, t_b, codes_b,
       PairLut<int32_t>{static_cast<const int32_t*>(lut), symbols}, out);
    } else {
      COSET_LAUNCH(grid, kThreads, 0, stream, DotRowsKernel<SymbolT, float>)
      (a, scales_a, t_a, codes_a, b, scales_b, t_b, codes_b, PairLut<float>{static_cast<const float*>(lut), symbols},
       out);
    }
  });
  return cudaGetLastError();
}

cudaError_t LaunchPrepareQueries(const DeviceCodec& c, const float* queries, int64_t batch, float* padded,
                                 cudaStream_t stream) {
  if (batch * c.padded_cols == 0) return cudaSuccess;
  COSET_LAUNCH(GridFor(batch * c.blocks_per_row), kThreads, 0, stream, PrepareQueriesKernel)(c, queries, batch, padded);
  return cudaGetLastError();
}

cudaError_t LaunchGemm(const DeviceCodec& c, const uint16_t* scales, const uint8_t* t, const void* symbols,
                       const float* padded, int64_t batch, float* out, cudaStream_t stream, KernelPath path,
                       const GemmCodes& gemm) {
  if (batch * c.rows == 0) return cudaSuccess;
  // Queries per warp: one for a GEMV, else up to kMaxDotQueries (acc's size is a template argument).
  const int per_warp = batch == 1 ? 1 : (batch <= 4 ? 4 : kMaxDotQueries);
  // The run path reads queries and codebook rows with 16-byte loads (the device's codebook tables
  // and the buffers cudaMalloc returns are aligned; a caller's queries may not be).
  const bool aligned = reinterpret_cast<uintptr_t>(padded) % 16 == 0 &&
                       reinterpret_cast<uintptr_t>(c.codebook.rep_point) % 16 == 0 && RunBuffersAligned(t, symbols);
  // Half points where given (their tail and head words on the boundaries of T's and symbols').
  const bool with_halves =
      gemm.halves.table != nullptr && HalvesApply(c) && RunBuffersAligned(gemm.halves.tail, gemm.halves.head);
  const HalfPointCodes halves = with_halves ? gemm.halves : HalfPointCodes();
  if (path == KernelPath::kTensorCores && batch > 4 && aligned && TensorCoresServe(c, GemmCodes{{}, halves})) {
    const uint8_t* codes = static_cast<const uint8_t*>(symbols);
    if (TensorCoresApply(c)) {
      LaunchGemmTensorCores<PackedQuads>(c, scales, t, codes, halves, padded, batch, out, stream);
    } else {
      LaunchGemmTensorCores<HalfQuads>(c, scales, t, codes, halves, padded, batch, out, stream);
    }
    return cudaGetLastError();
  }
  if (RunPath(path) && gemm.compact.words != nullptr && CompactOverloadsApply(c) && aligned) {
    // Rows per warp: four for a GEMV and two for up to 4 queries (each query chunk loaded once for
    // them), one with more queries (their accumulators take the registers).
    const uint8_t* codes = static_cast<const uint8_t*>(symbols);
    if (per_warp == 1) {
      LaunchGemmPacked<1, 4>(c, scales, gemm.compact, codes, padded, batch, out, stream);
    } else if (per_warp == 4) {
      LaunchGemmPacked<4, 2>(c, scales, gemm.compact, codes, padded, batch, out, stream);
    } else {
      LaunchGemmPacked<kMaxDotQueries, 1>(c, scales, gemm.compact, codes, padded, batch, out, stream);
    }
    return cudaGetLastError();
  }
  if (UsesRuns(c, path) && aligned) {
    // Rows per warp: two for a GEMV (each query chunk loaded once for both), one with more queries
    // (their accumulators take the registers).
    const uint8_t* codes = static_cast<const uint8_t*>(symbols);
    WithRunTypes(c, [&](auto dim, auto symbol) {
      using SymbolT = decltype(symbol);
      if (per_warp == 1) {
        LaunchGemmRuns<dim(), 1, 2, SymbolT>(c, scales, t, codes, halves, padded, batch, out, stream);
      } else if (per_warp == 4) {
        LaunchGemmRuns<dim(), 4, 1, SymbolT>(c, scales, t, codes, halves, padded, batch, out, stream);
      } else {
        LaunchGemmRuns<dim(), kMaxDotQueries, 1, SymbolT>(c, scales, t, codes, halves, padded, batch, out, stream);
      }
    });
    return cudaGetLastError();
  }
  const int64_t warps = c.rows * ((batch + per_warp - 1) / per_warp);
  const unsigned int grid = GridFor(warps, kThreads / kWarp);
  const size_t shared = StagedBytes(CodebookTableEntries(c));
  const uint8_t* codes = static_cast<const uint8_t*>(symbols);
  WithChunkTypes(c, [&](auto dim, auto symbol) {
    using SymbolT = decltype(symbol);
    if (per_warp == 1) {
      COSET_LAUNCH(grid, kThreads, shared, stream, GemmKernel<dim(), 1, SymbolT>)
      (c, scales, t, codes, padded, batch, out);
    } else if (per_warp == 4) {
      COSET_LAUNCH(grid, kThreads, shared, stream, GemmKernel<dim(), 4, SymbolT>)
      (c, scales, t, codes, padded, batch, out);
    } else {
      COSET_LAUNCH(grid, kThreads, shared, stream, GemmKernel<dim(), kMaxDotQueries, SymbolT>)
      (c, scales, t, codes, padded, batch, out);
    }
  });
  return cudaGetLastError();
}

}  // namespace device
}  // namespace coset
