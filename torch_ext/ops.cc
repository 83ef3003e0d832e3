// torch.ops.coset: the HNLQ codec as LibTorch operators (CPU). Declared once here with
// TORCH_LIBRARY; a CUDA file will register the same schemas for the CUDA dispatch key.
//
//   coset::encode(Tensor x, str lattice, int q, int M, float beta, float alpha, int block,
//                 str scale, bool rotate, int seed) -> Tensor     (uint8 blob, core/FORMAT.md)
//   coset::decode(Tensor blob) -> Tensor                           (float32, the original shape)
//   coset::quantize(Tensor x, ...same parameters...) -> Tensor     (decode(encode(x)), x's shape)
//   coset::lut_linear(Tensor x, Tensor weight_blob) -> Tensor      (x @ decode(W)^T on the codes)
//   coset::add_codes(Tensor[] blobs) -> Tensor                     (compressed-domain sum, a blob)
//   coset::coset_vectors(Tensor blob) -> Tensor                    (int32 [chunks, d], mod q^M view)
//   coset::from_coset_vectors(Tensor c, Tensor like_blob) -> Tensor (the blob whose chunks are c)
//   coset::overload_stats(Tensor blob) -> Tensor                   (int64 [chunks, chunks with T > 0])
//   coset::lattice_info(str lattice) -> Tensor                     (float64 [dimension, packing radius])
//   coset::daemon_encode(Tensor x, str address, ...codec parameters...) -> Tensor
//                                                                   (encode through cosetd: same blob)
//
// x: float32 or float64, any shape, CPU; only the last dimension is quantized. Errors raise
// RuntimeError (TORCH_CHECK) with the codec's message. Autograd (straight-through estimators)
// lives in the Python package, which wraps quantize in a torch.autograd.Function.
#include <torch/library.h>
#include <torch/torch.h>

#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "client/coset_client.h"
#include "core/code_arith.h"
#include "core/format.h"
#include "core/inner_product.h"
#include "core/tensor_codec.h"

