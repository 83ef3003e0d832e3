// Every size and range limit coset enforces, in one place. The encoder, the blob reader, the daemon,
// the client library and the torch ops all read these constants, so what one side writes the
// others accept (tests/core/limits_test.cc checks the encoder/reader pair on the size arithmetic).
#pragma once

#include <cstdint>

namespace coset {

// --- Tensors -------------------------------------------------------------------------------------
// Largest rank of a tensor (leading dimensions are flattened into rows).
inline constexpr int kMaxRank = 8;
// Largest number of elements of one tensor, for encoding, decoding, blobs and wire tensors alike
// (2^36 float32 = 256 GiB). Blob readers refuse larger claims before allocating anything.
inline constexpr int64_t kMaxElements = int64_t{1} << 36;

// --- Codec parameters ----------------------------------------------------------------------------
inline constexpr int kMaxLatticeDim = 16;   // Zn and Dn up to n = 16
inline constexpr int kMaxQ = 255;           // q is one byte in the blob header
inline constexpr int kMaxLevels = 8;        // M: digits of one chunk fit a 64-bit symbol budget per level
inline constexpr double kMaxLog2QM = 24.0;  // q^M <= 2^24 keeps integer chunk coordinates inside int32
inline constexpr int kMaxTMax = 63;         // T is stored in 6 bits of model context, one byte in memory
inline constexpr int64_t kMaxBlock = int64_t{1} << 16;
inline constexpr int kDefaultBlock = 256;  // rounded down to a multiple of the lattice dimension
inline constexpr float kMaxAlpha = 4.0f;
// beta (when not 0 = the measured default): relative to the block scale for rms/absmax scaling,
// absolute for scale none. Outside these ranges every chunk decodes to zero (a step below
// kMinStep, or one so large that nothing reaches the first lattice point), so they are refused.
inline constexpr float kMinRelativeBeta = 1e-6f;
inline constexpr float kMaxRelativeBeta = 1e6f;
inline constexpr float kMaxAbsoluteBeta = 1e30f;
// Largest codebook the codec builds (symbols per table). E8 q = 5 is 390,625.
inline constexpr int64_t kMaxCodebookSymbols = int64_t{1} << 20;

// A block whose scale x beta is below this decodes to zero: its step would underflow the ramp and
// the inverse step. The encoder, the decoder, the inner products and the DDP hook's shared scales
// use this one threshold.
inline constexpr float kMinStep = 1e-30f;
// A chunk coordinate (x / step) beyond this magnitude lies outside every code region (q^M <= 2^24
// and generator entries are at most 2), so its chunk overloads at that step whatever the lattice.
// The encoder clamps coordinates to it before the nearest-point search: huge finite inputs (or
// inputs that reach Inf when divided by a small step) must not reach its int32 coordinates.
inline constexpr float kMaxChunkCoordinate = 268435456.0f;  // 2^28

// --- Lookup tables and caches --------------------------------------------------------------------
// Default memory budget of one LUT: 1 MiB, the L2 cache of the machines we target.
inline constexpr int64_t kDefaultLutBudgetBytes = int64_t{1} << 20;
// Codebooks kept by the process-wide cache (codebook.h), by count and by bytes.
inline constexpr int kCodebookCacheEntries = 64;
inline constexpr int64_t kCodebookCacheBytes = int64_t{256} << 20;

// --- Daemon and client ---------------------------------------------------------------------------
// Largest gRPC message the daemon and the client accept by default (requests and replies).
inline constexpr int64_t kDefaultMaxMessageBytes = int64_t{256} << 20;
// Largest shared-memory region one registration may map.
inline constexpr int64_t kMaxRegionBytes = int64_t{1} << 40;
// Shared-memory registrations: per side-socket connection, for the whole daemon, and the default
// of --shm-budget (bytes mapped from all clients' regions together). Each region is one mapping,
// so these also bound the daemon's share of vm.max_map_count (65,530 by default).
inline constexpr int kMaxRegionsPerConnection = 64;
inline constexpr int kMaxRegions = 4096;
inline constexpr int64_t kDefaultShmBudgetBytes = int64_t{64} << 30;
// How long a client waits for the daemon's answer on the shared-memory side socket before it
// reports the daemon unavailable: a registration is answered at once by a daemon that works, and a
// stalled one must not block its clients for ever.
inline constexpr int kShmReplySeconds = 30;
// Default of cosetd's --device-memory-budget: device memory the CUDA backend may hold at once
// (codebook tables plus every request's staging). The daemon shares its GPU with training jobs, so
// it takes a bounded share, not what happens to be free.
inline constexpr int64_t kDefaultDeviceMemoryBudgetBytes = int64_t{4} << 30;
// Share of that budget that resident tensors' device copies (the fused GEMM's weights, uploaded on
// first use and kept) may hold together; the rest stays for requests' staging. Past it, a copy is
// uploaded for the one call.
inline constexpr double kResidentDeviceFraction = 0.5;
// Input (encode) or output (decode) bytes per slice when the CUDA codec pipelines a host tensor's
// copies with its kernels (StagingOptions, kernels/cuda_runtime.h): two slots of page-locked memory
// for each side, a few tens of MiB in all, and slices large enough that each copy runs near the
// link's speed (a copy of a few MiB does; small ones pay the launch and DMA setup).
inline constexpr int64_t kStagingSliceBytes = int64_t{8} << 20;
// Clients' shared-memory regions that cosetd page-locks for its pipelined CUDA staging, in all
// (--cuda-staging pipelined): past it, regions stay pageable and are staged through the slots.
// Page-locked memory is taken from the whole node and never swapped, so the daemon holds a bounded
// share of it, whatever --shm-budget admits.
inline constexpr int64_t kMaxPageLockedShmBytes = int64_t{8} << 30;
// Share of cosetd's --memory-budget that code buffers kept between large encodes may hold
// (server/code_buffer_pool.h); counted as resident and given back when a request needs the room.
inline constexpr double kCodeBufferPoolFraction = 0.125;

}  // namespace coset
