// cosetctl's commands against MockBackend: each command parses its flags through the codec table,
// asks the backend once with the right arguments, writes what the backend returned, and passes
// the backend's errors through. No codec and no daemon behind them.
#include "client/commands.h"

#include <unistd.h>

#include <cstdlib>
#include <filesystem>

#include "client/npy.h"
#include "common/codec_flags.h"
#include "core/cpu_backend.h"
#include "core/format.h"
#include "core/thread_pool.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/core/mock_backend.h"

namespace coset {
namespace {

using ::testing::_;
using ::testing::Field;
using ::testing::Return;
using ::testing::StrictMock;

class CommandsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char pattern[] = "/tmp/coset_commands_testXXXXXX";
    dir_ = mkdtemp(pattern);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::string Path(const std::string& name) const { return dir_ + "/" + name; }

  // Runs a command against the mock with these arguments (codec flags known).
  absl::Status Run(absl::Status (*command)(const CommandContext&), const std::vector<std::string>& argv,
                   const std::string& daemon = "") {
    std::set<std::string> values = CodecValueFlags();
    values.insert({"threads", "samples", "data-seed", "lut-budget"});
    std::set<std::string> switches = CodecSwitches();
    switches.insert({"json", "search-beta"});
    auto args = CliArgs::Parse(argv, values, switches);
    if (!args.ok()) return args.status();
    const CommandContext ctx{*args, true, backend_, pool_, daemon, daemon.empty() ? "cpu" : "daemon"};
    ::testing::internal::CaptureStdout();
    const absl::Status status = command(ctx);
    output_ = ::testing::internal::GetCapturedStdout();
    return status;
  }

  // A real blob (from the CPU backend) for the mock to hand back.
  std::vector<uint8_t> RealBlob(const std::vector<float>& x, const std::vector<int64_t>& shape) {
    CpuBackend cpu;
    return cpu.Encode(x.data(), shape, CodecParams{}, DType::kFloat32)->blob;
  }

