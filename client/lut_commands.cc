// cosetctl gemv / dot / bench gemv: inner products computed on the codes (core/inner_product.h).
#include <cblas.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <iostream>
#include <optional>

#include "absl/strings/str_cat.h"
#include "client/commands.h"
#include "client/npy.h"
#include "common/codec_flags.h"
#include "core/evaluation.h"
#include "core/inner_product.h"
#include "core/simd/dispatch.h"
#include "core/status_macros.h"
#include "core/thread_pool.h"

namespace coset {

absl::Status CmdGemv(const CommandContext& ctx) {
  const CliArgs& args = ctx.args;
  if (args.positionals().size() != 3) return absl::InvalidArgumentError("usage: cosetctl gemv W.coset X.npy OUT.npy");
  COSET_ASSIGN_OR_RETURN(std::string blob, ReadFile(args.positionals()[0]));
  COSET_ASSIGN_OR_RETURN(CompressedTensor w, ParseCoset(args.positionals()[0], blob));
  COSET_ASSIGN_OR_RETURN(NpyArray x, ReadNpy(args.positionals()[1]));
  if (x.shape.empty() || x.shape.size() > 2 || x.shape.back() != w.layout.cols) {
    return absl::InvalidArgumentError(absl::StrCat("X must be [K] or [B, K] with K = ", w.layout.cols, " (W is ",
                                                   ShapeString(w.shape), "); got ", ShapeString(x.shape)));
  }
  const int64_t batch = x.shape.size() == 2 ? x.shape[0] : 1;
  const int64_t rows = w.layout.rows;
  std::vector<float> out(batch * rows);
  COSET_ASSIGN_OR_RETURN(std::string path, ctx.backend.Gemm(ViewOf(blob), x.data.data(), batch, out.data()));
  std::vector<int64_t> out_shape = {rows};
  if (x.shape.size() == 2) out_shape.insert(out_shape.begin(), batch);
  COSET_RETURN_IF_ERROR(WriteNpy(args.positionals()[2], out_shape, out.data(), x.dtype));
  JsonObject j;
  j.Add("output", args.positionals()[2]).Add("shape", out_shape).Add("path", path);
  Emit(ctx.json, j, absl::StrCat("wrote ", args.positionals()[2], ": shape ", ShapeString(out_shape), "\n"));
  return absl::OkStatus();
}

absl::Status CmdDot(const CommandContext& ctx) {
  const CliArgs& args = ctx.args;
  if (args.positionals().size() != 2) return absl::InvalidArgumentError("usage: cosetctl dot A.coset B.coset");
  COSET_ASSIGN_OR_RETURN(int64_t budget, args.GetInt("lut-budget", kDefaultLutBudgetBytes));
  COSET_ASSIGN_OR_RETURN(std::string a, ReadFile(args.positionals()[0]));
  COSET_ASSIGN_OR_RETURN(std::string b, ReadFile(args.positionals()[1]));
  COSET_ASSIGN_OR_RETURN(std::vector<double> dots, ctx.backend.DotRows(ViewOf(a), ViewOf(b), budget));
  if (ctx.json) {
    std::cout << "{\"dots\":[";
    for (size_t i = 0; i < dots.size(); ++i) std::cout << (i ? "," : "") << absl::StrCat(dots[i]);
    std::cout << "]}" << std::endl;
  } else {
    for (double v : dots) std::cout << absl::StrCat(v) << "\n";
  }
  return absl::OkStatus();
}

// bench gemv: LUT GEMM on codes vs OpenBLAS float32 GEMV/GEMM on the decoded matrix vs decode then
// GEMV/GEMM, same data, same thread count; `runs` runs, each timing all three (best of `reps`),
// ratios taken within a run and reported as min / median / max.
absl::Status BenchGemv(const CommandContext& ctx) {
  const CliArgs& args = ctx.args;
  if (!ctx.in_process()) return absl::InvalidArgumentError("bench gemv runs in-process only (no --daemon)");
  COSET_ASSIGN_OR_RETURN(CodecParams params, CodecParamsFromArgs(args));
  COSET_ASSIGN_OR_RETURN(int64_t n, args.GetInt("n", 16384));
  COSET_ASSIGN_OR_RETURN(int64_t k, args.GetInt("k", 8192));
  COSET_ASSIGN_OR_RETURN(int64_t batch, args.GetInt("batch", 1));
  COSET_ASSIGN_OR_RETURN(int64_t reps, args.GetInt("reps", 3));
  COSET_ASSIGN_OR_RETURN(int64_t runs, args.GetInt("runs", 3));
  if (n < 1 || k < 1 || n * k > (int64_t{1} << 31) || batch < 1 || batch > 256 || reps < 1 || reps > 100 || runs < 1 ||
      runs > 20) {
    return absl::InvalidArgumentError("need 1 <= n*k <= 2^31, 1 <= batch <= 256, 1 <= reps <= 100, 1 <= runs <= 20");
  }
  // auto: the library's default for this CPU (LutMatrix::Create without a layout).
  std::optional<LutMatrix::Path> first;
  const std::string layout = args.Get("layout", "auto");
  if (layout == "compact-codes") {
    first = LutMatrix::Path::kCompactCodes;
  } else if (layout == "int8-lanes") {
    first = LutMatrix::Path::kInt8Lanes;
  } else if (layout == "one-sided-lut") {
    first = LutMatrix::Path::kOneSidedLut;
  } else if (layout != "auto") {
    return absl::InvalidArgumentError(
        absl::StrCat("--layout (=", layout, ") must be auto, compact-codes, int8-lanes or one-sided-lut"));
  }
  // One thread unless --threads says otherwise: the baseline (OpenBLAS) gets the same count.
  ThreadPool single(1);
  Executor& pool = args.Has("threads") ? ctx.executor : single;
  const int threads = pool.concurrency();
  openblas_set_num_threads(threads);
  COSET_ASSIGN_OR_RETURN(TensorCodec codec, TensorCodec::Create(params));
  CompressedTensor w;
  std::vector<float> decoded(n * k);
  {
    const std::vector<float> raw = GaussianSamples(n * k, 11);
    COSET_ASSIGN_OR_RETURN(w, codec.Encode(raw.data(), {n, k}, DType::kFloat32, &pool));
  }
  COSET_RETURN_IF_ERROR(codec.Decode(w, decoded.data(), &pool));
  COSET_ASSIGN_OR_RETURN(LutMatrix m, LutMatrix::Create(w, kDefaultLutBudgetBytes, first));
  const std::vector<float> x = GaussianSamples(batch * k, 12);
  std::vector<float> lut_out(batch * n), fp32_out(batch * n), scratch(n * k);
  absl::Status status;
  auto fp32 = [&](const float* a, float* y) {
    if (batch == 1) {
      cblas_sgemv(CblasRowMajor, CblasNoTrans, n, k, 1.0f, a, k, x.data(), 1, 0.0f, y, 1);
    } else {
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, batch, n, k, 1.0f, x.data(), k, a, k, 0.0f, y, n);
    }
  };
  // The memory roof of the same run: one read-only pass over the decoded matrix (a buffer far
  // beyond the caches), on the same threads. The LUT kernels read each group of rows' resident codes
  // from memory once per call (a group stays in L1/L2 across its query tiles).
  const int64_t words = n * k / 2;
  volatile uint64_t sink = 0;
  auto stream_read = [&] {
    const uint64_t* data = reinterpret_cast<const uint64_t*>(decoded.data());
    std::atomic<uint64_t> total{0};
    pool.ParallelFor(words / 4096, [&](int64_t begin, int64_t end) {
      uint64_t acc = 0;
      for (int64_t i = begin * 4096; i < end * 4096; ++i) acc += data[i];
      total += acc;
    });
    sink = total.load();
  };
  std::vector<double> lut_ms, fp32_ms, decode_ms, stream_gbps, lut_gbps, vs_fp32, vs_decode, bw_fraction;
  for (int64_t run = 0; run < runs; ++run) {
    const double lut_s =
        BestSeconds(static_cast<int>(reps), [&] { status = m.Gemm(x.data(), batch, lut_out.data(), &pool); });
    COSET_RETURN_IF_ERROR(status);
    const double fp32_s = BestSeconds(static_cast<int>(reps), [&] { fp32(decoded.data(), fp32_out.data()); });
    const double decode_s = BestSeconds(static_cast<int>(reps), [&] {
      status = codec.Decode(w, scratch.data(), &pool);
      fp32(scratch.data(), fp32_out.data());
    });
    COSET_RETURN_IF_ERROR(status);
    const double stream_s = BestSeconds(static_cast<int>(reps), stream_read);
    lut_ms.push_back(lut_s * 1e3);
    fp32_ms.push_back(fp32_s * 1e3);
    decode_ms.push_back(decode_s * 1e3);
    stream_gbps.push_back(static_cast<double>(words / 4096 * 4096 * 8) / stream_s / 1e9);
    lut_gbps.push_back(static_cast<double>(m.packed_bytes()) / lut_s / 1e9);
    vs_fp32.push_back(fp32_s / lut_s);
    vs_decode.push_back(decode_s / lut_s);
    bw_fraction.push_back(lut_gbps.back() / stream_gbps.back());
  }
  (void)sink;
  double max_abs = 0, err2 = 0, ref2 = 0;
  for (int64_t i = 0; i < batch * n; ++i) {
    const double e = static_cast<double>(lut_out[i]) - fp32_out[i];
    max_abs = std::max(max_abs, std::fabs(e));
    err2 += e * e;
    ref2 += static_cast<double>(fp32_out[i]) * fp32_out[i];
  }
  const double bytes_per_entry = static_cast<double>(m.packed_bytes()) / static_cast<double>(n * k);
  JsonObject j;
  j.Add("lattice", codec.params().lattice.name()).Add("q", params.q).Add("M", params.M).Add("n", n).Add("k", k);
  j.Add("batch", batch).Add("threads", static_cast<int64_t>(threads)).Add("path", m.path_name());
  j.Add("simd", SimdLevelName(ActiveSimdLevel())).Add("runs", runs).Add("reps", reps);
  j.Add("code_bytes", static_cast<int64_t>(w.symbols.size() + w.t.size() + 2 * w.scales.size()));
  j.Add("packed_bytes", m.packed_bytes()).Add("fp32_bytes", n * k * 4);
  j.Add("resident_bytes_per_entry", bytes_per_entry).Add("resident_bits_per_entry", 8 * bytes_per_entry);
  j.Add("lut_ms", Spread(lut_ms)).Add("fp32_ms", Spread(fp32_ms)).Add("decode_then_fp32_ms", Spread(decode_ms));
  j.Add("speedup_vs_fp32", Spread(vs_fp32)).Add("speedup_vs_decode_then_fp32", Spread(vs_decode));
  j.Add("lut_read_gbps", Spread(lut_gbps)).Add("stream_read_gbps", Spread(stream_gbps));
  j.Add("read_bandwidth_fraction", Spread(bw_fraction));
  j.Add("max_abs_err", max_abs).Add("rel_err", std::sqrt(err2 / ref2));
  auto median = [](std::vector<double> v) {
    std::sort(v.begin(), v.end());
    return v[v.size() / 2];
  };
  Emit(ctx.json, j,
       absl::StrCat("GEMV ", n, "x", k, " batch ", batch, ", ", threads, " thread(s), ", codec.params().lattice.name(),
                    " q=", params.q, " M=", params.M, ", ", m.path_name(), " (", SimdLevelName(ActiveSimdLevel()),
                    "), medians of ", runs, " runs:\n  LUT on codes     ", median(lut_ms), " ms\n  fp32 (OpenBLAS)  ",
                    median(fp32_ms), " ms (", median(vs_fp32), "x)\n  decode + fp32    ", median(decode_ms), " ms (",
                    median(vs_decode), "x)\n  resident codes ", 8 * bytes_per_entry, " bits/entry, read at ",
                    median(lut_gbps), " GB/s (streaming read ", median(stream_gbps), " GB/s)\n  rel err ",
                    std::sqrt(err2 / ref2), ", max abs err ", max_abs, "\n"));
  return absl::OkStatus();
}

}  // namespace coset
