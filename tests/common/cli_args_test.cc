#include "common/cli_args.h"

#include "gtest/gtest.h"

namespace coset {
namespace {

TEST(CliArgsTest, PositionalsValuesAndSwitches) {
  const CliArgs a =
      *CliArgs::Parse({"in.npy", "--q", "5", "--M=3", "--rotate", "--no-json", "out", "--tag", "x", "--tag", "y"},
                      {"q", "M", "tag"}, {"rotate", "json"});
  EXPECT_EQ(a.positionals(), (std::vector<std::string>{"in.npy", "out"}));
  EXPECT_EQ(*a.GetInt("q", 0), 5);
  EXPECT_EQ(*a.GetInt("M", 0), 3);
  EXPECT_EQ(*a.GetInt("absent", 42), 42);
  EXPECT_TRUE(a.Switch("rotate", false));
  EXPECT_FALSE(a.Switch("json", true));
  EXPECT_TRUE(a.HasSwitch("json"));
  EXPECT_FALSE(a.HasSwitch("other"));
  EXPECT_EQ(a.Get("tag", ""), "y");
  EXPECT_EQ(a.GetAll("tag"), (std::vector<std::string>{"x", "y"}));
}

TEST(CliArgsTest, UnknownFlagsMissingValuesAndBadNumbersAreErrors) {
  EXPECT_NE(CliArgs::Parse({"--bogus"}, {}, {}).status().message().find("unknown flag --bogus"), std::string::npos);
  EXPECT_NE(CliArgs::Parse({"--q"}, {"q"}, {}).status().message().find("--q needs a value"), std::string::npos);
  const CliArgs a = *CliArgs::Parse({"--q", "4x", "--beta", "nan?"}, {"q", "beta"}, {});
  EXPECT_FALSE(a.GetInt("q", 0).ok());
  EXPECT_FALSE(a.GetDouble("beta", 0).ok());
  // A switch does not take a value.
  EXPECT_FALSE(CliArgs::Parse({"--rotate=1"}, {}, {"rotate"}).ok());
}

}  // namespace
}  // namespace coset
