#include "client/npy.h"

#include <unistd.h>

#include <cmath>
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

TEST(NpyTest, WritesAndReadsFloat16Float32AndFloat64) {
  const std::string path = ::testing::TempDir() + "/npy_test.npy";
  const std::vector<float> x = {1.5f, -2.0f, 3.25f, 0.0f, 7.0f, -1.0f};  // exact in every dtype
  for (DType dtype : {DType::kFloat32, DType::kFloat64, DType::kFloat16}) {
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

TEST(NpyTest, Float16IsRoundedAndBfloat16IsWrittenAsFloat32) {
  const std::string path = ::testing::TempDir() + "/npy_test_narrow.npy";
  const std::vector<float> x = {0.1f, 70000.0f, -3.0e-8f, 1.0f + 1.0f / 2048};
  ASSERT_TRUE(WriteNpy(path, {4}, x.data(), DType::kFloat16).ok());
  const NpyArray half = *ReadNpy(path);
  EXPECT_EQ(half.dtype, DType::kFloat16);
  for (size_t i = 0; i < x.size(); ++i) EXPECT_EQ(half.data[i], HalfToFloat(FloatToHalf(x[i]))) << i;
  EXPECT_TRUE(std::isinf(half.data[1]));  // past float16's 65504
  EXPECT_EQ(half.data[3], 1.0f);          // the tie goes to the even neighbour
  // NumPy has no bfloat16: the file is float32 and holds the values as given.
  ASSERT_TRUE(WriteNpy(path, {4}, x.data(), DType::kBfloat16).ok());
  const NpyArray wide = *ReadNpy(path);
  EXPECT_EQ(wide.dtype, DType::kFloat32);
  EXPECT_EQ(wide.data, x);
  unlink(path.c_str());
}

TEST(NpyTest, ParsesHeadersNumpyWrites) {
  const NpyArray scalar = *ParseNpy(Npy("<f4", "", "False", 4));
  EXPECT_TRUE(scalar.shape.empty());
  EXPECT_EQ(scalar.data.size(), 1u);
  EXPECT_EQ(ParseNpy(Npy("<f8", "3,", "False", 24))->shape, (std::vector<int64_t>{3}));
  EXPECT_EQ(ParseNpy(Npy("<f2", "2, 2", "False", 8))->dtype, DType::kFloat16);
  EXPECT_NE(std::string(ParseNpy(Npy("<f2", "2, 2", "False", 16)).status().message()).find("needs 8"),
            std::string::npos);
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
