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
  if (!PrepareBlock(c, x + r * c.cols, b, work + r * c.padded_cols, scales + r * c.blocks_per_row,
                    base + r * c.blocks_per_row)) {
    atomicAdd(&counters->refused_blocks, 1u);
  }
}

__global__ void EncodeChunksKernel(DeviceCodec c, const float* work, const float* base, uint8_t* t, uint32_t* symbols,
                                   EncodeCounters* counters) {
  const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= c.rows * c.chunks_per_row) return;
  const int64_t r = i / c.chunks_per_row, chunk = i % c.chunks_per_row;
  const int t_chunk = EncodeChunkAt(c, work + r * c.padded_cols, base + r * c.blocks_per_row, chunk,
                                    symbols + r * c.chunks_per_row * c.symbols_per_chunk, t + r * c.chunks_per_row);
  if (t_chunk != 0) atomicAdd(&counters->first_try_overloads, 1ull);
  if (t_chunk < 0) atomicAdd(&counters->capped, 1ull);
}

__global__ void DecodeChunksKernel(DeviceCodec c, const uint16_t* scales, const uint8_t* t, const uint32_t* symbols,
                                   float* work) {
  const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= c.rows * c.chunks_per_row) return;
  const int64_t r = i / c.chunks_per_row, chunk = i % c.chunks_per_row;
  DecodeChunkAt(c, scales == nullptr ? nullptr : scales + r * c.blocks_per_row, t + r * c.chunks_per_row,
                symbols + r * c.chunks_per_row * c.symbols_per_chunk, chunk, work + r * c.padded_cols);
}

__global__ void FinishBlocksKernel(DeviceCodec c, float* work, float* out) {
  const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= c.rows * c.blocks_per_row) return;
  const int64_t r = i / c.blocks_per_row, b = i % c.blocks_per_row;
  FinishDecodedBlock(c, work + r * c.padded_cols, b, out + r * c.cols);
}

}  // namespace

cudaError_t LaunchEncode(const DeviceCodec& c, const float* x, float* work, float* base, uint16_t* scales, uint8_t* t,
                         uint32_t* symbols, EncodeCounters* counters, cudaStream_t stream) {
  if (c.rows * c.cols == 0) return cudaSuccess;
  PrepareBlocksKernel<<<GridFor(c.rows * c.blocks_per_row), kThreads, 0, stream>>>(c, x, work, base, scales, counters);
  EncodeChunksKernel<<<GridFor(c.rows * c.chunks_per_row), kThreads, 0, stream>>>(c, work, base, t, symbols, counters);
  return cudaGetLastError();
}

cudaError_t LaunchDecode(const DeviceCodec& c, const uint16_t* scales, const uint8_t* t, const uint32_t* symbols,
                         float* work, float* out, cudaStream_t stream) {
  if (c.rows * c.cols == 0) return cudaSuccess;
  DecodeChunksKernel<<<GridFor(c.rows * c.chunks_per_row), kThreads, 0, stream>>>(c, scales, t, symbols, work);
  FinishBlocksKernel<<<GridFor(c.rows * c.blocks_per_row), kThreads, 0, stream>>>(c, work, out);
  return cudaGetLastError();
}

}  // namespace device
}  // namespace coset
