// The codec's CUDA kernels: thin maps of device_codec.h's steps onto threads, so the per-block and
// per-chunk work is the code the CPU tests run. One thread per (row, block) for the block steps
// (their loops are sequential, in the CPU's order: the RMS sum's order is part of the format), one
// thread per (row, chunk) for the T ladder and for decoding.
#include "kernels/cuda_codec.h"

namespace coset {
namespace device {
namespace {

constexpr int kThreads = 128;

unsigned int GridFor(int64_t items) { return static_cast<unsigned int>((items + kThreads - 1) / kThreads); }

__global__ void PrepareBlocksKernel(DeviceCodec c, const float* x, float* work, float* base, uint16_t* scales,
                                    EncodeCounters* counters) {
  const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= c.rows * c.blocks_per_row) return;
  const int64_t r = i / c.blocks_per_row, b = i % c.blocks_per_row;
  if (!PrepareBlock(c, x + r * c.cols, b, work == nullptr ? nullptr : work + r * c.padded_cols,
                    scales == nullptr ? nullptr : scales + r * c.blocks_per_row, base + r * c.blocks_per_row)) {
    atomicAdd(&counters->refused_blocks, 1u);
  }
}

__global__ void EncodeChunksKernel(DeviceCodec c, const float* x, const float* work, const float* base, uint8_t* t,
                                   uint8_t* symbols, EncodeCounters* counters) {
  const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= c.rows * c.chunks_per_row) return;
  const int64_t r = i / c.chunks_per_row, chunk = i % c.chunks_per_row;
  const float* row = ReadsInPlace(c) ? x + r * c.cols : work + r * c.padded_cols;
  const int t_chunk = EncodeChunkAt(c, row, base + r * c.blocks_per_row, chunk, symbols + RowSymbolsOffsetBytes(c, r),
                                    t + r * c.chunks_per_row);
  // One atomic per warp, not per chunk: a third of the chunks overload, all on one counter.
  const unsigned active = __activemask();
  const unsigned over = __ballot_sync(active, t_chunk != 0), capped = __ballot_sync(active, t_chunk < 0);
  if (static_cast<int>(threadIdx.x % 32) == __ffs(active) - 1) {
    if (over != 0) atomicAdd(&counters->first_try_overloads, static_cast<unsigned long long>(__popc(over)));
    if (capped != 0) atomicAdd(&counters->capped, static_cast<unsigned long long>(__popc(capped)));
  }
}

__global__ void DecodeChunksKernel(DeviceCodec c, const uint16_t* scales, const uint8_t* t, const uint8_t* symbols,
                                   float* work, float* out) {
  const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= c.rows * c.chunks_per_row) return;
  const int64_t r = i / c.chunks_per_row, chunk = i % c.chunks_per_row;
  float* row = ReadsInPlace(c) ? out + r * c.cols : work + r * c.padded_cols;
  DecodeChunkAt(c, scales == nullptr ? nullptr : scales + r * c.blocks_per_row, t + r * c.chunks_per_row,
                symbols + RowSymbolsOffsetBytes(c, r), chunk, row);
}

__global__ void FinishBlocksKernel(DeviceCodec c, float* work, float* out) {
  const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= c.rows * c.blocks_per_row) return;
  const int64_t r = i / c.blocks_per_row, b = i % c.blocks_per_row;
  FinishDecodedBlock(c, work + r * c.padded_cols, b, out + r * c.cols);
}

__global__ void PrepareQueriesKernel(DeviceCodec c, const float* queries, int64_t batch, float* padded) {
  const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= batch * c.blocks_per_row) return;
  const int64_t q = i / c.blocks_per_row, b = i % c.blocks_per_row;
  PadAndRotateBlock(c, queries + q * c.cols, b, padded + q * c.padded_cols);
}