namespace coset {
namespace {

CodecParams ParamsFromArgs(const std::string& lattice, int64_t q, int64_t levels, double beta, double alpha,
                           int64_t block, const std::string& scale, bool rotate, int64_t seed) {
  CodecParams p;
  p.lattice = lattice;
  p.q = static_cast<int>(q);
  p.levels = static_cast<int>(levels);
  p.beta = static_cast<float>(beta);
  p.alpha = static_cast<float>(alpha);
  p.block = static_cast<int>(block);
  auto mode = ParseScaleMode(scale);
  TORCH_CHECK(mode.ok(), std::string(mode.status().message()));
  p.scale = *mode;
  p.rotate = rotate;
  p.seed = static_cast<uint64_t>(seed);
  return p;
}

TensorCodec CodecFor(const CodecParams& p) {
  auto codec = TensorCodec::Create(p);
  TORCH_CHECK(codec.ok(), "coset: ", std::string(codec.status().message()));
  return std::move(*codec);
}

CompressedTensor EncodeTensor(const at::Tensor& x, const TensorCodec& codec) {
  TORCH_CHECK(x.device().is_cpu(), "coset: x must be a CPU tensor (the CUDA kernels are not built yet)");
  TORCH_CHECK(x.scalar_type() == at::kFloat || x.scalar_type() == at::kDouble,
              "coset: x must be float32 or float64, got ", x.scalar_type());
  const at::Tensor xf = x.to(at::kFloat).contiguous();
  std::vector<int64_t> shape(x.sizes().begin(), x.sizes().end());
  auto encoded = codec.Encode(xf.data_ptr<float>(), shape, x.scalar_type() == at::kDouble ? DType::kFloat64 : DType::kFloat32);
  TORCH_CHECK(encoded.ok(), "coset: ", std::string(encoded.status().message()));
  return std::move(*encoded);
}

at::Tensor DecodeToTensor(const CompressedTensor& t) {
  at::Tensor out = at::empty(t.shape, at::TensorOptions().dtype(at::kFloat));
  const auto status = DecodeTensor(t, out.data_ptr<float>());
  TORCH_CHECK(status.ok(), "coset: ", std::string(status.message()));
  return out;
}

at::Tensor Encode(const at::Tensor& x, const std::string& lattice, int64_t q, int64_t levels, double beta, double alpha,
                  int64_t block, const std::string& scale, bool rotate, int64_t seed) {
  const TensorCodec codec = CodecFor(ParamsFromArgs(lattice, q, levels, beta, alpha, block, scale, rotate, seed));
  const std::vector<uint8_t> blob = Serialize(EncodeTensor(x, codec));
  at::Tensor out = at::empty({static_cast<int64_t>(blob.size())}, at::TensorOptions().dtype(at::kByte));
  std::memcpy(out.data_ptr<uint8_t>(), blob.data(), blob.size());
  return out;
}

CompressedTensor ParseBlob(const at::Tensor& blob);

at::Tensor Decode(const at::Tensor& blob) { return DecodeToTensor(ParseBlob(blob)); }

at::Tensor Quantize(const at::Tensor& x, const std::string& lattice, int64_t q, int64_t levels, double beta,
                    double alpha, int64_t block, const std::string& scale, bool rotate, int64_t seed) {
  const TensorCodec codec = CodecFor(ParamsFromArgs(lattice, q, levels, beta, alpha, block, scale, rotate, seed));
  return DecodeToTensor(EncodeTensor(x, codec)).to(x.scalar_type());
}

CompressedTensor ParseBlob(const at::Tensor& blob) {
  TORCH_CHECK(blob.device().is_cpu() && blob.scalar_type() == at::kByte && blob.dim() == 1,
              "coset: blob must be a 1-D uint8 CPU tensor");
  const at::Tensor b = blob.contiguous();
  auto parsed = Parse(b.data_ptr<uint8_t>(), static_cast<size_t>(b.numel()));
  TORCH_CHECK(parsed.ok(), "coset: ", std::string(parsed.status().message()));
  return std::move(*parsed);
}

at::Tensor LutLinear(const at::Tensor& x, const at::Tensor& weight_blob) {
  const CompressedTensor w = ParseBlob(weight_blob);
  TORCH_CHECK(w.shape.size() == 2, "coset: lut_linear weights must be [out_features, in_features]");
  TORCH_CHECK(x.device().is_cpu() && (x.scalar_type() == at::kFloat || x.scalar_type() == at::kDouble),
              "coset: x must be a float32/float64 CPU tensor");
  TORCH_CHECK(x.dim() >= 1 && x.size(-1) == w.shape[1], "coset: x's last dimension (", x.dim() ? x.size(-1) : 0,
              ") must equal in_features (", w.shape[1], ")");
  auto matrix = LutMatrix::Create(w);
  TORCH_CHECK(matrix.ok(), "coset: ", std::string(matrix.status().message()));
  const at::Tensor x2 = x.to(at::kFloat).reshape({-1, w.shape[1]}).contiguous();
  std::vector<int64_t> out_shape(x.sizes().begin(), x.sizes().end());
  out_shape.back() = w.shape[0];
  at::Tensor out = at::empty({x2.size(0), w.shape[0]}, at::TensorOptions().dtype(at::kFloat));
  if (x2.size(0) > 0) {
    const auto status = matrix->Gemm(x2.data_ptr<float>(), x2.size(0), out.data_ptr<float>());
    TORCH_CHECK(status.ok(), "coset: ", std::string(status.message()));
  }
  return out.reshape(out_shape).to(x.scalar_type());
}

at::Tensor AddCodesOp(const std::vector<at::Tensor>& blobs) {
  TORCH_CHECK(!blobs.empty(), "coset: add_codes needs at least one blob");
  std::vector<CompressedTensor> parsed;
  for (const at::Tensor& b : blobs) parsed.push_back(ParseBlob(b));
  std::vector<const CompressedTensor*> ptrs;
  for (const auto& p : parsed) ptrs.push_back(&p);
  auto sum = AddCodes(ptrs);
  TORCH_CHECK(sum.ok(), "coset: ", std::string(sum.status().message()));
  const std::vector<uint8_t> blob = Serialize(*sum);
  at::Tensor out = at::empty({static_cast<int64_t>(blob.size())}, at::TensorOptions().dtype(at::kByte));
  std::memcpy(out.data_ptr<uint8_t>(), blob.data(), blob.size());
  return out;
}

at::Tensor BlobTensor(const CompressedTensor& t) {
  const std::vector<uint8_t> blob = Serialize(t);
  at::Tensor out = at::empty({static_cast<int64_t>(blob.size())}, at::TensorOptions().dtype(at::kByte));
  std::memcpy(out.data_ptr<uint8_t>(), blob.data(), blob.size());
  return out;
}

at::Tensor CosetVectors(const at::Tensor& blob) {
  const CompressedTensor t = ParseBlob(blob);
  auto c = ToCosetVectors(t);
  TORCH_CHECK(c.ok(), "coset: ", std::string(c.status().message()));
  at::Tensor out = at::empty({t.layout.rows * t.layout.chunks_per_row, t.layout.dim}, at::TensorOptions().dtype(at::kInt));
  std::memcpy(out.data_ptr<int32_t>(), c->data(), c->size() * sizeof(int32_t));
  return out;
}

at::Tensor FromCosetVectorsOp(const at::Tensor& c, const at::Tensor& like_blob) {
  CompressedTensor t = ParseBlob(like_blob);
  TORCH_CHECK(c.scalar_type() == at::kInt && c.device().is_cpu(), "coset: c must be an int32 CPU tensor");
  TORCH_CHECK(c.numel() == t.layout.rows * t.layout.chunks_per_row * t.layout.dim,
              "coset: c has ", c.numel(), " values; the blob has ", t.layout.rows * t.layout.chunks_per_row * t.layout.dim);
  const at::Tensor cc = c.contiguous();
  const auto status = FromCosetVectors(cc.data_ptr<int32_t>(), &t);
  TORCH_CHECK(status.ok(), "coset: ", std::string(status.message()));
  return BlobTensor(t);
}

at::Tensor OverloadStats(const at::Tensor& blob) {
  const CompressedTensor t = ParseBlob(blob);
  const OverloadSummary s = SummarizeOverloads(t);
  const int64_t chunks = static_cast<int64_t>(t.t.size());
  return at::tensor({chunks, chunks - (s.histogram.empty() ? 0 : s.histogram[0])}, at::TensorOptions().dtype(at::kLong));
}

at::Tensor LatticeInfo(const std::string& name) {
  auto lattice = Lattice::Parse(name);
  TORCH_CHECK(lattice.ok(), "coset: ", std::string(lattice.status().message()));
  return at::tensor({static_cast<double>(lattice->dim()), lattice->packing_radius()},
                    at::TensorOptions().dtype(at::kDouble));
}

// One client per daemon address, kept for the process: short timeouts and no retries, because the
// caller (the DDP hook) falls back to the embedded codec instead of waiting.
Client& ClientFor(const std::string& address) {
  static std::mutex mu;
  static std::map<std::string, std::unique_ptr<Client>> clients;
  std::lock_guard<std::mutex> lock(mu);
  auto& client = clients[address];
  if (client == nullptr) {
    Client::Options o;
    o.address = address;
    o.timeout = std::chrono::milliseconds(2000);
    o.max_attempts = 1;
    auto created = Client::Connect(o);
    TORCH_CHECK(created.ok(), "coset: ", std::string(created.status().message()));
    client = std::move(*created);
  }
  return *client;
}

at::Tensor DaemonEncode(const at::Tensor& x, const std::string& address, const std::string& lattice, int64_t q,
                        int64_t levels, double beta, double alpha, int64_t block, const std::string& scale, bool rotate,
                        int64_t seed) {
  const CodecParams params = ParamsFromArgs(lattice, q, levels, beta, alpha, block, scale, rotate, seed);
  TORCH_CHECK(x.device().is_cpu() && x.scalar_type() == at::kFloat, "coset: daemon_encode takes a float32 CPU tensor");
  const at::Tensor xc = x.contiguous();
  std::vector<int64_t> shape(x.sizes().begin(), x.sizes().end());
  auto blob = ClientFor(address).Encode(xc.data_ptr<float>(), shape, params);
  TORCH_CHECK(blob.ok(), "coset: daemon ", address, ": ", std::string(blob.status().message()));
  at::Tensor out = at::empty({static_cast<int64_t>(blob->size())}, at::TensorOptions().dtype(at::kByte));
  std::memcpy(out.data_ptr<uint8_t>(), blob->data(), blob->size());
  return out;
}

}  // namespace

TORCH_LIBRARY(coset, m) {
  m.def("overload_stats(Tensor blob) -> Tensor");
  m.def("lattice_info(str lattice) -> Tensor");
  m.def("daemon_encode(Tensor x, str address, str lattice, int q, int M, float beta, float alpha, int block, "
        "str scale, bool rotate, int seed) -> Tensor");
  m.def("coset_vectors(Tensor blob) -> Tensor");
  m.def("from_coset_vectors(Tensor c, Tensor like_blob) -> Tensor");
  m.def("lut_linear(Tensor x, Tensor weight_blob) -> Tensor");
  m.def("add_codes(Tensor[] blobs) -> Tensor");
  m.def("encode(Tensor x, str lattice, int q, int M, float beta, float alpha, int block, str scale, bool rotate, "
        "int seed) -> Tensor");
  m.def("decode(Tensor blob) -> Tensor");
  m.def("quantize(Tensor x, str lattice, int q, int M, float beta, float alpha, int block, str scale, bool rotate, "
        "int seed) -> Tensor");
}

TORCH_LIBRARY_IMPL(coset, CompositeExplicitAutograd, m) {
  m.impl("lattice_info", &LatticeInfo);  // no tensor inputs: not dispatched by device
}

TORCH_LIBRARY_IMPL(coset, CPU, m) {
  m.impl("encode", &Encode);
  m.impl("decode", &Decode);
  m.impl("quantize", &Quantize);
  m.impl("lut_linear", &LutLinear);
  m.impl("add_codes", &AddCodesOp);
  m.impl("coset_vectors", &CosetVectors);
  m.impl("from_coset_vectors", &FromCosetVectorsOp);
  m.impl("daemon_encode", &DaemonEncode);
  m.impl("overload_stats", &OverloadStats);

}

}  // namespace coset
