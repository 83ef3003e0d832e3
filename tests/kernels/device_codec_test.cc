// The device steps (kernels/device_codec.h), run sequentially on the CPU, against the CPU codec:
// the exact code the CUDA kernels run per block and per chunk, checked in every CI run.
#include <cmath>
#include <cstring>
#include <optional>

#include "absl/strings/str_cat.h"
#include "core/dtype.h"
#include "gtest/gtest.h"
#include "kernels/device_codec_host.h"
#include "tests/kernels/codec_cases.h"

namespace coset {
namespace {

// The device steps in slices of blocks_per_slice blocks (0: the whole tensor at once), with the
// kernels' steps for `path`; *run_encodes, when given, counts the encodes the run path served, and
// *tile_encodes those a GPU's run path encodes in one pass (TilesApply).
device_testing::CodecUnderTest HostSteps(int64_t blocks_per_slice = 0,
                                         device::KernelPath path = device::KernelPath::kPerChunk,
                                         int64_t* run_encodes = nullptr, int64_t* tile_encodes = nullptr) {
  return {[=](const TensorCodec& codec, const float* x, const std::vector<int64_t>& shape, EncodeStats* stats) {
            if (run_encodes != nullptr) *run_encodes += device::UsesRuns(device::MakePlan(codec, shape)->view(), path);
            if (tile_encodes != nullptr) *tile_encodes += device::TilesApply(device::MakePlan(codec, shape)->view());
            return device::EncodeWithDeviceSteps(codec, x, shape, DType::kFloat32, stats, blocks_per_slice, path);
          },
          [=](const CompressedTensor& tensor, float* out) {
            return device::DecodeWithDeviceSteps(tensor, out, blocks_per_slice, path);
          }};
}

TEST(DeviceCodecTest, MatchesCpuCodecOnTheGrid) { device_testing::RunGrid(HostSteps()); }

TEST(DeviceCodecTest, MatchesCpuCodecOnEdgeCases) { device_testing::RunEdgeCases(HostSteps()); }

// A pipelined encode or decode codes a tensor a slice of blocks at a time (CudaCodec's pipeline):
// slices of 1 and 3 blocks cross rows, end in a row's short last block and cut padded, rotated
// rows, and must give the whole tensor's bytes and floats.
TEST(DeviceCodecTest, SlicesOfBlocksMatchTheCpuCodec) {
  device_testing::RunGrid(HostSteps(3));
  device_testing::RunEdgeCases(HostSteps(1));
}

// The run paths (KernelPath::kRuns: a thread per run of four chunks, EncodeRunAt / DecodeRunAt,
// where RunsApply: D4, D8 and E8 with two levels of byte or 16-bit symbols; per chunk elsewhere):
// on the whole grid (padded and rotated rows, every scale mode), the edge cases and the cases made
// for the run path (RunRunPathCases: capped chunks, NaN and Inf, other blocks, short blocks and
// rows, D8 and E8), whole and in slices, the CPU codec's bytes and floats.
TEST(DeviceCodecTest, RunPathsMatchTheCpuCodec) {
  int64_t run_encodes = 0;
  device_testing::RunGrid(HostSteps(0, device::KernelPath::kRuns, &run_encodes));
  const int64_t on_the_grid = run_encodes;
  RecordProperty("run_encodes_on_the_grid", static_cast<int>(on_the_grid));
  device_testing::RunGrid(HostSteps(3, device::KernelPath::kRuns, &run_encodes));
  device_testing::RunEdgeCases(HostSteps(0, device::KernelPath::kRuns, &run_encodes));
  device_testing::RunEdgeCases(HostSteps(1, device::KernelPath::kRuns, &run_encodes));
  const int64_t before_run_cases = run_encodes;
  int64_t tile_encodes = 0;
  device_testing::RunRunPathCases(HostSteps(0, device::KernelPath::kRuns, &run_encodes, &tile_encodes));
  device_testing::RunRunPathCases(HostSteps(1, device::KernelPath::kRuns, &run_encodes, &tile_encodes));
  // Each of their 14 encodes runs the run path; on a GPU all but blocks of 4096 in one pass.
  EXPECT_EQ(run_encodes - before_run_cases, 2 * 14);
  EXPECT_EQ(tile_encodes, 2 * 13);
  // D4, D8 and E8 at q = 4, M = 2 on rows of 255 and 256 entries (whole runs once padded), rotated
  // and not, in every scale mode: 36 of the grid's encodes; then as many in slices, and the edges.
  EXPECT_EQ(on_the_grid, 36);
  EXPECT_GT(run_encodes, 2 * on_the_grid);
}

// The slices' entries and chunks tile the tensor's, in order, with nothing left out: what lets a
// slice's bytes cross on their own (FirstEntryOfBlockItem, FirstChunkOfBlockItem).
TEST(DeviceCodecTest, SlicesTileEntriesAndChunks) {
  for (const char* lattice : {"Z1", "D3", "E8"}) {
    for (const int64_t cols : {1, 7, 255, 256, 257, 1000}) {
      CodecParams p;
      p.lattice = *Lattice::Parse(lattice);
      p.block = 24;
      const TensorCodec codec = *TensorCodec::Create(p);
      const device::DeviceCodecPlan plan = *device::MakePlan(codec, {3, cols});
      const device::DeviceCodec c = plan.view();
      const Layout& l = plan.context.layout;
      for (const int64_t per_slice : {0, 1, 2, 5}) {
        SCOPED_TRACE(absl::StrCat(lattice, " cols=", cols, " blocks per slice ", per_slice));
        int64_t entry = 0, chunk = 0, blocks = 0;
        for (const device::BlockSlice& s : device::SliceBlocks(c, per_slice)) {
          ASSERT_EQ(s.begin, blocks);
          ASSERT_LT(s.begin, s.end);
          ASSERT_LE(s.end - s.begin, per_slice > 0 ? per_slice : s.end);
          ASSERT_EQ(device::FirstEntryOfBlockItem(c, s.begin), entry);
          ASSERT_EQ(device::FirstChunkOfBlockItem(c, s.begin), chunk);
          entry = device::FirstEntryOfBlockItem(c, s.end);
          chunk = device::FirstChunkOfBlockItem(c, s.end);
          blocks = s.end;
          ASSERT_LT(device::FirstEntryOfBlockItem(c, s.begin), entry);  // every block holds entries
        }
        EXPECT_EQ(blocks, l.rows * l.blocks_per_row);
        EXPECT_EQ(entry, l.numel);
        EXPECT_EQ(chunk, l.rows * l.chunks_per_row);
      }
    }
  }
}

// The packed paths' table (PackedPointTable): for every pair of D4 symbols at q = 4, the
// packed multiply-add and byte-to-float steps give 2 (q rep(b1) + rep(b0)) exactly; codebooks it
// cannot serve (dimensions other than 4 and 8, Z^n's symbol per coordinate, sums that leave a
// byte) have none. (At d = 8: RunDecodeOnThePackedTableIsTheDecode.)
TEST(DeviceCodecTest, PackedPointTableGivesTheDoubledPoints) {
  // D4's default code (q = 4, two levels): 256 symbols, whose two-level sums stay within a byte.
  const device::DeviceCodecPlan plan = *device::MakePlan(*TensorCodec::Create(CodecParams{}), {2, 256});
  const device::DeviceCodec c = plan.view();
  ASSERT_TRUE(device::PackedApplies(c));
  ASSERT_EQ(plan.packed_points.size(), 256u);
  const float* rep = plan.codebook->view().rep_point;
  for (uint32_t low = 0; low < 256; ++low) {
    for (uint32_t high = 0; high < 256; ++high) {
      float v[4];
      device::UnpackChunkPointX2(c, c.packed_points[low], c.packed_points[high], v);
      for (int i = 0; i < 4; ++i) {
        ASSERT_EQ(v[i], 2.0f * (4.0f * rep[4 * high + i] + rep[4 * low + i]))
            << "symbols " << low << ", " << high << " coordinate " << i;
      }
    }
  }
  const std::shared_ptr<const Codebook> d4 = *Codebook::Get(*Lattice::Parse("D4"), 4);
  EXPECT_TRUE(device::PackedBias(*d4, 2).has_value());
  EXPECT_FALSE(device::PackedBias(*d4, 4).has_value());  // 2 max|2 rep| (1 + 4 + 16 + 64) > 255
  for (const char* lattice : {"Z4", "A2", "D3"}) {
    EXPECT_TRUE(device::PackedPointTable(**Codebook::Get(*Lattice::Parse(lattice), 3)).empty()) << lattice;
  }
  // d = 8: two words per symbol (E8 at q = 3: 3^8 symbols).
  EXPECT_EQ(device::PackedPointTable(**Codebook::Get(*Lattice::Parse("E8"), 3)).size(), 2u * 6561);
}

// The packed GEMM's two-bit T (BuildCompactOverloads): every chunk's field is min(T, 3), the unused
// fields of a row's last word are 0, and a row's escapes are exactly its chunks with T >= 3, in
// order, with their T. Heavy-tailed rows (HeavyTailed, as RunGemmCases' last case: ~8 % of
// chunks at T >= 3) give rows of more escapes than a warp has lanes, and rows of 1042 chunks end
// inside a word.
TEST(DeviceCodecTest, CompactOverloadsHoldEveryT) {
  const int64_t rows = 6, cols = 4168;
  const std::vector<float> w = device_testing::HeavyTailed(rows * cols, 3);
  const TensorCodec codec = *TensorCodec::Create(CodecParams{});
  const CompressedTensor coded = *codec.Encode(w.data(), {rows, cols});
  const device::DeviceCodec c = device::MakePlan(codec, {rows, cols})->view();
  ASSERT_TRUE(device::CompactOverloadsApply(c));
  const device::CompactOverloadsOnHost compact = device::BuildCompactOverloads(c, coded.t.data());
  const int64_t words_per_row = device::CompactWordsPerRow(c);
  ASSERT_EQ(words_per_row, 66);
  ASSERT_EQ(compact.words.size(), static_cast<size_t>(rows * words_per_row));
  ASSERT_EQ(compact.escape_begin.size(), static_cast<size_t>(rows + 1));
  ASSERT_EQ(compact.escape_begin.front(), 0u);
  ASSERT_EQ(compact.escape_begin.back(), compact.escapes.size());
  uint32_t most_escapes = 0;
  for (int64_t n = 0; n < rows; ++n) {
    const uint32_t* words_row = compact.words.data() + n * words_per_row;
    std::vector<uint32_t> want;
    for (int64_t chunk = 0; chunk < c.chunks_per_row; ++chunk) {
      const uint8_t t = coded.t[n * c.chunks_per_row + chunk];
      ASSERT_EQ(device::CompactTAt(words_row, chunk), std::min<uint32_t>(t, 3)) << "row " << n << " chunk " << chunk;
      if (t >= 3) want.push_back(static_cast<uint32_t>(chunk) << 8 | t);
    }
    EXPECT_EQ(words_row[words_per_row - 1] >> (2 * (c.chunks_per_row % 16)), 0u) << "row " << n;
    const std::vector<uint32_t> got(compact.escapes.begin() + compact.escape_begin[n],
                                    compact.escapes.begin() + compact.escape_begin[n + 1]);
    EXPECT_EQ(got, want) << "row " << n;
    most_escapes = std::max<uint32_t>(most_escapes, static_cast<uint32_t>(want.size()));
  }
  EXPECT_GT(most_escapes, 32u);  // a warp's lanes go round a row's escapes
  EXPECT_EQ(compact.bytes(), 4 * static_cast<int64_t>(rows * words_per_row + rows + 1 + compact.escapes.size()));
}

// The run path's half points (HalfPointTable), where a codebook has them: E8 at q = 4 (1,024
// halves, the table's size) and D8 at q = 4 (512). Every symbol's pair indexes halves in use, and
// every level-0 symbol with a sweep of level-1 symbols gives the doubled point 2 (q rep(b_1) +
// rep(b_0)) of the codebook's floats exactly (HalfPointX2, a half at a time). Codebooks of other
// chunk sizes, with q not a power of two, or with more halves than the table holds (E8 q = 5:
// 2,494) have none.
TEST(DeviceCodecTest, HalfPointTableGivesTheDoubledPoints) {
  struct Case {
    const char* lattice;
    int q;
    int halves;  // 0: no table
  };
  for (const Case& k : {Case{"E8", 4, 1024}, Case{"D8", 4, 512}, Case{"E8", 3, 0}, Case{"E8", 5, 0}, Case{"D4", 4, 0},
                        Case{"Z8", 4, 0}}) {
    SCOPED_TRACE(absl::StrCat(k.lattice, " q=", k.q));
    const std::shared_ptr<const Codebook> codebook = *Codebook::Get(*Lattice::Parse(k.lattice), k.q);
    const device::HalfPointsOnHost halves = device::HalfPointTable(*codebook);
    ASSERT_EQ(halves.used, k.halves);
    if (k.halves == 0) {
      EXPECT_TRUE(halves.table.empty());
      EXPECT_TRUE(halves.pair_of_symbol.empty());
      continue;
    }
    ASSERT_EQ(halves.table.size(), static_cast<size_t>(device::kHalfPointEntries));  // what the kernels stage
    ASSERT_EQ(static_cast<int64_t>(halves.pair_of_symbol.size()), codebook->num_symbols());
    for (const uint32_t pair : halves.pair_of_symbol) {
      ASSERT_LT(pair & (device::kHalfPointEntries - 1), static_cast<uint32_t>(halves.used));
      ASSERT_LT(pair >> device::kHalfIndexBits, static_cast<uint32_t>(halves.used));
    }
    device::DeviceCodec c;
    c.codebook = codebook->view();
    const float q = static_cast<float>(k.q);
    for (uint32_t s1 = 0; s1 < halves.pair_of_symbol.size(); s1 += 997) {
      for (uint32_t s0 = 0; s0 < halves.pair_of_symbol.size(); ++s0) {
        float v[8];
        for (int h = 0; h < 2; ++h) {
          // Half h's index of each level's pair, as a byte offset into the table.
          auto offset = [&](uint32_t s) {
            return 4 * ((halves.pair_of_symbol[s] >> (device::kHalfIndexBits * h)) & (device::kHalfPointEntries - 1u));
          };
          device::HalfPointX2(c, device::HalfTableInPlace{halves.table.data()},
                              device::HalfPointBytesOffset(c, halves.bias), offset(s0), offset(s1), v + 4 * h);
        }
        for (int i = 0; i < 8; ++i) {
          ASSERT_EQ(v[i], 2.0f * (q * codebook->rep_point(s1)[i] + codebook->rep_point(s0)[i]))
              << "symbols " << s0 << ", " << s1 << " coordinate " << i;
        }
      }
    }
  }
}

// A tensor's half-point indices (BuildHalfPointCodes) hold each chunk's and level's pair where
// HalfPointCodes says, and the run path's dot products on them (AccumulateHalfRunDots) are those on
// the codebook table (AccumulateRunDots) bit for bit, run by run, for 1 to 16 queries; scaled and
// unscaled codes, a zero block.
TEST(DeviceCodecTest, HalfRunDotsAreTheRunDots) {
  for (const ScaleMode scale : {ScaleMode::kRms, ScaleMode::kNone}) {
    CodecParams p;
    p.lattice = *Lattice::Parse("E8");
    p.scale = scale;
    const int64_t rows = 5, cols = 1024;
    const TensorCodec tc = *TensorCodec::Create(p);
    std::vector<float> w = testing_util::Gaussian(rows * cols, 11);
    std::fill(w.begin() + cols, w.begin() + cols + 256, 0.0f);  // row 1's first block
    const CompressedTensor coded = *tc.Encode(w.data(), {rows, cols});
    const device::CodedForKernels kernels = *device::PrepareCoded(coded);
    const device::DeviceCodec c = kernels.plan.view();
    ASSERT_TRUE(device::HalvesApply(c));
    const device::HalfPointsOnHost halves = device::HalfPointTable(*kernels.plan.codebook);
    const device::HalfPointCodesOnHost on_host = device::BuildHalfPointCodes(c, kernels.symbols.data(), halves);
    const device::HalfPointCodes codes = on_host.view(halves.table.data(), halves.bias);
    const int64_t runs = c.chunks_per_row / device::kRunChunks;
    ASSERT_EQ(on_host.head.size(), static_cast<size_t>(rows * runs * device::kHalfIndexHeadWords));
    ASSERT_EQ(on_host.tail.size(), static_cast<size_t>(rows * runs));
    for (int64_t run = 0; run < rows * runs; ++run) {
      uint32_t words[device::kHalfIndexWordsPerRun];
      for (int w = 0; w < device::kHalfIndexHeadWords; ++w)
        words[w] = codes.head[run * device::kHalfIndexHeadWords + w];
      words[device::kHalfIndexHeadWords] = codes.tail[run];
      for (int k = 0; k < device::kRunChunks; ++k) {
        for (int m = 0; m < device::kRunLevels; ++m) {
          uint16_t symbol;
          std::memcpy(&symbol, kernels.symbols.data() + 2 * ((run * device::kRunChunks + k) * device::kRunLevels + m),
                      2);
          for (int h = 0; h < 2; ++h) {
            // The index's ten bits one by one from the run's 160-bit number.
            const int place = device::HalfIndexPlace(k, m, h);
            uint32_t index = 0;
            for (int b = 0; b < device::kHalfIndexBits; ++b) {
              const int bit = device::kHalfIndexBits * place + b;
              index |= ((words[bit / 32] >> (bit % 32)) & 1u) << b;
            }
            ASSERT_EQ(index, (halves.pair_of_symbol[symbol] >> (device::kHalfIndexBits * h)) &
                                 (device::kHalfPointEntries - 1u))
                << "run " << run << " chunk " << k << " level " << m << " half " << h;
            ASSERT_EQ(device::HalfIndexOffset(words, place), 4 * index) << "place " << place;
          }
        }
      }
    }
    const std::vector<float> x = testing_util::Gaussian(device::kMaxDotQueries * cols, 12);
    for (int queries = 1; queries <= device::kMaxDotQueries; queries += 5) {
      for (int64_t n = 0; n < rows; ++n) {
        const uint16_t* scales_row = coded.scales.empty() ? nullptr : coded.scales.data() + n * c.blocks_per_row;
        const uint8_t* t_row = coded.t.data() + n * c.chunks_per_row;
        const auto* symbols_row =
            reinterpret_cast<const uint16_t*>(kernels.symbols.data() + device::RowSymbolsOffsetBytes(c, n));
        for (int64_t run = 0; run < runs; ++run) {
          float table_sums[device::kMaxDotQueries] = {}, half_sums[device::kMaxDotQueries] = {};
          device::AccumulateRunDots<8, device::kMaxDotQueries>(c, scales_row, t_row, symbols_row, run, x.data(),
                                                               queries, table_sums);
          device::AccumulateHalfRunDots<device::kMaxDotQueries>(
              c, device::HalfTableInPlace{codes.table}, codes.bias, scales_row, t_row,
              codes.head + n * runs * device::kHalfIndexHeadWords, codes.tail + n * runs, run, x.data(), queries,
              half_sums);
          for (int j = 0; j < queries; ++j) {
            ASSERT_EQ(FloatBits(half_sums[j]), FloatBits(table_sums[j]))
                << "row " << n << " run " << run << " query " << j;
          }
        }
      }
    }
  }
}

TEST(DeviceCodecTest, GemmOnCodesMatchesDecodeThenDot) {
  for (const device::KernelPath path : {device::KernelPath::kRuns, device::KernelPath::kPerChunk}) {
    SCOPED_TRACE(path == device::KernelPath::kRuns ? "runs" : "per chunk");
    device_testing::RunGemmCases([path](const CompressedTensor& w, const float* x, int64_t batch, float* out) {
      return device::GemmWithDeviceSteps(w, x, batch, out, path);
    });
  }
}

// The GPU's typed inputs and outputs convert element by element (ElementToFloat, FloatToElement),
// and four at a time (LoadFourAsFloats, StoreFourAsElements: the run path's), exactly as
// core/dtype.h's ToFloat and FromFloat (whose AVX-512 level uses the CPU's own conversions): every
// bfloat16 and float16, and a sweep of float32 bit patterns with the edges of each format's range,
// ties and NaN.
TEST(DeviceCodecTest, ElementConversionsAreDtypes) {
  std::vector<uint16_t> every16(1 << 16);
  for (uint32_t b = 0; b < every16.size(); ++b) every16[b] = static_cast<uint16_t>(b);
  for (const DType dtype : {DType::kBfloat16, DType::kFloat16}) {
    std::vector<float> want(every16.size());
    ToFloat(every16.data(), dtype, static_cast<int64_t>(every16.size()), want.data());
    for (size_t i = 0; i < every16.size(); ++i) {
      ASSERT_EQ(FloatBits(device::ElementToFloat(every16.data(), static_cast<uint8_t>(dtype), i)), FloatBits(want[i]))
          << DTypeName(dtype) << " " << i;
    }
  }
  std::vector<float> floats;
  for (uint64_t b = 0; b < (uint64_t{1} << 32); b += 65521) floats.push_back(BitsToFloat(static_cast<uint32_t>(b)));
  for (float f : {65504.0f, 65520.0f, 65519.996f, 5.9604645e-8f, 2.9802322e-8f, 2.9802326e-8f, 1.0f + 0x1p-11f,
                  1.0f + 0x1p-8f, 3.3895314e38f, 3.4028235e38f, 0.0f, -0.0f}) {
    floats.push_back(f);
    floats.push_back(-f);
  }
  floats.push_back(BitsToFloat(0x7FC00001u));
  floats.push_back(BitsToFloat(0xFF800001u));
  for (const DType dtype : {DType::kFloat32, DType::kFloat64, DType::kBfloat16, DType::kFloat16}) {
    const size_t bytes = DTypeBytes(dtype) * floats.size();
    std::vector<uint64_t> want(bytes / 8 + 1), got(bytes / 8 + 1);  // aligned for every dtype
    FromFloat(floats.data(), static_cast<int64_t>(floats.size()), dtype, want.data());
    for (size_t i = 0; i < floats.size(); ++i) {
      device::FloatToElement(floats[i], static_cast<uint8_t>(dtype), got.data(), static_cast<int64_t>(i));
    }
    ASSERT_EQ(0, std::memcmp(want.data(), got.data(), bytes)) << DTypeName(dtype);
    const size_t fours = floats.size() / 4 * 4;
    std::fill(got.begin(), got.end(), 0);
    for (size_t i = 0; i < fours; i += 4) {
      device::StoreFourAsElements(floats.data() + i, static_cast<uint8_t>(dtype), got.data(), static_cast<int64_t>(i));
    }
    ASSERT_EQ(0, std::memcmp(want.data(), got.data(), DTypeBytes(dtype) * fours)) << DTypeName(dtype);
    std::vector<float> back(floats.size());
    ToFloat(want.data(), dtype, static_cast<int64_t>(floats.size()), back.data());
    for (size_t i = 0; i < floats.size(); ++i) {
      ASSERT_EQ(FloatBits(device::ElementToFloat(want.data(), static_cast<uint8_t>(dtype), i)), FloatBits(back[i]))
          << DTypeName(dtype) << " " << i;
    }
    for (size_t i = 0; i < fours; i += 4) {
      float four[4];
      device::LoadFourAsFloats(want.data(), static_cast<uint8_t>(dtype), static_cast<int64_t>(i), four);
      for (size_t k = 0; k < 4; ++k) ASSERT_EQ(FloatBits(four[k]), FloatBits(back[i + k])) << DTypeName(dtype) << i;
    }
  }
}

// A GPU's typed encode that refuses an input reports CheckDeviceEncode's error on the input widened
// on the host (CudaCodec::EncodeTyped): the CPU's typed encode must say exactly that.
TEST(DeviceCodecTest, TypedRefusalsReadAsTheCpus) {
  const TensorCodec tc = *TensorCodec::Create(CodecParams{});
  std::vector<float> x = testing_util::Gaussian(3 * 256, 4);
  x[300] = NAN;
  for (const DType dtype : {DType::kFloat64, DType::kBfloat16, DType::kFloat16}) {
    std::vector<uint64_t> typed(x.size());
    FromFloat(x.data(), static_cast<int64_t>(x.size()), dtype, typed.data());
    CompressedTensor out;
    const absl::Status cpu = tc.EncodeTypedInto(typed.data(), dtype, {3, 256}, nullptr, nullptr, &out);
    ASSERT_FALSE(cpu.ok());
    std::vector<float> wide(x.size());
    ToFloat(typed.data(), dtype, static_cast<int64_t>(x.size()), wide.data());
    EXPECT_EQ(device::CheckDeviceEncode(tc, wide.data(), {3, 256}, dtype, /*refused=*/true, /*capped=*/0), cpu)
        << DTypeName(dtype);
  }
}

TEST(DeviceCodecTest, AddCodesMatchesTheCpu) { device_testing::RunAddCodesCases(device::AddCodesWithDeviceSteps); }

TEST(DeviceCodecTest, DotRowsMatchesTheCpu) { device_testing::RunDotRowsCases(device::DotRowsWithDeviceSteps); }

// Which codes the GEMM's run path serves: the default D4 and E8 codes (two levels of byte and
// 16-bit symbols) on rows of whole runs; not other level counts, packed symbols (D8 q=3: 13 bits),
// lattices with a symbol per coordinate, or rows and blocks that end inside a run. The packed GEMM
// (kRuns' GEMM where it applies) serves D4's default code on rows and blocks of any length; half points
// (HalvesApply) the run path's codes at d = 8 (E8, D8 at q = 4), and the tensor-core GEMM on them
// (HalvesTensorCoresApply) rows of whole steps.
TEST(DeviceCodecTest, GemmRunPathServesTwoLevelByteSymbols) {
  struct Case {
    const char* lattice;
    int q, levels;
    int64_t cols;
    int block;
    bool runs, packed, tensor_cores, halves;
  };
  const Case cases[] = {
      {"D4", 4, 2, 8192, 256, true, true, true, false},    {"E8", 4, 2, 8192, 256, true, false, false, true},
      {"D8", 4, 2, 1024, 256, true, false, false, true},   {"D4", 4, 2, 520, 256, false, true, false, false},
      {"D4", 4, 2, 1024, 8, false, true, false, false},    {"D4", 4, 3, 1024, 256, false, false, false, false},
      {"D4", 4, 1, 1024, 256, false, false, false, false}, {"D4", 5, 2, 1024, 256, false, false, false, false},
      {"Z4", 5, 2, 1024, 256, false, false, false, false}, {"A2", 3, 2, 1024, 256, false, false, false, false},
      {"E8", 4, 2, 1000, 256, false, false, false, false}, {"D8", 3, 2, 1024, 256, false, false, false, false},
      {"D4", 4, 2, 1040, 16, true, true, false, false},    {"E8", 4, 2, 1024, 8, false, false, false, false},
      {"E8", 4, 2, 288, 32, true, false, false, true},
  };
  for (const Case& k : cases) {
    SCOPED_TRACE(absl::StrCat(k.lattice, " q=", k.q, " M=", k.levels, " cols=", k.cols, " block=", k.block));
    CodecParams p;
    p.lattice = *Lattice::Parse(k.lattice);
    p.q = k.q;
    p.M = k.levels;
    p.block = k.block;
    auto codec = TensorCodec::Create(p);
    ASSERT_TRUE(codec.ok()) << codec.status();
    auto plan = device::MakePlan(*codec, {3, k.cols});
    ASSERT_TRUE(plan.ok()) << plan.status();
    EXPECT_EQ(device::RunsApply(plan->view()), k.runs);
    EXPECT_EQ(device::PackedApplies(plan->view()), k.packed);
    EXPECT_EQ(device::TensorCoresApply(plan->view()), k.tensor_cores);
    EXPECT_EQ(device::HalvesApply(plan->view()), k.halves);
    // The tensor-core GEMM on half points: rows of whole steps of 8 chunks (not E8's 36 chunks).
    EXPECT_EQ(device::HalvesTensorCoresApply(plan->view()), k.halves && k.cols % 64 == 0);
  }
}

// The tensor-core GEMM's limbs: the bf16 halves of ChunkLimbWords' words (limb l of values 2i
// and 2i + 1 in the low and high half of words[l][i], what the MMAs read) sum exactly to every
// float of magnitude 2^-110 or more (either sign, up to the largest), and to within 2^-133
// (bf16's least subnormal) of the smaller ones (subnormal limbs).
TEST(DeviceCodecTest, Bf16LimbsSumToTheFloat) {
  std::vector<float> values = testing_util::Gaussian(4000, 5);
  for (size_t i = 0; i < values.size(); ++i) values[i] = std::ldexp(values[i], static_cast<int>(i % 250) - 130);
  for (float v : {0.0f, -0.0f, 1.0f, -3.0f, 0x1.fffffep127f, -0x1.fffffep127f, 0x1.000002p-110f, 0x1.234568p-140f,
                  0x1p-149f, 0x1.fffffep0f, 1.0f / 3.0f}) {
    values.push_back(v);
  }
  while (values.size() % 4 != 0) values.push_back(1.0f);
  int64_t exact = 0;
  for (size_t i = 0; i < values.size(); i += 4) {
    uint32_t words[3][2];
    device::ChunkLimbWords(values.data() + i, words);
    for (int k = 0; k < 4; ++k) {
      const float v = values[i + k];
      double sum = 0;
      for (int l = 0; l < 3; ++l) {
        sum += static_cast<double>(Bf16ToFloat(static_cast<uint16_t>(words[l][k / 2] >> (16 * (k % 2)))));
      }
      if (std::fabs(v) >= 0x1p-110f) {
        ASSERT_EQ(sum, static_cast<double>(v)) << v;
        ++exact;
      } else {
        ASSERT_LT(std::fabs(sum - static_cast<double>(v)), 0x1p-133) << v;
      }
    }
  }
  EXPECT_GT(exact, 3000);
}

// The tensor-core GEMM reads four chunks of a row at a time (their symbols and T as words) and
// decodes chunk j of them (DecodePackedQuadChunk): DecodeChunk's floats bit for bit, the CPU
// codec's decode, on rows with a zero block, an underflowing block and chunks up the ramp.
TEST(DeviceCodecTest, TensorCoreQuadDecodeIsTheDecode) {
  const TensorCodec codec = *TensorCodec::Create(CodecParams{});
  const int64_t cols = 1024;
  const std::vector<float> x = device_testing::TestRows(cols, 9);
  const CompressedTensor coded = *codec.Encode(x.data(), {2, cols});
  std::vector<float> decoded(2 * cols);
  ASSERT_TRUE(codec.Decode(coded, decoded.data()).ok());
  const device::DeviceCodecPlan plan = *device::MakePlan(codec, {2, cols});
  const device::DeviceCodec c = plan.view();
  ASSERT_TRUE(device::TensorCoresApply(c));
  ASSERT_TRUE(device::ReadsInPlace(c));
  const device::PackedTableInPlace table{c.packed_points};
  int64_t climbed = 0;
  for (int64_t r = 0; r < 2; ++r) {
    const uint8_t* t_row = coded.t.data() + r * c.chunks_per_row;
    const uint8_t* symbols_row = coded.symbols.data() + device::RowSymbolsOffsetBytes(c, r);
    for (int64_t first = 0; first < c.chunks_per_row; first += 4) {
      const float base =
          device::BlockBaseAt(c, coded.scales.data() + r * c.blocks_per_row, device::BlockOfChunk(c, first));
      for (int j = 0; j < 4; ++j) {
        uint32_t symbols[2], t_bytes;
        device::LoadWords<2>(symbols_row + 2 * first, symbols);
        device::LoadWords<1>(t_row + first, &t_bytes);
        float w[4];
        device::DecodePackedQuadChunk(c, table, symbols, t_bytes, base, j, w);
        climbed += t_row[first + j] > 0;
        for (int i = 0; i < 4; ++i) {
          ASSERT_EQ(FloatBits(w[i]), FloatBits(decoded[r * cols + 4 * (first + j) + i]))
              << "row " << r << " chunk " << first + j << " coordinate " << i;
        }
      }
    }
  }
  EXPECT_GT(climbed, 0);  // some chunks' T > 0: the T word's bytes are read
}

// The tensor-core GEMM on half points reads two chunks of a run at a time (a pair: the run's index
// words shifted to the pair's, PairHalfIndexWords, and the run's T word) and decodes half j % 2 of
// chunk j / 2 of them (DecodeHalfQuad): DecodeChunk's floats bit for bit, the CPU codec's decode,
// on E8 rows with a zero block, an underflowing block and chunks up the ramp.
TEST(DeviceCodecTest, TensorCoreHalfQuadDecodeIsTheDecode) {
  CodecParams p;
  p.lattice = *Lattice::Parse("E8");
  const TensorCodec codec = *TensorCodec::Create(p);
  const int64_t rows = 2, cols = 1024;
  const std::vector<float> x = device_testing::TestRows(cols, 10);
  const CompressedTensor coded = *codec.Encode(x.data(), {rows, cols});
  std::vector<float> decoded(rows * cols);
  ASSERT_TRUE(codec.Decode(coded, decoded.data()).ok());
  const device::CodedForKernels kernels = *device::PrepareCoded(coded);
  const device::DeviceCodec c = kernels.plan.view();
  ASSERT_TRUE(device::HalvesTensorCoresApply(c));
  const device::HalfPointsOnHost halves = device::HalfPointTable(*kernels.plan.codebook);
  const device::HalfPointCodesOnHost on_host = device::BuildHalfPointCodes(c, kernels.symbols.data(), halves);
  const device::HalfTableInPlace table{halves.table.data()};
  const float bytes_offset = device::HalfPointBytesOffset(c, halves.bias);
  const int64_t runs = c.chunks_per_row / device::kRunChunks;
  int64_t climbed = 0;
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t run = 0; run < runs; ++run) {
      uint32_t run_words[device::kHalfIndexWordsPerRun], run_t;
      device::LoadWords<device::kHalfIndexHeadWords>(
          on_host.head.data() + (r * runs + run) * device::kHalfIndexHeadWords, run_words);
      run_words[device::kHalfIndexHeadWords] = on_host.tail[r * runs + run];
      device::LoadWords<1>(coded.t.data() + r * c.chunks_per_row + run * device::kRunChunks, &run_t);
      const int64_t first = run * device::kRunChunks;
      const float base =
          device::BlockBaseAt(c, coded.scales.data() + r * c.blocks_per_row, device::BlockOfChunk(c, first));
      for (int pair = 0; pair < 2; ++pair) {
        uint32_t words[device::kHalfIndexWordsPerRun];
        device::PairHalfIndexWords(run_words, pair, words);
        for (int j = 0; j < 4; ++j) {
          const int64_t chunk = first + 2 * pair + j / 2;
          float w[4];
          device::DecodeHalfQuad(c, table, bytes_offset, words, run_t >> (16 * pair), base, j, w);
          climbed += j % 2 == 0 && coded.t[r * c.chunks_per_row + chunk] > 0;
          for (int i = 0; i < 4; ++i) {
            ASSERT_EQ(FloatBits(w[i]), FloatBits(decoded[r * cols + 8 * chunk + 4 * (j % 2) + i]))
                << "row " << r << " chunk " << chunk << " half " << j % 2 << " coordinate " << i;
          }
        }
      }
    }
  }
  EXPECT_GT(climbed, 0);  // some chunks' T > 0: the T word's bytes are read
}

