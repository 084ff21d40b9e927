#include <gtest/gtest.h>

#include <fstream>

#include "config.h"
#include "json_input.h"

namespace convbp {
namespace {

using nlohmann::json;

Suite parse(const std::string& text) { return parse_suite(json::parse(text), "t.json"); }

// The error message of parsing `text`, or "" if it parsed.
std::string error_of(const std::string& text) {
  try {
    parse(text);
  } catch (const ConfigError& e) {
    return e.what();
  }
  return "";
}

TEST(Config, ParsesTheDesignExampleWithEveryFieldForm) {
  const Suite s = parse(R"({ "suite": "resnet50", "source": "He et al.",
    "defaults": { "n": 8 }, "passes": ["weights"], "impls": ["im2col_gemm.*"],
    "timing": { "warmup": 2, "reps": 7, "max_seconds_per_case": 1.5 },
    "layers": [
      { "name": "conv1", "c": 3, "h": 224, "w": 224, "k": 64, "r": 7, "s": 7, "stride": 2, "pad": 3 },
      { "name": "b", "c": 64, "h": 56, "k": 64, "r": 3, "pad": 1, "count": 3 },
      { "name": "dw", "c": 144, "h": 56, "w": 56, "k": 144, "r": 3, "s": 3, "pad": 1, "groups": 144 },
      { "name": "odd", "n": 3, "c": 5, "h": 17, "w": 9, "k": 7, "r": 2, "s": 5,
        "stride": [2, 1], "pad": [1, 0, 2, 1], "dilation": [1, 2] },
      { "name": "hw", "c": 4, "h": 8, "k": 4, "r": 3, "pad": [1, 2] } ] })");
  EXPECT_EQ(s.name, "resnet50");
  EXPECT_EQ(s.passes, std::vector<Pass>{Pass::weights});
  EXPECT_EQ(s.timing.reps, 7);
  EXPECT_DOUBLE_EQ(s.timing.max_seconds_per_case, 1.5);
  ASSERT_EQ(s.layers.size(), 5u);
  EXPECT_EQ(s.layers[0].problem.key(), "n8_c3_h224_w224_k64_r7_s7_st2x2_pad3x3x3x3_dil1x1_g1");
  EXPECT_EQ(s.layers[1].count, 3);
  EXPECT_EQ(s.layers[1].problem.w, 56) << "w defaults to h";
  EXPECT_EQ(s.layers[1].problem.s, 3) << "s defaults to r";
  EXPECT_EQ(s.layers[2].problem.groups, 144);
  EXPECT_EQ(s.layers[3].problem.key(), "n3_c5_h17_w9_k7_r2_s5_st2x1_pad1x0x2x1_dil1x2_g1");
  EXPECT_EQ(s.layers[4].problem.pad_top, 1);
  EXPECT_EQ(s.layers[4].problem.pad_left, 2);
  EXPECT_EQ(s.layers[4].problem.pad_bottom, 1);
  EXPECT_EQ(s.layers[4].problem.pad_right, 2);
}

struct BadConfig {
  const char* what;
  std::string json;
  const char* message;  // must appear in the error
};

TEST(Config, EveryBadInputNamesFilePathAndExpectation) {
  const std::string layer = R"({"name": "a", "c": 4, "h": 8, "k": 4, "r": 3})";
  const BadConfig cases[] = {
      {"not an object", "[1, 2]", "t.json: expected a JSON object"},
      {"unknown top key", R"({"suite": "x", "layers": [)" + layer + R"(], "speed": 1})",
       "t.json: speed: unknown key"},
      {"missing suite", R"({"layers": [)" + layer + "]}", "missing required key \"suite\""},
      {"missing layers", R"({"suite": "x"})", "missing required key \"layers\""},
      {"empty layers", R"({"suite": "x", "layers": []})", "layers: expected a non-empty array"},
      {"unknown layer key",
       R"({"suite": "x", "layers": [{"c": 4, "h": 8, "k": 4, "r": 3, "kernel": 3}]})",
       "layers[0].kernel: unknown key"},
      {"string size", R"({"suite": "x", "layers": [{"c": "4", "h": 8, "k": 4, "r": 3}]})",
       "layers[0].c: expected an integer >= 1, got \"4\""},
      {"float size", R"({"suite": "x", "layers": [{"c": 4.5, "h": 8, "k": 4, "r": 3}]})",
       "layers[0].c: expected an integer >= 1, got 4.5"},
      {"missing c", R"({"suite": "x", "layers": [{"h": 8, "k": 4, "r": 3}]})",
       "layers[0]: missing required key \"c\""},
      {"bad stride",
       R"({"suite": "x", "layers": [{"c": 4, "h": 8, "k": 4, "r": 3, "stride": [1, 2, 3]}]})",
       "layers[0].stride: expected an integer >= 1 or [h, w]"},
      {"zero stride",
       R"({"suite": "x", "layers": [{"c": 4, "h": 8, "k": 4, "r": 3, "stride": [1, 0]}]})",
       "layers[0].stride[1]: expected an integer >= 1, got 0"},
      {"bad pad",
       R"({"suite": "x", "layers": [{"c": 4, "h": 8, "k": 4, "r": 3, "pad": [1, 2, 3]}]})",
       "layers[0].pad: expected an integer >= 0, [h, w] or [top, left, bottom, right]"},
      {"impossible groups",
       R"({"suite": "x", "layers": [{"c": 6, "h": 8, "k": 4, "r": 3, "groups": 4}]})",
       "layers[0]: impossible shape: c=6 is not divisible by groups=4"},
      {"kernel too big", R"({"suite": "x", "layers": [{"c": 4, "h": 2, "k": 4, "r": 3}]})",
       "layers[0]: impossible shape: dilated kernel height 3 exceeds"},
      {"bad pass", R"({"suite": "x", "passes": ["forward"], "layers": [)" + layer + "]}",
       "passes[0]: expected \"data\" or \"weights\", got \"forward\""},
      {"bad timing key", R"({"suite": "x", "timing": {"repeats": 3}, "layers": [)" + layer + "]}",
       "timing.repeats: unknown key"},
      {"bad reps", R"({"suite": "x", "timing": {"reps": 0}, "layers": [)" + layer + "]}",
       "timing.reps: expected an integer >= 1, got 0"},
      {"bad default", R"({"suite": "x", "defaults": {"n": -1}, "layers": [)" + layer + "]}",
       "defaults.n: expected an integer >= 1, got -1"},
      {"name in defaults",
       R"({"suite": "x", "defaults": {"name": "a"}, "layers": [)" + layer + "]}",
       "defaults.name: unknown key"},
      {"duplicate names", R"({"suite": "x", "layers": [)" + layer + "," + layer + "]}",
       "layers[1].name: duplicate layer name \"a\""},
      {"empty impls", R"({"suite": "x", "impls": [], "layers": [)" + layer + "]}",
       "impls: expected a non-empty array"},
      {"wrong schema", R"({"schema": "convbp.config/2", "suite": "x", "layers": [)" + layer + "]}",
       "schema: expected \"convbp.config/1\""},
  };
  for (const BadConfig& bad : cases) {
    const std::string message = error_of(bad.json);
    EXPECT_NE(message.find(bad.message), std::string::npos)
        << bad.what << ": got \"" << message << "\", wanted it to contain \"" << bad.message
        << "\"";
  }
}

TEST(Config, AMissingFileAndMalformedJsonAreConfigErrors) {
  EXPECT_THROW(load_suite("/nonexistent/suite.json"), ConfigError);
  EXPECT_THROW(load_suite_argument("no_such_suite_name"), ConfigError);
  const std::string path = ::testing::TempDir() + "/malformed.json";
  { std::ofstream(path) << "{ \"suite\": \"x\", "; }
  try {
    load_suite(path);
    ADD_FAILURE() << "malformed JSON accepted";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find(path + ": malformed JSON"), std::string::npos) << e.what();
  }
}

