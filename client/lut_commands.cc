// cosetctl gemv / dot / bench gemv: inner products computed on the codes (core/inner_product.h).
#include <cblas.h>

#include <atomic>
#include <cmath>
#include <iostream>

#include "absl/strings/str_cat.h"
#include "client/commands.h"
#include "client/npy.h"
#include "common/codec_flags.h"
#include "core/evaluation.h"
#include "core/inner_product.h"
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

// bench gemv: LUT GEMV on codes vs OpenBLAS float32 GEMV on the decoded matrix vs decode + GEMV,
// same data, same thread count, same run.
absl::Status BenchGemv(const CommandContext& ctx) {
  const CliArgs& args = ctx.args;
  if (!ctx.in_process()) return absl::InvalidArgumentError("bench gemv runs in-process only (no --daemon)");
  COSET_ASSIGN_OR_RETURN(CodecParams params, CodecParamsFromArgs(args));
  COSET_ASSIGN_OR_RETURN(int64_t n, args.GetInt("n", 16384));
  COSET_ASSIGN_OR_RETURN(int64_t k, args.GetInt("k", 8192));
  COSET_ASSIGN_OR_RETURN(int64_t batch, args.GetInt("batch", 1));
  COSET_ASSIGN_OR_RETURN(int64_t reps, args.GetInt("reps", 5));
  if (n < 1 || k < 1 || n * k > (int64_t{1} << 31) || batch < 1 || batch > 64 || reps < 1 || reps > 100) {
    return absl::InvalidArgumentError("need 1 <= n*k <= 2^31, 1 <= batch <= 64, 1 <= reps <= 100");
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
  COSET_ASSIGN_OR_RETURN(LutMatrix m, LutMatrix::Create(w));
  const std::vector<float> x = GaussianSamples(batch * k, 12);
  std::vector<float> lut_out(batch * n), fp32_out(batch * n);
  absl::Status status;
  auto fp32 = [&](const float* a, float* y) {
    if (batch == 1) {
      cblas_sgemv(CblasRowMajor, CblasNoTrans, n, k, 1.0f, a, k, x.data(), 1, 0.0f, y, 1);
    } else {
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, batch, n, k, 1.0f, x.data(), k, a, k, 0.0f, y, n);
    }
  };
  const double lut_s =
      BestSeconds(static_cast<int>(reps), [&] { status = m.Gemm(x.data(), batch, lut_out.data(), &pool); });
  COSET_RETURN_IF_ERROR(status);
  const double fp32_s = BestSeconds(static_cast<int>(reps), [&] { fp32(decoded.data(), fp32_out.data()); });
  std::vector<float> scratch(n * k);
  const double decode_s = BestSeconds(static_cast<int>(reps), [&] {
    status = codec.Decode(w, scratch.data(), &pool);
    fp32(scratch.data(), fp32_out.data());
  });
  COSET_RETURN_IF_ERROR(status);
  // The memory roof of the same run: one read-only pass over the decoded matrix (a buffer far
  // beyond the caches), on the same threads. The LUT kernels read each group of rows' resident codes
  // from memory once per call (a group stays in L2 across its query tiles).
  volatile uint64_t sink = 0;
  const int64_t words = n * k / 2;
  const double stream_s = BestSeconds(static_cast<int>(reps), [&] {
    const uint64_t* data = reinterpret_cast<const uint64_t*>(decoded.data());
    std::atomic<uint64_t> total{0};
    pool.ParallelFor(words / 4096, [&](int64_t begin, int64_t end) {
      uint64_t acc = 0;
      for (int64_t i = begin * 4096; i < end * 4096; ++i) acc += data[i];
      total += acc;
    });
    sink = total.load();
  });
  (void)sink;
  const double stream_gbps = static_cast<double>(words / 4096 * 4096 * 8) / stream_s / 1e9;
  const double lut_read_gbps = static_cast<double>(m.packed_bytes()) / lut_s / 1e9;
  double max_abs = 0, err2 = 0, ref2 = 0;
  for (int64_t i = 0; i < batch * n; ++i) {
    const double e = static_cast<double>(lut_out[i]) - fp32_out[i];
    max_abs = std::max(max_abs, std::fabs(e));
    err2 += e * e;
    ref2 += static_cast<double>(fp32_out[i]) * fp32_out[i];
  }
  JsonObject j;
  j.Add("lattice", codec.params().lattice.name()).Add("q", params.q).Add("M", params.M).Add("n", n).Add("k", k);
  j.Add("batch", batch)
      .Add("threads", static_cast<int64_t>(threads))
      .Add("path", m.fast_path() ? "int8-lanes" : "one-sided-lut");
  j.Add("code_bytes", static_cast<int64_t>(w.symbols.size() + w.t.size() + 2 * w.scales.size()));
  j.Add("packed_bytes", m.packed_bytes()).Add("fp32_bytes", n * k * 4);
  j.Add("resident_bytes_per_entry", static_cast<double>(m.packed_bytes()) / static_cast<double>(n * k));
  j.Add("lut_read_gbps", lut_read_gbps).Add("stream_read_gbps", stream_gbps);
  j.Add("read_bandwidth_fraction", lut_read_gbps / stream_gbps);
  j.Add("lut_ms", lut_s * 1e3).Add("fp32_ms", fp32_s * 1e3).Add("decode_then_fp32_ms", decode_s * 1e3);
  j.Add("speedup_vs_fp32", fp32_s / lut_s).Add("max_abs_err", max_abs).Add("rel_err", std::sqrt(err2 / ref2));
  Emit(ctx.json, j,
       absl::StrCat("GEMV ", n, "x", k, " batch ", batch, ", ", threads, " thread(s), ", codec.params().lattice.name(),
                    " q=", params.q, " M=", params.M, ":\n  LUT on codes     ", lut_s * 1e3, " ms\n  fp32 (OpenBLAS)  ",
                    fp32_s * 1e3, " ms\n  decode + fp32    ", decode_s * 1e3, " ms\n  resident codes ",
                    static_cast<double>(m.packed_bytes()) / static_cast<double>(n * k), " bytes/entry, read at ",
                    lut_read_gbps, " GB/s (streaming read ", stream_gbps, " GB/s)\n  rel err ", std::sqrt(err2 / ref2),
                    ", max abs err ", max_abs, "\n"));
  return absl::OkStatus();
}

}  // namespace coset
