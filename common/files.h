// Whole-file reads and writes with errors that name the file (cosetctl inputs and outputs,
// cosetd's and the client's TLS certificates).
#pragma once

#include <cstddef>
#include <string>

#include "absl/status/statusor.h"

namespace coset {

absl::StatusOr<std::string> ReadFile(const std::string& path);
absl::Status WriteFile(const std::string& path, const void* data, size_t size);

}  // namespace coset
