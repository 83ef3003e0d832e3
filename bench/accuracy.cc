// Accuracy on non-Gaussian data: coset (default scaling) against a 4-bit per-block absmax scalar
// quantizer at equal total bits. Data: Student-t (df = 3), Fashion-MNIST pixels, and the weights
// of a softmax layer trained on Fashion-MNIST (plus that layer's test accuracy after quantization).
//
//   bazel run -c opt //bench:accuracy [-- --json]
#include <cmath>
#include <cstdio>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "bench/datasets.h"
#include "common/json_writer.h"
#include "core/evaluation.h"
#include "core/format.h"

namespace coset {
namespace {

struct Data {
  std::string name;
  std::vector<int64_t> shape;
  std::vector<float> values;
};

double SnrDb(const std::vector<float>& x, const std::vector<float>& y) {
  double err = 0, energy = 0;
  for (size_t i = 0; i < x.size(); ++i) {
    err += (double(x[i]) - y[i]) * (double(x[i]) - y[i]);
    energy += double(x[i]) * x[i];
  }
  return 10 * std::log10(energy / err);
}

// Symmetric 4-bit absmax quantizer per block of `block` entries along the last dimension
// (levels -7..7, scale stored as bf16 = 16 bits per block, like coset's scales).
std::vector<float> ScalarInt4(const Data& d, int64_t block) {
  const int64_t cols = d.shape.back(), rows = d.values.size() / cols;
  std::vector<float> out(d.values.size());
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t b = 0; b < cols; b += block) {
      const int64_t e = std::min(cols, b + block);
      float amax = 0;
      for (int64_t i = b; i < e; ++i) amax = std::max(amax, std::fabs(d.values[r * cols + i]));
      // bf16-rounded scale, as a real format would store it.
      uint32_t bits;
      float scale = amax / 7.0f;
      std::memcpy(&bits, &scale, 4);
      bits = (bits + 0x7FFF + ((bits >> 16) & 1)) & 0xFFFF0000u;
      std::memcpy(&scale, &bits, 4);
      for (int64_t i = b; i < e; ++i) {
        const float v = d.values[r * cols + i];
        const float q = scale > 0 ? std::max(-7.0f, std::min(7.0f, std::nearbyint(v / scale))) : 0.0f;
        out[r * cols + i] = q * scale;
      }
    }
  }
  return out;
}

struct CosetResult {
  double bits, snr;
  std::vector<float> decoded;
};

CosetResult RunCoset(const Data& d, const CodecParams& p) {
  const TensorCodec codec = *TensorCodec::Create(p);
  const CompressedTensor t = *codec.Encode(d.values.data(), d.shape);
  const std::vector<uint8_t> blob = Serialize(t);
  CosetResult r;
  r.decoded.resize(d.values.size());
  (void)codec.Decode(t, r.decoded.data());
  r.bits = StoredBitsPerEntry(t, blob.size());
  r.snr = SnrDb(d.values, r.decoded);
  return r;
}

int Main(int argc, char** argv) {
  const bool json = argc > 1 && std::string(argv[1]) == "--json";
  std::vector<Data> sets;
  {
    Data g{"gaussian", {256, 4096}, GaussianSamples(256 * 4096, 3)};
    sets.push_back(g);
    std::mt19937_64 rng(4);
    std::student_t_distribution<float> t3(3.0f);
    Data st{"student_t_df3", {256, 4096}, std::vector<float>(256 * 4096)};
    for (float& v : st.values) v = t3(rng);
    sets.push_back(st);
  }
  auto train = ReadFashionMnist("train");
  auto test = ReadFashionMnist("t10k");
  std::vector<float> weights;
  if (train.ok() && test.ok()) {
    const int64_t n = 8192;
    sets.push_back({"fashion_mnist_pixels",
                    {n, train->pixels},
                    std::vector<float>(train->values.begin(), train->values.begin() + n * train->pixels)});
    weights = TrainSoftmaxLayer(*train, 3, 5);
    sets.push_back({"softmax_layer_weights", {10, train->pixels}, weights});
  } else {
    std::fprintf(stderr, "Fashion-MNIST unavailable (%s); real-data rows skipped\n",
                 std::string(train.status().message()).c_str());
  }
  if (!json) {
    std::printf("%-22s %-34s %10s %9s\n", "data", "method", "bits/entry", "SNR dB");
  }
  for (const Data& d : sets) {
    CodecParams p;  // D4 q=4 M=2, rms scaling, block 256, measured beta
    CodecParams rotated = p;
    rotated.rotate = true;
    const CosetResult plain = RunCoset(d, p);
    const CosetResult rot = RunCoset(d, rotated);
    // Scalar block so that 4 + 16 / block matches coset's total bits.
    const int64_t block = std::max<int64_t>(1, std::llround(16.0 / std::max(1e-6, plain.bits - 4.0)));
    const std::vector<float> scalar = ScalarInt4(d, block);
    const double scalar_bits = 4.0 + 16.0 / block;
    const double scalar_snr = SnrDb(d.values, scalar);
    const std::vector<float> scalar256 = ScalarInt4(d, 256);
    const double scalar256_snr = SnrDb(d.values, scalar256);
    struct Row {
      std::string method;
      double bits, snr;
      const std::vector<float>* decoded;
    };
    const std::string scalar_name = "int4 absmax, block " + std::to_string(block);
    const Row rows[] = {{"coset D4 q=4 M=2 (rms, block 256)", plain.bits, plain.snr, &plain.decoded},
                        {"coset D4 q=4 M=2 + rotation", rot.bits, rot.snr, &rot.decoded},
                        {scalar_name, scalar_bits, scalar_snr, &scalar},
                        {"int4 absmax, block 256", 4.0625, scalar256_snr, &scalar256}};
    for (const Row& r : rows) {
      double accuracy = -1;
      if (d.name == "softmax_layer_weights") accuracy = SoftmaxAccuracy(*r.decoded, *test);
      if (json) {
        JsonObject j;
        j.Add("data", d.name).Add("method", r.method).Add("bits_per_entry", r.bits).Add("snr_db", r.snr);
        if (accuracy >= 0) j.Add("test_accuracy", accuracy);
        std::printf("%s\n", j.str().c_str());
      } else {
        std::printf("%-22s %-34s %10.3f %9.2f", d.name.c_str(), r.method.c_str(), r.bits, r.snr);
        if (accuracy >= 0) std::printf("   test accuracy %.4f", accuracy);
        std::printf("\n");
      }
    }
    if (d.name == "softmax_layer_weights") {
      const double fp32 = SoftmaxAccuracy(weights, *test);
      if (json) {
        JsonObject j;
        j.Add("data", d.name).Add("method", "fp32").Add("bits_per_entry", 32.0).Add("test_accuracy", fp32);
        std::printf("%s\n", j.str().c_str());
      } else {
        std::printf("%-22s %-34s %10.3f %9s   test accuracy %.4f\n", d.name.c_str(), "fp32", 32.0, "-", fp32);
      }
    }
  }
  return 0;
}

}  // namespace
}  // namespace coset

int main(int argc, char** argv) { return coset::Main(argc, argv); }
