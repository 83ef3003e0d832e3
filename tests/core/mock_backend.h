// gmock twin of Backend (core/backend.h) for unit tests of the front ends (cosetctl's commands,
// and later the torch ops), without a daemon or a codec behind them.
#pragma once

#include <string>
#include <vector>

#include "core/backend.h"
#include "gmock/gmock.h"

namespace coset {

class MockBackend : public Backend {
 public:
  MOCK_METHOD(MemoryKind, memory, (), (const, override));
  MOCK_METHOD(absl::StatusOr<BackendInfo>, Info, (), (override));
  MOCK_METHOD(absl::Status, Health, (), (override));
  MOCK_METHOD(absl::StatusOr<EncodeResult>, Encode,
              (const float* x, const std::vector<int64_t>& shape, const CodecParams& params, DType original_dtype),
              (override));
  MOCK_METHOD(absl::Status, Decode, (BlobView blob, float* out), (override));
  MOCK_METHOD(absl::Status, Quantize,
              (const float* x, const std::vector<int64_t>& shape, const CodecParams& params, float* out), (override));
  MOCK_METHOD(absl::StatusOr<std::string>, Gemm, (BlobView weights, const float* queries, int64_t batch, float* out),
              (override));
  MOCK_METHOD(absl::StatusOr<std::vector<double>>, DotRows, (BlobView a, BlobView b, int64_t lut_budget_bytes),
              (override));
  MOCK_METHOD(absl::StatusOr<AddCodesResult>, AddCodes, (const std::vector<BlobView>& blobs, bool validate),
              (override));
};

}  // namespace coset
