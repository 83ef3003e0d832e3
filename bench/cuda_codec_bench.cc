// GPU codec throughput against a device-to-device copy measured in the same run (the device
// check's benchmark). Data stays on the device: the kernels alone are timed, with CUDA events.
//
//   cuda_codec_bench [--mib 1024] [--runs 3] [--device 0] [--shrink 1] [--sections codec,host,dot,gemm]
//                    [--gemm-methods tensor-cores,runs,per-chunk,decode-cublas]
//
// --sections and --gemm-methods pick what runs (all by default; the sections are described below,
// the methods are CudaCodec::Gemm's).
// --shrink S (a power of two up to 32) divides the fixed sizes below (the 64 MiB host tensor, the
// GEMM and DotRows shapes) by S, per dimension for matrices: for the CUDA emulation, whose kernels
// run on one CPU core (tests/kernels/cuda_codec_bench_emulated_test); its times mean nothing.
//
// For D4 and E8 (q=4, M=2, rms blocks of 256), rows of 4096 floats: encode (float32 in; scales, T
// and symbols out) and decode (codes in, float32 out). Each reports the bytes it reads plus the
// bytes it writes over its time, and the ratio to a cudaMemcpy (device to device) that moves the
// same bytes (half read, half written): min / median / max of --runs runs. One JSON object per
// line; each kernel path (a thread per chunk, and "runs_": KernelPath::kRuns, the single-pass tile
// encode for these codes and the packed decode for D4 (the run decode for E8), with a check that
// its codes and floats are the per-chunk kernels'); and the same in bf16 ("bf16_": bf16 in, or out,
// against a copy of those bytes; the run path's encode reads bf16 and its decodes store bf16
// themselves, the per-chunk kernels widen and narrow through float32 buffers). Then where a 64 MiB host tensor's encode
// and decode spend their time ("host_path": uploads from pageable and pinned memory, CudaCodec::Encode / Decode whole
// and pipelined (through the staging slots from pageable memory, and in place from pinned memory; with a check that the
// results are the whole path's), the blob's serialization and the CPU codec, host clocks). Then GEMM on codes (D4, and
// E8 at 8192 x 8192; weights N x K, B queries), for each of CudaCodec::Gemm's methods ("kernel": "tensor-cores",
// LaunchGemm's kTensorCores kernel from 5 queries on; LaunchGemm's kRuns kernel, "packed" for D4 and "runs" for
// E8; the "per-chunk" kernel; and, where cuBLAS loads, "decode-cublas": the decode to float32 plus cuBLAS SGEMM): its
// time; the bits per weight the kernel streams (the packed GEMM's T in two bits); the time a bf16 GEMV/GEMM that only
// streams its 2-byte weights at the measured copy bandwidth would need; and, where the machine has cuBLAS (loaded at
// run time), cublasGemmEx in bf16 on the decoded weights, the decode's own time, and the largest difference from
// cublasGemmEx in float32 relative to the largest result. Also DotRows from the two-sided LUT on two 8192 x 8192 codes,
// against a device copy of their bytes. Exits 1, saying why, when there is no usable CUDA device.
#include <cuda_runtime_api.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/cli_args.h"
#include "common/json_writer.h"
#include "core/format.h"
#include "core/lut.h"
#include "core/thread_pool.h"
#include "kernels/cublas.h"
#include "kernels/cuda_codec.h"
#include "kernels/cuda_runtime.h"
#include "kernels/device_codec_host.h"

