// Reading and writing NumPy .npy files (format versions 1.0-3.0, little-endian float16, float32 or
// float64, C order). This is the CLI's file I/O; core never touches files.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "common/files.h"
#include "core/dtype.h"

namespace coset {

struct NpyArray {
  DType dtype = DType::kFloat32;
  std::vector<int64_t> shape;
  std::vector<float> data;  // float16 widened exactly, float64 rounded (the codec works in float32)
};

absl::StatusOr<NpyArray> ParseNpy(const std::string& bytes);
absl::StatusOr<NpyArray> ReadNpy(const std::string& path);
// Writes `data` (float32) as `dtype`, rounded to nearest even (core/dtype.h). NumPy has no
// bfloat16: kBfloat16 is written as float32, which holds every bfloat16 value exactly.
absl::Status WriteNpy(const std::string& path, const std::vector<int64_t>& shape, const float* data, DType dtype);

}  // namespace coset
