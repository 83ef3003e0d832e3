// Timing probe for a batch-1 GEMV design that issue #11 suggested and that is not built: instead of
// decoding weights (the compact-codes kernel, core/simd/lut_gemm_avx512.cc), look up per column
// chunk c a table of the query's partial dots L_c[b] = <x_c, 2 rep(b)> for all 256 D4 symbols,
// quantized to 16 bits (two 256-entry byte tables, hi and lo, each looked up with two vpermt2b and
// a blend), so that a (row, chunk) costs two lookups per level instead of one per coordinate:
//   dot(row) = sum_c ramp[T(row, c)] * s_c * (L_c[b_0] + 4 L_c[b_1]),  accumulated in float.
// Layout (repacked once, 4.5 bits per entry with T): tiles of 64 rows; per column block of 32
// chunks and tile, per chunk, the 64 rows' b_0 bytes, their b_1 bytes and their 2-bit T fields.
//
// Only the speed is measured: codes, T (with D4 q=4 M=2's first-try distribution: 73 % T = 0) and
// tables are random, so the result is not a product of anything. Two variants: `ramp` does all the
// arithmetic a real kernel needs (the ramp looked up per lane from T with a permute); `no_ramp`
// skips the ramp (wrong results, a bound on what a cheaper ramp could give). Both against OpenBLAS
// cblas_sgemv on a float matrix of the same shape, one thread, in the same run, 3 runs each.
//
//   OPENBLAS_NUM_THREADS=1 bazel run -c opt //bench:partial_dot_lut_probe [-- --json]
#include <cblas.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <random>
#include <vector>

#include "common/json_writer.h"
#include "core/simd/avx512_unit.h"  // the AVX-512 flags check, and <immintrin.h>

namespace {

constexpr int kRows = 16384, kCols = 8192, kChunks = kCols / 4;
constexpr int kBlockChunks = 32;  // column chunks per block: 32 x 512 bytes of tables stay in L1
constexpr int kTileRows = 64;
constexpr int kBlocks = kChunks / kBlockChunks, kTiles = kRows / kTileRows;
constexpr int kChunksPerScaleBlock = 64;  // 256-entry scale blocks

struct Codes {
  std::vector<uint8_t> symbols;  // [block][tile][chunk][level][64 rows]
  std::vector<uint32_t> t;       // [block][tile][chunk][4 words of 16 2-bit fields]
  std::vector<float> half_base;  // [scale block][row]
};

struct Tables {
  std::vector<uint8_t> bytes;  // per chunk: hi[256], lo[256]
  std::vector<float> scale;    // s_c per chunk
};

template <bool kRamp>
void Gemv(const Codes& codes, const Tables& tables, float* out) {
  std::memset(out, 0, sizeof(float) * kRows);
  float ramp16[16];  // index: T in bits 0-1 (bits 2-3 hold the next field and are ignored)
  for (int i = 0; i < 16; ++i) ramp16[i] = std::exp2((i & 3) / 3.0f);
  const __m512 ramp = _mm512_loadu_ps(ramp16);
  const __m512i shifts = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
  // vpmaddwd constants: the even / odd word of each dword, times 1 (level 0) or 4 (level 1).
  const __m512i even1 = _mm512_set1_epi32(1), even4 = _mm512_set1_epi32(4);
  const __m512i odd1 = _mm512_set1_epi32(1 << 16), odd4 = _mm512_set1_epi32(4 << 16);
  const uint8_t* symbols = codes.symbols.data();
  const uint32_t* t = codes.t.data();
  for (int block = 0; block < kBlocks; ++block) {
    for (int tile = 0; tile < kTiles; ++tile) {
      __m512 acc[4] = {_mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps()};
      for (int c = 0; c < kBlockChunks; ++c) {
        const int chunk = block * kBlockChunks + c;
        const uint8_t* tab = tables.bytes.data() + static_cast<size_t>(chunk) * 512;
        __m512i words[2][2];  // [level][half]: 16-bit L_c[b] of 32 rows
        for (int m = 0; m < 2; ++m) {
          _mm_prefetch(reinterpret_cast<const char*>(symbols + 2048 + 64 * m), _MM_HINT_T0);
          const __m512i s = _mm512_loadu_si512(symbols + 64 * m);
          const __mmask64 top = _mm512_movepi8_mask(s);
          auto lookup = [&](const uint8_t* t256) {
            const __m512i low = _mm512_permutex2var_epi8(_mm512_loadu_si512(t256), s, _mm512_loadu_si512(t256 + 64));
            const __m512i high =
                _mm512_permutex2var_epi8(_mm512_loadu_si512(t256 + 128), s, _mm512_loadu_si512(t256 + 192));
            return _mm512_mask_blend_epi8(top, low, high);
          };
          const __m512i hi = lookup(tab), lo = lookup(tab + 256);
          words[m][0] = _mm512_unpacklo_epi8(lo, hi);
          words[m][1] = _mm512_unpackhi_epi8(lo, hi);
        }
        symbols += 128;
        const __m512 scaled_ramp = _mm512_mul_ps(ramp, _mm512_set1_ps(tables.scale[chunk]));
        for (int h = 0; h < 2; ++h) {
          const __m512i dots[2] = {
              _mm512_add_epi32(_mm512_madd_epi16(words[0][h], even1), _mm512_madd_epi16(words[1][h], even4)),
              _mm512_add_epi32(_mm512_madd_epi16(words[0][h], odd1), _mm512_madd_epi16(words[1][h], odd4))};
          for (int e = 0; e < 2; ++e) {
            const int o = 2 * h + e;
            __m512 factor = scaled_ramp;
            if constexpr (kRamp) {
              factor = _mm512_permutexvar_ps(_mm512_srlv_epi32(_mm512_set1_epi32(static_cast<int>(t[o])), shifts),
                                             scaled_ramp);
            }
            acc[o] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(dots[e]), factor, acc[o]);
          }
        }
        t += 4;
      }
      const float* half_base =
          codes.half_base.data() + static_cast<size_t>(block * kBlockChunks / kChunksPerScaleBlock) * kRows;
      for (int o = 0; o < 4; ++o) {
        float* y = out + tile * kTileRows + 16 * o;
        _mm512_storeu_ps(
            y, _mm512_fmadd_ps(_mm512_loadu_ps(half_base + tile * kTileRows + 16 * o), acc[o], _mm512_loadu_ps(y)));
      }
    }
  }
}