namespace coset {
namespace {

#define CHECK_CUDA(expr)                                                                \
  do {                                                                                  \
    const cudaError_t e = (expr);                                                       \
    if (e != cudaSuccess) {                                                             \
      std::fprintf(stderr, "cuda_codec_bench: %s: %s\n", #expr, cudaGetErrorString(e)); \
      std::exit(1);                                                                     \
    }                                                                                   \
  } while (false)

template <typename T>
T OrDie(absl::StatusOr<T> v) {
  if (!v.ok()) {
    std::fprintf(stderr, "cuda_codec_bench: %s\n", std::string(v.status().message()).c_str());
    std::exit(1);
  }
  return *std::move(v);
}

void OrDie(const absl::Status& s) {
  if (!s.ok()) {
    std::fprintf(stderr, "cuda_codec_bench: %s\n", std::string(s.message()).c_str());
    std::exit(1);
  }
}

// Milliseconds of `work` on `stream`, by CUDA events.
template <class Work>
float TimeMs(cudaStream_t stream, Work work) {
  cudaEvent_t start, stop;
  CHECK_CUDA(cudaEventCreate(&start));
  CHECK_CUDA(cudaEventCreate(&stop));
  CHECK_CUDA(cudaEventRecord(start, stream));
  work();
  CHECK_CUDA(cudaEventRecord(stop, stream));
  CHECK_CUDA(cudaEventSynchronize(stop));
  float ms = 0;
  CHECK_CUDA(cudaEventElapsedTime(&ms, start, stop));
  CHECK_CUDA(cudaEventDestroy(start));
  CHECK_CUDA(cudaEventDestroy(stop));
  return ms;
}

// Deterministic N(0,1)-like floats (sum of four uniforms, centred and scaled): throughput only.
std::vector<float> TestData(int64_t n) {
  std::vector<float> x(n);
  uint64_t state = 0x9E3779B97F4A7C15ull;
  for (float& v : x) {
    float sum = 0;
    for (int k = 0; k < 4; ++k) {
      state ^= state << 13, state ^= state >> 7, state ^= state << 17;
      sum += static_cast<float>(state >> 40) * (1.0f / 16777216.0f);
    }
    v = (sum - 2.0f) * 1.7320508f;
  }
  return x;
}

// Copies `bytes` of `from` to the host and waits for them.
void Download(const DeviceMemory& from, int64_t bytes, cudaStream_t stream, void* to) {
  CHECK_CUDA(cudaMemcpyAsync(to, from.as<void>(), static_cast<size_t>(bytes), cudaMemcpyDeviceToHost, stream));
  CHECK_CUDA(cudaStreamSynchronize(stream));
}

std::vector<uint16_t> ToBf16(const std::vector<float>& x) {
  std::vector<uint16_t> out(x.size());
  for (size_t i = 0; i < x.size(); ++i) out[i] = FloatToBf16(x[i]);
  return out;
}

int Main(int argc, char** argv) {
  const CliArgs args = OrDie(CliArgs::Parse(std::vector<std::string>(argv + 1, argv + argc),
                                            {"mib", "runs", "device", "shrink", "sections", "gemm-methods"}, {}));
  const int64_t mib = OrDie(args.GetInt("mib", 1024));
  const int runs = static_cast<int>(OrDie(args.GetInt("runs", 3)));
  const int64_t shrink = OrDie(args.GetInt("shrink", 1));
  if (shrink < 1 || shrink > 32 || (shrink & (shrink - 1)) != 0) {
    std::fprintf(stderr, "cuda_codec_bench: --shrink must be a power of two in [1, 32]\n");
    return 2;
  }
  // The sections to run and the GEMM methods to time (comma-separated; all by default): the device
  // check runs the sections, and the GEMM kernels not yet run on a GPU, each in a process of its
  // own, so that a kernel's fault (a sticky CUDA error ends the process) costs only its own lines.
  const std::map<std::string, GemmMethod> kMethods = {{"tensor-cores", GemmMethod::kFusedTensorCores},
                                                      {"runs", GemmMethod::kFusedRuns},
                                                      {"per-chunk", GemmMethod::kFusedPerChunk},
                                                      {"decode-cublas", GemmMethod::kDecodeCublas}};
  std::set<std::string> sections;
  std::set<GemmMethod> methods;
  for (const absl::string_view name : absl::StrSplit(args.Get("sections", "codec,host,dot,gemm"), ',')) {
    if (name != "codec" && name != "host" && name != "dot" && name != "gemm") {
      std::fprintf(stderr, "cuda_codec_bench: --sections takes codec, host, dot, gemm (got '%s')\n",
                   std::string(name).c_str());
      return 2;
    }
    sections.insert(std::string(name));
  }
  for (const absl::string_view name :
       absl::StrSplit(args.Get("gemm-methods", "tensor-cores,runs,per-chunk,decode-cublas"), ',')) {
    const auto it = kMethods.find(std::string(name));
    if (it == kMethods.end()) {
      std::fprintf(stderr,
                   "cuda_codec_bench: --gemm-methods takes tensor-cores, runs, per-chunk, decode-cublas "
                   "(got '%s')\n",
                   std::string(name).c_str());
      return 2;
    }
    methods.insert(it->second);
  }
  auto codec_on_device = CudaCodec::Create(static_cast<int>(OrDie(args.GetInt("device", 0))));
  if (!codec_on_device.ok()) {
    std::fprintf(stderr, "cuda_codec_bench: needs a CUDA device: %s\n",
                 std::string(codec_on_device.status().message()).c_str());
    return 1;
  }
  CudaCodec& gpu = **codec_on_device;
  const cudaStream_t stream = static_cast<cudaStream_t>(gpu.stream());
  constexpr int64_t kCols = 4096;
  const int64_t rows = std::max<int64_t>(1, (mib << 20) / (4 * kCols));
  const std::vector<int64_t> shape = {rows, kCols};
  const std::vector<float> host = sections.count("codec") > 0 ? TestData(rows * kCols) : std::vector<float>();
  for (const char* lattice : {"D4", "E8"}) {
    if (sections.count("codec") == 0) break;
    CodecParams params;
    params.lattice = OrDie(Lattice::Parse(lattice));
    params.on_cap = CapPolicy::kZero;
    const TensorCodec codec = OrDie(TensorCodec::Create(params));
    const device::DeviceCodecPlan plan = OrDie(device::MakePlan(codec, shape));
    const Layout& l = plan.context.layout;
    DeviceMemory ramp, signs, x, base, scales, t, symbols, counters, out, copy_src, copy_dst;
    const device::DeviceCodec c = OrDie(gpu.OnDevice(plan, &ramp, &signs));
    const int64_t in_bytes = 4 * l.numel;
    const int64_t code_bytes =
        device::SymbolBufferBytes(plan) + l.rows * l.chunks_per_row + 2 * l.rows * l.blocks_per_row;
    OrDie(x.Upload(host.data(), in_bytes, stream));
    OrDie(base.Allocate(4 * l.rows * l.blocks_per_row));
    OrDie(scales.Allocate(2 * l.rows * l.blocks_per_row));
    OrDie(t.Allocate(l.rows * l.chunks_per_row));
    OrDie(symbols.Allocate(device::SymbolBufferBytes(plan)));
    OrDie(counters.Allocate(sizeof(device::EncodeCounters)));
    OrDie(out.Allocate(in_bytes));
    const int64_t moved = in_bytes + code_bytes;  // read + written by either direction
    OrDie(copy_src.Allocate(moved / 2 + 1));
    OrDie(copy_dst.Allocate(moved / 2 + 1));
    // Either kernel path (device::KernelPath: a thread per chunk, or per run of four chunks), of
    // float32 `input` (x, or the bf16 input widened below).
    auto encode_floats = [&](const float* input, device::KernelPath path) {
      CHECK_CUDA(cudaMemsetAsync(counters.as<void>(), 0, sizeof(device::EncodeCounters), stream));
      CHECK_CUDA(device::LaunchEncode(c, input, nullptr, base.as<float>(), scales.as<uint16_t>(), t.as<uint8_t>(),
                                      symbols.as<void>(), counters.as<device::EncodeCounters>(), stream,
                                      device::BlockSlice{}, path));
    };
    auto encode = [&](device::KernelPath path) { return [&, path] { encode_floats(x.as<float>(), path); }; };
    auto decode = [&](device::KernelPath path) {
      return [&, path] {
        CHECK_CUDA(device::LaunchDecode(c, scales.as<uint16_t>(), t.as<uint8_t>(), symbols.as<void>(), nullptr,
                                        out.as<float>(), stream, device::BlockSlice{}, path));
      };
    };
    auto copy = [&] {
      CHECK_CUDA(
          cudaMemcpyAsync(copy_dst.as<void>(), copy_src.as<void>(), moved / 2, cudaMemcpyDeviceToDevice, stream));
    };
    // The run paths' codes and floats against the per-chunk kernels' (the same, bit for bit).
    const int64_t symbol_bytes = device::SymbolBufferBytes(plan), t_bytes = l.rows * l.chunks_per_row;
    std::vector<uint8_t> t_chunks(t_bytes), t_runs(t_bytes), s_chunks(symbol_bytes), s_runs(symbol_bytes);
    std::vector<float> out_chunks(l.numel), out_runs(l.numel);
    auto same_codes = [&](auto runs_encode, auto chunks_encode) {
      runs_encode();
      Download(t, t_bytes, stream, t_runs.data());
      Download(symbols, symbol_bytes, stream, s_runs.data());
      chunks_encode();
      Download(t, t_bytes, stream, t_chunks.data());
      Download(symbols, symbol_bytes, stream, s_chunks.data());
      return t_runs == t_chunks && s_runs == s_chunks;
    };
    const bool same_encodes = same_codes(encode(device::KernelPath::kRuns), encode(device::KernelPath::kPerChunk));
    decode(device::KernelPath::kRuns)();
    Download(out, in_bytes, stream, out_runs.data());
    decode(device::KernelPath::kPerChunk)();
    Download(out, in_bytes, stream, out_chunks.data());
    const bool same =
        same_encodes && std::memcmp(out_runs.data(), out_chunks.data(), static_cast<size_t>(in_bytes)) == 0;
    // bf16 in and out: the per-chunk kernels widen into (and narrow from) float32 buffers first
    // (LaunchToFloat, LaunchFromFloat); the run path's single-pass encode reads bf16 itself, and
    // its decodes store bf16 themselves (EncodesInOnePass, DecodesTyped).
    DeviceMemory x_bf16, widened, out_bf16, copy_bf16_src, copy_bf16_dst;
    const std::vector<uint16_t> host_bf16 = ToBf16(host);
    OrDie(x_bf16.Upload(host_bf16.data(), 2 * l.numel, stream));
    OrDie(widened.Allocate(in_bytes));
    OrDie(out_bf16.Allocate(2 * l.numel));
    const int64_t moved_bf16 = 2 * l.numel + code_bytes;
    OrDie(copy_bf16_src.Allocate(moved_bf16 / 2 + 1));
    OrDie(copy_bf16_dst.Allocate(moved_bf16 / 2 + 1));
    const bool one_pass =
        device::EncodesInOnePass(c, x_bf16.as<void>(), t.as<uint8_t>(), symbols.as<void>(), device::KernelPath::kRuns);
    auto encode_bf16 = [&](device::KernelPath path) {
      return [&, path] {
        if (path == device::KernelPath::kRuns && one_pass) {
          CHECK_CUDA(cudaMemsetAsync(counters.as<void>(), 0, sizeof(device::EncodeCounters), stream));
          CHECK_CUDA(device::LaunchEncodeTyped(
              c, x_bf16.as<void>(), device::kDTypeBfloat16, scales.as<uint16_t>(), t.as<uint8_t>(), symbols.as<void>(),
              counters.as<device::EncodeCounters>(), stream, device::BlockSlice{}, path));
          return;
        }
        CHECK_CUDA(
            device::LaunchToFloat(x_bf16.as<void>(), device::kDTypeBfloat16, l.numel, widened.as<float>(), stream));
        encode_floats(widened.as<float>(), path);
      };
    };
    const bool direct =
        device::DecodesTyped(c, t.as<uint8_t>(), symbols.as<void>(), out_bf16.as<void>(), device::KernelPath::kRuns);
    auto decode_bf16 = [&](device::KernelPath path) {
      return [&, path] {
        if (path == device::KernelPath::kRuns && direct) {
          CHECK_CUDA(device::LaunchDecodeTyped(c, scales.as<uint16_t>(), t.as<uint8_t>(), symbols.as<void>(),
                                               out_bf16.as<void>(), device::kDTypeBfloat16, stream,
                                               device::BlockSlice{}, path));
          return;
        }
        decode(path)();
        CHECK_CUDA(
            device::LaunchFromFloat(out.as<float>(), l.numel, device::kDTypeBfloat16, out_bf16.as<void>(), stream));
      };
    };
    auto copy_bf16 = [&] {
      CHECK_CUDA(cudaMemcpyAsync(copy_bf16_dst.as<void>(), copy_bf16_src.as<void>(), moved_bf16 / 2,
                                 cudaMemcpyDeviceToDevice, stream));
    };
    bool bf16_same = same_codes(encode_bf16(device::KernelPath::kRuns), encode_bf16(device::KernelPath::kPerChunk));
    std::vector<uint16_t> bf16_runs(l.numel), bf16_chunks(l.numel);
    decode_bf16(device::KernelPath::kRuns)();
    Download(out_bf16, 2 * l.numel, stream, bf16_runs.data());
    decode_bf16(device::KernelPath::kPerChunk)();
    Download(out_bf16, 2 * l.numel, stream, bf16_chunks.data());
    bf16_same = bf16_same && bf16_runs == bf16_chunks;
    copy();  // warm-up
    copy_bf16();
    std::vector<double> copy_gbps, enc_gbps, dec_gbps, enc_ratio, dec_ratio, enc_runs_ratio, dec_runs_ratio;
    std::vector<double> bf16_enc_ratio, bf16_dec_ratio, bf16_enc_runs_ratio, bf16_dec_runs_ratio;
    for (int run = 0; run < runs; ++run) {
      const double copy_ms = TimeMs(stream, copy);
      const double enc_ms = TimeMs(stream, encode(device::KernelPath::kPerChunk));
      const double dec_ms = TimeMs(stream, decode(device::KernelPath::kPerChunk));
      const double enc_runs_ms = TimeMs(stream, encode(device::KernelPath::kRuns));
      const double dec_runs_ms = TimeMs(stream, decode(device::KernelPath::kRuns));
      copy_gbps.push_back(moved / copy_ms / 1e6);
      enc_gbps.push_back(moved / enc_ms / 1e6);
      dec_gbps.push_back(moved / dec_ms / 1e6);
      enc_ratio.push_back(copy_ms / enc_ms);
      dec_ratio.push_back(copy_ms / dec_ms);
      enc_runs_ratio.push_back(copy_ms / enc_runs_ms);
      dec_runs_ratio.push_back(copy_ms / dec_runs_ms);
      const double copy_bf16_ms = TimeMs(stream, copy_bf16);
      bf16_enc_ratio.push_back(copy_bf16_ms / TimeMs(stream, encode_bf16(device::KernelPath::kPerChunk)));
      bf16_dec_ratio.push_back(copy_bf16_ms / TimeMs(stream, decode_bf16(device::KernelPath::kPerChunk)));
      bf16_enc_runs_ratio.push_back(copy_bf16_ms / TimeMs(stream, encode_bf16(device::KernelPath::kRuns)));
      bf16_dec_runs_ratio.push_back(copy_bf16_ms / TimeMs(stream, decode_bf16(device::KernelPath::kRuns)));
    }
    JsonObject j;
    j.Add("lattice", lattice).Add("device", gpu.device().name).Add("input_mib", in_bytes >> 20);
    j.Add("bytes_moved", moved).Add("copy_gbps", Spread(copy_gbps)).Add("encode_gbps", Spread(enc_gbps));
    j.Add("decode_gbps", Spread(dec_gbps)).Add("encode_vs_copy", Spread(enc_ratio));
    j.Add("decode_vs_copy", Spread(dec_ratio)).Add("runs_encode_vs_copy", Spread(enc_runs_ratio));
    j.Add("runs_decode_vs_copy", Spread(dec_runs_ratio)).Add("runs_same_as_per_chunk", same);
    j.Add("bf16_bytes_moved", moved_bf16).Add("bf16_encode_vs_copy", Spread(bf16_enc_ratio));
    j.Add("bf16_decode_vs_copy", Spread(bf16_dec_ratio)).Add("runs_bf16_encode_vs_copy", Spread(bf16_enc_runs_ratio));
    j.Add("runs_bf16_decode_vs_copy", Spread(bf16_dec_runs_ratio)).Add("runs_bf16_one_pass", one_pass);
    j.Add("runs_bf16_decode_direct", direct);
    j.Add("runs_bf16_same_as_per_chunk", bf16_same);
    std::printf("%s\n", j.str().c_str());
  }
  // Where a host tensor's encode and decode spend their time (what cosetd --backend cuda does per
  // request, beside what it does on the CPU): 64 MiB of float32, D4, host clocks. The upload from
  // pageable memory (as CudaCodec does) and from pinned memory; CudaCodec::Encode / Decode whole;
  // the blob's serialization on all cores (the rANS-coded T stream: host work either way); and the
  // CPU codec on one thread and all cores.
  if (sections.count("host") > 0) {
    const int64_t n = (int64_t{16} << 20) / shrink;
    const std::vector<int64_t> host_shape = {n / kCols, kCols};
    const TensorCodec codec = OrDie(TensorCodec::Create(CodecParams{}));
    ThreadPool pool(0);
    auto host_ms = [&](auto work) {
      std::vector<double> ms;
      for (int run = 0; run < runs; ++run) {
        const auto t0 = std::chrono::steady_clock::now();
        work();
        ms.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
      }
      return Spread(ms);
    };
    DeviceMemory device_copy;
    OrDie(device_copy.Allocate(4 * n));
    const std::vector<float> pageable = TestData(n);
    void* pinned_bytes = nullptr;
    CHECK_CUDA(cudaMallocHost(&pinned_bytes, 4 * n));
    float* pinned = static_cast<float*>(pinned_bytes);
    std::copy(pageable.begin(), pageable.end(), pinned);
    auto upload_from = [&](const void* from) {
      return [&, from] {
        CHECK_CUDA(cudaMemcpyAsync(device_copy.as<void>(), from, 4 * n, cudaMemcpyHostToDevice, stream));
        CHECK_CUDA(cudaStreamSynchronize(stream));
      };
    };
    CompressedTensor coded;
    std::vector<float> decoded(n);
    std::vector<uint8_t> blob;
    JsonObject j;
    j.Add("host_path", absl::StrCat("D4 q=4 M=2, ", 64 / shrink, " MiB float32, host milliseconds"));
    j.Add("upload_pageable_ms", host_ms(upload_from(pageable.data())));
    j.Add("upload_pinned_ms", host_ms(upload_from(pinned)));
    j.Add("cuda_encode_ms",
          host_ms([&] { coded = OrDie(gpu.Encode(codec, pageable.data(), host_shape, DType::kFloat32, nullptr)); }));
    j.Add("cuda_decode_ms", host_ms([&] { OrDie(gpu.Decode(coded, decoded.data())); }));
    // StagingOptions::kPipelined: from and to pageable memory through the staging slots, and from
    // and to page-locked memory in place; its blob and floats must be the whole path's.
    const std::vector<uint8_t> whole_blob = Serialize(coded);
    const std::vector<float> whole_decoded = decoded;
    gpu.set_staging({StagingOptions::Mode::kPipelined, kStagingSliceBytes});
    CompressedTensor piped;
    j.Add("cuda_encode_pipelined_ms",
          host_ms([&] { piped = OrDie(gpu.Encode(codec, pageable.data(), host_shape, DType::kFloat32, nullptr)); }));
    j.Add("cuda_decode_pipelined_ms", host_ms([&] { OrDie(gpu.Decode(coded, decoded.data())); }));
    bool pipelined_same = Serialize(piped) == whole_blob && decoded == whole_decoded;
    j.Add("cuda_encode_pipelined_pinned_ms",
          host_ms([&] { piped = OrDie(gpu.Encode(codec, pinned, host_shape, DType::kFloat32, nullptr)); }));
    j.Add("cuda_decode_pipelined_pinned_ms", host_ms([&] { OrDie(gpu.Decode(coded, pinned)); }));
    pipelined_same = pipelined_same && Serialize(piped) == whole_blob &&
                     std::equal(whole_decoded.begin(), whole_decoded.end(), pinned);
    j.Add("pipelined_same_as_whole", pipelined_same);
    gpu.set_staging({});
    j.Add("serialize_all_cores_ms", host_ms([&] {
            const SerializationPlan plan = PlanSerialization(coded, &pool);
            blob.resize(plan.size);
            SerializeTo(coded, plan, blob.data());
          }));
    j.Add("cpu_encode_1_thread_ms", host_ms([&] {
            OrDie(codec.EncodeInto(pageable.data(), host_shape, DType::kFloat32, nullptr, nullptr, &coded));
          }));
    j.Add("cpu_encode_all_cores_ms", host_ms([&] {
            OrDie(codec.EncodeInto(pageable.data(), host_shape, DType::kFloat32, &pool, nullptr, &coded));
          }));
    j.Add("threads", pool.concurrency());
    std::printf("%s\n", j.str().c_str());
    CHECK_CUDA(cudaFreeHost(pinned));
  }
  // DotRows from the two-sided LUT on the device (D4 q=4 M=2, two 8192 x 8192 tensors' codes
  // uploaded once): the kernel's time against a device copy that reads and writes both codes'
  // bytes once (what a bandwidth-bound kernel would need), and the host run's agreement.
  if (sections.count("dot") > 0) {
    const int64_t n = 8192 / shrink, k = 8192 / shrink;
    const TensorCodec codec = OrDie(TensorCodec::Create(CodecParams{}));
    const std::vector<float> xa = TestData(n * k);
    std::vector<float> xb(xa.rbegin(), xa.rend());
    const CompressedTensor a = OrDie(codec.Encode(xa.data(), {n, k})), b = OrDie(codec.Encode(xb.data(), {n, k}));
    const std::vector<double> want = OrDie(gpu.DotRows(a, b));  // also uploads the LUT once
    CodesOnDevice ca, cb;
    OrDie(gpu.Upload(a, &ca));
    OrDie(gpu.Upload(b, &cb));
    const TwoSidedLut lut = OrDie(TwoSidedLut::Build(*OrDie(Codebook::Get(a.params.lattice, a.params.q))));
    DeviceMemory lut_on_device, out, copy_src, copy_dst;
    OrDie(lut_on_device.Upload(lut.ints().data(), 4 * static_cast<int64_t>(lut.ints().size()), stream));
    OrDie(out.Allocate(8 * n));
    const int64_t code_bytes = ca.code_bytes + cb.code_bytes;
    OrDie(copy_src.Allocate(code_bytes));
    OrDie(copy_dst.Allocate(code_bytes));
    auto dot = [&] {
      CHECK_CUDA(device::LaunchDotRows(ca.codec, ca.scales.as<uint16_t>(), ca.t.as<uint8_t>(), ca.symbols.as<void>(),
                                       cb.codec, cb.scales.as<uint16_t>(), cb.t.as<uint8_t>(), cb.symbols.as<void>(),
                                       lut_on_device.as<void>(), true, out.as<double>(), stream));
    };
    auto copy = [&] {
      CHECK_CUDA(
          cudaMemcpyAsync(copy_dst.as<void>(), copy_src.as<void>(), code_bytes, cudaMemcpyDeviceToDevice, stream));
    };
    dot(), copy();
    std::vector<double> ms, vs_copy;
    for (int run = 0; run < runs; ++run) {
      const double copy_ms = TimeMs(stream, copy), dot_ms = TimeMs(stream, dot);
      ms.push_back(dot_ms);
      vs_copy.push_back(copy_ms / dot_ms);
    }
    std::vector<double> got(n);
    Download(out, 8 * n, stream, got.data());
    JsonObject j;
    j.Add("dot_rows", "D4 q=4 M=2, two-sided LUT").Add("n", n).Add("k", k).Add("code_bytes", code_bytes);
    j.Add("ms", Spread(ms)).Add("vs_copy_of_codes", Spread(vs_copy)).Add("same_as_dot_rows", got == want);
    std::printf("%s\n", j.str().c_str());
  }
  // GEMM on codes: q=4 M=2 weights of N x K (D4 at three shapes, E8 at one: the run path's 16-bit
  // symbols and a codebook table too large for shared memory), queries B x K, everything on the
  // device; against cuBLAS on the decoded weights (bf16 for speed, float32 for agreement) when
  // cuBLAS loads. E8 twice: uploaded for GEMMs, whose run path reads half points, and uploaded for
  // decodes, whose run path reads the codebook table (that kernel only).
  auto cublas = Cublas::Load(stream);
  if (!cublas.ok())
    std::fprintf(stderr, "cuda_codec_bench: no cuBLAS baseline: %s\n", cublas.status().ToString().c_str());
  struct GemmShape {
    const char* lattice;
    int64_t n, k;
    CodesFor use = CodesFor::kGemm;
  };
  for (const GemmShape& shape :
       {GemmShape{"D4", 8192, 8192}, GemmShape{"D4", 28672, 8192}, GemmShape{"D4", 8192, 28672},
        GemmShape{"E8", 8192, 8192}, GemmShape{"E8", 8192, 8192, CodesFor::kDecode}}) {
    if (sections.count("gemm") == 0) break;
    const int64_t n = shape.n / shrink, k = shape.k / shrink;
    CodecParams params;
    params.lattice = OrDie(Lattice::Parse(shape.lattice));
    params.on_cap = CapPolicy::kZero;
    const TensorCodec codec = OrDie(TensorCodec::Create(params));
    const std::vector<float> w = TestData(n * k);
    const CompressedTensor coded = OrDie(codec.Encode(w.data(), {n, k}));
    const Layout& l = coded.layout;
    CodesOnDevice codes;
    OrDie(gpu.Upload(coded, &codes, shape.use));
    const device::DeviceCodec& c = codes.codec;
    // Nothing to time where the methods asked for do not serve the code (tensor cores: D4, and E8
    // given half points; codes uploaded for decodes: the run path only).
    if (methods == std::set<GemmMethod>{GemmMethod::kFusedTensorCores} && !device::TensorCoresServe(c, codes.gemm)) {
      continue;
    }
    if (shape.use == CodesFor::kDecode && methods.count(GemmMethod::kFusedRuns) == 0) continue;
    // The decoded weights on the device (float32, and bf16 rounded on the host), timed decode.
    DeviceMemory w_f32, w_bf16, work, copy_src, copy_dst;
    OrDie(w_f32.Allocate(4 * n * k));
    if (!device::ReadsInPlace(c)) OrDie(work.Allocate(4 * l.rows * l.padded_cols));
    auto decode = [&] {
      CHECK_CUDA(device::LaunchDecode(c, codes.scales.as<uint16_t>(), codes.t.as<uint8_t>(), codes.symbols.as<void>(),
                                      work.as<float>(), w_f32.as<float>(), stream));
    };
    decode();
    std::vector<double> decode_ms;
    for (int run = 0; run < runs; ++run) decode_ms.push_back(TimeMs(stream, decode));
    std::vector<float> decoded(n * k);
    Download(w_f32, 4 * n * k, stream, decoded.data());
    const std::vector<uint16_t> decoded_bf16 = ToBf16(decoded);
    OrDie(w_bf16.Upload(decoded_bf16.data(), 2 * n * k, stream));
    const int64_t weight_bf16_bytes = 2 * n * k;
    OrDie(copy_src.Allocate(weight_bf16_bytes / 2));
    OrDie(copy_dst.Allocate(weight_bf16_bytes / 2));
    for (int64_t batch : {1, 4, 16, 64}) {
      const std::vector<float> queries = TestData(batch * k);
      const std::vector<uint16_t> queries_bf16 = ToBf16(queries);
      DeviceMemory x, x_bf16, padded, out, ref, ref_bf16;
      OrDie(x.Upload(queries.data(), 4 * batch * k, stream));
      OrDie(x_bf16.Upload(queries_bf16.data(), 2 * batch * k, stream));
      OrDie(padded.Allocate(4 * batch * l.padded_cols));
      OrDie(out.Allocate(4 * batch * n));
      OrDie(ref.Allocate(4 * batch * n));
      OrDie(ref_bf16.Allocate(2 * batch * n));
      const bool prepare = !device::ReadsInPlace(c);
      // Each of CudaCodec::Gemm's methods: LaunchGemm's kTensorCores kernel (from 5 queries on),
      // kRuns kernel (the packed GEMM for D4, the run path for E8: these codes qualify) and per-chunk
      // kernel, and the weights decoded to float32 then cuBLAS SGEMM (where kAuto's crossover,
      // kDecodeCublasMinBatch, is to be read from).
      for (const GemmMethod method : {GemmMethod::kFusedTensorCores, GemmMethod::kFusedRuns, GemmMethod::kFusedPerChunk,
                                      GemmMethod::kDecodeCublas}) {
        if (methods.count(method) == 0 || (method == GemmMethod::kDecodeCublas && !cublas.ok())) continue;
        if (shape.use == CodesFor::kDecode && method != GemmMethod::kFusedRuns) continue;  // as above
        const bool tensor_cores = batch > 4 && device::TensorCoresServe(c, codes.gemm);
        if (method == GemmMethod::kFusedTensorCores && !tensor_cores) continue;  // it would be kFusedRuns
        const device::KernelPath path = FusedKernelPath(method);
        auto gemm = [&] {
          if (method == GemmMethod::kDecodeCublas) {
            decode();
            OrDie((*cublas)->Gemm(CUDA_R_32F, w_f32.as<void>(), x.as<void>(), out.as<void>(), n, k, batch));
            return;
          }
          if (prepare) CHECK_CUDA(device::LaunchPrepareQueries(c, x.as<float>(), batch, padded.as<float>(), stream));
          CHECK_CUDA(device::LaunchGemm(c, codes.scales.as<uint16_t>(), codes.t.as<uint8_t>(), codes.symbols.as<void>(),
                                        prepare ? padded.as<float>() : x.as<float>(), batch, out.as<float>(), stream,
                                        path, codes.gemm));
        };
        // A copy that reads and writes the bf16 weights' bytes: the time a bandwidth-bound bf16 kernel
        // would need to stream them once.
        auto copy = [&] {
          CHECK_CUDA(cudaMemcpyAsync(copy_dst.as<void>(), copy_src.as<void>(), weight_bf16_bytes / 2,
                                     cudaMemcpyDeviceToDevice, stream));
        };
        auto cublas_bf16 = [&] {
          OrDie((*cublas)->Gemm(CUDA_R_16BF, w_bf16.as<void>(), x_bf16.as<void>(), ref_bf16.as<void>(), n, k, batch));
        };
        gemm(), copy();
        if (cublas.ok()) cublas_bf16();
        std::vector<double> ms, vs_bf16_bound, cublas_ms, vs_cublas;
        for (int run = 0; run < runs; ++run) {
          const double copy_ms = TimeMs(stream, copy), gemm_ms = TimeMs(stream, gemm);
          ms.push_back(gemm_ms);
          vs_bf16_bound.push_back(copy_ms / gemm_ms);
          if (cublas.ok()) {
            cublas_ms.push_back(TimeMs(stream, cublas_bf16));
            vs_cublas.push_back(cublas_ms.back() / gemm_ms);
          }
        }
        JsonObject j;
        j.Add("gemm", absl::StrCat(shape.lattice, " q=4 M=2"));
        // LaunchGemm's choice on these codes (its alignment tests hold: device buffers).
        const bool packed = device::RunPath(path) && codes.gemm.compact.words != nullptr;
        const bool halves = device::UsesRuns(c, path) && codes.gemm.halves.head != nullptr;
        j.Add("kernel", method == GemmMethod::kDecodeCublas       ? "decode-cublas"
                        : method == GemmMethod::kFusedTensorCores ? "tensor-cores"
                        : packed                                  ? "packed"
                        : halves                                  ? "runs-half-points"
                        : device::UsesRuns(c, path)               ? "runs"
                                                                  : "per-chunk");
        j.Add("n", n).Add("k", k).Add("batch", batch).Add("code_bytes", codes.code_bytes);
        // What the kernel streams per weight (the packed GEMM reads T in two bits, the run path at
        // d = 8 half-point indices): the ceiling of a bandwidth-bound GEMV over a bf16 one is 16
        // over it.
        const int64_t streamed = packed || halves ? codes.gemm_code_bytes() : codes.code_bytes;
        j.Add("streamed_bits_per_weight", 8.0 * static_cast<double>(streamed) / static_cast<double>(n * k));
        j.Add("ms", Spread(ms)).Add("speedup_vs_bf16_stream_bound", Spread(vs_bf16_bound));
        if (cublas.ok()) {
          // Agreement: the codes' GEMM against cuBLAS float32 on the decoded weights.
          OrDie((*cublas)->Gemm(CUDA_R_32F, w_f32.as<void>(), x.as<void>(), ref.as<void>(), n, k, batch));
          std::vector<float> got(batch * n), want(batch * n);
          Download(out, 4 * batch * n, stream, got.data());
          Download(ref, 4 * batch * n, stream, want.data());
          double max_diff = 0, max_ref = 0;
          for (int64_t i = 0; i < batch * n; ++i) {
            max_diff = std::max(max_diff, static_cast<double>(std::fabs(got[i] - want[i])));
            max_ref = std::max(max_ref, static_cast<double>(std::fabs(want[i])));
          }
          j.Add("cublas_bf16_ms", Spread(cublas_ms)).Add("speedup_vs_cublas_bf16", Spread(vs_cublas));
          j.Add("decode_f32_ms", Spread(decode_ms)).Add("max_diff_vs_cublas_f32_over_max", max_diff / max_ref);
        }
        std::printf("%s\n", j.str().c_str());
      }
    }
  }
  return 0;
}

}  // namespace
}  // namespace coset

int main(int argc, char** argv) { return coset::Main(argc, argv); }
