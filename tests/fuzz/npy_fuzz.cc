// libFuzzer target: the .npy reader cosetctl uses on user files. A file that parses has exactly
// as many values as its shape says.
#include <string>

#include "client/npy.h"
#include "core/status_macros.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto array = coset::ParseNpy(std::string(reinterpret_cast<const char*>(data), size));
  if (!array.ok()) return 0;
  int64_t numel = 1;
  for (int64_t d : array->shape) numel *= d;
  COSET_CHECK(static_cast<int64_t>(array->data.size()) == numel);
  return 0;
}