// At d = 8 a device's run decode reads the packed table (PackedPointTable: two words per symbol,
// the plan's DeviceCodec given it as CudaCodec's tables give it) instead of the codebook's float
// rows (DecodeRunAt): the CPU codec's floats bit for bit, float32 and bf16, for E8 and D8 at q = 4
// on rows with a zero block, an underflowing block and chunks up the ramp.
TEST(DeviceCodecTest, RunDecodeOnThePackedTableIsTheDecode) {
  for (const char* lattice : {"E8", "D8"}) {
    SCOPED_TRACE(lattice);
    CodecParams p;
    p.lattice = *Lattice::Parse(lattice);
    const TensorCodec codec = *TensorCodec::Create(p);
    const int64_t rows = 2, cols = 1024;
    const CompressedTensor coded = *codec.Encode(device_testing::TestRows(cols, 11).data(), {rows, cols});
    std::vector<float> decoded(rows * cols);
    ASSERT_TRUE(codec.Decode(coded, decoded.data()).ok());
    const device::CodedForKernels kernels = *device::PrepareCoded(coded);
    device::DeviceCodec c = kernels.plan.view();
    ASSERT_TRUE(device::RunsApply(c) && device::ReadsInPlace(c));
    ASSERT_EQ(c.packed_points, nullptr);  // plans carry D4's table only
    const std::vector<uint32_t> packed = device::PackedPointTable(*kernels.plan.codebook);
    const std::optional<int> bias = device::PackedBias(*kernels.plan.codebook, c.levels);
    ASSERT_EQ(packed.size(), 2u * 65536);
    ASSERT_TRUE(bias.has_value());
    c.packed_points = packed.data();
    c.packed_bias = *bias;
    std::vector<float> out(rows * cols, NAN);
    std::vector<uint16_t> out_bf16(rows * cols);
    for (int64_t r = 0; r < rows; ++r) {
      const auto* symbols_row =
          reinterpret_cast<const uint16_t*>(kernels.symbols.data() + device::RowSymbolsOffsetBytes(c, r));
      for (int64_t run = 0; run < c.chunks_per_row / device::kRunChunks; ++run) {
        const uint16_t* scales_row = coded.scales.data() + r * c.blocks_per_row;
        const uint8_t* t_row = coded.t.data() + r * c.chunks_per_row;
        device::DecodeRunAt<8>(c, scales_row, t_row, symbols_row, run, out.data() + r * cols);
        device::DecodeRunAt<8>(c, scales_row, t_row, symbols_row, run, out_bf16.data() + r * cols,
                               device::kDTypeBfloat16);
      }
    }
    for (int64_t i = 0; i < rows * cols; ++i) {
      ASSERT_EQ(FloatBits(out[i]), FloatBits(decoded[i])) << "entry " << i;
      ASSERT_EQ(out_bf16[i], FloatToBfloat16Bits(decoded[i])) << "entry " << i;
    }
  }
}

