// The device steps (kernels/device_codec.h), run sequentially on the CPU, against the CPU codec:
// the exact code the CUDA kernels run per block and per chunk, checked in every CI run.
#include "gtest/gtest.h"
#include "kernels/device_codec_host.h"
#include "tests/kernels/codec_cases.h"

namespace coset {
namespace {

device_testing::CodecUnderTest HostSteps() {
  return {[](const TensorCodec& codec, const float* x, const std::vector<int64_t>& shape, EncodeStats* stats) {
            return device::EncodeWithDeviceSteps(codec, x, shape, DType::kFloat32, stats);
          },
          [](const CompressedTensor& tensor, float* out) { return device::DecodeWithDeviceSteps(tensor, out); }};
}

TEST(DeviceCodecTest, MatchesCpuCodecOnTheGrid) { device_testing::RunGrid(HostSteps()); }

TEST(DeviceCodecTest, MatchesCpuCodecOnEdgeCases) { device_testing::RunEdgeCases(HostSteps()); }

TEST(DeviceCodecTest, GemmOnCodesMatchesDecodeThenDot) { device_testing::RunGemmCases(device::GemmWithDeviceSteps); }

TEST(DeviceCodecTest, RefusesCorruptT) {
  auto codec = TensorCodec::Create(CodecParams{});
  ASSERT_TRUE(codec.ok());
  const std::vector<float> x = device_testing::TestRows(64, 3);
  auto tensor = codec->Encode(x.data(), {2, 64});
  ASSERT_TRUE(tensor.ok());
  tensor->t[5] = static_cast<uint8_t>(tensor->params.t_max + 1);
  std::vector<float> out(x.size());
  EXPECT_EQ(device::DecodeWithDeviceSteps(*tensor, out.data()).code(), absl::StatusCode::kDataLoss);
}

}  // namespace
}  // namespace coset
