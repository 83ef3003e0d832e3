#include "proto/convert.h"

#include <cstring>

#include "absl/strings/str_cat.h"

namespace coset {

absl::StatusOr<CodecParams> ParamsFromProto(const v1::CodecConfig& c) {
  CodecParams p;
  if (!c.lattice().empty()) p.lattice = c.lattice();
  if (c.q() != 0) p.q = static_cast<int>(std::min<uint32_t>(c.q(), 1 << 20));
  if (c.levels() != 0) p.levels = static_cast<int>(std::min<uint32_t>(c.levels(), 1 << 20));
  p.beta = c.beta();
  if (c.alpha() != 0.0f) p.alpha = c.alpha();
  p.block = static_cast<int>(std::min<uint32_t>(c.block(), 1 << 30));
  switch (c.scale()) {
    case v1::SCALE_MODE_RMS:
      p.scale = ScaleMode::kRms;
      break;
    case v1::SCALE_MODE_ABSMAX:
      p.scale = ScaleMode::kAbsMax;
      break;
    case v1::SCALE_MODE_NONE:
      p.scale = ScaleMode::kNone;
      break;
    default:
      return absl::InvalidArgumentError(absl::StrCat("config.scale (=", c.scale(), ") is unknown"));
  }
  p.rotate = c.rotate();
  if (c.seed() != 0) p.seed = c.seed();
  if (c.has_t_max()) p.t_max = static_cast<int>(std::min<uint32_t>(c.t_max(), 1 << 20));
  if (c.on_cap() != v1::CAP_POLICY_FAIL && c.on_cap() != v1::CAP_POLICY_ZERO) {
    return absl::InvalidArgumentError(absl::StrCat("config.on_cap (=", c.on_cap(), ") is unknown"));
  }
  p.on_cap = c.on_cap() == v1::CAP_POLICY_ZERO ? CapPolicy::kZero : CapPolicy::kFail;
  return p;
}

v1::CodecConfig ParamsToProto(const CodecParams& p) {
  v1::CodecConfig c;
  c.set_lattice(p.lattice);
  c.set_q(p.q);
  c.set_levels(p.levels);
  c.set_beta(p.beta);
  c.set_alpha(p.alpha);
  c.set_block(p.block);
  c.set_scale(p.scale == ScaleMode::kRms ? v1::SCALE_MODE_RMS
              : p.scale == ScaleMode::kAbsMax ? v1::SCALE_MODE_ABSMAX
                                              : v1::SCALE_MODE_NONE);
  c.set_rotate(p.rotate);
  c.set_seed(p.seed);
  c.set_t_max(p.t_max);
  c.set_on_cap(p.on_cap == CapPolicy::kZero ? v1::CAP_POLICY_ZERO : v1::CAP_POLICY_FAIL);
  return c;
}

absl::StatusOr<FloatTensor> TensorFromProto(const v1::Tensor& t, int64_t max_elements) {
  if (t.shape_size() > kMaxRank) {
    return absl::InvalidArgumentError(absl::StrCat("tensor rank (=", t.shape_size(), ") exceeds ", kMaxRank));
  }
  if (t.dtype() != v1::DATA_TYPE_FLOAT32) {
    return absl::InvalidArgumentError("tensor.data must be float32 (DATA_TYPE_FLOAT32)");
  }
  FloatTensor out;
  int64_t numel = 1;
  for (int i = 0; i < t.shape_size(); ++i) {
    const int64_t d = t.shape(i);
    if (d < 0) return absl::InvalidArgumentError(absl::StrCat("tensor.shape[", i, "] (=", d, ") is negative"));
    if (!CheckedMul(numel, d, &numel) || numel > max_elements) {
      return absl::ResourceExhaustedError(absl::StrCat("tensor has more than ", max_elements, " elements"));
    }
    out.shape.push_back(d);
  }
  if (t.data().size() != static_cast<size_t>(numel) * 4) {
    return absl::InvalidArgumentError(absl::StrCat("tensor.data holds ", t.data().size(), " bytes; shape needs ",
                                                   numel * 4, " (float32)"));
  }
  out.values.resize(numel);
  if (numel > 0) std::memcpy(out.values.data(), t.data().data(), numel * 4);
  return out;
}

void TensorToProto(const std::vector<int64_t>& shape, const float* values, DType dtype, v1::Tensor* out) {
  out->clear_shape();
  int64_t numel = 1;
  for (int64_t d : shape) {
    out->add_shape(d);
    numel *= d;
  }
  out->set_dtype(v1::DATA_TYPE_FLOAT32);
  (void)dtype;  // values are float32 on the wire; the original dtype lives in the blob
  out->set_data(reinterpret_cast<const char*>(values), numel * 4);
}

grpc::Status ToGrpc(const absl::Status& status) {
  if (status.ok()) return grpc::Status::OK;
  return grpc::Status(static_cast<grpc::StatusCode>(status.code()), std::string(status.message()));
}

}  // namespace coset
