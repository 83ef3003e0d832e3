// The codec as the CUDA kernels run it, one block or one chunk at a time, written with the shared
// per-chunk math (core/chunk_math.h) so that the CPU can run exactly the same steps in a test
// (kernels/device_codec_host.h) and the GPU produces the CPU codec's digits, T and scales.
//
// Work split (the kernels in cuda_codec.cu map one thread to each call):
//   encode: PrepareBlock per (row, block): zero padding, rotation, bf16 scale, the block's base
//           step; then EncodeChunkAt per (row, chunk): the T ladder at that base.
//   decode: DecodeChunkAt per (row, chunk) into the caller's row (ReadsInPlace) or a padded row;
//           from a padded row, FinishDecodedBlock per (row, block): the inverse rotation and the
//           copy into the caller's row.
//   GEMM on codes: PadAndRotateBlock per (query, block): a padded, rotated copy of the queries
//           (<x, R^T v> = <R x, v>, as the CPU's LutMatrix); then AccumulateChunkDots per (weight
//           row, chunk): the chunk decoded in registers and dotted with every query's chunk.
// Symbols are written as the blob stores them where that is whole bytes (8- or 16-bit symbols, one
// per chunk and level: D4 q=4, E8 q=4, ...: the rows are then the blob's packed rows as they are),
// else as one uint32 each, which the host packs (symbol_packing.h), so the format stays in one
// place. Rows without rotation or padding are read in place; the others through a padded copy.
//
// No absl and no CUDA syntax beyond COSET_HD: nvcc and the host compiler both compile this file.
#pragma once

#include <cstdint>

#include "core/chunk_math.h"

