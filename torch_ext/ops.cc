// torch.ops.coset: the HNLQ codec as LibTorch operators (CPU). Declared once here with
// TORCH_LIBRARY; a CUDA file will register the same schemas for the CUDA dispatch key.
//
// Every op that takes codec parameters takes ONE string, the field table's text form
// (core/params.h: "lattice=D4,q=4,M=2,..."; coset_torch.Config.text() writes it), so a new codec
// field passes through without touching these schemas.
//
//   coset::encode(Tensor x, str config) -> Tensor           (uint8 blob, core/FORMAT.md)
//   coset::decode(Tensor blob, ScalarType? dtype=None) -> Tensor (the original shape; the original
//                                                           dtype recorded in the blob, or `dtype`)
//   coset::quantize(Tensor x, str config) -> Tensor         (decode(encode(x)), x's shape and dtype)
//   coset::lut_linear(Tensor x, Tensor weight_blob) -> Tensor (x @ decode(W)^T on the codes)
//   coset::add_codes(Tensor[] blobs) -> Tensor              (compressed-domain sum, a blob)
//   coset::coset_vectors(Tensor blob) -> Tensor             (int32 [chunks, d], mod q^M view)
//   coset::from_coset_vectors(Tensor c, Tensor like_blob) -> Tensor (the blob whose chunks are c)
//   coset::overload_stats(Tensor blob) -> Tensor            (int64 [chunks, chunks with T > 0])
//   coset::lattice_info(str lattice) -> Tensor              (float64 [dimension, packing radius])
//   coset::codec_fields() -> str                            (the field table, for coset_torch.Config)
//
// The DDP hook's bucket operators are in ddp_ops.cc; the ones through cosetd (daemon_encode,
// daemon_bucket_encode) in daemon_ops.cc, which only the Bazel build links (it needs gRPC).
//
// The codec operations go through the Backend seam (core/backend.h): the embedded CpuBackend, or
// a DaemonBackend per cosetd address (daemon_ops.cc). x: float32, float64, bfloat16 or float16 (coded
// as float32, the original dtype recorded in the blob), any shape, CPU; only the last dimension is
// quantized. Errors raise RuntimeError (TORCH_CHECK) with the codec's message.
// Autograd (straight-through estimators) lives in the Python package.
#include <ATen/ATen.h>
#include <torch/library.h>

#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "core/code_arith.h"
#include "core/cpu_backend.h"
#include "core/format.h"
#include "torch_ext/op_util.h"