// The GPU's block scale: sixteen lanes each sum one part (BlockRmsPart), then the same tree. It
// must be BlockRms's float bit for bit, for every length (a tail below 16 goes to part 0).
TEST(DeviceCodecTest, RmsFromSixteenLanePartsIsBlockRms) {
  for (int64_t n : {1, 5, 15, 16, 17, 31, 33, 255, 256, 257, 4097}) {
    std::vector<float> x = testing_util::Gaussian(n, static_cast<uint32_t>(n));
    for (int64_t i = 0; i < n; i += 7) x[i] *= 1e6f;  // mixed magnitudes: order matters in the sums
    double parts[kRmsParts];
    for (int k = 0; k < kRmsParts; ++k) parts[k] = BlockRmsPart(x.data(), n, k);
    const float lanes = BlockRmsFromParts(parts, n), whole = BlockRms(x.data(), n);
    EXPECT_EQ(FloatBits(lanes), FloatBits(whole)) << "n = " << n;
  }
}

TEST(DeviceCodecTest, DivIndexDividesInEitherWidth) {
  for (int64_t a : {int64_t{0}, int64_t{1}, int64_t{1023}, int64_t{1} << 31, (int64_t{1} << 32) - 1, int64_t{1} << 32,
                    int64_t{3} << 40}) {
    for (int64_t b : {int64_t{1}, int64_t{3}, int64_t{64}, int64_t{1} << 33}) {
      EXPECT_EQ(device::DivIndex(a, b), a / b) << a << " / " << b;
    }
  }
}

TEST(DeviceCodecTest, RefusesCorruptT) {
  auto codec = TensorCodec::Create(CodecParams{});
  ASSERT_TRUE(codec.ok());
  const std::vector<float> x = device_testing::TestRows(64, 3);
  auto tensor = codec->Encode(x.data(), {2, 64});
  ASSERT_TRUE(tensor.ok());
  tensor->t[5] = static_cast<uint8_t>(tensor->params.t_max + 1);
  std::vector<float> out(x.size());
  EXPECT_EQ(device::DecodeWithDeviceSteps(*tensor, out.data()).code(), absl::StatusCode::kDataLoss);
}

}  // namespace
}  // namespace coset