template <class Body>
std::vector<double> Milliseconds(Body body) {
  std::vector<double> runs;
  for (int run = 0; run < 3; ++run) {
    double best = 1e30;
    for (int rep = 0; rep < 5; ++rep) {
      const auto start = std::chrono::steady_clock::now();
      body();
      best =
          std::min(best, std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count());
    }
    runs.push_back(best);
  }
  return runs;
}

}  // namespace

int main(int argc, char** argv) {
  const bool json = argc > 1 && std::strcmp(argv[1], "--json") == 0;
  if (!__builtin_cpu_supports("avx512bw") || !__builtin_cpu_supports("avx512vbmi")) {
    std::fprintf(stderr, "partial_dot_lut_probe: this CPU has no AVX-512 VBMI; nothing to measure\n");
    return 1;
  }
  std::mt19937 rng(7);
  Codes codes;
  codes.symbols.resize(static_cast<size_t>(kRows) * kChunks * 2);
  for (uint8_t& s : codes.symbols) s = static_cast<uint8_t>(rng());
  codes.t.resize(static_cast<size_t>(kRows) * kChunks / 16);
  for (uint32_t& word : codes.t) {
    word = 0;
    for (int k = 0; k < 16; ++k) word |= static_cast<uint32_t>(rng() % 100 < 73 ? 0 : 1 + rng() % 3) << (2 * k);
  }
  codes.half_base.assign(static_cast<size_t>(kChunks / kChunksPerScaleBlock) * kRows, 0.01f);
  Tables tables;
  tables.bytes.resize(static_cast<size_t>(kChunks) * 512);
  for (uint8_t& b : tables.bytes) b = static_cast<uint8_t>(rng());
  tables.scale.assign(kChunks, 1e-4f);
  std::vector<float> matrix(static_cast<size_t>(kRows) * kCols), x(kCols), y(kRows);
  std::uniform_real_distribution<float> uniform(-1.0f, 1.0f);
  for (float& v : matrix) v = uniform(rng);
  for (float& v : x) v = uniform(rng);

  const std::vector<double> sgemv = Milliseconds([&] {
    cblas_sgemv(CblasRowMajor, CblasNoTrans, kRows, kCols, 1.0f, matrix.data(), kCols, x.data(), 1, 0.0f, y.data(), 1);
  });
  const std::vector<double> ramp = Milliseconds([&] { Gemv<true>(codes, tables, y.data()); });
  const std::vector<double> no_ramp = Milliseconds([&] { Gemv<false>(codes, tables, y.data()); });
  auto ratios = [&](const std::vector<double>& ms) {
    std::vector<double> r;
    for (size_t i = 0; i < ms.size(); ++i) r.push_back(sgemv[i] / ms[i]);
    return r;
  };
  const double bits_per_entry = 8.0 * (codes.symbols.size() + 4.0 * codes.t.size()) / (double(kRows) * kCols);
  if (json) {
    coset::JsonObject out;
    out.Add("rows", kRows).Add("cols", kCols).Add("bits_per_entry", bits_per_entry);
    out.Add("sgemv_ms", coset::Spread(sgemv));
    out.Add("ramp_ms", coset::Spread(ramp)).Add("ramp_x_sgemv", coset::Spread(ratios(ramp)));
    out.Add("no_ramp_ms", coset::Spread(no_ramp)).Add("no_ramp_x_sgemv", coset::Spread(ratios(no_ramp)));
    std::printf("%s\n", out.str().c_str());
    return 0;
  }
  std::printf("%d x %d, batch 1, one thread, %.2f bits per entry; 3 runs (best of 5 each), same-run sgemv\n", kRows,
              kCols, bits_per_entry);
  for (int i = 0; i < 3; ++i) {
    std::printf("run %d: sgemv %.2f ms | ramp %.2f ms (%.2fx) | no_ramp %.2f ms (%.2fx)\n", i + 1, sgemv[i], ramp[i],
                sgemv[i] / ramp[i], no_ramp[i], sgemv[i] / no_ramp[i]);
  }
  return 0;
}