namespace coset {
namespace {

// The embedded backend, on the calling thread (torch parallelizes around ops).
Backend& Embedded() {
  static CpuBackend* backend = new CpuBackend();
  return *backend;
}

BlobView ViewOf(const at::Tensor& blob) {
  TORCH_CHECK(blob.device().is_cpu() && blob.scalar_type() == at::kByte && blob.dim() == 1 && blob.is_contiguous(),
              "coset: blob must be a contiguous 1-D uint8 CPU tensor");
  return BlobView(blob.data_ptr<uint8_t>(), static_cast<size_t>(blob.numel()));
}

CompressedTensor ParseBlob(const at::Tensor& blob) {
  const at::Tensor b = blob.contiguous();
  const BlobView view = ViewOf(b);
  return Take(Parse(view.data(), view.size()));
}

at::Tensor Encode(const at::Tensor& x, const std::string& config) {
  const CodecParams params = ParamsFrom(config);
  const TypedInput in = TypedInputOf(x);
  return BlobTensor(Take(Embedded().EncodeTyped(in.values.data_ptr(), in.dtype, in.shape, params)).blob);
}

at::Tensor Decode(const at::Tensor& blob, c10::optional<at::ScalarType> dtype) {
  const at::Tensor b = blob.contiguous();
  const BlobView view = ViewOf(b);
  const BlobHeader header = Take(PeekHeader(view.data(), view.size()));
  const at::ScalarType want = dtype.has_value() ? *dtype : ScalarTypeOf(header.dtype);
  at::Tensor out = at::empty(header.shape, at::TensorOptions().dtype(want));
  // Decoded rows are narrowed to the dtype as they come (nearest, ties to even, as torch rounds).
  Check(Embedded().DecodeTyped(view, out.data_ptr(), DTypeOf(want)));
  return out;
}

at::Tensor Quantize(const at::Tensor& x, const std::string& config) {
  const CodecParams params = ParamsFrom(config);
  const TypedInput in = TypedInputOf(x);
  const at::Tensor values = in.values.to(at::kFloat).contiguous();  // torch widens 16-bit dtypes exactly
  at::Tensor out = at::empty(in.shape, at::TensorOptions().dtype(at::kFloat));
  Check(Embedded().Quantize(values.data_ptr<float>(), in.shape, params, out.data_ptr<float>()));
  return out.to(x.scalar_type());
}

at::Tensor LutLinear(const at::Tensor& x, const at::Tensor& weight_blob) {
  const at::Tensor w = weight_blob.contiguous();
  const BlobView view = ViewOf(w);
  const BlobHeader header = Take(PeekHeader(view.data(), view.size()));
  TORCH_CHECK(header.shape.size() == 2, "coset: lut_linear weights must be [out_features, in_features]");
  const int64_t out_features = header.shape[0], in_features = header.shape[1];
  TORCH_CHECK(x.device().is_cpu(), "coset: x must be a CPU tensor");
  DTypeOf(x.scalar_type());  // float32, float64, bfloat16 or float16; the product is computed in float32
  TORCH_CHECK(x.dim() >= 1 && x.size(-1) == in_features, "coset: x's last dimension (", x.dim() ? x.size(-1) : 0,
              ") must equal in_features (", in_features, ")");
  const at::Tensor x2 = x.to(at::kFloat).reshape({-1, in_features}).contiguous();
  std::vector<int64_t> out_shape(x.sizes().begin(), x.sizes().end());
  out_shape.back() = out_features;
  at::Tensor out = at::empty({x2.size(0), out_features}, at::TensorOptions().dtype(at::kFloat));
  Take(Embedded().Gemm(view, x2.data_ptr<float>(), x2.size(0), out.data_ptr<float>()));
  return out.reshape(out_shape).to(x.scalar_type());
}

at::Tensor AddCodesOp(const std::vector<at::Tensor>& blobs) {
  TORCH_CHECK(!blobs.empty(), "coset: add_codes needs at least one blob");
  std::vector<at::Tensor> held;
  std::vector<BlobView> views;
  for (const at::Tensor& b : blobs) {
    held.push_back(b.contiguous());
    views.push_back(ViewOf(held.back()));
  }
  return BlobTensor(Take(Embedded().AddCodes(views, false)).blob);
}

at::Tensor CosetVectors(const at::Tensor& blob) {
  const CompressedTensor t = ParseBlob(blob);
  const std::vector<int32_t> c = Take(ToCosetVectors(t));
  at::Tensor out =
      at::empty({t.layout.rows * t.layout.chunks_per_row, t.layout.dim}, at::TensorOptions().dtype(at::kInt));
  std::memcpy(out.data_ptr<int32_t>(), c.data(), c.size() * sizeof(int32_t));
  return out;
}

at::Tensor FromCosetVectorsOp(const at::Tensor& c, const at::Tensor& like_blob) {
  CompressedTensor t = ParseBlob(like_blob);
  TORCH_CHECK(c.scalar_type() == at::kInt && c.device().is_cpu(), "coset: c must be an int32 CPU tensor");
  TORCH_CHECK(c.numel() == t.layout.rows * t.layout.chunks_per_row * t.layout.dim, "coset: c has ", c.numel(),
              " values; the blob has ", t.layout.rows * t.layout.chunks_per_row * t.layout.dim);
  const at::Tensor cc = c.contiguous();
  Check(FromCosetVectors(cc.data_ptr<int32_t>(), &t));
  return BlobTensor(Serialize(t));
}

at::Tensor OverloadStats(const at::Tensor& blob) {
  const CompressedTensor t = ParseBlob(blob);
  const OverloadSummary s = SummarizeOverloads(t);
  const int64_t chunks = static_cast<int64_t>(t.t.size());
  return at::tensor({chunks, chunks - (s.histogram.empty() ? 0 : s.histogram[0])},
                    at::TensorOptions().dtype(at::kLong));
}

at::Tensor LatticeInfo(const std::string& name) {
  const Lattice lattice = Take(Lattice::Parse(name));
  return at::tensor({static_cast<double>(lattice.dim()), lattice.packing_radius()},
                    at::TensorOptions().dtype(at::kDouble));
}

// The field table, one line per field: "name<TAB>type<TAB>default<TAB>choices" (choices: the enum
// names in number order, comma-separated; empty otherwise). coset_torch.Config is built from it.
std::string CodecFieldsText() {
  static const char* kTypeNames[] = {"lattice", "int", "uint64", "float", "bool", "enum"};
  std::string out;
  for (const CodecField& f : CodecFields()) {
    absl::StrAppend(&out, f.name, "\t", kTypeNames[static_cast<int>(f.type)], "\t", f.DefaultText(), "\t",
                    f.enum_names != nullptr ? absl::StrJoin(*f.enum_names, ",") : "", "\n");
  }
  return out;
}

}  // namespace

TORCH_LIBRARY(coset, m) {
  m.def("overload_stats(Tensor blob) -> Tensor");
  m.def("lattice_info(str lattice) -> Tensor");
  m.def("codec_fields() -> str");
  m.def("coset_vectors(Tensor blob) -> Tensor");
  m.def("from_coset_vectors(Tensor c, Tensor like_blob) -> Tensor");
  m.def("lut_linear(Tensor x, Tensor weight_blob) -> Tensor");
  m.def("add_codes(Tensor[] blobs) -> Tensor");
  m.def("encode(Tensor x, str config) -> Tensor");
  m.def("decode(Tensor blob, ScalarType? dtype=None) -> Tensor");
  m.def("quantize(Tensor x, str config) -> Tensor");
}

TORCH_LIBRARY_IMPL(coset, CompositeExplicitAutograd, m) {
  // No tensor inputs: not dispatched by device.
  m.impl("lattice_info", &LatticeInfo);
  m.impl("codec_fields", &CodecFieldsText);
}

TORCH_LIBRARY_IMPL(coset, CPU, m) {
  m.impl("encode", &Encode);
  m.impl("decode", &Decode);
  m.impl("quantize", &Quantize);
  m.impl("lut_linear", &LutLinear);
  m.impl("add_codes", &AddCodesOp);
  m.impl("coset_vectors", &CosetVectors);
  m.impl("from_coset_vectors", &FromCosetVectorsOp);
  m.impl("overload_stats", &OverloadStats);
}

}  // namespace coset