TEST(Config, DeepNestingAndDuplicateKeysAreRejectedBeforeParsing) {
  const std::string path = ::testing::TempDir() + "/deep.json";
  {
    std::ofstream(path) << R"({"suite": "x", "layers": [{"c": )" << std::string(100000, '[')
                        << std::string(100000, ']') << "}]}";
  }
  try {
    load_suite(path);
    ADD_FAILURE() << "deep nesting accepted";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find(path + ": $.layers[0].c[0]"), std::string::npos)
        << e.what();
    EXPECT_NE(std::string(e.what()).find("nested deeper than 64 levels"), std::string::npos)
        << e.what();
  }
  // At the limit, the parser and the config reader decide (here: c is not an integer).
  const std::string at_limit =
      R"({"suite": "x", "layers": [{"c": )" + std::string(61, '[') + std::string(61, ']') + "}]}";
  EXPECT_NO_THROW(parse_json_input(at_limit));
  EXPECT_THROW(parse_json_input(R"({"a": 1, "b": {"a": 2, "a": 3}})"), JsonInputError);
  EXPECT_NO_THROW(parse_json_input(R"({"a": 1, "b": {"a": 2}, "c": [{"a": 1}, {"a": 2}]})"));
  EXPECT_NO_THROW(parse_json_input(R"({"a\"{[": "[[{", "b": "\\"})"));
}

TEST(Config, TheBuiltInDefaultAndEveryShippedSuiteParse) {
  EXPECT_NO_THROW(default_suite());
  for (const char* name : {"smoke", "default", "resnet50", "vgg16", "mobilenet_v2", "alexnet"}) {
    const std::string path = std::string(CONVBP_SOURCE_DIR) + "/configs/" + name + ".json";
    if (!std::ifstream(path)) {
      ADD_FAILURE() << path << " is missing";
      continue;
    }
    EXPECT_NO_THROW(load_suite(path)) << path;
  }
}

TEST(Config, GlobsMatchImplementationNames) {
  EXPECT_TRUE(glob_match("*", "naive"));
  EXPECT_TRUE(glob_match("im2col_gemm.*", "im2col_gemm.batched"));
  EXPECT_FALSE(glob_match("im2col_gemm.*", "im2col_gemm"));
  EXPECT_TRUE(glob_match("cudnn.*.tf32", "cudnn.winograd_nonfused.tf32"));
  EXPECT_FALSE(glob_match("cudnn.*.tf32", "cudnn.winograd_nonfused.fp32"));
  EXPECT_TRUE(glob_match("winograd.f?x3", "winograd.f4x3"));
  EXPECT_FALSE(glob_match("naive", "naive2"));
}

}  // namespace
}  // namespace convbp
