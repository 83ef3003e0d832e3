// Throughput of HNLQ encode/decode (D4 q=4 M=2 and E8 q=4 M=2, default RMS scaling) on float32
// N(0,1) data, beside memcpy of the same bytes in the same run. bytes_per_second counts float32
// input bytes; compare each codec row with BM_Memcpy at the same thread count. BM_DecodeSum: the
// DDP hook's sum of W decoded packets (items: entries x terms), in cache and beyond it.
//
//   bazel run -c opt //bench:codec_benchmark -- --benchmark_repetitions=3
#include <cstring>
#include <fstream>
#include <memory>
#include <string>

#include "benchmark/benchmark.h"
#include "core/bucket_packet.h"
#include "core/code_arith.h"
#include "core/crc32c.h"
#include "core/evaluation.h"
#include "core/format.h"
#include "core/range_coder.h"
#include "core/row_codec.h"
#include "core/tensor_codec.h"
#include "core/thread_pool.h"

namespace coset {
namespace {

constexpr int64_t kRows = 4096, kCols = 4096;  // 64 MiB of float32: far beyond the caches

const std::vector<float>& Input() {
  static const std::vector<float> x = GaussianSamples(kRows * kCols, 1);
  return x;
}

const char* LatticeName(int64_t id) { return id == 0 ? "D4" : "E8"; }

void BM_Memcpy(benchmark::State& state) {
  ThreadPool pool(static_cast<int>(state.range(0)));
  const std::vector<float>& x = Input();
  std::vector<float> y(x.size());
  for (auto _ : state) {
    pool.ParallelFor(kRows, [&](int64_t b, int64_t e) {
      std::memcpy(y.data() + b * kCols, x.data() + b * kCols, (e - b) * kCols * sizeof(float));
    });
    benchmark::DoNotOptimize(y.data());
  }
  state.SetBytesProcessed(state.iterations() * kRows * kCols * 4);
}

void BM_Encode(benchmark::State& state) {
  CodecParams p;
  p.lattice = *Lattice::Parse(LatticeName(state.range(0)));
  const TensorCodec codec = *TensorCodec::Create(p);
  ThreadPool pool(static_cast<int>(state.range(1)));
  CompressedTensor t;
  EncodeStats stats;
  for (auto _ : state) {
    if (!codec.EncodeInto(Input().data(), {kRows, kCols}, DType::kFloat32, &pool, &stats, &t).ok()) {
      state.SkipWithError("encode failed");
    }
  }
  state.SetBytesProcessed(state.iterations() * kRows * kCols * 4);
  state.counters["overload"] = stats.first_try_overload_rate();
  state.SetLabel(p.lattice.name() + " q=4 M=2");
}

void BM_Decode(benchmark::State& state) {
  CodecParams p;
  p.lattice = *Lattice::Parse(LatticeName(state.range(0)));
  const TensorCodec codec = *TensorCodec::Create(p);
  ThreadPool pool(static_cast<int>(state.range(1)));
  const CompressedTensor t = *codec.Encode(Input().data(), {kRows, kCols}, DType::kFloat32, &pool);
  std::vector<float> y(kRows * kCols);
  for (auto _ : state) {
    if (!codec.Decode(t, y.data(), &pool).ok()) state.SkipWithError("decode failed");
    benchmark::DoNotOptimize(y.data());
  }
  state.SetBytesProcessed(state.iterations() * kRows * kCols * 4);
  state.SetLabel(p.lattice.name() + " q=4 M=2");
}

// The DDP hook's decode of W packets into one sum (allgather): its codec (coset_torch.ddp's
// default_config: D4 q=4 M=2, absmax blocks, t_max 7, zero caps) on a packet's rows (the layout of
// a one-shard bucket: 1024-entry rows, 4096 past 131,072 entries), `count` terms of different data
// into one output of about the MLP's (240 x 1024 entries: 0.98 MB) or the wide model's gradient
// (11520 x 1024: 47 MB).
void BM_DecodeSum(benchmark::State& state) {
  CodecParams p;
  p.scale = ScaleMode::kAbsMax;
  p.t_max = 7;
  p.on_cap = CapPolicy::kZero;
  const TensorCodec codec = *TensorCodec::Create(p);
  const int64_t numel = state.range(0) * kPacketRowEntries, count = state.range(1);
  const std::vector<int64_t> shape = BucketLayout::Make(codec.params(), numel, 1)->shard_shape();
  std::vector<CompressedTensor> terms;
  for (int64_t k = 0; k < count; ++k) {
    const std::vector<float> x = GaussianSamples(numel, 7 + k);
    terms.push_back(*codec.Encode(x.data(), shape, DType::kFloat32, nullptr));
  }
  const std::vector<CompressedTensorView> views(terms.begin(), terms.end());
  std::vector<float> y(numel);
  for (auto _ : state) {
    if (!codec.DecodeSum(views.data(), count, y.data(), nullptr, TensorCodec::Epilogue{nullptr, 0.125f, -1}).ok())
      state.SkipWithError("decode failed");
    benchmark::DoNotOptimize(y.data());
  }
  state.SetItemsProcessed(state.iterations() * numel * count);
}
BENCHMARK(BM_DecodeSum)->ArgNames({"rows", "count"})->ArgsProduct({{240, 11520}, {1, 8}})->UseRealTime();

// What a daemon's Encode spends after the codec, on one thread: the overload counters of the
// 64 MiB input's D4 code (4M values, 27 % above 0) coded into the blob's T stream (rANS), and
// summarized for the metrics (SummarizeOverloads). items: counters.
const CompressedTensor& CodedInput() {
  static const CompressedTensor t = *TensorCodec::Create(CodecParams{})->Encode(Input().data(), {kRows, kCols});
  return t;
}

void BM_OverloadStreamEncode(benchmark::State& state) {
  const CompressedTensor& t = CodedInput();
  for (auto _ : state) {
    benchmark::DoNotOptimize(EncodeOverloadCounts(t.t.data(), static_cast<int64_t>(t.t.size()), t.params.t_max));
  }
  state.SetItemsProcessed(state.iterations() * static_cast<int64_t>(t.t.size()));
}

void BM_OverloadStreamDecode(benchmark::State& state) {
  const CompressedTensor& t = CodedInput();
  const int64_t count = static_cast<int64_t>(t.t.size());
  const std::vector<uint8_t> stream = EncodeOverloadCounts(t.t.data(), count, t.params.t_max);
  std::vector<uint8_t> decoded(t.t.size());
  for (auto _ : state) {
    if (!DecodeOverloadCounts(stream.data(), static_cast<int64_t>(stream.size()), count, t.params.t_max, decoded.data())
             .ok()) {
      state.SkipWithError("decode failed");
    }
  }
  state.SetItemsProcessed(state.iterations() * count);
}

// The compressed-domain sum (AddCodes) of two copies of that code (they share scales), with
// validation: the daemon's AddCodes RPC and coset_torch.add_codes. items: entries summed.
void BM_AddCodes(benchmark::State& state) {
  const CompressedTensor& t = CodedInput();
  ThreadPool pool(static_cast<int>(state.range(0)));
  for (auto _ : state) {
    SumValidation validation;
    benchmark::DoNotOptimize(AddCodes({&t, &t}, &validation, &pool));
  }
  state.SetItemsProcessed(state.iterations() * 2 * kRows * kCols);
}

void BM_SummarizeOverloads(benchmark::State& state) {
  const CompressedTensor& t = CodedInput();
  ThreadPool pool(static_cast<int>(state.range(0)));
  for (auto _ : state) benchmark::DoNotOptimize(SummarizeOverloads(t, &pool));
  state.SetItemsProcessed(state.iterations() * static_cast<int64_t>(t.t.size()));
}
// The CRC-32C every blob's writer and reader take over it (the blob of that code, 10 MB).
void BM_BlobCrc32c(benchmark::State& state) {
  const std::vector<uint8_t> blob = Serialize(CodedInput());
  for (auto _ : state) benchmark::DoNotOptimize(Crc32c(blob.data(), blob.size()));
  state.SetBytesProcessed(state.iterations() * static_cast<int64_t>(blob.size()));
}

BENCHMARK(BM_OverloadStreamEncode)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_BlobCrc32c)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_OverloadStreamDecode)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_AddCodes)->ArgName("threads")->Arg(1)->Arg(2)->UseRealTime()->Unit(benchmark::kMillisecond);
BENCHMARK(BM_SummarizeOverloads)->ArgName("threads")->Arg(1)->Arg(2)->UseRealTime()->Unit(benchmark::kMillisecond);

BENCHMARK(BM_Memcpy)->ArgName("threads")->Arg(1)->Arg(2)->UseRealTime()->Unit(benchmark::kMillisecond);
BENCHMARK(BM_Encode)
    ->ArgNames({"lattice", "threads"})
    ->ArgsProduct({{0, 1}, {1, 2}})
    ->UseRealTime()
    ->Unit(benchmark::kMillisecond);
BENCHMARK(BM_Decode)
    ->ArgNames({"lattice", "threads"})
    ->ArgsProduct({{0, 1}, {1, 2}})
    ->UseRealTime()
    ->Unit(benchmark::kMillisecond);

std::string CpuModel() {
  std::ifstream in("/proc/cpuinfo");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("model name", 0) == 0) return line.substr(line.find(':') + 2);
  }
  return "unknown";
}

}  // namespace
}  // namespace coset

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  benchmark::AddCustomContext("cpu_model", coset::CpuModel());
  benchmark::AddCustomContext("simd", coset::SimdLevelName(coset::ActiveSimdLevel()));
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
