// Conversions between the wire types (proto/coset/v1) and core types, with the validation a
// daemon owes its clients: every field checked once, errors name the field and its value.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "core/tensor_codec.h"
#include "coset/v1/coset.pb.h"
#include "grpcpp/support/status.h"

namespace coset {

absl::StatusOr<CodecParams> ParamsFromProto(const v1::CodecConfig& config);
v1::CodecConfig ParamsToProto(const CodecParams& params);

struct FloatTensor {
  std::vector<int64_t> shape;
  std::vector<float> values;
};
// Checks shape (rank <= 8, non-negative, at most max_elements) and that data holds exactly
// numel float32 values; refuses NaN/Inf later in the codec.
absl::StatusOr<FloatTensor> TensorFromProto(const v1::Tensor& tensor, int64_t max_elements);
void TensorToProto(const std::vector<int64_t>& shape, const float* values, DType dtype, v1::Tensor* out);

// absl::Status -> grpc::Status with the same canonical code and message.
grpc::Status ToGrpc(const absl::Status& status);

}  // namespace coset
