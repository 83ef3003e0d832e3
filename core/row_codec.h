// Row kernels of the HNLQ codec: Algorithm 1 (encode) and Algorithm 2 (decode) of Kaplan &
// Ordentlich 2025 (arXiv 2505.13164), applied chunk by chunk along one row, with per-block
// scaling, the optional rotation and the geometric overload ramp.
//
// The same source (simd/row_codec_impl.h) is compiled once portable, once with AVX2 and once with
// AVX-512 (FAISS-style one file per ISA, simd/row_codec_{portable,avx2,avx512}.cc); -ffp-contract=off
// keeps them bit-identical, which the tests check. The level comes from the one dispatch facility
// (simd/dispatch.h).
#pragma once

#include <cstdint>
#include <vector>

#include "core/codebook.h"
#include "core/params.h"
#include "core/simd/dispatch.h"
#include "core/symbol_packing.h"

namespace coset {

// Everything the row kernels read, resolved once per tensor.
struct RowCodecContext {
  const Codebook* codebook = nullptr;
  Layout layout;
  SymbolPacking packing;
  int levels = 0;
  int block = 0;
  int t_max = 0;
  ScaleMode scale = ScaleMode::kNone;
  CapPolicy on_cap = CapPolicy::kFail;
  float beta = 0.0f;
  std::vector<float> ramp;            // ramp[T] = 2^(alpha T), T in [0, t_max]
  std::vector<float> rotation_signs;  // empty when rotation is off
  // Decode with non-temporal stores where a kernel has them: set for outputs well beyond the last
  // level cache, whose lines would be evicted before anyone reads them (kStreamingOutputBytes).
  bool stream_output = false;
  // Whether a chunk coordinate x / step can exceed kMaxChunkCoordinate, which the encoders clamp
  // it to. Block scales bound it far below (TensorCodec::MakeContext); the batch encoders then
  // skip the clamp, a no-op there (D4's encode ~3 % faster).
  bool clamp_chunk_coordinates = true;
};

// Outputs at least this large are decoded with non-temporal stores (twice a 32 MiB L3).
inline constexpr int64_t kStreamingOutputBytes = int64_t{64} << 20;

// Per-thread scratch, allocated once per range of rows (never per chunk).
struct RowScratch {
  std::vector<float> work;
  std::vector<uint32_t> symbols;
  std::vector<float> block_base;
  std::vector<float> chunk_steps;  // the decoder's steps of one block
  std::vector<float> decoded;      // a decoded row before its epilogue, where it cannot be fused
  // Overload-ramp retries of one row (batch encoders): the listed chunks (padded to a whole batch
  // of up to 16 lanes), their block bases and the overload masks (a bit per chunk, with room for
  // a whole 64-chunk group past the end).
  std::vector<float> pending_base;
  std::vector<uint8_t> over_masks;
  std::vector<int32_t> retry_list;
  explicit RowScratch(const Layout& layout)
      : work(layout.padded_cols),
        symbols(layout.symbols_per_row),
        block_base(layout.blocks_per_row),
        chunk_steps(layout.chunks_per_row + 16),
        decoded(layout.cols),
        pending_base(layout.chunks_per_row + 16),
        over_masks(layout.chunks_per_row / 8 + 16),
        retry_list(layout.chunks_per_row + 16) {}
};

struct RowEncodeCounts {
  // First NaN/Inf entry of the row, or (rotation only) the largest entry of a block whose
  // transform overflows float32; then nothing is encoded.
  int64_t nonfinite_index = -1;
  int64_t first_try_overloads = 0;  // chunks with T > 0
  int64_t capped = 0;               // chunks still overloaded at t_max
  int64_t first_capped_chunk = -1;  // index within the row of the first capped chunk
};

// Encodes one row: x (cols floats) -> scales (blocks_per_row bf16, only when scale != none),
// t (chunks_per_row), packed (row_bytes).
using EncodeRowFn = RowEncodeCounts (*)(const RowCodecContext& ctx, const float* x, uint16_t* scales, uint8_t* t,
                                        uint8_t* packed, RowScratch& scratch);
// Decodes one row into out (cols floats). Returns false when the packed symbols are invalid.
using DecodeRowFn = bool (*)(const RowCodecContext& ctx, const uint16_t* scales, const uint8_t* t,
                             const uint8_t* packed, float* out, RowScratch& scratch);

// Decodes one row v and writes out[i] = base[i] + scale * v[i] for i < n <= cols only (base may be
// out itself, or null for 0): a decode's epilogue (TensorCodec::Epilogue, error feedback's
// residual), inside the kernel where it allows (the D4 byte decoder: no row buffer written and read
// back), the same floats at every level (no fused multiply-add). Returns false as DecodeRowFn.
using DecodeScaleAddFn = bool (*)(const RowCodecContext& ctx, const uint16_t* scales, const uint8_t* t,
                                  const uint8_t* packed, float* out, const float* base, float scale, int64_t n,
                                  RowScratch& scratch);

struct RowKernels {
  EncodeRowFn encode;
  DecodeRowFn decode;
  DecodeScaleAddFn decode_scale_add;
};

// symbol_bits: SymbolPacking::bits_per_symbol_if_pow2() (8 and 16 take the byte-aligned paths).
RowKernels GetRowKernels(SimdLevel level, LatticeKind kind, int dim, bool q_pow2, int symbol_bits);

namespace portable {
RowKernels Kernels(LatticeKind kind, int dim, bool q_pow2, int symbol_bits);
}
namespace avx2 {
RowKernels Kernels(LatticeKind kind, int dim, bool q_pow2, int symbol_bits);
}
namespace avx512 {
RowKernels Kernels(LatticeKind kind, int dim, bool q_pow2, int symbol_bits);
}

}  // namespace coset
