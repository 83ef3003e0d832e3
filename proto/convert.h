// Conversions between the wire types (proto/coset/v1) and core types, with the validation a
// daemon owes its clients: every field checked once, errors name the field and its value.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "core/dtype.h"
#include "core/tensor_codec.h"
#include "coset/v1/coset.pb.h"
#include "grpcpp/support/status.h"

namespace coset {

absl::StatusOr<CodecParams> ParamsFromProto(const v1::CodecConfig& config);
v1::CodecConfig ParamsToProto(const CodecParams& params);

// The one check of a wire tensor, whatever its transport: a known dtype, rank <= kMaxRank,
// non-negative dimensions, at most max_elements values (RESOURCE_EXHAUSTED beyond), and a payload of
// exactly numel values of the dtype: inline in `data`, or `shm.length` bytes at an `shm.offset`
// aligned to the element size in a shared-memory region (never both). NaN/Inf are refused later by
// the codec.
struct TensorShape {
  std::vector<int64_t> shape;
  int64_t numel = 0;
  DType dtype = DType::kFloat32;
};
absl::StatusOr<TensorShape> CheckTensor(const v1::Tensor& tensor, int64_t max_elements);

// A wire DataType value (`field` names it in the error) as a DType: INVALID_ARGUMENT for numbers
// outside 0-3 (proto3 enums arrive as any int32).
absl::StatusOr<DType> DTypeFromProto(int value, const char* field);

struct FloatTensor {
  std::vector<int64_t> shape;
  std::vector<float> values;
};
// An inline tensor's values as float32 (CheckTensor, then a converted copy of `data`); a
// shared-memory one is refused.
absl::StatusOr<FloatTensor> TensorFromProto(const v1::Tensor& tensor, int64_t max_elements);
// An inline tensor of `dtype` (values rounded to nearest even where it is narrower than float32).
void TensorToProto(const std::vector<int64_t>& shape, const float* values, DType dtype, v1::Tensor* out);

// absl::Status -> grpc::Status with the same canonical code and message.
grpc::Status ToGrpc(const absl::Status& status);

}  // namespace coset