  std::string dir_;
  std::string output_;
  ThreadPool pool_{1};
  StrictMock<MockBackend> backend_;
};

TEST_F(CommandsTest, EncodeAsksTheBackendWithTheTablesParametersAndWritesItsBlob) {
  const std::vector<float> x(2 * 12, 0.5f);
  ASSERT_TRUE(WriteNpy(Path("x.npy"), {2, 12}, x.data(), DType::kFloat64).ok());
  EncodeResult result;
  result.blob = RealBlob(x, {2, 12});
  result.stats.chunks = 6;
  EXPECT_CALL(backend_, Encode(_, std::vector<int64_t>{2, 12}, Field(&CodecParams::t_max, 5), DType::kFloat64))
      .WillOnce(Return(result));
  ASSERT_TRUE(Run(&CmdEncode, {Path("x.npy"), Path("x.coset"), "--t_max", "5", "--M", "2"}).ok());
  EXPECT_EQ(*ReadFile(Path("x.coset")), std::string(result.blob.begin(), result.blob.end()));
  EXPECT_NE(output_.find("\"t_max\":31"), std::string::npos) << "JSON shows the blob's resolved parameters";
}

TEST_F(CommandsTest, EncodeRefusesBadFlagsBeforeAskingTheBackend) {
  const std::vector<float> x(8, 1.0f);
  ASSERT_TRUE(WriteNpy(Path("x.npy"), {8}, x.data(), DType::kFloat32).ok());
  // StrictMock: any backend call fails the test.
  EXPECT_NE(Run(&CmdEncode, {Path("x.npy"), Path("x.coset"), "--q", "2"}).message().find("q (=2)"), std::string::npos);
  EXPECT_FALSE(Run(&CmdEncode, {Path("x.npy")}).ok());
}

TEST_F(CommandsTest, BackendErrorsPassThroughUnchanged) {
  const std::vector<float> x(8, 1.0f);
  ASSERT_TRUE(WriteNpy(Path("x.npy"), {8}, x.data(), DType::kFloat32).ok());
  EXPECT_CALL(backend_, Encode(_, _, _, _)).WillOnce(Return(absl::UnavailableError("daemon down")));
  const absl::Status s = Run(&CmdEncode, {Path("x.npy"), Path("x.coset")}, "unix:/nowhere");
  EXPECT_EQ(s.code(), absl::StatusCode::kUnavailable);
  EXPECT_FALSE(std::filesystem::exists(Path("x.coset")));
}

TEST_F(CommandsTest, DecodeSizesTheOutputFromTheHeaderAndWritesTheBackendsValues) {
  const std::vector<float> x(3 * 8, 0.25f);
  const std::vector<uint8_t> blob = RealBlob(x, {3, 8});
  ASSERT_TRUE(WriteFile(Path("x.coset"), blob.data(), blob.size()).ok());
  EXPECT_CALL(backend_, Decode(_, _)).WillOnce([&](BlobView view, float* out) {
    EXPECT_EQ(view.size(), blob.size());
    for (int i = 0; i < 24; ++i) out[i] = static_cast<float>(i);
    return absl::OkStatus();
  });
  ASSERT_TRUE(Run(&CmdDecode, {Path("x.coset"), Path("y.npy")}).ok());
  const NpyArray y = *ReadNpy(Path("y.npy"));
  EXPECT_EQ(y.shape, (std::vector<int64_t>{3, 8}));
  EXPECT_EQ(y.data[23], 23.0f);
}

TEST_F(CommandsTest, GemvDotInfoAndHealthEachAskTheBackendOnce) {
  const std::vector<float> w(4 * 8, 0.5f);
  const std::vector<uint8_t> blob = RealBlob(w, {4, 8});
  ASSERT_TRUE(WriteFile(Path("w.coset"), blob.data(), blob.size()).ok());
  const std::vector<float> q(2 * 8, 1.0f);
  ASSERT_TRUE(WriteNpy(Path("q.npy"), {2, 8}, q.data(), DType::kFloat32).ok());
  EXPECT_CALL(backend_, Gemm(_, _, 2, _)).WillOnce([](BlobView, const float*, int64_t, float* out) {
    for (int i = 0; i < 8; ++i) out[i] = 1.5f;
    return absl::StatusOr<std::string>("int8-lanes");
  });
  ASSERT_TRUE(Run(&CmdGemv, {Path("w.coset"), Path("q.npy"), Path("out.npy")}).ok());
  EXPECT_EQ(ReadNpy(Path("out.npy"))->shape, (std::vector<int64_t>{2, 4}));
  EXPECT_NE(output_.find("int8-lanes"), std::string::npos);

  EXPECT_CALL(backend_, DotRows(_, _, 4096)).WillOnce(Return(std::vector<double>{1, 2, 3, 4}));
  ASSERT_TRUE(Run(&CmdDot, {Path("w.coset"), Path("w.coset"), "--lut-budget", "4096"}).ok());
  EXPECT_EQ(output_, "{\"dots\":[1,2,3,4]}\n");

  BackendInfo info{"cpu", "portable, 1 thread(s)", {{"simd", "portable"}}};
  EXPECT_CALL(backend_, Info()).WillOnce(Return(info));
  ASSERT_TRUE(Run(&CmdInfo, {}).ok());
  EXPECT_EQ(output_, "{\"backend\":\"cpu\",\"simd\":\"portable\"}\n");

  EXPECT_CALL(backend_, Health()).WillOnce(Return(absl::UnavailableError("down")));
  EXPECT_EQ(Run(&CmdHealth, {}, "unix:/x").code(), absl::StatusCode::kUnavailable);
  EXPECT_NE(output_.find("\"serving\":false"), std::string::npos);
}

TEST_F(CommandsTest, EvalMeasuresTheBackendsRoundTrip) {
  CpuBackend cpu;
  EXPECT_CALL(backend_, Encode(_, _, _, DType::kFloat32))
      .WillOnce([&](const float* x, const std::vector<int64_t>& shape, const CodecParams& p, DType d) {
        return cpu.Encode(x, shape, p, d);
      });
  EXPECT_CALL(backend_, Decode(_, _)).WillOnce([&](BlobView blob, float* out) { return cpu.Decode(blob, out); });
  ASSERT_TRUE(Run(&CmdEval, {"--samples", "4096"}).ok());
  EXPECT_NE(output_.find("\"snr_db\":2"), std::string::npos) << output_;  // ~22-23 dB at D4 q=4 M=2
  // --search-beta is a core routine: refused through a daemon, before any backend call.
  EXPECT_FALSE(Run(&CmdEval, {"--search-beta", "--samples", "64"}, "unix:/x").ok());
}

}  // namespace
}  // namespace coset
