// The codec as the CUDA kernels run it, one block or one chunk at a time, written with the shared
// per-chunk math (core/chunk_math.h) so that the CPU can run exactly the same steps in a test
// (kernels/device_codec_host.h) and the GPU produces the CPU codec's digits, T and scales.
//
// Work split (the host run calls each step per item in turn; cuda_codec.cu maps them to threads):
//   encode: PrepareBlock per (row, block): zero padding, rotation, bf16 scale, the block's base
//           step (BlockInput, the scale, StoreBlockScale; a GPU splits the scale among lanes);
//           then EncodeChunkAt per (row, chunk): the T ladder at that base (EncodeChunkStep per
//           step, FinishChunk at its end; a GPU lane interleaves the ladders of its chunks).
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
#include <type_traits>

#include "core/chunk_math.h"

// A GPU unrolls the loop that follows completely (its trip count is a compile-time constant), so
// that the arrays it indexes stay in registers; the host compiler decides for itself.
#if defined(__CUDA_ARCH__)
#define COSET_UNROLL _Pragma("unroll")
#else
#define COSET_UNROLL
#endif

namespace coset {
namespace device {

// Numbers of LatticeKind and ScaleMode (core/lattice.h, core/params.h; device_codec_host.cc checks
// that they agree), kept as plain integers here because those headers carry absl.
enum : uint8_t { kLatticeZ = 0, kLatticeA2 = 1, kLatticeD = 2, kLatticeE8 = 3 };
enum : uint8_t { kScaleNone = 0, kScaleRms = 1, kScaleAbsMax = 2 };
// Numbers of DType (core/params.h), the element types of typed encode inputs and decode outputs.
enum : uint8_t { kDTypeFloat32 = 0, kDTypeFloat64 = 1, kDTypeBfloat16 = 2, kDTypeFloat16 = 3 };

// Element i of n values of `dtype` at src, widened to float32 as core/dtype.h's ToFloat does
// (exactly, but float64, which rounds as C++'s cast).
COSET_HD float ElementToFloat(const void* src, uint8_t dtype, int64_t i) {
  switch (dtype) {
    case kDTypeFloat64:
      return static_cast<float>(static_cast<const double*>(src)[i]);
    case kDTypeBfloat16:
      return Bf16ToFloat(static_cast<const uint16_t*>(src)[i]);
    case kDTypeFloat16:
      return HalfBitsToFloat(static_cast<const uint16_t*>(src)[i]);
    default:
      return static_cast<const float*>(src)[i];
  }
}

// value narrowed (or widened, for float64) into element i of dst as FromFloat does.
COSET_HD void FloatToElement(float value, uint8_t dtype, void* dst, int64_t i) {
  switch (dtype) {
    case kDTypeFloat64:
      static_cast<double*>(dst)[i] = static_cast<double>(value);
      return;
    case kDTypeBfloat16:
      static_cast<uint16_t*>(dst)[i] = FloatToBfloat16Bits(value);
      return;
    case kDTypeFloat16:
      static_cast<uint16_t*>(dst)[i] = FloatToHalfBits(value);
      return;
    default:
      static_cast<float*>(dst)[i] = value;
  }
}

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
  int64_t chunks_per_block = 0;  // block / dim (block is a multiple of dim)
  int chunk_block_shift = -1;    // log2(chunks_per_block) when a power of two, else -1
  // The packed point table (PackedPointTable: d / 4 words per symbol) where the code's Horner sum
  // fits in bytes (PackedBias), else null: at d = 4 the packed GEMM and decode read it
  // (PackedApplies), at d = 8 the run path's decode (DecodeRunAt; its 512 KiB for E8 q=4 are
  // built once per device, CudaCodec's tables, not per plan). packed_bias is what a chunk's packed
  // Horner sum reads above 2 (q rep(b1) + rep(b0)) in every byte.
  const uint32_t* packed_points = nullptr;
  int packed_bias = 0;
};

// a / b for a >= 0, b > 0, in 32 bits where both fit: a GPU divides 64-bit integers in software,
// many times slower, and the kernels divide chunk indices all the time.
COSET_HD int64_t DivIndex(int64_t a, int64_t b) {
  if (((a | b) >> 32) == 0) return static_cast<int64_t>(static_cast<uint32_t>(a) / static_cast<uint32_t>(b));
  return a / b;
}

// The block of chunk `chunk` in its row: a shift where chunks_per_block is a power of two (the
// default block of 256 at every d in {1, 2, 4, 8}), else a division.
COSET_HD int64_t BlockOfChunk(const DeviceCodec& c, int64_t chunk) {
  return c.chunk_block_shift >= 0 ? chunk >> c.chunk_block_shift : DivIndex(chunk, c.chunks_per_block);
}

// f(SymbolT()) for the codec's symbol width (DeviceCodec::symbol_bytes): uint8_t, uint16_t or
// uint32_t. The per-chunk steps are compiled for each, the host picks.
template <class F>
void WithSymbolType(int symbol_bytes, F&& f) {
  switch (symbol_bytes) {
    case 1:
      return f(uint8_t());
    case 2:
      return f(uint16_t());
    default:
      return f(uint32_t());
  }
}

// The chunk dimensions the per-chunk steps are compiled for (their template argument kDim), so that
// a chunk's arrays have a size known at compile time and stay in registers on a GPU (an array
// indexed at run time lives in local memory); any other d runs with kDim = 0 (arrays of
// kMaxLatticeDim, d read at run time). Callers pass kDim = SpecializedDim(c.dim).
COSET_HD constexpr int SpecializedDim(int d) { return d == 1 || d == 2 || d == 4 || d == 8 ? d : 0; }

// f(std::integral_constant<int, SpecializedDim(d)>()): the host's way to pick an instantiation.
template <class F>
void WithSpecializedDim(int d, F&& f) {
  switch (SpecializedDim(d)) {
    case 1:
      return f(std::integral_constant<int, 1>());
    case 2:
      return f(std::integral_constant<int, 2>());
    case 4:
      return f(std::integral_constant<int, 4>());
    case 8:
      return f(std::integral_constant<int, 8>());
    default:
      return f(std::integral_constant<int, 0>());
  }
}

// f(dim, symbol): dim as WithSpecializedDim passes it, symbol as WithSymbolType (a SymbolT()): the
// two template arguments every per-chunk step and kernel is compiled for, picked from c.
template <class F>
void WithChunkTypes(const DeviceCodec& c, F&& f) {
  WithSpecializedDim(c.dim, [&](auto dim) { WithSymbolType(c.symbol_bytes, [&](auto symbol) { f(dim, symbol); }); });
}

// Entries of the codebook's tables (q^symbol_dim symbols of symbol_dim values each): what a GPU
// kernel copies into shared memory when it fits.
COSET_HD int64_t CodebookTableEntries(const DeviceCodec& c) {
  int64_t symbols = 1;
  for (int i = 0; i < c.codebook.symbol_dim; ++i) symbols *= c.codebook.q;
  return symbols * c.codebook.symbol_dim;
}

// Whether rows are encoded from the input itself (no rotation, no padding), as the CPU does.
COSET_HD bool ReadsInPlace(const DeviceCodec& c) { return c.rotation_signs == nullptr && c.cols == c.padded_cols; }

// One past the last entry of block b in a padded row (the last block may be short).
COSET_HD int64_t BlockEnd(const DeviceCodec& c, int64_t b) {
  return c.padded_cols < (b + 1) * c.block ? c.padded_cols : (b + 1) * c.block;
}

// A run of whole blocks, items [begin, end) of the tensor's rows * blocks_per_row blocks in
// row-major order: the unit a pipelined encode or decode moves and codes at a time. Blocks are
// coded independently of each other (their own scale, rotation and chunks), and a run of them is
// contiguous in every buffer of the layout (the caller's rows, scales, T, symbols, padded rows), so
// one slice's bytes can cross between host and device while the kernels code another. The default
// is the whole tensor (end is clamped to the number of blocks).
struct BlockSlice {
  int64_t begin = 0;
  int64_t end = INT64_MAX;
};

COSET_HD int64_t BlockItems(const DeviceCodec& c) { return c.rows * c.blocks_per_row; }

// s with end clamped to the tensor's blocks (and begin to end).
COSET_HD BlockSlice ClampSlice(const DeviceCodec& c, BlockSlice s) {
  const int64_t items = BlockItems(c);
  s.end = s.end < items ? s.end : items;
  s.begin = s.begin < s.end ? s.begin : s.end;
  return s;
}

// The first entry of the caller's rows * cols, and the first chunk of rows * chunks_per_row, that
// belong to block item i (row i / blocks_per_row, block i % blocks_per_row); for i = BlockItems(c)
// the ends, numel and rows * chunks_per_row. (Padding has no place in the caller's rows: a row's
// last block ends where the row does.)
COSET_HD int64_t FirstEntryOfBlockItem(const DeviceCodec& c, int64_t i) {
  if (c.blocks_per_row == 0) return 0;
  const int64_t r = DivIndex(i, c.blocks_per_row), entry = (i - r * c.blocks_per_row) * c.block;
  return r * c.cols + (entry < c.cols ? entry : c.cols);
}
COSET_HD int64_t FirstChunkOfBlockItem(const DeviceCodec& c, int64_t i) {
  if (c.blocks_per_row == 0) return 0;
  const int64_t r = DivIndex(i, c.blocks_per_row);
  return r * c.chunks_per_row + (i - r * c.blocks_per_row) * c.chunks_per_block;
}

// Indices [begin, end): a slice's entries of the caller's rows, or its chunks.
struct IndexRange {
  int64_t begin = 0;
  int64_t end = 0;
  COSET_HD int64_t size() const { return end - begin; }
};

// The entries (of rows * cols) and the chunks (of rows * chunks_per_row) of slice s.
COSET_HD IndexRange SliceEntries(const DeviceCodec& c, BlockSlice s) {
  return {FirstEntryOfBlockItem(c, s.begin), FirstEntryOfBlockItem(c, s.end)};
}
COSET_HD IndexRange SliceChunks(const DeviceCodec& c, BlockSlice s) {
  return {FirstChunkOfBlockItem(c, s.begin), FirstChunkOfBlockItem(c, s.end)};
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

// Phase 1 of the encode for block b of one row, in three steps (a GPU splits the middle one among
// lanes): BlockInput, then the block's raw scale (BlockRms or BlockAbsMax) after checking that its
// entries are finite, then StoreBlockScale. PrepareBlock runs them in one thread.
//
// The encoder's view of block b: unless ReadsInPlace, PadAndRotateBlock into work_row first.
COSET_HD const float* BlockInput(const DeviceCodec& c, const float* x_row, int64_t b, float* work_row) {
  if (ReadsInPlace(c)) return x_row + b * c.block;
  PadAndRotateBlock(c, x_row, b, work_row);
  return work_row + b * c.block;
}

// Stores the bf16 scale of block b (when scaled) and returns its base step (scale * beta, or 0 when
// it would underflow and the block is coded as zeros). raw: BlockRms / BlockAbsMax of the block.
COSET_HD float StoreBlockScale(const DeviceCodec& c, float raw, int64_t b, uint16_t* scales_row) {
  float scale = 1.0f;
  if (c.scale != kScaleNone) {
    scales_row[b] = FloatToBf16(raw);
    scale = Bf16ToFloat(scales_row[b]);
  }
  const float base = scale * c.beta;
  return base >= kMinStep ? base : 0.0f;
}

// Returns false when the block cannot be encoded: a NaN/Inf entry, or a rotation that overflows
// float32 (either leaves a non-finite value in the block; the caller then lets the CPU codec name
// the entry, word for word).
COSET_HD bool PrepareBlock(const DeviceCodec& c, const float* x_row, int64_t b, float* work_row, uint16_t* scales_row,
                           float* base_row) {
  const int64_t n = BlockEnd(c, b) - b * c.block;
  const float* v = BlockInput(c, x_row, b, work_row);
  if (FirstNonFinite(v, n) >= 0) return false;
  const float raw = c.scale == kScaleRms ? BlockRms(v, n) : (c.scale == kScaleAbsMax ? BlockAbsMax(v, n) : 0.0f);
  base_row[b] = StoreBlockScale(c, raw, b, scales_row);
  return true;
}

// One step of a chunk's T ladder: Algorithm 1 on its d values x (LoadChunk) at step
// base * ramp[t], for the codec's lattice; writes its symbols s and returns true when it overloads.
// kDim = SpecializedDim(c.dim) (only the lattices of that dimension are compiled in: A2 has d = 2,
// E8 d = 8, D_n n >= 3).
template <int kDim, typename SymbolT>
COSET_HD bool EncodeChunkStep(const DeviceCodec& c, const float* x, float base, int t, SymbolT* s) {
  static_assert(kDim == SpecializedDim(kDim), "kDim is SpecializedDim(c.dim)");
#define COSET_STEP(K, D)                                                                        \
  (c.q_pow2 ? EncodeChunkAtStep<K, true, D>(c.codebook, c.dim, c.levels, x, base, c.ramp, t, s) \
            : EncodeChunkAtStep<K, false, D>(c.codebook, c.dim, c.levels, x, base, c.ramp, t, s))
  switch (c.lattice) {
    case kLatticeZ:
      return COSET_STEP(ZKernel, kDim);
    case kLatticeA2:
      if constexpr (kDim == 2) return COSET_STEP(A2Kernel, 2);
      break;
    case kLatticeD:
      if constexpr (kDim == 0 || kDim >= 3) return COSET_STEP(DnKernel, kDim);
      break;
    default:
      if constexpr (kDim == 8) return COSET_STEP(E8Kernel, 8);
      break;
  }
#undef COSET_STEP
  return true;  // a lattice of another dimension: not reached with kDim = SpecializedDim(c.dim)
}

// The end of chunk `chunk`'s ladder: t its T, or -1 when it still overloads at t_max. In a zero
// block (base 0: t is 0) and when capped, its symbols are zero; a capped chunk's T is t_max, as
// the CPU writes them. Returns t. kSymbols > 0: the codec's symbols_per_chunk, known at compile
// time (so that s may be an array in a GPU's registers).
template <int kSymbols = 0, typename SymbolT>
COSET_HD int FinishChunk(const DeviceCodec& c, int64_t chunk, bool zero_block, int t, SymbolT* s, uint8_t* t_row) {
  const bool capped = t < 0;
  if (zero_block || capped) {
    for (int64_t i = 0; i < (kSymbols > 0 ? kSymbols : c.symbols_per_chunk); ++i) s[i] = 0;
  }
  t_row[chunk] = static_cast<uint8_t>(capped ? c.t_max : t);
  return t;
}

// The whole T ladder of chunk `chunk` of a prepared row (x_row itself when ReadsInPlace, else
// work_row) in one thread: returns T, or -1 when capped (FinishChunk). SymbolT: the codec's symbol
// width (WithSymbolType); symbols_row: row r's symbols (RowSymbolsOffsetBytes).
template <int kDim, typename SymbolT>
COSET_HD int EncodeChunkAt(const DeviceCodec& c, const float* row, const float* base_row, int64_t chunk,
                           SymbolT* symbols_row, uint8_t* t_row) {
  const float base = base_row[BlockOfChunk(c, chunk)];
  SymbolT* s = symbols_row + chunk * c.symbols_per_chunk;
  int t = 0;
  if (base != 0.0f) {
    float x[kDim > 0 ? kDim : kMaxLatticeDim];
    LoadChunk<kDim>(row + chunk * c.dim, c.dim, x);
    while (t <= c.t_max && EncodeChunkStep<kDim>(c, x, base, t, s)) ++t;
    if (t > c.t_max) t = -1;
  }
  return FinishChunk(c, chunk, base == 0.0f, t, s, t_row);
}

// Where row r's symbols start in a buffer of rows * chunks_per_row * symbols_per_chunk symbols.
COSET_HD int64_t RowSymbolsOffsetBytes(const DeviceCodec& c, int64_t r) {
  return r * c.chunks_per_row * c.symbols_per_chunk * c.symbol_bytes;
}

// The base step of block b of a coded row: its scale * beta, or 0 where that would underflow (the
// block is decoded as zeros, as its encoder wrote it).
COSET_HD float BlockBaseAt(const DeviceCodec& c, const uint16_t* scales_row, int64_t b) {
  const float scale = c.scale == kScaleNone ? 1.0f : Bf16ToFloat(scales_row[b]);
  const bool zero_block = !(scale * c.beta >= kMinStep);
  return zero_block ? 0.0f : scale * c.beta;
}

// The step of chunk `chunk` of a coded row: its block's base step * ramp[T].
COSET_HD float ChunkStepAt(const DeviceCodec& c, const uint16_t* scales_row, const uint8_t* t_row, int64_t chunk) {
  return BlockBaseAt(c, scales_row, BlockOfChunk(c, chunk)) * c.ramp[t_row[chunk]];
}

// Algorithm 2 on chunk `chunk` of a coded row into out (dim floats). T must be at most t_max (the
// blob reader checks it). kDim = SpecializedDim(c.dim); SymbolT as for EncodeChunkAt.
template <int kDim, typename SymbolT>
COSET_HD void DecodeChunkTo(const DeviceCodec& c, const uint16_t* scales_row, const uint8_t* t_row,
                            const SymbolT* symbols_row, int64_t chunk, float* out) {
  DecodeChunk<kDim>(c.codebook, c.dim, c.levels, symbols_row + chunk * c.symbols_per_chunk,
                    ChunkStepAt(c, scales_row, t_row, chunk), out);
}

// DecodeChunkTo into its place in work_row (the caller's row when ReadsInPlace, else a padded row).
template <int kDim, typename SymbolT>
COSET_HD void DecodeChunkAt(const DeviceCodec& c, const uint16_t* scales_row, const uint8_t* t_row,
                            const SymbolT* symbols_row, int64_t chunk, float* work_row) {
  DecodeChunkTo<kDim>(c, scales_row, t_row, symbols_row, chunk, work_row + chunk * c.dim);
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

// acc[q] += <padded query q's chunk `chunk`, the decoded chunk> for q < queries (<= kQueries <=
// kMaxDotQueries): the chunk is decoded once (in registers) for all of them. padded_queries: rows
// of padded_cols. kDim = SpecializedDim(c.dim); kQueries, the size of acc, is a compile-time bound
// so that acc stays in registers.
template <int kDim, int kQueries, typename SymbolT>
COSET_HD void AccumulateChunkDots(const DeviceCodec& c, const uint16_t* scales_row, const uint8_t* t_row,
                                  const SymbolT* symbols_row, int64_t chunk, const float* padded_queries, int queries,
                                  float* acc) {
  static_assert(kQueries <= kMaxDotQueries, "acc holds at most kMaxDotQueries sums");
  const int d = kDim > 0 ? kDim : c.dim;
  float v[kDim > 0 ? kDim : kMaxLatticeDim];
  DecodeChunkTo<kDim>(c, scales_row, t_row, symbols_row, chunk, v);
  for (int q = 0; q < kQueries; ++q) {
    if (q >= queries) continue;  // not break: a loop of constant length unrolls, acc stays in registers
    float x[kDim > 0 ? kDim : kMaxLatticeDim];
    LoadChunk<kDim>(padded_queries + q * c.padded_cols + chunk * d, d, x);
    float dot = 0.0f;
    for (int i = 0; i < d; ++i) dot += x[i] * v[i];
    acc[q] += dot;
  }
}

// AddCodes (core/code_arith.h) on chunk `chunk` (of rows * chunks_per_row) of w codes that share
// scales, all described by c: inputs[k] is code k's symbol buffer (as LaunchDecode reads it). The
// exact sum of the chunks' points, wrapped mod q^M, is encoded into the chunk's symbols in out: the
// representative of the sum's coset, which is the sum itself where the sum does not overload.
// Returns, when validate, whether the exact sum overloads (AddCodes' SumValidation: the chunk then
// decodes to another point than the sum); else false.
template <int kDim, typename SymbolT>
COSET_HD bool AddChunkCodes(const DeviceCodec& c, const SymbolT* const* inputs, int w, int64_t chunk, bool validate,
                            SymbolT* out) {
  const int d = kDim > 0 ? kDim : c.dim;
  int64_t sum[kDim > 0 ? kDim : kMaxLatticeDim] = {}, z[kDim > 0 ? kDim : kMaxLatticeDim];
  for (int k = 0; k < w; ++k) {
    ChunkPointCoords<kDim>(c.codebook, c.dim, c.levels, inputs[k] + chunk * c.symbols_per_chunk, z);
    for (int i = 0; i < d; ++i) sum[i] += z[i];
  }
  int64_t modulus = 1;
  for (int m = 0; m < c.levels; ++m) modulus *= c.codebook.q;
  return EncodeChunkSum<kDim>(c.codebook, c.dim, c.levels, modulus, sum, out + chunk * c.symbols_per_chunk, validate);
}

// a * b + c rounded once, the same on the host and on a GPU. The GEMM on codes asks for it by name
// (it is not part of the codec, whose arithmetic stays unfused; -fmad=false keeps nvcc from fusing
// anything it is not told to).
COSET_HD float FusedMultiplyAdd(float a, float b, float c) {
#if defined(__CUDA_ARCH__)
  return __fmaf_rn(a, b, c);
#else
  return std::fma(a, b, c);
#endif
}

// The run paths (KernelPath::kRuns, where RunsApply): a thread or lane takes runs of kRunChunks
// consecutive chunks of one block, reads or writes their T bytes with one 32-bit access and their
// symbols with one 8- or 16-byte access (RunCodes), and looks their block's base step up once.
// Encode (EncodeRunAt), decode (DecodeRunAt) and the GEMM (AccumulateRunDots) have one each. Two
// levels (the default M) only, so that each symbol's place in those words is known at compile time
// (an array indexed at run time would live in a GPU's local memory).
constexpr int kRunChunks = 4;
constexpr int kRunLevels = 2;

// Which kernels LaunchEncode, LaunchDecode and LaunchGemm run. The per-chunk ones are the default:
// they have run on a GPU (H200, 2026-12-04). The run paths have run only as their host mirrors
// (EncodeWithDeviceSteps, DecodeWithDeviceSteps, GemmWithDeviceSteps) so far, and stay opt-in
// until the GPU tests (cuda_codec_test) have passed on a device.
enum class KernelPath : uint8_t {
  kPerChunk,     // a thread per chunk (encode, decode), AccumulateChunkDots (GEMM): every configuration
  kRuns,         // the run paths where RunsApply (and the buffers are aligned for them), else per chunk
  kTensorCores,  // kRuns, and for GEMMs of more than 4 queries the tensor-core kernel where
                 // TensorCoresServe (not yet run on a GPU either)
};

// Whether path takes the run paths where they apply (kRuns and kTensorCores).
COSET_HD bool RunPath(KernelPath path) { return path != KernelPath::kPerChunk; }

// The path as cosetd's --cuda-kernels spells it.
inline const char* KernelPathName(KernelPath path) {
  switch (path) {
    case KernelPath::kRuns:
      return "runs";
    case KernelPath::kTensorCores:
      return "tensor-cores";
    default:
      return "per-chunk";
  }
}

// Whether the run path serves c: d 4 or 8 with a symbol per chunk and level (D4, E8, D8) of one or
// two bytes (so q is a power of two), two levels, and whole runs in every row and every block, so
// that a run lies in one block and its T and symbol bytes start on 4- and 8-byte boundaries.
COSET_HD bool RunsApply(const DeviceCodec& c) {
  return (c.lattice == kLatticeD || c.lattice == kLatticeE8) && (c.dim == 4 || c.dim == 8) &&
         c.codebook.symbol_dim == c.dim && c.q_pow2 && c.levels == kRunLevels &&
         (c.symbol_bytes == 1 || c.symbol_bytes == 2) && c.chunks_per_row % kRunChunks == 0 &&
         c.chunks_per_block % kRunChunks == 0;
}

COSET_HD bool UsesRuns(const DeviceCodec& c, KernelPath path) { return RunPath(path) && RunsApply(c); }

// Whether the run path's encode is the single-pass kernel (cuda_codec.cu's EncodeTilesKernel: a
// warp per tile of whole blocks, up to kTileEntries entries, read once into shared memory): the
// run path's codecs read in place (no rotation, no padding) with blocks of at most kTileEntries.
constexpr int kTileEntries = 2048;
COSET_HD bool TilesApply(const DeviceCodec& c) { return RunsApply(c) && ReadsInPlace(c) && c.block <= kTileEntries; }

// f(dim, symbol) for the run path's instantiations (as WithChunkTypes; c must satisfy RunsApply).
template <class F>
void WithRunTypes(const DeviceCodec& c, F&& f) {
  auto with_symbol = [&](auto dim) {
    if (c.symbol_bytes == 1) return f(dim, uint8_t());
    return f(dim, uint16_t());
  };
  if (c.dim == 4) return with_symbol(std::integral_constant<int, 4>());
  return with_symbol(std::integral_constant<int, 8>());
}

// f(kernel) with the nearest-point kernel of c's lattice (DnKernel, or E8Kernel at d = 8) where
// RunsApply: the run path's encode is compiled per lattice, and for q a power of two and two levels
// only, so that a step takes none of EncodeChunkStep's branches on the codec.
template <int kDim, class F>
void WithRunLattice(const DeviceCodec& c, F&& f) {
  if constexpr (kDim == 8) {
    if (c.lattice == kLatticeE8) return f(E8Kernel());
  }
  return f(DnKernel());
}

// kWords 32-bit words from p, which a GPU reads with one load (p then 4 kWords-byte aligned).
template <int kWords>
COSET_HD void LoadWords(const void* p, uint32_t* w) {
#if defined(__CUDA_ARCH__)
  if constexpr (kWords == 4) {
    const uint4 v = *static_cast<const uint4*>(p);
    w[0] = v.x, w[1] = v.y, w[2] = v.z, w[3] = v.w;
    return;
  } else if constexpr (kWords == 2) {
    const uint2 v = *static_cast<const uint2*>(p);
    w[0] = v.x, w[1] = v.y;
    return;
  } else if constexpr (kWords == 1) {
    w[0] = *static_cast<const uint32_t*>(p);
    return;
  }
#endif
  std::memcpy(w, p, 4 * kWords);
}

// LoadChunk for p on a 16-byte boundary and kDim a multiple of 4: a GPU's wide loads without
// LoadChunk's run-time test (the run path's callers guarantee the alignment).
template <int kDim>
COSET_HD void LoadAlignedChunk(const float* p, float* out) {
  static_assert(kDim % 4 == 0, "whole 16-byte groups");
#if defined(__CUDA_ARCH__)
  for (int i = 0; i < kDim; i += 4) {
    const float4 v = *reinterpret_cast<const float4*>(p + i);
    out[i] = v.x, out[i + 1] = v.y, out[i + 2] = v.z, out[i + 3] = v.w;
  }
#else
  for (int i = 0; i < kDim; ++i) out[i] = p[i];
#endif
}

// Entries i..i+3 of x (dtype) widened to float32 as ElementToFloat widens them, read on a GPU with
// one 16-byte load of float32, one 8-byte load of the 16-bit types and two 16-byte loads of
// float64: x + i then starts on a 16-byte boundary (8 for the 16-bit types).
COSET_HD void LoadFourAsFloats(const void* x, uint8_t dtype, int64_t i, float* out) {
  uint32_t w[8];
  switch (dtype) {
    case kDTypeFloat64:
      LoadWords<4>(static_cast<const double*>(x) + i, w);
      LoadWords<4>(static_cast<const double*>(x) + i + 2, w + 4);
      for (int k = 0; k < 4; ++k) {
        const uint64_t bits = static_cast<uint64_t>(w[2 * k + 1]) << 32 | w[2 * k];
        double value;
        std::memcpy(&value, &bits, sizeof value);
        out[k] = static_cast<float>(value);
      }
      return;
    case kDTypeBfloat16:
    case kDTypeFloat16:
      LoadWords<2>(static_cast<const uint16_t*>(x) + i, w);
      for (int k = 0; k < 4; ++k) {
        const uint16_t half = static_cast<uint16_t>(w[k / 2] >> (16 * (k % 2)));
        out[k] = dtype == kDTypeBfloat16 ? Bf16ToFloat(half) : HalfBitsToFloat(half);
      }
      return;
    default:
      LoadWords<4>(static_cast<const float*>(x) + i, w);
      for (int k = 0; k < 4; ++k) out[k] = BitsToFloat(w[k]);
  }
}

// Symbol i of SymbolT (one or two bytes) in little-endian words w.
template <typename SymbolT>
COSET_HD uint32_t SymbolInWords(const uint32_t* w, int i) {
  constexpr int kPerWord = 4 / static_cast<int>(sizeof(SymbolT));
  constexpr uint32_t kMask = sizeof(SymbolT) == 1 ? 0xFFu : 0xFFFFu;
  return (w[i / kPerWord] >> (8 * static_cast<int>(sizeof(SymbolT)) * (i % kPerWord))) & kMask;
}

// kWords 32-bit words to p, which a GPU writes with one store (p then 4 kWords-byte aligned).
template <int kWords>
COSET_HD void StoreWords(const uint32_t* w, void* p) {
#if defined(__CUDA_ARCH__)
  if constexpr (kWords == 4) {
    *static_cast<uint4*>(p) = make_uint4(w[0], w[1], w[2], w[3]);
    return;
  } else if constexpr (kWords == 2) {
    *static_cast<uint2*>(p) = make_uint2(w[0], w[1]);
    return;
  } else if constexpr (kWords == 1) {
    *static_cast<uint32_t*>(p) = w[0];
    return;
  }
#endif
  std::memcpy(p, w, 4 * kWords);
}

// Bytes per entry of dtype (core/dtype.h's DTypeBytes, for device code).
COSET_HD int ElementBytes(uint8_t dtype) {
  return dtype == kDTypeFloat64 ? 8 : (dtype == kDTypeBfloat16 || dtype == kDTypeFloat16 ? 2 : 4);
}

// v[0, 4) narrowed to dtype as FloatToElement narrows them, into entries i..i+3 of out, with the
// stores LoadFourAsFloats's loads mirror (out + i on the same boundaries).
COSET_HD void StoreFourAsElements(const float* v, uint8_t dtype, void* out, int64_t i) {
  uint32_t w[8];
  switch (dtype) {
    case kDTypeFloat64:
      for (int k = 0; k < 4; ++k) {
        const double value = static_cast<double>(v[k]);
        uint64_t bits;
        std::memcpy(&bits, &value, sizeof bits);
        w[2 * k] = static_cast<uint32_t>(bits), w[2 * k + 1] = static_cast<uint32_t>(bits >> 32);
      }
      StoreWords<4>(w, static_cast<double*>(out) + i);
      StoreWords<4>(w + 4, static_cast<double*>(out) + i + 2);
      return;
    case kDTypeBfloat16:
    case kDTypeFloat16:
      for (int k = 0; k < 2; ++k) {
        const uint32_t lo = dtype == kDTypeBfloat16 ? FloatToBfloat16Bits(v[2 * k]) : FloatToHalfBits(v[2 * k]);
        const uint32_t hi = dtype == kDTypeBfloat16 ? FloatToBfloat16Bits(v[2 * k + 1]) : FloatToHalfBits(v[2 * k + 1]);
        w[k] = lo | hi << 16;
      }
      StoreWords<2>(w, static_cast<uint16_t*>(out) + i);
      return;
    default:
      for (int k = 0; k < 4; ++k) w[k] = FloatBits(v[k]);
      StoreWords<4>(w, static_cast<float*>(out) + i);
  }
}

// A chunk's kDim decoded floats v into entries first.. of the row `row` of dtype: float32 as
// StoreChunk stores them (any alignment), else four at a time (StoreFourAsElements: row + first on
// its boundaries).
template <int kDim>
COSET_HD void StoreChunkAs(const float* v, uint8_t dtype, void* row, int64_t first) {
  static_assert(kDim % 4 == 0, "whole groups of four");
  if (dtype == kDTypeFloat32) {
    StoreChunk<kDim>(v, kDim, static_cast<float*>(row) + first);
    return;
  }
  for (int i = 0; i < kDim; i += 4) StoreFourAsElements(v + i, dtype, row, first + i);
}

// One run's T bytes and symbols as the rows hold them: chunk k's T in byte k of t, its level-m
// symbol at place kRunLevels * k + m of the little-endian words `symbols`.
template <typename SymbolT>
struct RunCodes {
  static_assert(sizeof(SymbolT) <= 2, "one- or two-byte symbols");
  static constexpr int kSymbolWords = kRunChunks * kRunLevels * static_cast<int>(sizeof(SymbolT)) / 4;
  uint32_t t = 0;
  uint32_t symbols[kSymbolWords] = {};

  COSET_HD int t_of(int k) const { return static_cast<int>((t >> (8 * k)) & 0xFFu); }
  COSET_HD uint32_t symbol(int k, int m) const { return SymbolInWords<SymbolT>(symbols, kRunLevels * k + m); }
  // Adds the run's next chunk: its T byte and symbols s[0, kRunLevels). The words are a shift
  // register that the chunk enters from the top, so after kRunChunks calls, in chunk order, chunk k
  // sits at its place, and every index is known at compile time (the words stay in a GPU's
  // registers; or-ing into the word of a chunk known at run time would index them at run time).
  COSET_HD void Append(int t_byte, const SymbolT* s) {
    constexpr int kSymbolBits = 8 * static_cast<int>(sizeof(SymbolT)), kChunkBits = kRunLevels * kSymbolBits;
    t = (t >> 8) | (static_cast<uint32_t>(t_byte) << 24);
    uint32_t chunk = 0;
    for (int m = 0; m < kRunLevels; ++m) chunk |= static_cast<uint32_t>(s[m]) << (kSymbolBits * m);
    COSET_UNROLL
    for (int w = 0; w < kSymbolWords; ++w) {
      const uint32_t above = w + 1 < kSymbolWords ? symbols[w + 1] : chunk;
      if constexpr (kChunkBits == 32) {
        symbols[w] = above;
      } else {
        symbols[w] = (symbols[w] >> kChunkBits) | (above << (32 - kChunkBits));
      }
    }
  }
  // The run starting at chunk `first` of a row (a multiple of kRunChunks): one load for the T
  // bytes, one for the symbols.
  COSET_HD void Load(const uint8_t* t_row, const SymbolT* symbols_row, int64_t first) {
    LoadWords<1>(t_row + first, &t);
    LoadWords<kSymbolWords>(symbols_row + first * kRunLevels, symbols);
  }
  COSET_HD void Store(int64_t first, uint8_t* t_row, SymbolT* symbols_row) const {
    StoreWords<1>(&t, t_row + first);
    StoreWords<kSymbolWords>(symbols, symbols_row + first * kRunLevels);
  }
};

// The end of a run's next chunk, as FinishChunk ends a chunk: t its T, or -1 when capped (T
// t_max); in a zero block and when capped, its symbols are zero. Returns t.
template <typename SymbolT>
COSET_HD int FinishRunChunk(const DeviceCodec& c, bool zero_block, int t, SymbolT* s, RunCodes<SymbolT>* codes) {
  const bool capped = t < 0;
  if (zero_block || capped) {
    for (int m = 0; m < kRunLevels; ++m) s[m] = 0;
  }
  codes->Append(capped ? c.t_max : t, s);
  return t;
}

// One step of a chunk's T ladder on the run path: EncodeChunkStep for c's lattice (Kernel,
// WithRunLattice), q a power of two and two levels, without its branches on the codec.
template <class Kernel, int kDim, typename SymbolT>
COSET_HD bool EncodeRunStep(const DeviceCodec& c, const float* x, float base, int t, SymbolT* s) {
  return EncodeChunkAtStep<Kernel, true, kDim, SymbolT, kRunLevels>(c.codebook, kDim, kRunLevels, x, base, c.ramp, t,
                                                                    s);
}

// The T ladders of run `run` of a prepared row (as EncodeChunkAt takes it) one chunk after another,
// then the run's T bytes and symbols with one store each. over and capped count its chunks with
// T > 0 (capped ones included) and capped ones. c satisfies RunsApply; kDim = c.dim, SymbolT its
// symbol type (WithRunTypes), Kernel its lattice's (WithRunLattice). A GPU lane walks the same
// ladders one step per iteration (EncodeRunsKernel); the steps and their order per chunk are these.
template <class Kernel, int kDim, typename SymbolT>
COSET_HD void EncodeRunAt(const DeviceCodec& c, const float* row, const float* base_row, int64_t run,
                          SymbolT* symbols_row, uint8_t* t_row, int64_t* over, int64_t* capped) {
  const int64_t first = run * kRunChunks;
  const float base = base_row[BlockOfChunk(c, first)];
  RunCodes<SymbolT> codes;
  for (int k = 0; k < kRunChunks; ++k) {
    SymbolT s[kRunLevels * kDim] = {};  // room for Z^n's symbol per coordinate: compiled, never taken
    int t = 0;
    if (base != 0.0f) {
      float x[kDim];
      LoadChunk<kDim>(row + (first + k) * kDim, kDim, x);
      while (t <= c.t_max && EncodeRunStep<Kernel, kDim>(c, x, base, t, s)) ++t;
      if (t > c.t_max) t = -1;
    }
    const int t_chunk = FinishRunChunk(c, base == 0.0f, t, s, &codes);
    *over += t_chunk != 0;
    *capped += t_chunk < 0;
  }
  codes.Store(first, t_row, symbols_row);
}

// Two levels of a chunk's (or half's) point in words of four biased bytes, level0 and level1, met
// in the Horner sum q level1 + level0 by one integer multiply-add (the callers' tables keep its
// bytes within 0..255: no carries), and its byte i as a float minus `offset` into v[i] (2^23 +
// byte is a float: exact where the offset is 2^23 plus a small integer).
COSET_HD void TwoLevelBytesToFloats(const DeviceCodec& c, uint32_t level0, uint32_t level1, float offset, float* v) {
  const uint32_t packed = level1 * static_cast<uint32_t>(c.codebook.q) + level0;
#if defined(__CUDA_ARCH__)
  v[0] = __uint_as_float(__byte_perm(packed, 0x4B000000u, 0x7540)) - offset;
  v[1] = __uint_as_float(__byte_perm(packed, 0x4B000000u, 0x7541)) - offset;
  v[2] = __uint_as_float(__byte_perm(packed, 0x4B000000u, 0x7542)) - offset;
  v[3] = __uint_as_float(__byte_perm(packed, 0x4B000000u, 0x7543)) - offset;
#else
  for (int i = 0; i < 4; ++i) v[i] = BitsToFloat(0x4B000000u | ((packed >> (8 * i)) & 0xFFu)) - offset;
#endif
}

// 2 (q rep(b1) + rep(b0)) of a chunk from the packed words of its two symbols, exactly (small
// integers). Bytes of q A1 + A0 with A = 2 rep + bias_1 in 0..2 bias_1 stay within 0..255
// (PackedBias checks it), so the multiply-add carries nothing across bytes; byte i becomes
// float(2^23 + byte) - (2^23 + packed_bias), both exact.
COSET_HD void UnpackChunkPointX2(const DeviceCodec& c, uint32_t low, uint32_t high, float* v) {
  TwoLevelBytesToFloats(c, low, high, 8388608.0f + static_cast<float>(c.packed_bias), v);
}

// 2 (q rep(b1) + rep(b0)) of a d = 8 chunk from the packed table's two words per symbol (bytes
// of 2 rep + bias, as UnpackChunkPointX2 reads D4's one word): one 8-byte load per level, where
// the codebook table's float rows take two 16-byte loads each.
COSET_HD void PackedPointX2Of8(const DeviceCodec& c, uint32_t symbol0, uint32_t symbol1, float* v) {
  uint32_t level0[2], level1[2];
  LoadWords<2>(c.packed_points + 2 * symbol0, level0);
  LoadWords<2>(c.packed_points + 2 * symbol1, level1);
  for (int h = 0; h < 2; ++h) UnpackChunkPointX2(c, level0[h], level1[h], v + 4 * h);
}

// Algorithm 2 on run `run` of a coded row (as DecodeChunkAt) into v, chunk k's floats at v + k
// kDim: each chunk by DecodeChunkValues at its step (the block's base step, looked up once, times
// its ramp), or at d = 8 given the packed table by its doubled point from there
// (PackedPointX2Of8) times half the step, so the floats are DecodeChunkAt's bit for bit. c
// satisfies RunsApply; kDim and SymbolT as for EncodeRunAt.
template <int kDim, typename SymbolT>
COSET_HD void DecodeRunValues(const DeviceCodec& c, const uint16_t* scales_row, const uint8_t* t_row,
                              const SymbolT* symbols_row, int64_t run, float* v) {
  const int64_t first = run * kRunChunks;
  RunCodes<SymbolT> codes;
  codes.Load(t_row, symbols_row, first);
  const float base = BlockBaseAt(c, scales_row, BlockOfChunk(c, first));
  COSET_UNROLL
  for (int k = 0; k < kRunChunks; ++k) {
    const float step = base * c.ramp[codes.t_of(k)];
    float* chunk = v + k * kDim;
    bool packed = false;
    if constexpr (kDim == 8) {
      packed = c.packed_points != nullptr;
      if (packed) {
        // 2 w times half the step: the same real as w step, so the same float (steps are at
        // least kMinStep: half of one is exact).
        PackedPointX2Of8(c, codes.symbol(k, 0), codes.symbol(k, 1), chunk);
        const float half_step = 0.5f * step;
        for (int i = 0; i < kDim; ++i) chunk[i] *= half_step;
      }
    }
    if (!packed) {
      SymbolT s[kRunLevels * kDim] = {};  // room for Z^n's symbol per coordinate: compiled, never taken
      for (int m = 0; m < kRunLevels; ++m) s[m] = static_cast<SymbolT>(codes.symbol(k, m));
      DecodeChunkValues<kDim, kRunLevels>(c.codebook, kDim, kRunLevels, s, step, chunk);
    }
  }
}

// DecodeRunValues stored into `row` as dtype (StoreChunkAs; a row of the caller's when
// ReadsInPlace, else work_row: float32).
template <int kDim, typename SymbolT>
COSET_HD void DecodeRunAt(const DeviceCodec& c, const uint16_t* scales_row, const uint8_t* t_row,
                          const SymbolT* symbols_row, int64_t run, void* row, uint8_t dtype = kDTypeFloat32) {
  float v[kRunChunks * kDim];
  DecodeRunValues<kDim>(c, scales_row, t_row, symbols_row, run, v);
  COSET_UNROLL
  for (int k = 0; k < kRunChunks; ++k) StoreChunkAs<kDim>(v + k * kDim, dtype, row, (run * kRunChunks + k) * kDim);
}

// acc[q] += <padded query q's chunks of the run of chunks first .. first + kRunChunks - 1, the
// decoded chunks> for q < queries (<= kQueries <= kMaxDotQueries): per chunk, its point (the Horner
// sum over levels sum_m q^m rep(b_m), exact: small integers and halves, or a power of two times
// it), which point(k, v) gives for chunk k of the run, its dot product with each query (fused
// multiply-adds in coordinate order), times its ramp (its T in `codes`) into the run's sum; then
// the run's sum times `base` (the block's base step, over the point's power of two) into acc. The
// padded queries start on a 16-byte boundary (then so do their chunks).
template <int kDim, int kQueries, typename SymbolT, class Point>
COSET_HD void AccumulateRunPointDots(const DeviceCodec& c, const RunCodes<SymbolT>& codes, float base, int64_t first,
                                     const Point& point, const float* padded_queries, int queries, float* acc) {
  static_assert(kDim == 4 || kDim == 8, "the run path serves d = 4 and 8");
  static_assert(kQueries <= kMaxDotQueries, "acc holds at most kMaxDotQueries sums");
  float run_sum[kQueries] = {};
  COSET_UNROLL
  for (int k = 0; k < kRunChunks; ++k) {
    const float ramp = c.ramp[codes.t_of(k)];
    float v[kDim];
    point(k, v);
    for (int j = 0; j < kQueries; ++j) {
      if (j >= queries) continue;  // not break: a loop of constant length unrolls, run_sum stays in registers
      float x[kDim];
      LoadAlignedChunk<kDim>(padded_queries + j * c.padded_cols + (first + k) * kDim, x);
      float dot = x[0] * v[0];
      for (int i = 1; i < kDim; ++i) dot = FusedMultiplyAdd(x[i], v[i], dot);
      run_sum[j] = FusedMultiplyAdd(ramp, dot, run_sum[j]);
    }
  }
  for (int j = 0; j < kQueries; ++j) acc[j] = FusedMultiplyAdd(base, run_sum[j], acc[j]);
}

// AccumulateRunPointDots over run `run` of a coded row, each chunk's point q rep(b_1) + rep(b_0)
// from two rows of the codebook's rep_point table. c satisfies RunsApply; kDim = c.dim, SymbolT
// its symbol type (WithRunTypes); rep_point and padded_queries start on 16-byte boundaries (then
// so do its rows).
template <int kDim, int kQueries, typename SymbolT>
COSET_HD void AccumulateRunDots(const DeviceCodec& c, const uint16_t* scales_row, const uint8_t* t_row,
                                const SymbolT* symbols_row, int64_t run, const float* padded_queries, int queries,
                                float* acc) {
  const int64_t first = run * kRunChunks;
  RunCodes<SymbolT> codes;
  codes.Load(t_row, symbols_row, first);
  const float base = BlockBaseAt(c, scales_row, BlockOfChunk(c, first));
  const float* rep_point = c.codebook.rep_point;
  const float q = static_cast<float>(c.codebook.q);
  auto point = [&](int k, float* v) {
    float low[kDim], high[kDim];
    LoadAlignedChunk<kDim>(rep_point + codes.symbol(k, 0) * kDim, low);
    LoadAlignedChunk<kDim>(rep_point + codes.symbol(k, 1) * kDim, high);
    for (int i = 0; i < kDim; ++i) v[i] = FusedMultiplyAdd(high[i], q, low[i]);
  };
  AccumulateRunPointDots<kDim, kQueries>(c, codes, base, first, point, padded_queries, queries, acc);
}

// --- Half points for the run path's GEMM on d = 8 codes (HalfPointCodes) --------------------------
// E8 q=4's codebook table is 65,536 rows of 8 floats, 2 MiB: it does not fit in shared memory, so
// the run path's GEMM reads a chunk's two rows from L2 at random, 64 bytes per 8 weights, about 13
// times the bytes of codes it streams. The codebook's points split into halves of 4 coordinates that
// take few values (E8 q=4: 1,024 halves in all; D8 q=4: 512), doubled coordinates within +-8. So the
// GEMM can read a chunk's level as two 10-bit indices into a 4 KiB table of those halves in shared
// memory (kHalfPointEntries words of four biased bytes), 20 bits instead of the 16-bit symbol. As
// on the packed paths, a half's two levels meet in one integer multiply-add of their words and
// each byte becomes a float through 2^23: the chunk's doubled point, exactly, so the sums are the
// run path's bit for bit (its floats times two, and half its base). The indices are built on the
// host once, when weights cross to a device (BuildHalfPointCodes, device_codec_host.h).

// An index into the half-point table takes 10 bits; the table's words.
constexpr int kHalfIndexBits = 10;
constexpr int kHalfPointEntries = 1 << kHalfIndexBits;
// A run's indices: two halves of each chunk's two levels, 160 bits in five words.
constexpr int kHalfIndicesPerRun = 2 * kRunLevels * kRunChunks;
constexpr int kHalfIndexWordsPerRun = kHalfIndicesPerRun * kHalfIndexBits / 32;
constexpr int kHalfIndexHeadWords = 4;  // read with one 16-byte load; the fifth word with a 4-byte one
static_assert(kHalfIndicesPerRun * kHalfIndexBits == 32 * kHalfIndexWordsPerRun, "a run's indices fill whole words");

// A coded tensor's half-point indices, as the GEMM reads them instead of its symbols (device
// pointers on a GPU). Run r of a row holds index 2 (kRunLevels k + m) + h (HalfIndexPlace: chunk k,
// level m, half h: coordinates 4 h .. 4 h + 3 of the level's point) at bits 10 i .. 10 i + 9 of its
// 160-bit little-endian number: words 4 r .. 4 r + 3 of the row's `head`, then word r of its
// `tail`. Indices packed end to end, so that each takes two instructions to extract (a funnel
// shift where it straddles two words, and a mask), already scaled to a byte offset into the table.
struct HalfPointCodes {
  const uint32_t* table = nullptr;  // kHalfPointEntries words: byte i = 2 x_i + bias
  int bias = 0;                     // max |2 x|: q A_1 + A_0 stays within a byte (HalfPointTable)
  const uint32_t* head = nullptr;   // rows * runs * kHalfIndexHeadWords: a run's bits 0..127
  const uint32_t* tail = nullptr;   // rows * runs: a run's bits 128..159
};

COSET_HD constexpr int HalfIndexPlace(int chunk, int level, int half) {
  return 2 * (kRunLevels * chunk + level) + half;
}

// Whether half points can serve c's GEMM: the run path's codes with a 16-bit symbol per chunk and
// level at d = 8 (E8 and D8 at q = 4), where the codebook also has a table (its halves number at
// most kHalfPointEntries: HalfPointTable, device_codec_host.h, which both of those have).
COSET_HD bool HalvesApply(const DeviceCodec& c) { return RunsApply(c) && c.dim == 8 && c.symbol_bytes == 2; }

// Bits shift .. shift + 31 of hi:lo (shift in 0..31): one funnel shift on a GPU.
COSET_HD uint32_t FunnelShiftRight(uint32_t lo, uint32_t hi, int shift) {
#if defined(__CUDA_ARCH__)
  return __funnelshift_r(lo, hi, shift);
#else
  return static_cast<uint32_t>((static_cast<uint64_t>(hi) << 32 | lo) >> shift);
#endif
}

// Index `place` of a run's five index words, times 4: its word's byte offset in the table. With
// `place` known at compile time, a shift (a funnel shift where the index straddles two words) and
// a mask.
COSET_HD uint32_t HalfIndexOffset(const uint32_t (&words)[kHalfIndexWordsPerRun], int place) {
  constexpr uint32_t kOffsetMask = (kHalfPointEntries - 1) << 2;
  const int bit = kHalfIndexBits * place, word = bit / 32, shift = bit % 32;
  if (shift < 2) return (words[word] << (2 - shift)) & kOffsetMask;
  const uint32_t above = word + 1 < kHalfIndexWordsPerRun ? words[word + 1] : 0u;
  return FunnelShiftRight(words[word], above, shift - 2) & kOffsetMask;
}

// The half-point table read where it lies (HalfPointCodes::table): the host runs' table; the
// kernel reads its copy in shared memory instead (cuda_codec.cu's HalfTableInShared). table(o)
// is the word at byte offset o.
struct HalfTableInPlace {
  const uint32_t* words;
  COSET_HD uint32_t operator()(uint32_t offset) const { return words[offset / 4]; }
};

// What HalfPointX2 subtracts from each byte of a half's two levels as a float: 2^23 + (q + 1) bias.
COSET_HD float HalfPointBytesOffset(const DeviceCodec& c, int bias) {
  return 8388608.0f + static_cast<float>(bias * (c.codebook.q + 1));
}

// Four doubled coordinates 2 (q x_1 + x_0) of a chunk's point from the table words of one half of
// its two levels (at byte offsets level0_at, level1_at) into v[0, 4): q A_1 + A_0 of the words
// (bytes 2 x + bias: the sum's bytes within 0..255) less (q + 1) bias (bytes_offset:
// HalfPointBytesOffset), exactly.
template <class HalfTable>
COSET_HD void HalfPointX2(const DeviceCodec& c, const HalfTable& table, float bytes_offset, uint32_t level0_at,
                          uint32_t level1_at, float* v) {
  TwoLevelBytesToFloats(c, table(level0_at), table(level1_at), bytes_offset, v);
}

// AccumulateRunPointDots over run `run` of a coded row, its chunks' doubled points from their
// half-point indices (head_row, tail_row: the row's HalfPointCodes) and `table` (the half points:
// shared memory on a GPU), and half the block's base. c satisfies HalvesApply; head_row and
// padded_queries start on 16-byte boundaries.
template <int kQueries, class HalfTable>
COSET_HD void AccumulateHalfRunDots(const DeviceCodec& c, const HalfTable& table, int bias, const uint16_t* scales_row,
                                    const uint8_t* t_row, const uint32_t* head_row, const uint32_t* tail_row,
                                    int64_t run, const float* padded_queries, int queries, float* acc) {
  const int64_t first = run * kRunChunks;
  RunCodes<uint16_t> codes;  // the T bytes (the symbols are not read)
  LoadWords<1>(t_row + first, &codes.t);
  uint32_t words[kHalfIndexWordsPerRun];
  LoadWords<kHalfIndexHeadWords>(head_row + kHalfIndexHeadWords * run, words);
  LoadWords<1>(tail_row + run, words + kHalfIndexHeadWords);
  const float half_base = 0.5f * BlockBaseAt(c, scales_row, BlockOfChunk(c, first));  // exact: base >= kMinStep or 0
  const float bytes_offset = HalfPointBytesOffset(c, bias);
  auto point = [&](int k, float* v) {
    COSET_UNROLL
    for (int h = 0; h < 2; ++h) {
      HalfPointX2(c, table, bytes_offset, HalfIndexOffset(words, HalfIndexPlace(k, 0, h)),
                  HalfIndexOffset(words, HalfIndexPlace(k, 1, h)), v + 4 * h);
    }
  };
  AccumulateRunPointDots<8, kQueries>(c, codes, half_base, first, point, padded_queries, queries, acc);
}

// --- The packed paths (KernelPath::kRuns, d = 4 codes of byte symbols: GEMM and decode) ----------
// The run path's GEMM and decode read a chunk's two codebook rows as floats (32 bytes) from a table
// of 4 KiB at random: a warp's 16-byte loads from it conflict in the banks of shared memory (about
// 10 passes per load instead of 4), and the GEMM lanes' query loads, 64 bytes apart, touch four
// times the lines they use. These read a chunk's point from a table of one 32-bit word per symbol,
// 2 rep(b) + bias in four bytes, that each lane holds a copy of in its own bank (a 32-way
// replicated 32 KiB table: a warp's lookup is one pass), and their lanes take consecutive chunks
// (coalesced query, code and output accesses). The two levels meet in one integer multiply-add on
// the packed bytes, and each byte becomes a float by the 2^23 trick (one byte permute and one add,
// no int-to-float conversion).

// Whether the packed GEMM and decode serve c: a table exists (d = 4, a symbol per chunk and level,
// the Horner sum's bytes within 0..255: PackedPointTable), two levels of one-byte symbols.
COSET_HD bool PackedApplies(const DeviceCodec& c) {
  return c.packed_points != nullptr && c.dim == 4 && c.codebook.symbol_dim == 4 && c.levels == kRunLevels &&
         c.symbol_bytes == 1 && c.q_pow2;
}

// The packed table read where it lies (DeviceCodec::packed_points): the host runs' table; the
// kernels read a lane's replica in shared memory instead (cuda_codec.cu's PackedReplica).
struct PackedTableInPlace {
  const uint32_t* words;
  COSET_HD uint32_t operator()(uint32_t symbol) const { return words[symbol]; }
};

// A chunk of a packed code from its two symbols (`pair`: level 0 in the low byte, level 1 in the
// next), its T and its block's base step: its doubled point from table(symbol) (the packed words:
// a lane's replica on a GPU) into v, and half its step (ChunkStepAt's). v[i] * half_step is
// DecodeChunk's float bit for bit: 2 w (0.5 step) and w step are the same real, and 0.5 step is
// exact (steps are at least kMinStep). c satisfies PackedApplies.
template <typename Table>
COSET_HD float PackedPoint(const DeviceCodec& c, const Table& table, uint32_t pair, uint32_t t, float base, float* v) {
  UnpackChunkPointX2(c, table(pair & 0xFFu), table(pair >> 8), v);
  return 0.5f * (base * c.ramp[t]);
}

// Chunk `chunk`'s two symbols in a row of packed codes: level 0 in the low byte, level 1 in the next.
COSET_HD uint32_t PackedPair(const uint8_t* symbols_row, int64_t chunk) {
#if defined(__CUDA_ARCH__)
  return *reinterpret_cast<const uint16_t*>(symbols_row + 2 * chunk);
#else
  return symbols_row[2 * chunk] | static_cast<uint32_t>(symbols_row[2 * chunk + 1]) << 8;
#endif
}

// Chunk `chunk` of a coded row as the packed paths read it (PackedPoint), its block `block` =
// BlockOfChunk(c, chunk) (which the caller may have found for several rows).
template <typename Table>
COSET_HD float PackedChunk(const DeviceCodec& c, const Table& table, const uint16_t* scales_row, const uint8_t* t_row,
                           const uint8_t* symbols_row, int64_t chunk, int64_t block, float* v) {
  return PackedPoint(c, table, PackedPair(symbols_row, chunk), t_row[chunk], BlockBaseAt(c, scales_row, block), v);
}

// The packed decode of chunk `chunk` into its place in `row` (DecodeChunkAt's floats, stored as
// dtype as DecodeRunAt stores them).
template <typename Table>
COSET_HD void DecodePackedChunkAt(const DeviceCodec& c, const Table& table, const uint16_t* scales_row,
                                  const uint8_t* t_row, const uint8_t* symbols_row, int64_t chunk, void* row,
                                  uint8_t dtype = kDTypeFloat32) {
  float v[4];
  const float half_step = PackedChunk(c, table, scales_row, t_row, symbols_row, chunk, BlockOfChunk(c, chunk), v);
  for (int i = 0; i < 4; ++i) v[i] *= half_step;
  StoreChunkAs<4>(v, dtype, row, 4 * chunk);
}

// acc[j] += half_step <x[4 j, 4 j + 4), v> for j < queries: query j's chunk dotted with a packed
// chunk's doubled point v (PackedPoint) by fused multiply-adds in coordinate order, times half the
// step into acc.
template <int kQueries>
COSET_HD void AccumulatePointDots(const float* v, float half_step, const float* x, int queries, float* acc) {
  static_assert(kQueries <= kMaxDotQueries, "acc holds at most kMaxDotQueries sums");
  for (int j = 0; j < kQueries; ++j) {
    // Not break: a loop of constant length unrolls, acc stays in registers. Query 0 always exists
    // (queries >= 1): no test, whose branch would hold a GEMV's loads back until it is taken.
    if (j > 0 && j >= queries) continue;
    float dot = x[4 * j] * v[0];
    for (int i = 1; i < 4; ++i) dot = FusedMultiplyAdd(x[4 * j + i], v[i], dot);
    acc[j] = FusedMultiplyAdd(half_step, dot, acc[j]);
  }
}

// --- Two-bit T for the packed GEMM (CompactOverloads) ------------------------------------------
// A GEMV streams the weights' codes once, so their bytes bound its speed. D4 q=4 M=2 codes keep a
// byte of T per chunk of four entries beside two bytes of symbols: 2 of their 6.06 bits per entry
// (blocks of 256). cuBLAS's bf16 GEMV of 8192 x 28672 streamed 3.9 TB/s on the H200 (0.12 ms), so
// the 3x meant reading those codes at 4.45 TB/s, more than a device copy moved there (4.1).
// T is small (on Gaussian rows 0, 1 or 2 for 97.7 % of D4 chunks: bench/ladder_schedule), so the
// packed GEMM reads it in two bits per chunk, 3 standing for "3 or more, in the row's escapes":
// 4.75 bits per entry with the escapes, 3.49 TB/s for that 3x. The escapes are the chunks with
// T >= 3, row by row (CSR), each word `chunk << 8 | T`; the warp that sums a row takes them after
// its chunks, so each chunk is summed once, with its own T, in an order fixed by the layout.

// Chunks per word of two-bit T; the field of a chunk whose T is in the escapes.
constexpr int kCompactChunksPerWord = 16;
constexpr uint32_t kCompactEscape = 3;

// The two-bit T of a coded tensor, as the packed GEMM reads it (device pointers on a GPU; built
// on the host from the T bytes by BuildCompactOverloads, device_codec_host.h).
struct CompactOverloads {
  const uint32_t* words = nullptr;         // rows * CompactWordsPerRow: chunk k's T (or the escape)
                                           // in bits 2 (k % 16) of word k / 16 of its row
  const uint32_t* escape_begin = nullptr;  // rows + 1 offsets into escapes: row n's are
                                           // escapes[escape_begin[n] .. escape_begin[n + 1])
  const uint32_t* escapes = nullptr;       // chunk << 8 | T, ascending chunk within a row
};

COSET_HD int64_t CompactWordsPerRow(const DeviceCodec& c) {
  return (c.chunks_per_row + kCompactChunksPerWord - 1) / kCompactChunksPerWord;
}

// Whether two-bit T can describe these codes: escape words hold a row's chunk in 24 bits, and the
// row offsets count escapes (at most every chunk) in 32.
COSET_HD bool CompactOverloadsApply(const DeviceCodec& c) {
  return PackedApplies(c) && c.chunks_per_row < (int64_t{1} << 24) && c.rows * c.chunks_per_row < (int64_t{1} << 32);
}

// Chunk `chunk`'s two-bit field from its row's words.
COSET_HD uint32_t CompactTAt(const uint32_t* words_row, int64_t chunk) {
  return (words_row[chunk / kCompactChunksPerWord] >> (2 * (chunk % kCompactChunksPerWord))) & 3u;
}

// acc[j] += <query j's chunk (x[4 j, 4 j + 4)), decoded chunk `chunk` of a coded row> for j <
// queries (AccumulatePointDots), its T read in two bits: a chunk whose field is the escape adds
// nothing here (its half step is 0, so each sum is acc + 0) and is summed with its T from the
// row's escapes (AccumulatePackedEscapeDots).
template <int kQueries, typename Table>
COSET_HD void AccumulateCompactChunkDots(const DeviceCodec& c, const Table& table, const uint16_t* scales_row,
                                         const uint32_t* words_row, const uint8_t* symbols_row, int64_t chunk,
                                         int64_t block, const float* x, int queries, float* acc) {
  const uint32_t code = CompactTAt(words_row, chunk);
  float v[4];
  // The escape's ramp entry exists: a T >= 3 means t_max >= 3.
  float half_step = PackedPoint(c, table, PackedPair(symbols_row, chunk), code, BlockBaseAt(c, scales_row, block), v);
  if (code == kCompactEscape) half_step = 0.0f;
  AccumulatePointDots<kQueries>(v, half_step, x, queries, acc);
}

// An escape of a row (`escape`: chunk << 8 | T) into acc: AccumulatePointDots at its T, query by
// query (query j's chunk from queries_first + j * padded_cols), so that only one query's values
// take registers (escapes are rare; the chunk loop's registers are for the common case).
template <int kQueries, typename Table>
COSET_HD void AccumulatePackedEscapeDots(const DeviceCodec& c, const Table& table, const uint16_t* scales_row,
                                         const uint8_t* symbols_row, uint32_t escape, const float* queries_first,
                                         int queries, float* acc) {
  const int64_t chunk = escape >> 8;
  float v[4];
  const float half_step = PackedPoint(c, table, PackedPair(symbols_row, chunk), escape & 0xFFu,
                                      BlockBaseAt(c, scales_row, BlockOfChunk(c, chunk)), v);
  for (int j = 0; j < kQueries; ++j) {
    if (j > 0 && j >= queries) continue;
    float x[4];
    LoadAlignedChunk<4>(queries_first + j * c.padded_cols + 4 * chunk, x);
    AccumulatePointDots<1>(v, half_step, x, 1, acc + j);
  }
}

// What the GEMM kernels read beside a coded tensor's own buffers, where given (LaunchGemm; built on
// the host when weights cross to a device, CodesFor::kGemm): two-bit T for the packed GEMM, half
// points for the run path at d = 8. A null pointer: not given.
struct GemmCodes {
  CompactOverloads compact;
  HalfPointCodes halves;
};

// --- The tensor-core GEMM (KernelPath::kTensorCores: packed or half points, > 4 queries) -------
// Tensor cores multiply bf16 values (8 significant bits) and add in float32; a decoded weight and a
// query value have 24 bits. Each becomes three bf16 limbs, hi + mid + lo, exactly
// (SplitBf16Limbs), and the kernel sums the six limb products of size 2^-16 of hi hi and above
// (hi hi, hi mid, mid hi, mid mid, hi lo, lo hi), leaving out mid lo, lo mid and lo lo (2^-24 and
// below): decode-then-dot's float32 arithmetic up to ~2^-22 of sum |x w| and the float sums'
// rounding, where one bf16 product (the usual tensor-core GEMM) is off by up to 2^-8.

// The kernel takes a row's values four at a time, a quad (a lane's share of one MMA's k = 16):
// D4's quad is a chunk, E8's (and D8's, on half points) a half of one. A warp's quads of one row
// per step: four per lane group (a lane's four quads, one per MMA), so rows of whole steps take no
// tail.
constexpr int kTensorStepQuads = 16;

// Whether the tensor-core GEMM serves c on its packed codes (PackedApplies, quads of one chunk):
// rows of whole steps, a lane's four chunks in one block.
COSET_HD bool TensorCoresApply(const DeviceCodec& c) {
  return PackedApplies(c) && c.chunks_per_row % kTensorStepQuads == 0 && c.chunks_per_block % 4 == 0;
}

// Whether it serves c on half points (HalvesApply, quads of half a chunk): rows of whole steps of
// kTensorStepQuads / 2 chunks (a lane's two chunks lie in one run, so in one block).
COSET_HD bool HalvesTensorCoresApply(const DeviceCodec& c) {
  return HalvesApply(c) && c.chunks_per_row % (kTensorStepQuads / 2) == 0;
}

// Whether LaunchGemm's tensor-core kernel serves c with these GEMM codes (for more than 4 queries,
// on aligned buffers).
COSET_HD bool TensorCoresServe(const DeviceCodec& c, const GemmCodes& gemm) {
  return TensorCoresApply(c) || (gemm.halves.table != nullptr && HalvesTensorCoresApply(c));
}

// value = limbs[0] + limbs[1] + limbs[2] exactly, each limb a bf16 (its low 16 bits zero), for
// |value| >= 2^-110: hi is value cut to its first 8 significant bits, mid the rest cut likewise, lo
// what remains (8 bits at most: 24 less hi's and mid's). A float less its own truncation is exact.
// Below 2^-110 value has bits under 2^-133, bf16's least: lo's bf16 half misses them (less than
// 2^-133 in all).
COSET_HD void SplitBf16Limbs(float value, float* limbs) {
  const float hi = BitsToFloat(FloatBits(value) & 0xFFFF0000u);
  const float rest = value - hi;
  const float mid = BitsToFloat(FloatBits(rest) & 0xFFFF0000u);
  limbs[0] = hi;
  limbs[1] = mid;
  limbs[2] = rest - mid;
}

// Two bf16 limbs (floats whose low 16 bits are zero) as one 32-bit MMA operand register, the first
// in the low half (an MMA register's lower k index).
COSET_HD uint32_t PackBf16Pair(float first, float second) {
#if defined(__CUDA_ARCH__)
  return __byte_perm(FloatBits(first), FloatBits(second), 0x7632);
#else
  return (FloatBits(first) >> 16) | (FloatBits(second) & 0xFFFF0000u);
#endif
}

// Four values of a chunk (decoded weights or query values) as MMA operand registers per limb:
// words[l][0] holds limb l of values 0 and 1, words[l][1] of values 2 and 3.
COSET_HD void ChunkLimbWords(const float* v, uint32_t (*words)[2]) {
  float limbs[4][3];
  for (int i = 0; i < 4; ++i) SplitBf16Limbs(v[i], limbs[i]);
  for (int l = 0; l < 3; ++l) {
    words[l][0] = PackBf16Pair(limbs[0][l], limbs[1][l]);
    words[l][1] = PackBf16Pair(limbs[2][l], limbs[3][l]);
  }
}

// Chunk j (0..3) of four consecutive chunks of a packed code, decoded to floats (DecodeChunk's, bit
// for bit: PackedPoint) from the chunks' symbol bytes (8, level 0 then 1 per chunk) and T bytes
// (4) read as words (LoadWords), and their block's base step.
template <typename Table>
COSET_HD void DecodePackedQuadChunk(const DeviceCodec& c, const Table& table, const uint32_t* symbols, uint32_t t_bytes,
                                    float base, int j, float* w) {
  const uint32_t pair = (symbols[j / 2] >> (16 * (j & 1))) & 0xFFFFu;
  const float half_step = PackedPoint(c, table, pair, (t_bytes >> (8 * j)) & 0xFFu, base, w);
  for (int i = 0; i < 4; ++i) w[i] *= half_step;
}

// The index words of chunks 2 pair and 2 pair + 1 (pair 0 or 1) of a run: the run's words from bit
// 80 pair on, so that chunk k (0, 1) of the pair has its indices at HalfIndexPlace(k, m, h) of
// these. Places 0..7 take bits 0..79: words 3 and 4 are zero.
COSET_HD void PairHalfIndexWords(const uint32_t (&run_words)[kHalfIndexWordsPerRun], int pair,
                                 uint32_t (&words)[kHalfIndexWordsPerRun]) {
  constexpr int kPairBits = HalfIndexPlace(2, 0, 0) * kHalfIndexBits, kWord = kPairBits / 32, kShift = kPairBits % 32;
  static_assert(kWord + 3 == kHalfIndexWordsPerRun && kShift > 0, "the second pair's bits: three words from word 2");
  const uint32_t second[3] = {FunnelShiftRight(run_words[kWord], run_words[kWord + 1], kShift),
                              FunnelShiftRight(run_words[kWord + 1], run_words[kWord + 2], kShift),
                              run_words[kWord + 2] >> kShift};
  for (int i = 0; i < 3; ++i) words[i] = pair == 0 ? run_words[i] : second[i];
  words[3] = words[4] = 0;
}

// Quad j (0..3: half j % 2 of chunk j / 2) of a pair of a run's chunks, decoded to floats
// (DecodeChunk's, bit for bit: HalfPointX2's doubled point times half the step, as PackedPoint
// argues) from the pair's index words (PairHalfIndexWords), the pair's T bytes (chunk k's in byte
// k of t_bytes) and their block's base step.
template <class HalfTable>
COSET_HD void DecodeHalfQuad(const DeviceCodec& c, const HalfTable& table, float bytes_offset,
                             const uint32_t (&words)[kHalfIndexWordsPerRun], uint32_t t_bytes, float base, int j,
                             float* w) {
  const int k = j / 2, h = j % 2;
  HalfPointX2(c, table, bytes_offset, HalfIndexOffset(words, HalfIndexPlace(k, 0, h)),
              HalfIndexOffset(words, HalfIndexPlace(k, 1, h)), w);
  const float half_step = 0.5f * (base * c.ramp[(t_bytes >> (8 * k)) & 0xFFu]);
  for (int i = 0; i < 4; ++i) w[i] *= half_step;
}

// The sum of a warp's 32 lane values as the GEMM and DotRows kernels take it (__shfl_down_sync by
// 16, 8, 4, 2, 1; lane 0's result), on the host: values[0] ends as that sum, bit for bit.
template <typename T>
void WarpTreeSum(T* values) {
  for (int offset = 16; offset > 0; offset /= 2) {
    for (int lane = 0; lane < offset; ++lane) values[lane] += values[lane + offset];
  }
}

// DotRows (core/inner_product.h) on the device: the two-sided LUT (num_symbols x num_symbols, as
// TwoSidedLut holds it: int32 for integral lattices, float for A2) that every chunk pair looks up.
template <typename LutT>
struct PairLut {
  const LutT* values = nullptr;
  int64_t symbols = 0;
};

// The term of chunk `chunk` in <decode(a)[r], decode(b)[r]>: the pair's LUT sum (exact for an
// integral LUT) times both bases and ramps, in double as DotRows scales its integer sums. a and b
// describe the two tensors (the same lattice, q, M and shape; blocks and scales may differ); the
// rows are row r's scales, T and symbols (as LaunchDecode reads them) of each.
template <typename SymbolT, typename LutT>
COSET_HD double ChunkPairDot(const DeviceCodec& a, const uint16_t* scales_a, const uint8_t* t_a,
                             const SymbolT* symbols_a, const DeviceCodec& b, const uint16_t* scales_b,
                             const uint8_t* t_b, const SymbolT* symbols_b, const PairLut<LutT>& lut, int64_t chunk) {
  using Acc = typename std::conditional<std::is_integral<LutT>::value, int64_t, double>::type;
  const int per_level = a.dim / a.codebook.symbol_dim;
  const Acc sum =
      ChunkPairLutSum<Acc>(lut.values, lut.symbols, a.codebook.q, a.levels, per_level,
                           symbols_a + chunk * a.symbols_per_chunk, symbols_b + chunk * b.symbols_per_chunk);
  const double base = static_cast<double>(BlockBaseAt(a, scales_a, BlockOfChunk(a, chunk))) *
                      static_cast<double>(BlockBaseAt(b, scales_b, BlockOfChunk(b, chunk)));
  return base * static_cast<double>(a.ramp[t_a[chunk]]) * static_cast<double>(b.ramp[t_b[chunk]]) *
         static_cast<double>(sum);
}

}  // namespace device
}  // namespace coset
