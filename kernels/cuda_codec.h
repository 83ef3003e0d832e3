// CUDA launchers of the codec (device_codec.h's steps, one thread each). The host API the backend,
// the torch extension and CUDA IPC callers use: raw device pointers and a cudaStream_t, nothing
// allocated inside, nothing synchronized (the caller synchronizes its own stream when it needs the
// results on the host). Every pointer, including those inside the DeviceCodec (codebook tables,
// ramp, rotation signs), is device memory; sizes follow the DeviceCodec's layout.
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>

#include "kernels/device_codec.h"

namespace coset {
namespace device {

// What an encode counts, in device memory; zero it before the launch (cudaMemsetAsync).
struct EncodeCounters {
  unsigned long long first_try_overloads;  // chunks with T > 0
  unsigned long long capped;               // chunks still overloaded at t_max
  unsigned int refused_blocks;             // blocks with NaN/Inf, or whose rotation overflows
};

// Encodes c.rows rows of c.cols floats at x. Scratch: work (rows * padded_cols floats; unused, may
// be null, when ReadsInPlace) and base (rows * blocks_per_row floats). Outputs: scales (rows *
// blocks_per_row bf16; untouched without scaling), t (rows * chunks_per_row), symbols (rows *
// chunks_per_row * symbols_per_chunk symbols of c.symbol_bytes each). When
// counters->refused_blocks ends non-zero the outputs are meaningless. `slice`: only those blocks
// (BlockSlice; default all), reading and writing only their parts of each buffer, so a caller can
// encode a tensor slice by slice while other slices cross between host and device. `path`: a
// thread per chunk, or for kRuns (and kTensorCores) where RunsApply(c) (and t and symbols start
// on 4- and 16-byte boundaries) a thread per run of kRunChunks chunks (EncodeRunAt's steps), in a
// single pass where EncodesInOnePass (base is then unused); the same codes.
cudaError_t LaunchEncode(const DeviceCodec& c, const float* x, float* work, float* base, uint16_t* scales, uint8_t* t,
                         void* symbols, EncodeCounters* counters, cudaStream_t stream, BlockSlice slice = {},
                         KernelPath path = KernelPath::kPerChunk);

// Whether LaunchEncode takes the single-pass encode for these buffers: path kRuns or kTensorCores
// where TilesApply(c), t and symbols aligned as the run path needs, x on a 16-byte boundary. It then
// needs neither work nor base, and LaunchEncodeTyped reads x in any input dtype itself.
bool EncodesInOnePass(const DeviceCodec& c, const void* x, const uint8_t* t, const void* symbols, KernelPath path);

// LaunchEncode on the entries x of `dtype` (kDTypeFloat32, kDTypeFloat64, kDTypeBfloat16,
// kDTypeFloat16), each widened to float32 as it is read (exact for the 16-bit types; float64 rounds
// as ToFloat does on the CPU), so that typed input takes no conversion pass. Where
// EncodesInOnePass only (cudaErrorInvalidValue elsewhere: convert with LaunchToFloat, then
// LaunchEncode).
cudaError_t LaunchEncodeTyped(const DeviceCodec& c, const void* x, uint8_t dtype, uint16_t* scales, uint8_t* t,
                              void* symbols, EncodeCounters* counters, cudaStream_t stream, BlockSlice slice = {},
                              KernelPath path = KernelPath::kRuns);

// Decodes into out (rows * cols floats). Scratch: work (rows * padded_cols floats; unused, may be
// null, when ReadsInPlace). T values must be at most t_max (check them on the host, as the blob
// reader does). `slice` and `path` as for LaunchEncode (for kRuns and kTensorCores
// DecodePackedChunkAt where PackedApplies, else DecodeRunAt; the same floats).
cudaError_t LaunchDecode(const DeviceCodec& c, const uint16_t* scales, const uint8_t* t, const void* symbols,
                         float* work, float* out, cudaStream_t stream, BlockSlice slice = {},
                         KernelPath path = KernelPath::kPerChunk);

// Whether LaunchDecodeTyped serves these buffers: path kRuns or kTensorCores for codes the packed
// or run decode takes (PackedApplies or RunsApply, t and symbols aligned for them) read in place
// (no rotation, no padding), out on a 16-byte boundary.
bool DecodesTyped(const DeviceCodec& c, const uint8_t* t, const void* symbols, const void* out, KernelPath path);

// LaunchDecode into out of `dtype` (kDTypeFloat32, kDTypeFloat64, kDTypeBfloat16, kDTypeFloat16):
// each decoded float narrowed as FromFloat narrows it on the CPU, as it is stored, so that typed
// output takes no float32 buffer and no conversion pass. Where DecodesTyped only
// (cudaErrorInvalidValue elsewhere: LaunchDecode, then LaunchFromFloat).
cudaError_t LaunchDecodeTyped(const DeviceCodec& c, const uint16_t* scales, const uint8_t* t, const void* symbols,
                              void* out, uint8_t dtype, cudaStream_t stream, BlockSlice slice = {},
                              KernelPath path = KernelPath::kRuns);

// n values of dtype (device numbers of DType: kDTypeFloat32 ...) at src -> n floats at dst, as
// core/dtype.h's ToFloat; and back, as FromFloat (a GPU's typed encode inputs and decode outputs).
cudaError_t LaunchToFloat(const void* src, uint8_t dtype, int64_t n, float* dst, cudaStream_t stream);
cudaError_t LaunchFromFloat(const float* src, int64_t n, uint8_t dtype, void* dst, cudaStream_t stream);

// AddCodes (core/code_arith.h) of w codes that share scales, all described by c: inputs is a
// device array of w device pointers, each to one code's symbol buffer (as LaunchDecode reads it);
// out (the same size) receives the sum's symbols; inexact (rows * chunks_per_row bytes, or null for
// no validation) 1 where the exact sum overloads. The caller checks the codes first (CheckAddable).
cudaError_t LaunchAddCodes(const DeviceCodec& c, const void* const* inputs, int w, void* out, uint8_t* inexact,
                           cudaStream_t stream);

// DotRows (core/inner_product.h) of two coded tensors a and b (the same shape, lattice, q and M;
// their blocks, scales and ramps may differ; the caller checks them, CheckSameCode): out[r] =
// <decode(a)[r], decode(b)[r]> for each of a.rows rows, from the two-sided LUT `lut` (the
// codebook's num_symbols^2 entries, row-major: int32 when lut_integral, else float), a warp per row
// (ChunkPairDot per chunk, the lanes' sums in double meeting by shuffles).
cudaError_t LaunchDotRows(const DeviceCodec& a, const uint16_t* scales_a, const uint8_t* t_a, const void* symbols_a,
                          const DeviceCodec& b, const uint16_t* scales_b, const uint8_t* t_b, const void* symbols_b,
                          const void* lut, bool lut_integral, double* out, cudaStream_t stream);

// GEMM on codes, out[b * c.rows + n] = <queries[b], decode(weights)[n]> (c describes the weights;
// queries: batch rows of c.cols floats). Unless ReadsInPlace(c) (no rotation, no padding: the
// queries are then their own prepared copy), first LaunchPrepareQueries into padded (batch *
// padded_cols floats: zero-padded, rotated like the weights). Then LaunchGemm on the prepared
// queries: for path kTensorCores and more than 4 queries where TensorCoresServe(c, gemm) (D4's
// packed codes; E8's and D8's given half points), a thread block per (32 weight rows, up to 16
// queries) on tensor cores (bf16 MMAs on three-limb splits of the decoded weights and the queries:
// float32's results to ~2^-22 of sum |x w|); else, for kRuns
// and kTensorCores, where gemm.compact is given and CompactOverloadsApply(c) (D4's default code)
// the packed GEMM on two-bit T, a warp per (four, two or one weight rows; one, up to 4 or up to 16
// queries) whose lanes take consecutive chunks (AccumulateCompactChunkDots) and then the rows'
// escapes (`t` is not read), and where RunsApply(c) (D4, E8 and D8 with two levels of one- or
// two-byte symbols, rows of whole runs) a warp per (two weight rows, one query; or one row, up to
// 16 queries), each lane taking every 32nd run of four chunks with wide loads: their points from
// the half points where gemm.halves is given and HalvesApply(c) (AccumulateHalfRunDots: `symbols`
// is not read), else from the codebook table (AccumulateRunDots), the same floats either way;
// otherwise a warp per (weight row, up to 16 queries), each lane decoding every 32nd chunk of the
// row (AccumulateChunkDots). Chunks are decoded in registers once for all queries; the lanes' or
// warps' sums meet by shuffles or in shared memory, in a fixed order.
cudaError_t LaunchPrepareQueries(const DeviceCodec& c, const float* queries, int64_t batch, float* padded,
                                 cudaStream_t stream);
cudaError_t LaunchGemm(const DeviceCodec& c, const uint16_t* scales, const uint8_t* t, const void* symbols,
                       const float* padded, int64_t batch, float* out, cudaStream_t stream,
                       KernelPath path = KernelPath::kPerChunk, const GemmCodes& gemm = GemmCodes());

}  // namespace device
}  // namespace coset
