#include "kernels/device_codec_host.h"

#include <algorithm>
#include <cstring>
#include <unordered_map>
#include <utility>

#include "absl/strings/str_cat.h"
#include "core/inner_product.h"
#include "core/lut.h"
#include "core/status_macros.h"

namespace coset {
namespace device {

static_assert(kLatticeZ == static_cast<uint8_t>(LatticeKind::kZ) &&
                  kLatticeA2 == static_cast<uint8_t>(LatticeKind::kA2) &&
                  kLatticeD == static_cast<uint8_t>(LatticeKind::kD) &&
                  kLatticeE8 == static_cast<uint8_t>(LatticeKind::kE8),
              "device lattice numbers follow LatticeKind");
static_assert(kScaleNone == static_cast<uint8_t>(ScaleMode::kNone) &&
                  kScaleRms == static_cast<uint8_t>(ScaleMode::kRms) &&
                  kScaleAbsMax == static_cast<uint8_t>(ScaleMode::kAbsMax),
              "device scale numbers follow ScaleMode");
static_assert(kDTypeFloat32 == static_cast<uint8_t>(DType::kFloat32) &&
                  kDTypeFloat64 == static_cast<uint8_t>(DType::kFloat64) &&
                  kDTypeBfloat16 == static_cast<uint8_t>(DType::kBfloat16) &&
                  kDTypeFloat16 == static_cast<uint8_t>(DType::kFloat16),
              "device dtype numbers follow DType");

DeviceCodec DeviceCodecPlan::view() const {
  const RowCodecContext& ctx = context;
  const Layout& l = ctx.layout;
  DeviceCodec c;
  c.codebook = ctx.codebook->view();
  c.lattice = static_cast<uint8_t>(params.lattice.kind());
  c.scale = static_cast<uint8_t>(params.scale);
  c.q_pow2 = ctx.codebook->q_is_power_of_two();
  c.dim = l.dim;
  c.levels = ctx.levels;
  c.block = ctx.block;
  c.t_max = ctx.t_max;
  c.beta = ctx.beta;
  c.ramp = ctx.ramp.data();
  c.rotation_signs = ctx.rotation_signs.empty() ? nullptr : ctx.rotation_signs.data();
  c.symbol_bytes = symbol_bytes();
  c.rows = l.rows;
  c.cols = l.cols;
  c.padded_cols = l.padded_cols;
  c.blocks_per_row = l.blocks_per_row;
  c.chunks_per_row = l.chunks_per_row;
  c.symbols_per_chunk = l.symbols_per_chunk;
  c.chunks_per_block = ctx.block / l.dim;
  for (int shift = 0; shift < 32; ++shift) {
    if ((int64_t{1} << shift) == c.chunks_per_block) c.chunk_block_shift = shift;
  }
  c.packed_points = packed_points.empty() ? nullptr : packed_points.data();
  c.packed_bias = packed_bias;
  return c;
}

std::vector<uint32_t> PackedPointTable(const Codebook& codebook) {
  const std::vector<int8_t>& x2 = codebook.rep_point_x2_int8();
  const int d = codebook.lattice().dim();
  if ((d != 4 && d != 8) || codebook.symbol_dim() != d || codebook.num_symbols() > (d == 4 ? 256 : 65536) ||
      x2.empty()) {
    return {};
  }
  const int32_t bias = codebook.max_abs_rep_point_x2();
  std::vector<uint32_t> words(codebook.num_symbols() * d / 4, 0);
  for (size_t w = 0; w < words.size(); ++w) {
    for (int i = 0; i < 4; ++i) words[w] |= static_cast<uint32_t>(x2[4 * w + i] + bias) << (8 * i);
  }
  return words;
}

std::optional<int> PackedBias(const Codebook& codebook, int levels) {
  int64_t bias = 0;
  for (int m = 0; m < levels; ++m) {
    bias = bias * codebook.q() + codebook.max_abs_rep_point_x2();
    if (2 * bias > 255) return std::nullopt;
  }
  return static_cast<int>(bias);
}

int DeviceCodecPlan::symbol_bytes() const {
  // Whole-byte symbols, one per chunk and level, are the packed rows as they are (the CPU's direct
  // path); Z^n with n > 1 codes a symbol per coordinate, which never takes it.
  const Layout& l = context.layout;
  const int bits = context.packing.bits_per_symbol_if_pow2();
  const bool whole_chunk = l.symbol_dim == l.dim;
  const int direct = whole_chunk && (bits == 8 || bits == 16) ? bits / 8 : 4;
  return direct < 4 && context.packing.row_bytes() == l.symbols_per_row * direct ? direct : 4;
}

absl::StatusOr<DeviceCodecPlan> MakePlan(const TensorCodec& codec, const std::vector<int64_t>& shape) {
  DeviceCodecPlan plan;
  COSET_ASSIGN_OR_RETURN(plan.context, codec.MakeContext(shape));
  plan.params = codec.params();
  COSET_ASSIGN_OR_RETURN(plan.codebook, Codebook::Get(plan.params.lattice, plan.params.q));
  plan.context.codebook = plan.codebook.get();
  // D4's packed table (256 words) with every plan; E8's (512 KiB) only on a device (CudaCodec's
  // tables, built once), where the run decode reads it.
  const std::optional<int> bias = PackedBias(*plan.codebook, plan.context.levels);
  if (bias.has_value() && plan.codebook->lattice().dim() == 4) {
    plan.packed_points = PackedPointTable(*plan.codebook);
    plan.packed_bias = *bias;
  }
  return plan;
}

int64_t SymbolBufferBytes(const DeviceCodecPlan& plan) {
  const Layout& l = plan.context.layout;
  return l.rows * l.symbols_per_row * plan.symbol_bytes();
}

CompressedTensor AssembleTensor(const DeviceCodecPlan& plan, DType dtype, std::vector<uint16_t> scales,
                                std::vector<uint8_t> t, std::vector<uint8_t> symbols) {
  const Layout& l = plan.context.layout;
  CompressedTensor out;
  out.params = plan.params;
  out.dtype = dtype;
  out.layout = l;
  out.row_bytes = plan.context.packing.row_bytes();
  if (plan.params.scale == ScaleMode::kNone) scales.clear();
  out.scales = std::move(scales);
  out.t = std::move(t);
  out.symbols = PackKernelSymbols(plan, std::move(symbols));
  return out;
}

std::vector<uint8_t> PackKernelSymbols(const DeviceCodecPlan& plan, std::vector<uint8_t> symbols) {
  if (plan.symbol_bytes() < 4) return symbols;
  const Layout& l = plan.context.layout;
  const int64_t row_bytes = plan.context.packing.row_bytes();
  std::vector<uint8_t> packed(l.rows * row_bytes);
  const uint32_t* words = reinterpret_cast<const uint32_t*>(symbols.data());
  for (int64_t r = 0; r < l.rows; ++r) {
    plan.context.packing.PackRow(words + r * l.symbols_per_row, packed.data() + r * row_bytes);
  }
  return packed;
}

CompressedTensor FinishAddCodes(const CompressedTensor& first, const DeviceCodecPlan& plan,
                                std::vector<uint8_t> symbols, std::vector<uint8_t> inexact, SumValidation* validation) {
  CompressedTensor out = first;
  out.symbols = PackKernelSymbols(plan, std::move(symbols));
  if (validation != nullptr) {
    validation->chunks = static_cast<int64_t>(inexact.size());
    validation->inexact_chunks = 0;
    for (uint8_t v : inexact) validation->inexact_chunks += v;
    validation->inexact = std::move(inexact);
  }
  return out;
}

absl::StatusOr<CodedForKernels> PrepareCoded(const CompressedTensor& tensor) {
  COSET_RETURN_IF_ERROR(TensorCodec::CheckConsistent(tensor));
  CodedForKernels coded;
  COSET_ASSIGN_OR_RETURN(TensorCodec codec, TensorCodec::Create(tensor.params));
  COSET_ASSIGN_OR_RETURN(coded.plan, MakePlan(codec, tensor.shape));
  if (coded.plan.symbol_bytes() < 4) {
    coded.symbols = tensor.symbols;  // every value is a valid symbol
    return coded;
  }
  const Layout& l = tensor.layout;
  coded.symbols.resize(l.rows * l.symbols_per_row * sizeof(uint32_t));
  uint32_t* words = reinterpret_cast<uint32_t*>(coded.symbols.data());
  for (int64_t r = 0; r < l.rows; ++r) {
    if (!UnpackRowSymbols(tensor, r, words + r * l.symbols_per_row)) {
      return absl::DataLossError(absl::StrCat("packed symbols of row ", r, " are invalid (corrupt data)"));
    }
  }
  return coded;
}

absl::Status CheckDeviceEncode(const TensorCodec& codec, const float* x, const std::vector<int64_t>& shape, DType dtype,
                               bool refused, int64_t capped) {
  if (!refused && (capped == 0 || codec.params().on_cap != CapPolicy::kFail)) return absl::OkStatus();
  COSET_RETURN_IF_ERROR(codec.Encode(x, shape, dtype).status());
  return absl::InternalError("the device encode refused an input that the CPU codec encodes");
}

std::vector<BlockSlice> SliceBlocks(const DeviceCodec& c, int64_t blocks_per_slice) {
  const int64_t items = BlockItems(c);
  if (blocks_per_slice <= 0) blocks_per_slice = std::max<int64_t>(items, 1);
  std::vector<BlockSlice> slices;
  for (int64_t begin = 0; begin < items; begin += blocks_per_slice) {
    slices.push_back({begin, std::min(begin + blocks_per_slice, items)});
  }
  return slices;
}

namespace {

// f(r, run) for each run of kRunChunks chunks among `chunks` (a slice's: whole runs where
// RunsApply), in order: run `run` of row r, as the run kernels' threads take them.
template <class F>
void ForEachRun(const DeviceCodec& c, IndexRange chunks, F&& f) {
  const int64_t runs_per_row = c.chunks_per_row / kRunChunks;
  for (int64_t i = chunks.begin / kRunChunks; i < chunks.end / kRunChunks; ++i) f(i / runs_per_row, i % runs_per_row);
}

}  // namespace

absl::StatusOr<CompressedTensor> EncodeWithDeviceSteps(const TensorCodec& codec, const float* x,
                                                       const std::vector<int64_t>& shape, DType dtype,
                                                       EncodeStats* stats, int64_t blocks_per_slice, KernelPath path) {
  COSET_ASSIGN_OR_RETURN(DeviceCodecPlan plan, MakePlan(codec, shape));
  const DeviceCodec c = plan.view();
  const Layout& l = plan.context.layout;
  std::vector<float> work(l.rows * l.padded_cols);
  std::vector<uint16_t> scales(l.rows * l.blocks_per_row);
  std::vector<float> base(l.rows * l.blocks_per_row);
  std::vector<uint8_t> t(l.rows * l.chunks_per_row);
  std::vector<uint8_t> symbols(SymbolBufferBytes(plan));
  bool refused = false;
  EncodeStats counts;
  // Slice by slice, item by item, as LaunchEncode's two kernels take them.
  for (const BlockSlice& slice : SliceBlocks(c, blocks_per_slice)) {
    for (int64_t i = slice.begin; i < slice.end; ++i) {
      const int64_t r = i / l.blocks_per_row, b = i % l.blocks_per_row;
      refused |= !PrepareBlock(c, x + r * l.cols, b, work.data() + r * l.padded_cols,
                               scales.data() + r * l.blocks_per_row, base.data() + r * l.blocks_per_row);
    }
    if (refused) break;  // the codes are dropped: the CPU codec reports the input below
    const IndexRange chunks = SliceChunks(c, slice);
    if (UsesRuns(c, path)) {
      WithRunTypes(c, [&](auto dim, auto symbol) {
        WithRunLattice<dim()>(c, [&](auto kernel) {
          ForEachRun(c, chunks, [&](int64_t r, int64_t run) {
            EncodeRunAt<decltype(kernel), dim()>(
                c, ReadsInPlace(c) ? x + r * l.cols : work.data() + r * l.padded_cols,
                base.data() + r * l.blocks_per_row, run,
                reinterpret_cast<decltype(symbol)*>(symbols.data() + RowSymbolsOffsetBytes(c, r)),
                t.data() + r * l.chunks_per_row, &counts.first_try_overloads, &counts.capped);
          });
        });
      });
      continue;
    }
    WithChunkTypes(c, [&](auto dim, auto symbol) {
      using SymbolT = decltype(symbol);
      for (int64_t i = chunks.begin; i < chunks.end; ++i) {
        const int64_t r = i / l.chunks_per_row, chunk = i % l.chunks_per_row;
        const float* row = ReadsInPlace(c) ? x + r * l.cols : work.data() + r * l.padded_cols;
        const int t_chunk = EncodeChunkAt<dim()>(
            c, row, base.data() + r * l.blocks_per_row, chunk,
            reinterpret_cast<SymbolT*>(symbols.data() + RowSymbolsOffsetBytes(c, r)), t.data() + r * l.chunks_per_row);
        counts.first_try_overloads += t_chunk != 0;
        counts.capped += t_chunk < 0;
      }
    });
  }
  COSET_RETURN_IF_ERROR(CheckDeviceEncode(codec, x, shape, dtype, refused, counts.capped));
  counts.chunks = l.rows * l.chunks_per_row;
  if (stats != nullptr) *stats = counts;
  CompressedTensor out = AssembleTensor(plan, dtype, std::move(scales), std::move(t), std::move(symbols));
  out.shape = shape;
  return out;
}

absl::Status DecodeWithDeviceSteps(const CompressedTensor& tensor, float* out, int64_t blocks_per_slice,
                                   KernelPath path) {
  COSET_ASSIGN_OR_RETURN(const CodedForKernels coded, PrepareCoded(tensor));
  const DeviceCodec c = coded.plan.view();
  const std::vector<uint8_t>& symbols = coded.symbols;
  const Layout& l = tensor.layout;
  std::vector<float> work(ReadsInPlace(c) ? 0 : l.rows * l.padded_cols);
  // Slice by slice, item by item, as LaunchDecode's two kernels take them.
  auto scales_of = [&](int64_t r) {
    return tensor.scales.empty() ? nullptr : tensor.scales.data() + r * l.blocks_per_row;
  };
  auto symbols_of = [&](int64_t r, auto symbol) {
    return reinterpret_cast<const decltype(symbol)*>(symbols.data() + RowSymbolsOffsetBytes(c, r));
  };
  auto row_of = [&](int64_t r) { return ReadsInPlace(c) ? out + r * l.cols : work.data() + r * l.padded_cols; };
  for (const BlockSlice& slice : SliceBlocks(c, blocks_per_slice)) {
    const IndexRange chunks = SliceChunks(c, slice);
    if (RunPath(path) && PackedApplies(c)) {
      const PackedTableInPlace table{c.packed_points};
      for (int64_t i = chunks.begin; i < chunks.end; ++i) {
        const int64_t r = i / l.chunks_per_row;
        DecodePackedChunkAt(c, table, scales_of(r), tensor.t.data() + r * l.chunks_per_row, symbols_of(r, uint8_t()),
                            i % l.chunks_per_row, row_of(r));
      }
    } else if (UsesRuns(c, path)) {
      WithRunTypes(c, [&](auto dim, auto symbol) {
        ForEachRun(c, chunks, [&](int64_t r, int64_t run) {
          DecodeRunAt<dim()>(c, scales_of(r), tensor.t.data() + r * l.chunks_per_row, symbols_of(r, symbol), run,
                             row_of(r));
        });
      });
    } else {
      WithChunkTypes(c, [&](auto dim, auto symbol) {
        for (int64_t i = chunks.begin; i < chunks.end; ++i) {
          const int64_t r = i / l.chunks_per_row;
          DecodeChunkAt<dim()>(c, scales_of(r), tensor.t.data() + r * l.chunks_per_row, symbols_of(r, symbol),
                               i % l.chunks_per_row, row_of(r));
        }
      });
    }
    if (ReadsInPlace(c)) continue;
    for (int64_t i = slice.begin; i < slice.end; ++i) {
      const int64_t r = i / l.blocks_per_row, b = i % l.blocks_per_row;
      FinishDecodedBlock(c, work.data() + r * l.padded_cols, b, out + r * l.cols);
    }
  }
  return absl::OkStatus();
}

CompactOverloadsOnHost BuildCompactOverloads(const DeviceCodec& c, const uint8_t* t) {
  const int64_t words_per_row = CompactWordsPerRow(c);
  CompactOverloadsOnHost out;
  out.words.assign(c.rows * words_per_row, 0);
  out.escape_begin.reserve(c.rows + 1);
  for (int64_t n = 0; n < c.rows; ++n) {
    out.escape_begin.push_back(static_cast<uint32_t>(out.escapes.size()));
    const uint8_t* t_row = t + n * c.chunks_per_row;
    uint32_t* words_row = out.words.data() + n * words_per_row;
    for (int64_t chunk = 0; chunk < c.chunks_per_row; ++chunk) {
      const uint32_t field = std::min<uint32_t>(t_row[chunk], kCompactEscape);
      words_row[chunk / kCompactChunksPerWord] |= field << (2 * (chunk % kCompactChunksPerWord));
      if (field == kCompactEscape) out.escapes.push_back(static_cast<uint32_t>(chunk) << 8 | t_row[chunk]);
    }
  }
  out.escape_begin.push_back(static_cast<uint32_t>(out.escapes.size()));
  return out;
}

HalfPointsOnHost HalfPointTable(const Codebook& codebook) {
  const std::vector<int8_t>& x2 = codebook.rep_point_x2_int8();
  const int bias = codebook.max_abs_rep_point_x2();
  // Two levels' Horner sum of biased bytes, q A_1 + A_0, within a byte (HalfPointX2); q a power of
  // two: the run path's codes, which alone read half points.
  if (codebook.symbol_dim() != 8 || x2.empty() || !codebook.q_is_power_of_two() ||
      2 * bias * (codebook.q() + 1) > 255) {
    return {};
  }
  HalfPointsOnHost out;
  out.bias = bias;
  std::unordered_map<uint32_t, uint32_t> index_of_word;
  out.pair_of_symbol.resize(codebook.num_symbols());
  for (int64_t s = 0; s < codebook.num_symbols(); ++s) {
    const float* point = codebook.rep_point(static_cast<uint32_t>(s));
    for (int half = 0; half < 2; ++half) {
      uint32_t word = 0;
      for (int i = 0; i < 4; ++i) {
        const int8_t doubled = x2[8 * s + 4 * half + i];
        // The codebook's float is half the doubled coordinate, sign of zero included, so that the
        // kernels' doubled points (whose zeros are +0) are twice the run path's points exactly.
        if (FloatBits(0.5f * static_cast<float>(doubled)) != FloatBits(point[4 * half + i])) return {};
        word |= static_cast<uint32_t>(doubled + bias) << (8 * i);
      }
      const auto [it, added] = index_of_word.emplace(word, static_cast<uint32_t>(out.table.size()));
      if (added) {
        if (out.table.size() == kHalfPointEntries) return {};
        out.table.push_back(word);
      }
      out.pair_of_symbol[s] |= it->second << (kHalfIndexBits * half);
    }
  }
  out.used = static_cast<int>(out.table.size());
  out.table.resize(kHalfPointEntries, 0);
  return out;
}

HalfPointCodesOnHost BuildHalfPointCodes(const DeviceCodec& c, const uint8_t* symbols, const HalfPointsOnHost& halves) {
  const int64_t runs = c.rows * c.chunks_per_row / kRunChunks;  // rows of whole runs (RunsApply): no offsets
  HalfPointCodesOnHost out;
  out.head.assign(runs * kHalfIndexHeadWords, 0);
  out.tail.assign(runs, 0);
  for (int64_t run = 0; run < runs; ++run) {
    uint32_t words[kHalfIndexWordsPerRun] = {};
    for (int k = 0; k < kRunChunks; ++k) {
      for (int m = 0; m < kRunLevels; ++m) {
        uint16_t symbol;
        std::memcpy(&symbol, symbols + 2 * ((run * kRunChunks + k) * kRunLevels + m), 2);
        const uint32_t pair = halves.pair_of_symbol[symbol];
        for (int h = 0; h < 2; ++h) {
          const uint64_t index = (pair >> (kHalfIndexBits * h)) & (kHalfPointEntries - 1);
          const int bit = kHalfIndexBits * HalfIndexPlace(k, m, h);
          words[bit / 32] |= static_cast<uint32_t>(index << (bit % 32));
          if (bit % 32 + kHalfIndexBits > 32) words[bit / 32 + 1] |= static_cast<uint32_t>(index >> (32 - bit % 32));
        }
      }
    }
    std::copy(words, words + kHalfIndexHeadWords, out.head.begin() + run * kHalfIndexHeadWords);
    out.tail[run] = words[kHalfIndexHeadWords];
  }
  return out;
}

absl::Status GemmWithDeviceSteps(const CompressedTensor& weights, const float* queries, int64_t batch, float* out,
                                 KernelPath path) {
  if (batch < 0) return absl::InvalidArgumentError("batch must be >= 0");
  COSET_ASSIGN_OR_RETURN(const CodedForKernels coded, PrepareCoded(weights));
  const DeviceCodec c = coded.plan.view();
  const std::vector<uint8_t>& symbols = coded.symbols;
  const Layout& l = weights.layout;
  std::vector<float> padded(batch * l.padded_cols);
  for (int64_t q = 0; q < batch; ++q) {
    for (int64_t b = 0; b < l.blocks_per_row; ++b) {
      PadAndRotateBlock(c, queries + q * l.cols, b, padded.data() + q * l.padded_cols);
    }
  }
  // row_sums(n, first, count, sums): row n's sums with queries first .. first + count - 1, for
  // every row and group of up to kMaxDotQueries queries (the kernels' grouping does not change a
  // query's sum).
  auto for_each_group = [&](auto&& row_sums) {
    for (int64_t n = 0; n < l.rows; ++n) {
      for (int64_t first = 0; first < batch; first += kMaxDotQueries) {
        const int count = static_cast<int>(std::min<int64_t>(kMaxDotQueries, batch - first));
        float sums[kMaxDotQueries] = {};
        row_sums(n, first, count, sums);
        for (int q = 0; q < count; ++q) out[(first + q) * l.rows + n] = sums[q];
      }
    }
  };
  auto scales_of = [&](int64_t n) {
    return weights.scales.empty() ? nullptr : weights.scales.data() + n * l.blocks_per_row;
  };
  auto symbols_of = [&](int64_t n, auto symbol) {
    return reinterpret_cast<const decltype(symbol)*>(symbols.data() + RowSymbolsOffsetBytes(c, n));
  };
  const uint8_t* t = weights.t.data();
  // The lanes' sums of each query meeting in the kernels' shuffle tree.
  constexpr int kLanes = 32;
  auto meet = [](const float(&lanes)[kLanes][kMaxDotQueries], int count, float* sums) {
    for (int q = 0; q < count; ++q) {
      float tree[kLanes];
      for (int lane = 0; lane < kLanes; ++lane) tree[lane] = lanes[lane][q];
      WarpTreeSum(tree);
      sums[q] = tree[0];
    }
  };
  const PackedTableInPlace table{c.packed_points};  // the packed paths' (PackedApplies)
  // The run path's half points (HalvesApply, where the codebook has them), as CudaCodec::Gemm uploads.
  const HalfPointsOnHost halves =
      UsesRuns(c, path) && HalvesApply(c) ? HalfPointTable(*coded.plan.codebook) : HalfPointsOnHost();
  if (RunPath(path) && CompactOverloadsApply(c)) {
    // The packed kernel's lanes one after another: lane l sums chunks l, l + 32, ..., then escapes
    // l, l + 32, ... of the row; the lanes' sums meet in the kernel's shuffle tree.
    const CompactOverloadsOnHost compact_on_host = BuildCompactOverloads(c, t);
    const CompactOverloads compact = compact_on_host.view();
    for_each_group([&](int64_t n, int64_t first, int count, float* sums) {
      float lanes[kLanes][kMaxDotQueries] = {};
      const float* queries_first = padded.data() + first * l.padded_cols;
      for (int64_t chunk = 0; chunk < l.chunks_per_row; ++chunk) {
        float x[4 * kMaxDotQueries] = {};
        for (int q = 0; q < count; ++q) std::copy_n(queries_first + q * l.padded_cols + 4 * chunk, 4, x + 4 * q);
        AccumulateCompactChunkDots<kMaxDotQueries>(c, table, scales_of(n), compact.words + n * CompactWordsPerRow(c),
                                                   symbols_of(n, uint8_t()), chunk, BlockOfChunk(c, chunk), x, count,
                                                   lanes[chunk % kLanes]);
      }
      for (uint32_t e = compact.escape_begin[n]; e < compact.escape_begin[n + 1]; ++e) {
        AccumulatePackedEscapeDots<kMaxDotQueries>(c, table, scales_of(n), symbols_of(n, uint8_t()), compact.escapes[e],
                                                   queries_first, count, lanes[(e - compact.escape_begin[n]) % kLanes]);
      }
      meet(lanes, count, sums);
    });
  } else if (!halves.table.empty()) {
    // The run kernel's lanes on half points (its kHalves instances), as below.
    const HalfPointCodesOnHost codes_on_host = BuildHalfPointCodes(c, symbols.data(), halves);
    const HalfPointCodes codes = codes_on_host.view(halves.table.data(), halves.bias);
    const int64_t runs = l.chunks_per_row / kRunChunks;
    for_each_group([&](int64_t n, int64_t first, int count, float* sums) {
      float lanes[kLanes][kMaxDotQueries] = {};
      for (int64_t run = 0; run < runs; ++run) {
        AccumulateHalfRunDots<kMaxDotQueries>(c, HalfTableInPlace{codes.table}, codes.bias, scales_of(n),
                                              t + n * l.chunks_per_row, codes.head + n * runs * kHalfIndexHeadWords,
                                              codes.tail + n * runs, run, padded.data() + first * l.padded_cols, count,
                                              lanes[run % kLanes]);
      }
      meet(lanes, count, sums);
    });
  } else if (UsesRuns(c, path)) {
    // The run kernel's lanes one after another: lane l sums runs l, l + 32, ..., then the lanes'
    // sums meet in the kernel's shuffle tree.
    WithRunTypes(c, [&](auto dim, auto symbol) {
      for_each_group([&](int64_t n, int64_t first, int count, float* sums) {
        float lanes[kLanes][kMaxDotQueries] = {};
        for (int64_t run = 0; run < l.chunks_per_row / kRunChunks; ++run) {
          AccumulateRunDots<dim(), kMaxDotQueries>(c, scales_of(n), t + n * l.chunks_per_row, symbols_of(n, symbol),
                                                   run, padded.data() + first * l.padded_cols, count,
                                                   lanes[run % kLanes]);
        }
        meet(lanes, count, sums);
      });
    });
  } else {
    WithChunkTypes(c, [&](auto dim, auto symbol) {
      for_each_group([&](int64_t n, int64_t first, int count, float* sums) {
        for (int64_t chunk = 0; chunk < l.chunks_per_row; ++chunk) {
          AccumulateChunkDots<dim(), kMaxDotQueries>(c, scales_of(n), t + n * l.chunks_per_row, symbols_of(n, symbol),
                                                     chunk, padded.data() + first * l.padded_cols, count, sums);
        }
      });
    });
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<double>> DotRowsWithDeviceSteps(const CompressedTensor& a, const CompressedTensor& b,
                                                           int64_t lut_budget_bytes) {
  // In DotRows' order: the LUT (its budget), then the tensors.
  COSET_ASSIGN_OR_RETURN(std::shared_ptr<const Codebook> codebook, Codebook::Get(a.params.lattice, a.params.q));
  COSET_ASSIGN_OR_RETURN(const TwoSidedLut lut, TwoSidedLut::Build(*codebook, lut_budget_bytes));
  COSET_ASSIGN_OR_RETURN(const CodedForKernels coded_a, PrepareCoded(a));
  COSET_ASSIGN_OR_RETURN(const CodedForKernels coded_b, PrepareCoded(b));
  COSET_RETURN_IF_ERROR(CheckSameCode(a, b));
  const DeviceCodec ca = coded_a.plan.view(), cb = coded_b.plan.view();
  const Layout& l = a.layout;
  std::vector<double> out(l.rows);
  WithSymbolType(ca.symbol_bytes, [&](auto symbol) {
    using SymbolT = decltype(symbol);
    auto run = [&](const auto& pair_lut) {
      for (int64_t r = 0; r < l.rows; ++r) {
        double lanes[32] = {};
        for (int64_t chunk = 0; chunk < l.chunks_per_row; ++chunk) {
          lanes[chunk % 32] += ChunkPairDot(
              ca, a.scales.empty() ? nullptr : a.scales.data() + r * l.blocks_per_row,
              a.t.data() + r * l.chunks_per_row,
              reinterpret_cast<const SymbolT*>(coded_a.symbols.data() + RowSymbolsOffsetBytes(ca, r)), cb,
              b.scales.empty() ? nullptr : b.scales.data() + r * b.layout.blocks_per_row,
              b.t.data() + r * l.chunks_per_row,
              reinterpret_cast<const SymbolT*>(coded_b.symbols.data() + RowSymbolsOffsetBytes(cb, r)), pair_lut, chunk);
        }
        WarpTreeSum(lanes);
        out[r] = lanes[0];
      }
    };
    if (lut.integral()) {
      run(PairLut<int32_t>{lut.ints().data(), lut.num_symbols()});
    } else {
      run(PairLut<float>{lut.floats().data(), lut.num_symbols()});
    }
  });
  return out;
}

absl::StatusOr<std::vector<CodedForKernels>> PrepareAddends(const std::vector<const CompressedTensor*>& codes) {
  COSET_RETURN_IF_ERROR(CheckAddable(codes));
  std::vector<CodedForKernels> coded;
  for (const CompressedTensor* t : codes) {
    COSET_ASSIGN_OR_RETURN(CodedForKernels k, PrepareCoded(*t));
    coded.push_back(std::move(k));
  }
  return coded;
}

absl::StatusOr<CompressedTensor> AddCodesWithDeviceSteps(const std::vector<const CompressedTensor*>& codes,
                                                         SumValidation* validation) {
  COSET_ASSIGN_OR_RETURN(const std::vector<CodedForKernels> coded, PrepareAddends(codes));
  const DeviceCodecPlan& plan = coded[0].plan;
  const DeviceCodec c = plan.view();
  const int64_t chunks = c.rows * c.chunks_per_row;
  std::vector<uint8_t> symbols(SymbolBufferBytes(plan)), inexact(chunks, 0);
  WithChunkTypes(c, [&](auto dim, auto symbol) {
    using SymbolT = decltype(symbol);
    std::vector<const SymbolT*> inputs;
    for (const CodedForKernels& k : coded) inputs.push_back(reinterpret_cast<const SymbolT*>(k.symbols.data()));
    for (int64_t chunk = 0; chunk < chunks; ++chunk) {
      inexact[chunk] = AddChunkCodes<dim()>(c, inputs.data(), static_cast<int>(inputs.size()), chunk,
                                            validation != nullptr, reinterpret_cast<SymbolT*>(symbols.data()));
    }
  });
  return FinishAddCodes(*codes[0], plan, std::move(symbols), std::move(inexact), validation);
}

}  // namespace device
}  // namespace coset