namespace coset {
namespace device {

// Numbers of LatticeKind and ScaleMode (core/lattice.h, core/params.h; device_codec_host.cc checks
// that they agree), kept as plain integers here because those headers carry absl.
enum : uint8_t { kLatticeZ = 0, kLatticeA2 = 1, kLatticeD = 2, kLatticeE8 = 3 };
enum : uint8_t { kScaleNone = 0, kScaleRms = 1, kScaleAbsMax = 2 };

// One tensor's codec parameters and layout, as values and pointers (device pointers on a GPU).
struct DeviceCodec {
  ChunkCodebook codebook;
  uint8_t lattice = kLatticeD;
  uint8_t scale = kScaleRms;
  bool q_pow2 = false;
  int dim = 0;
  int levels = 0;
  int block = 0;
  int t_max = 0;
  float beta = 0.0f;
  const float* ramp = nullptr;            // t_max + 1 factors 2^(alpha T)
  const float* rotation_signs = nullptr;  // block signs, or null without rotation
  int symbol_bytes = 4;                   // 1 or 2: the blob's own bytes; 4: uint32 for the host to pack
  int64_t rows = 0;
  int64_t cols = 0;
  int64_t padded_cols = 0;
  int64_t blocks_per_row = 0;
  int64_t chunks_per_row = 0;
  int64_t symbols_per_chunk = 0;
};

// Whether rows are encoded from the input itself (no rotation, no padding), as the CPU does.
COSET_HD bool ReadsInPlace(const DeviceCodec& c) { return c.rotation_signs == nullptr && c.cols == c.padded_cols; }

// One past the last entry of block b in a padded row (the last block may be short).
COSET_HD int64_t BlockEnd(const DeviceCodec& c, int64_t b) {
  return c.padded_cols < (b + 1) * c.block ? c.padded_cols : (b + 1) * c.block;
}

// Block b of one row, zero-padded past cols and rotated when the codec rotates, into its place in
// padded_row: the encoder's input when it cannot read in place (PrepareBlock), and the queries of
// a GEMM on codes (<x, R^T v> = <R x, v>, as the CPU's LutMatrix).
COSET_HD void PadAndRotateBlock(const DeviceCodec& c, const float* x_row, int64_t b, float* padded_row) {
  const int64_t begin = b * c.block;
  const int64_t end = BlockEnd(c, b);
  const int64_t real_end = end < c.cols ? end : c.cols;
  float* w = padded_row + begin;
  for (int64_t i = begin; i < end; ++i) w[i - begin] = i < real_end ? x_row[i] : 0.0f;
  if (c.rotation_signs != nullptr) {
    for (int64_t i = 0; i < end - begin; ++i) w[i] *= c.rotation_signs[i];
    FwhtSegments(w, end - begin);
  }
}

// Phase 1 of the encode for block b of one row: unless ReadsInPlace, PadAndRotateBlock into
// work_row; then stores the bf16 scale (when scaled) and the block's base step (scale * beta, or 0
// when it would underflow and the block is coded as zeros). Returns false when the block cannot be
// encoded: a NaN/Inf entry, or a rotation that overflows float32 (either leaves a non-finite value
// in the block; the caller then lets the CPU codec name the entry, word for word).
COSET_HD bool PrepareBlock(const DeviceCodec& c, const float* x_row, int64_t b, float* work_row, uint16_t* scales_row,
                           float* base_row) {
  const int64_t begin = b * c.block;
  const int64_t n = BlockEnd(c, b) - begin;
  const float* v = x_row + begin;
  if (!ReadsInPlace(c)) {
    PadAndRotateBlock(c, x_row, b, work_row);
    v = work_row + begin;
  }
  if (FirstNonFinite(v, n) >= 0) return false;
  float scale = 1.0f;
  if (c.scale != kScaleNone) {
    const float raw = c.scale == kScaleRms ? BlockRms(v, n) : BlockAbsMax(v, n);
    scales_row[b] = FloatToBf16(raw);
    scale = Bf16ToFloat(scales_row[b]);
  }
  const float base = scale * c.beta;
  base_row[b] = base >= kMinStep ? base : 0.0f;
  return true;
}

// The T ladder of chunk `chunk` of a prepared row (x_row itself when ReadsInPlace, else work_row):
// writes its symbols and returns T, or -1 when it still overloads at t_max (its symbols are then
// zero and T is t_max, as the CPU writes them).
template <typename SymbolT>
COSET_HD int EncodeChunkAs(const DeviceCodec& c, const float* row, const float* base_row, int64_t chunk,
                           SymbolT* symbols_row, uint8_t* t_row) {
  const float base = base_row[chunk * c.dim / c.block];
  SymbolT* s = symbols_row + chunk * c.symbols_per_chunk;
  const float* x = row + chunk * c.dim;
  int t = 0;
  if (base != 0.0f) {
#define COSET_RAMP(K, D)                                                                              \
  (c.q_pow2 ? EncodeChunkOnRamp<K, true, D>(c.codebook, c.dim, c.levels, x, base, c.ramp, c.t_max, s) \
            : EncodeChunkOnRamp<K, false, D>(c.codebook, c.dim, c.levels, x, base, c.ramp, c.t_max, s))
    switch (c.lattice) {
      case kLatticeZ:
        t = COSET_RAMP(ZKernel, 0);
        break;
      case kLatticeA2:
        t = COSET_RAMP(A2Kernel, 2);
        break;
      case kLatticeD:
        t = c.dim == 4 ? COSET_RAMP(DnKernel, 4) : COSET_RAMP(DnKernel, 0);
        break;
      default:
        t = COSET_RAMP(E8Kernel, 8);
        break;
    }
#undef COSET_RAMP
  }
  const bool capped = t < 0;
  if (base == 0.0f || capped) {
    for (int64_t i = 0; i < c.symbols_per_chunk; ++i) s[i] = 0;
  }
  t_row[chunk] = static_cast<uint8_t>(capped ? c.t_max : t);
  return capped ? -1 : t;
}

// EncodeChunkAs with the codec's symbol width; symbols_row: row r's symbols (RowSymbols).
COSET_HD int EncodeChunkAt(const DeviceCodec& c, const float* row, const float* base_row, int64_t chunk,
                           void* symbols_row, uint8_t* t_row) {
  switch (c.symbol_bytes) {
    case 1:
      return EncodeChunkAs(c, row, base_row, chunk, static_cast<uint8_t*>(symbols_row), t_row);
    case 2:
      return EncodeChunkAs(c, row, base_row, chunk, static_cast<uint16_t*>(symbols_row), t_row);
    default:
      return EncodeChunkAs(c, row, base_row, chunk, static_cast<uint32_t*>(symbols_row), t_row);
  }
}

// Where row r's symbols start in a buffer of rows * chunks_per_row * symbols_per_chunk symbols.
COSET_HD int64_t RowSymbolsOffsetBytes(const DeviceCodec& c, int64_t r) {
  return r * c.chunks_per_row * c.symbols_per_chunk * c.symbol_bytes;
}

// The step of chunk `chunk` of a coded row: its block's scale * beta * ramp[T], or 0 in a block
// whose step would underflow (decoded as zeros, as its encoder wrote it).
COSET_HD float ChunkStepAt(const DeviceCodec& c, const uint16_t* scales_row, const uint8_t* t_row, int64_t chunk) {
  const float scale = c.scale == kScaleNone ? 1.0f : Bf16ToFloat(scales_row[chunk * c.dim / c.block]);
  const bool zero_block = !(scale * c.beta >= kMinStep);
  const float base = zero_block ? 0.0f : scale * c.beta;
  return base * c.ramp[t_row[chunk]];
}

// Algorithm 2 on chunk `chunk` of a coded row into out (dim floats). T must be at most t_max (the
// blob reader checks it).
COSET_HD void DecodeChunkTo(const DeviceCodec& c, const uint16_t* scales_row, const uint8_t* t_row,
                            const void* symbols_row, int64_t chunk, float* out) {
  const float step = ChunkStepAt(c, scales_row, t_row, chunk);
  const int64_t at = chunk * c.symbols_per_chunk;
  switch (c.symbol_bytes) {
    case 1:
      return DecodeChunk<0>(c.codebook, c.dim, c.levels, static_cast<const uint8_t*>(symbols_row) + at, step, out);
    case 2:
      return DecodeChunk<0>(c.codebook, c.dim, c.levels, static_cast<const uint16_t*>(symbols_row) + at, step, out);
    default:
      return DecodeChunk<0>(c.codebook, c.dim, c.levels, static_cast<const uint32_t*>(symbols_row) + at, step, out);
  }
}

// DecodeChunkTo into its place in work_row (the caller's row when ReadsInPlace, else a padded row).
COSET_HD void DecodeChunkAt(const DeviceCodec& c, const uint16_t* scales_row, const uint8_t* t_row,
                            const void* symbols_row, int64_t chunk, float* work_row) {
  DecodeChunkTo(c, scales_row, t_row, symbols_row, chunk, work_row + chunk * c.dim);
}

// The end of a decode for block b of one row: the inverse rotation of the decoded block in
// work_row, then its first cols entries into out_row.
COSET_HD void FinishDecodedBlock(const DeviceCodec& c, float* work_row, int64_t b, float* out_row) {
  const int64_t begin = b * c.block;
  const int64_t end = BlockEnd(c, b);
  float* w = work_row + begin;
  if (c.rotation_signs != nullptr) {
    FwhtSegments(w, end - begin);
    for (int64_t i = 0; i < end - begin; ++i) w[i] *= c.rotation_signs[i];
  }
  const int64_t real_end = end < c.cols ? end : c.cols;
  for (int64_t i = begin; i < real_end; ++i) out_row[i] = w[i - begin];
}

// Most queries one AccumulateChunkDots call serves (its accumulators stay in registers).
constexpr int kMaxDotQueries = 16;

// acc[q] += <padded query q's chunk `chunk`, the decoded chunk> for q < queries (<= kMaxDotQueries):
// the chunk is decoded once (in registers) for all of them. padded_queries: rows of padded_cols.
COSET_HD void AccumulateChunkDots(const DeviceCodec& c, const uint16_t* scales_row, const uint8_t* t_row,
                                  const void* symbols_row, int64_t chunk, const float* padded_queries, int queries,
                                  float* acc) {
  float v[kMaxLatticeDim];
  DecodeChunkTo(c, scales_row, t_row, symbols_row, chunk, v);
  for (int q = 0; q < queries; ++q) {
    const float* x = padded_queries + q * c.padded_cols + chunk * c.dim;
    float dot = 0.0f;
    for (int i = 0; i < c.dim; ++i) dot += x[i] * v[i];
    acc[q] += dot;
  }
}

}  // namespace device
}  // namespace coset
