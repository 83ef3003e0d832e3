#include "client/commands.h"

#include <iostream>

#include "absl/strings/str_cat.h"
#include "client/npy.h"
#include "core/format.h"
#include "core/status_macros.h"

namespace coset {

std::string ShapeString(const std::vector<int64_t>& shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) absl::StrAppend(&s, i ? ", " : "", shape[i]);
  return s + "]";
}

void Emit(bool json, const JsonObject& j, const std::string& text) {
  if (json) {
    std::cout << j.str() << std::endl;
  } else {
    std::cout << text;
  }
}

absl::StatusOr<CompressedTensor> ParseCoset(const std::string& path, const std::string& bytes) {
  const BlobView blob = ViewOf(bytes);
  auto t = Parse(blob.data(), blob.size());
  if (!t.ok()) return absl::Status(t.status().code(), absl::StrCat(path, ": ", t.status().message()));
  return t;
}

}  // namespace coset
