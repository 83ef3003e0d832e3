#include "client/npy.h"

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "core/status_macros.h"

namespace coset {
namespace {

// Value of `key` in the header dict, e.g. 'descr': '<f4' -> "<f4" (without quotes).
absl::StatusOr<std::string> DictValue(const std::string& header, const std::string& key) {
  const std::string quoted = "'" + key + "'";
  size_t pos = header.find(quoted);
  if (pos == std::string::npos) return absl::InvalidArgumentError(absl::StrCat(".npy header has no '", key, "'"));
  pos = header.find(':', pos + quoted.size());
  if (pos == std::string::npos) return absl::InvalidArgumentError(".npy header is malformed");
  ++pos;
  while (pos < header.size() && header[pos] == ' ') ++pos;
  if (pos >= header.size()) return absl::InvalidArgumentError(".npy header is malformed");
  if (header[pos] == '\'') {
    const size_t end = header.find('\'', pos + 1);
    if (end == std::string::npos) return absl::InvalidArgumentError(".npy header is malformed");
    return header.substr(pos + 1, end - pos - 1);
  }
  if (header[pos] == '(') {
    const size_t end = header.find(')', pos);
    if (end == std::string::npos) return absl::InvalidArgumentError(".npy header is malformed");
    return header.substr(pos + 1, end - pos - 1);
  }
  size_t end = pos;
  while (end < header.size() && header[end] != ',' && header[end] != '}') ++end;
  return header.substr(pos, end - pos);
}

}  // namespace

absl::StatusOr<NpyArray> ParseNpy(const std::string& bytes) {
  if (bytes.size() < 10 || bytes.compare(0, 6, "\x93NUMPY") != 0) {
    return absl::InvalidArgumentError("not a .npy file (bad magic)");
  }
  const int major = static_cast<uint8_t>(bytes[6]);
  size_t header_len, offset;
  if (major == 1) {
    header_len = static_cast<uint8_t>(bytes[8]) | (static_cast<uint8_t>(bytes[9]) << 8);
    offset = 10;
  } else if (major == 2 || major == 3) {
    if (bytes.size() < 12) return absl::InvalidArgumentError(".npy file truncated");
    uint32_t len;
    std::memcpy(&len, bytes.data() + 8, 4);
    header_len = len;
    offset = 12;
  } else {
    return absl::InvalidArgumentError(absl::StrCat("unsupported .npy version ", major));
  }
  if (bytes.size() < offset + header_len) return absl::InvalidArgumentError(".npy header truncated");
  const std::string header = bytes.substr(offset, header_len);
  COSET_ASSIGN_OR_RETURN(std::string descr, DictValue(header, "descr"));
  COSET_ASSIGN_OR_RETURN(std::string fortran, DictValue(header, "fortran_order"));
  COSET_ASSIGN_OR_RETURN(std::string shape_text, DictValue(header, "shape"));
  NpyArray out;
  if (descr == "<f4" || descr == "=f4" || descr == "|f4") {
    out.dtype = DType::kFloat32;
  } else if (descr == "<f8" || descr == "=f8") {
    out.dtype = DType::kFloat64;
  } else if (descr == "<f2" || descr == "=f2") {
    out.dtype = DType::kFloat16;
  } else {
    return absl::InvalidArgumentError(
        absl::StrCat("dtype '", descr, "' is not supported (float16, float32 or float64, little-endian)"));
  }
  const size_t item = DTypeBytes(out.dtype);
  if (fortran.find("True") != std::string::npos) {
    return absl::InvalidArgumentError("Fortran-ordered arrays are not supported; save with np.ascontiguousarray");
  }
  int64_t numel = 1;
  std::stringstream ss(shape_text);
  std::string token;
  while (std::getline(ss, token, ',')) {
    const size_t first = token.find_first_not_of(" ");
    if (first == std::string::npos) continue;
    char* end = nullptr;
    const long long v = std::strtoll(token.c_str() + first, &end, 10);
    if (end == token.c_str() + first || v < 0)
      return absl::InvalidArgumentError(absl::StrCat("bad .npy shape '(", shape_text, ")'"));
    out.shape.push_back(v);
  }
  // The limits every tensor obeys (core/limits.h): rank and element count.
  auto counted = CheckedNumel(out.shape);
  if (!counted.ok()) return absl::InvalidArgumentError(absl::StrCat(".npy shape: ", counted.status().message()));
  numel = *counted;
  const size_t data_offset = offset + header_len;
  int64_t want = 0;
  if (!CheckedMul(numel, static_cast<int64_t>(item), &want) ||
      bytes.size() - data_offset != static_cast<size_t>(want)) {
    return absl::InvalidArgumentError(
        absl::StrCat(".npy data holds ", bytes.size() - data_offset, " bytes; shape (", shape_text, ") needs ", want));
  }
  out.data.resize(numel);
  ToFloat(bytes.data() + data_offset, out.dtype, numel, out.data.data());
  return out;
}

absl::StatusOr<NpyArray> ReadNpy(const std::string& path) {
  COSET_ASSIGN_OR_RETURN(std::string bytes, ReadFile(path));
  auto parsed = ParseNpy(bytes);
  if (!parsed.ok()) return absl::Status(parsed.status().code(), absl::StrCat(path, ": ", parsed.status().message()));
  return parsed;
}

absl::Status WriteNpy(const std::string& path, const std::vector<int64_t>& shape, const float* data, DType dtype) {
  std::string shape_text;
  int64_t numel = 1;
  for (int64_t d : shape) {
    absl::StrAppend(&shape_text, d, ", ");
    numel *= d;
  }
  if (shape.size() > 1) shape_text.resize(shape_text.size() - 1);
  if (shape.size() > 1) shape_text.pop_back();
  // NumPy has no bfloat16: float32 holds its values exactly.
  const DType stored = dtype == DType::kBfloat16 ? DType::kFloat32 : dtype;
  std::string header =
      absl::StrCat("{'descr': '<f", DTypeBytes(stored), "', 'fortran_order': False, 'shape': (", shape_text, "), }");
  const size_t total = 10 + header.size() + 1;
  header.append((64 - total % 64) % 64, ' ');
  header.push_back('\n');
  std::string out = "\x93NUMPY";
  out.push_back(1);
  out.push_back(0);
  out.push_back(static_cast<char>(header.size() & 0xFF));
  out.push_back(static_cast<char>(header.size() >> 8));
  out += header;
  const size_t header_end = out.size();
  out.resize(header_end + static_cast<size_t>(numel) * DTypeBytes(stored));
  FromFloat(data, numel, stored, out.data() + header_end);
  return WriteFile(path, out.data(), out.size());
}

}  // namespace coset