__global__ void GemmKernel(DeviceCodec c, const uint16_t* scales, const uint8_t* t, const uint8_t* symbols,
                           const float* padded, int64_t batch, float* out) {
  const int64_t n = blockIdx.x;
  const int64_t first = static_cast<int64_t>(blockIdx.y) * kMaxDotQueries;
  const int queries = static_cast<int>(batch - first < kMaxDotQueries ? batch - first : kMaxDotQueries);
  const uint16_t* scales_row = scales == nullptr ? nullptr : scales + n * c.blocks_per_row;
  const uint8_t* t_row = t + n * c.chunks_per_row;
  const uint8_t* symbols_row = symbols + RowSymbolsOffsetBytes(c, n);
  float acc[kMaxDotQueries] = {};
  for (int64_t chunk = threadIdx.x; chunk < c.chunks_per_row; chunk += blockDim.x) {
    AccumulateChunkDots(c, scales_row, t_row, symbols_row, chunk, padded + first * c.padded_cols, queries, acc);
  }
  __shared__ float part[kMaxDotQueries][kThreads];
  for (int q = 0; q < kMaxDotQueries; ++q) part[q][threadIdx.x] = acc[q];
  __syncthreads();
  for (int half = kThreads / 2; half > 0; half /= 2) {
    if (static_cast<int>(threadIdx.x) < half) {
      for (int q = 0; q < queries; ++q) part[q][threadIdx.x] += part[q][threadIdx.x + half];
    }
    __syncthreads();
  }
  if (threadIdx.x == 0) {
    for (int q = 0; q < queries; ++q) out[(first + q) * c.rows + n] = part[q][0];
  }
}

}  // namespace

cudaError_t LaunchEncode(const DeviceCodec& c, const float* x, float* work, float* base, uint16_t* scales, uint8_t* t,
                         void* symbols, EncodeCounters* counters, cudaStream_t stream) {
  if (c.rows * c.cols == 0) return cudaSuccess;
  PrepareBlocksKernel<<<GridFor(c.rows * c.blocks_per_row), kThreads, 0, stream>>>(c, x, work, base, scales, counters);
  EncodeChunksKernel<<<GridFor(c.rows * c.chunks_per_row), kThreads, 0, stream>>>(
      c, x, work, base, t, static_cast<uint8_t*>(symbols), counters);
  return cudaGetLastError();
}

cudaError_t LaunchDecode(const DeviceCodec& c, const uint16_t* scales, const uint8_t* t, const void* symbols,
                         float* work, float* out, cudaStream_t stream) {
  if (c.rows * c.cols == 0) return cudaSuccess;
  DecodeChunksKernel<<<GridFor(c.rows * c.chunks_per_row), kThreads, 0, stream>>>(
      c, scales, t, static_cast<const uint8_t*>(symbols), work, out);
  if (!ReadsInPlace(c)) FinishBlocksKernel<<<GridFor(c.rows * c.blocks_per_row), kThreads, 0, stream>>>(c, work, out);
  return cudaGetLastError();
}

cudaError_t LaunchPrepareQueries(const DeviceCodec& c, const float* queries, int64_t batch, float* padded,
                                 cudaStream_t stream) {
  if (batch * c.padded_cols == 0) return cudaSuccess;
  PrepareQueriesKernel<<<GridFor(batch * c.blocks_per_row), kThreads, 0, stream>>>(c, queries, batch, padded);
  return cudaGetLastError();
}

cudaError_t LaunchGemm(const DeviceCodec& c, const uint16_t* scales, const uint8_t* t, const void* symbols,
                       const float* padded, int64_t batch, float* out, cudaStream_t stream) {
  if (batch * c.rows == 0) return cudaSuccess;
  const dim3 grid(static_cast<unsigned int>(c.rows),
                  static_cast<unsigned int>((batch + kMaxDotQueries - 1) / kMaxDotQueries));
  GemmKernel<<<grid, kThreads, 0, stream>>>(c, scales, t, static_cast<const uint8_t*>(symbols), padded, batch, out);
  return cudaGetLastError();
}

}  // namespace device
}  // namespace coset
