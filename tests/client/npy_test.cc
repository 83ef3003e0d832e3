#include "client/npy.h"

#include <unistd.h>

#include <cstring>

#include "gtest/gtest.h"

namespace coset {
namespace {

std::string Npy(const std::string& descr, const std::string& shape, const std::string& fortran, size_t data_bytes) {
  std::string header = "{'descr': '" + descr + "', 'fortran_order': " + fortran + ", 'shape': (" + shape + "), }";
  header.append((64 - (10 + header.size() + 1) % 64) % 64, ' ');
  header.push_back('\n');
  std::string out = "\x93NUMPY";
  out.push_back(1);
  out.push_back(0);
  out.push_back(static_cast<char>(header.size() & 0xFF));
  out.push_back(static_cast<char>(header.size() >> 8));
  return out + header + std::string(data_bytes, '\0');
}

TEST(NpyTest, WritesAndReadsFloat32AndFloat64) {
  const std::string path = ::testing::TempDir() + "/npy_test.npy";
  const std::vector<float> x = {1.5f, -2.0f, 3.25f, 0.0f, 7.0f, -1.0f};
  for (DType dtype : {DType::kFloat32, DType::kFloat64}) {
    for (const std::vector<int64_t>& shape : {std::vector<int64_t>{6}, {2, 3}, {1, 2, 3}}) {
      ASSERT_TRUE(WriteNpy(path, shape, x.data(), dtype).ok());
      const NpyArray a = *ReadNpy(path);
      EXPECT_EQ(a.shape, shape);
      EXPECT_EQ(a.dtype, dtype);
      EXPECT_EQ(a.data, x);
    }
  }
  unlink(path.c_str());
}

TEST(NpyTest, ParsesHeadersNumpyWrites) {
  const NpyArray scalar = *ParseNpy(Npy("<f4", "", "False", 4));
  EXPECT_TRUE(scalar.shape.empty());
  EXPECT_EQ(scalar.data.size(), 1u);
  EXPECT_EQ(ParseNpy(Npy("<f8", "3,", "False", 24))->shape, (std::vector<int64_t>{3}));
}

TEST(NpyTest, RefusesWhatItCannotRead) {
  auto message = [](const std::string& bytes) { return std::string(ParseNpy(bytes).status().message()); };
  EXPECT_NE(message("not numpy at all").find("bad magic"), std::string::npos);
  EXPECT_NE(message(Npy(">f4", "2,", "False", 8)).find("not supported"), std::string::npos);
  EXPECT_NE(message(Npy("<i4", "2,", "False", 8)).find("not supported"), std::string::npos);
  EXPECT_NE(message(Npy("<f4", "2,", "True", 8)).find("Fortran"), std::string::npos);
  EXPECT_NE(message(Npy("<f4", "2, 3", "False", 20)).find("needs 24"), std::string::npos);
  EXPECT_NE(message(Npy("<f4", "-2,", "False", 0)).find("bad .npy shape"), std::string::npos);
  EXPECT_NE(message(Npy("<f4", "1099511627776, 1099511627776", "False", 0)).find("elements"), std::string::npos);
  EXPECT_EQ(ReadNpy("/nonexistent/x.npy").status().code(), absl::StatusCode::kNotFound);
}

}  // namespace
}  // namespace coset
