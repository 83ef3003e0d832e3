// libFuzzer target: the blob parser (core/format), the input every daemon client controls. Each
// input is parsed as it is and again with its checksum made right, so mutations get past the CRC
// to the field checks. A blob that parses must decode (or fail cleanly) and re-serialize to a blob
// that parses.
#include <cstring>
#include <vector>

#include "core/crc32c.h"
#include "core/format.h"
#include "core/status_macros.h"

namespace {

void ParseAndUse(const std::vector<uint8_t>& blob) {
  auto t = coset::Parse(blob.data(), blob.size());
  if (!t.ok()) return;
  const std::vector<uint8_t> again = coset::Serialize(*t);
  COSET_CHECK(coset::Parse(again.data(), again.size()).ok());
  if (t->layout.numel > (int64_t{1} << 18)) return;  // valid but large: decoding it adds no coverage
  std::vector<float> out(t->layout.numel);
  (void)coset::DecodeTensor(*t, out.data());
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::vector<uint8_t> blob(data, data + size);
  ParseAndUse(blob);
  if (blob.size() >= 4) {
    const uint32_t crc = coset::Crc32c(blob.data(), blob.size() - 4);
    std::memcpy(blob.data() + blob.size() - 4, &crc, 4);
    ParseAndUse(blob);
  }
  return 0;
}
