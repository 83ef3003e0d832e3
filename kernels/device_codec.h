// The codec as the CUDA kernels run it, one block or one chunk at a time, written with the shared
// per-chunk math (core/chunk_math.h) so that the CPU can run exactly the same steps in a test
// (kernels/device_codec_host.h) and the GPU produces the CPU codec's digits, T and scales.
//
// Work split (the kernels in cuda_codec.cu map one thread to each call):
//   encode: PrepareBlock per (row, block): zero padding, rotation, bf16 scale, the block's base
//           step; then EncodeChunkAt per (row, chunk): the T ladder at that base.
//   decode: DecodeChunkAt per (row, chunk) into a padded row; then FinishDecodedBlock per
//           (row, block): the inverse rotation and the copy into the caller's row.
// Symbols are one uint32 per symbol (chunk by chunk, level-major within a chunk); the host packs
// them into the blob's bit layout (symbol_packing.h), so the format stays in one place.
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
  int64_t rows = 0;
  int64_t cols = 0;
  int64_t padded_cols = 0;
  int64_t blocks_per_row = 0;
  int64_t chunks_per_row = 0;
  int64_t symbols_per_chunk = 0;
};

// Phase 1 of the encode for block b of one row: copies x_row's entries of the block into work_row
// (zeros past cols), rotates them, stores the bf16 scale (when scaled) and the block's base step
// (scale * beta, or 0 when it would underflow and the block is coded as zeros). Returns false when
// the block cannot be encoded: a NaN/Inf entry, or a rotation that overflows float32 (the caller
// then lets the CPU codec name the entry, word for word).
COSET_HD bool PrepareBlock(const DeviceCodec& c, const float* x_row, int64_t b, float* work_row, uint16_t* scales_row,
                           float* base_row) {
  const int64_t begin = b * c.block;
  const int64_t end = c.padded_cols < begin + c.block ? c.padded_cols : begin + c.block;
  const int64_t n = end - begin;
  const int64_t real_end = end < c.cols ? end : c.cols;
  float* w = work_row + begin;
  for (int64_t i = begin; i < end; ++i) w[i - begin] = i < real_end ? x_row[i] : 0.0f;
  if (FirstNonFinite(w, n) >= 0) return false;
  if (c.rotation_signs != nullptr) {
    for (int64_t i = 0; i < n; ++i) w[i] *= c.rotation_signs[i];
    FwhtSegments(w, n);
    if (FirstNonFinite(w, n) >= 0) return false;
  }
  float scale = 1.0f;
  if (c.scale != kScaleNone) {
    const float raw = c.scale == kScaleRms ? BlockRms(w, n) : BlockAbsMax(w, n);
    scales_row[b] = FloatToBf16(raw);
    scale = Bf16ToFloat(scales_row[b]);
  }
  const float base = scale * c.beta;
  base_row[b] = base >= kMinStep ? base : 0.0f;
  return true;
}

// The T ladder of chunk `chunk` of a prepared row: writes its symbols and returns T, or -1 when it
// still overloads at t_max (its symbols are then zero and T is t_max, as the CPU writes them).
COSET_HD int EncodeChunkAt(const DeviceCodec& c, const float* work_row, const float* base_row, int64_t chunk,
                           uint32_t* symbols_row, uint8_t* t_row) {
  const float base = base_row[chunk * c.dim / c.block];
  uint32_t* s = symbols_row + chunk * c.symbols_per_chunk;
  const float* x = work_row + chunk * c.dim;
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

// The step of chunk `chunk` of a coded row: its block's scale * beta * ramp[T], or 0 in a block
// whose step would underflow (decoded as zeros, as its encoder wrote it).
COSET_HD float ChunkStepAt(const DeviceCodec& c, const uint16_t* scales_row, const uint8_t* t_row, int64_t chunk) {
  const float scale = c.scale == kScaleNone ? 1.0f : Bf16ToFloat(scales_row[chunk * c.dim / c.block]);
  const bool zero_block = !(scale * c.beta >= kMinStep);
  const float base = zero_block ? 0.0f : scale * c.beta;
  return base * c.ramp[t_row[chunk]];
}

// Algorithm 2 on chunk `chunk` into the padded row work_row. T must be at most t_max (the blob
// reader checks it).
COSET_HD void DecodeChunkAt(const DeviceCodec& c, const uint16_t* scales_row, const uint8_t* t_row,
                            const uint32_t* symbols_row, int64_t chunk, float* work_row) {
  DecodeChunk<0>(c.codebook, c.dim, c.levels, symbols_row + chunk * c.symbols_per_chunk,
                 ChunkStepAt(c, scales_row, t_row, chunk), work_row + chunk * c.dim);
}

// The end of a decode for block b of one row: the inverse rotation of the decoded block in
// work_row, then its first cols entries into out_row.
COSET_HD void FinishDecodedBlock(const DeviceCodec& c, float* work_row, int64_t b, float* out_row) {
  const int64_t begin = b * c.block;
  const int64_t end = c.padded_cols < begin + c.block ? c.padded_cols : begin + c.block;
  float* w = work_row + begin;
  if (c.rotation_signs != nullptr) {
    FwhtSegments(w, end - begin);
    for (int64_t i = 0; i < end - begin; ++i) w[i] *= c.rotation_signs[i];
  }
  const int64_t real_end = end < c.cols ? end : c.cols;
  for (int64_t i = begin; i < real_end; ++i) out_row[i] = w[i - begin];
}

}  // namespace device
}  // namespace coset
