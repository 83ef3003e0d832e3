// The CLI mirror of the codec field table: one flag per field with the field's name, help with the
// table's defaults, and parsing through the table.
#include "common/codec_flags.h"

#include "gtest/gtest.h"

namespace coset {
namespace {

TEST(CodecFlagsTest, FlagsAreTheTablesFieldNames) {
  std::set<std::string> all = CodecValueFlags();
  for (const std::string& s : CodecSwitches()) all.insert(s);
  std::set<std::string> fields;
  for (const CodecField& f : CodecFields()) fields.insert(f.name);
  EXPECT_EQ(all, fields);
  EXPECT_EQ(CodecSwitches(), std::set<std::string>{"rotate"});
}

TEST(CodecFlagsTest, HelpListsEveryFieldWithItsDefault) {
  const std::string help = CodecFlagsHelp();
  for (const CodecField& f : CodecFields()) {
    EXPECT_NE(help.find(std::string("--") + f.name), std::string::npos) << f.name;
    EXPECT_NE(help.find("[" + f.DefaultText() + "]"), std::string::npos) << f.name;
  }
}

TEST(CodecFlagsTest, ParsesThroughTheTableAndNamesBadFlags) {
  const CliArgs args = *CliArgs::Parse({"--lattice", "E8", "--M", "3", "--t_max", "5", "--on_cap", "zero", "--rotate"},
                                       CodecValueFlags(), CodecSwitches());
  const CodecParams p = *CodecParamsFromArgs(args);
  EXPECT_EQ(p.lattice.name(), "E8");
  EXPECT_EQ(p.M, 3);
  EXPECT_EQ(p.t_max, 5);
  EXPECT_EQ(p.on_cap, CapPolicy::kZero);
  EXPECT_TRUE(p.rotate);
  const CliArgs bad = *CliArgs::Parse({"--q", "2"}, CodecValueFlags(), CodecSwitches());
  EXPECT_NE(CodecParamsFromArgs(bad).status().message().find("q (=2)"), std::string::npos);
  const CliArgs word = *CliArgs::Parse({"--q", "four"}, CodecValueFlags(), CodecSwitches());
  EXPECT_NE(CodecParamsFromArgs(word).status().message().find("--q (='four')"), std::string::npos);
}

TEST(CodecFlagsTest, JsonHasOneTypedKeyPerField) {
  JsonObject j;
  AddParams(j, CodecParams{});
  const std::string json = j.str();
  EXPECT_EQ(
      json.rfind("{\"lattice\":\"D4\",\"q\":4,\"M\":2,\"beta\":0,\"alpha\":0.333333343,\"block\":0,\"scale\":\"rms\","
                 "\"rotate\":false,\"seed\":24301,\"t_max\":31,\"on_cap\":\"fail\"",
                 0),
      0u)
      << json;
  for (const CodecField& f : CodecFields()) {
    EXPECT_NE(json.find(std::string("\"") + f.name + "\":"), std::string::npos) << f.name;
  }
}

}  // namespace
}  // namespace coset
