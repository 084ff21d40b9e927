// The shared pieces under the config, report and database readers and the printed tables:
// JsonReader's paths and wording, read_json_file's messages, TextTable's layout, and the one
// constraint check that the selection and the Autotuner's fallback share.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <functional>

#include "io.h"
#include "json_input.h"
#include "selection.h"
#include "table.h"

namespace convbp {
namespace {

using nlohmann::json;

// The message `read` throws as a JsonInputError, or "" if it throws nothing.
std::string error_of(const std::function<void()>& read) {
  try {
    read();
  } catch (const JsonInputError& e) {
    return e.what();
  }
  return "";
}

TEST(JsonReader, DocumentsNamePathsFromTheRootAndTheWholeRange) {
  const json doc = json::parse(R"({"cases": [{"count": 4294967296, "name": 7}]})");
  const JsonReader root(doc, JsonDialect::document);
  EXPECT_EQ(error_of([&] { root["cases"][0]["count"].integer(1, 2147483647); }),
            "$.cases[0].count: expected an integer from 1 to 2147483647, got 4294967296");
  EXPECT_EQ(error_of([&] { root["cases"][0]["name"].string(); }),
            "$.cases[0].name: expected a string, got 7");
  EXPECT_EQ(error_of([&] { root["cases"][0]["seed"]; }), "$.cases[0]: missing key \"seed\"");
  EXPECT_EQ(error_of([&] { root["cases"][1]; }), "$.cases: missing element [1]");
  EXPECT_EQ(error_of([&] { root["cases"][0]["count"].unsigned_integer(); }), "");
  EXPECT_EQ(error_of([&] { root["cases"][0]["count"].number(0); }), "");
}

TEST(JsonReader, ConfigsNamePathsFromTheTopAndTheBoundCrossed) {
  const json doc = json::parse(R"({"timing": {"reps": 2147483648, "warmup": -1, "s": 0.0001}})");
  const JsonReader root(doc, JsonDialect::config);
  const JsonReader timing = root["timing"];
  EXPECT_EQ(error_of([&] { timing["reps"].integer(1, 1000); }),
            "timing.reps: expected an integer <= 1000, got 2147483648");
  EXPECT_EQ(error_of([&] { timing["warmup"].integer(0, 1000); }),
            "timing.warmup: expected an integer >= 0, got -1");
  EXPECT_EQ(error_of([&] { timing["s"].number(0.001, 60); }),
            "timing.s: expected a number >= 0.001, got 0.0001");
  EXPECT_EQ(error_of([&] { root.expected("an array"); }),
            "expected an array, got {\"timing\":{\"reps\":2147483648,\"s\":0.0001,\"warmup\":-1}}");
}

TEST(JsonReader, AnUnknownKeyIsNamedWithTheAllowedOnesAndAMissingOneWithItsObject) {
  const json doc = json::parse(R"({"b": 1, "zz": 2})");
  const JsonReader root(doc, JsonDialect::document);
  EXPECT_EQ(error_of([&] { root.only_keys({"b", "a"}); }), "$.zz: unknown key (allowed: a, b)");
  EXPECT_EQ(error_of([&] { root.exact_keys({"b", "zz", "c"}); }), "$: missing key \"c\"");
  EXPECT_EQ(error_of([&] { root.exact_keys({"zz", "b"}); }), "");
}

TEST(JsonReader, AKeyWithALineBreakKeepsTheMessageOnOneLine) {
  const json doc = json::parse(R"({"a\nb": "x"})");
  const std::string message =
      error_of([&] { JsonReader(doc, JsonDialect::document).only_keys({}); });
  EXPECT_EQ(message.find('\n'), std::string::npos) << message;
  EXPECT_NE(message.find("$.a\\x0Ab: unknown key"), std::string::npos) << message;
}

TEST(JsonReader, NumbersAreNeverTruncated) {
  const json doc = json::parse(R"([5.0, 18446744073709551615, -3])");
  const JsonReader root(doc, JsonDialect::document);
  EXPECT_NE(error_of([&] { root[0].integer(0, 10); }), "");
  EXPECT_NE(error_of([&] { root[1].integer(0, std::numeric_limits<std::int64_t>::max()); }), "");
  EXPECT_EQ(root[1].unsigned_integer(), 18446744073709551615u);
  EXPECT_EQ(error_of([&] { root[2].unsigned_integer(); }),
            "$[2]: expected an integer >= 0, got -3");
  EXPECT_EQ(error_of([&] { root[1].unsigned_integer(100); }),
            "$[1]: expected an integer from 0 to 100, got 18446744073709551615");
}

TEST(ReadJsonFile, NamesTheFileAndWhatIsWrong) {
  const std::filesystem::path dir = std::filesystem::path(::testing::TempDir()) / "json_input";
  std::filesystem::create_directories(dir);
  const std::string bad = (dir / "bad.json").string();
  std::ofstream(bad) << "{\"a\": 1, \"a\": 2}";
  EXPECT_EQ(error_of([&] { read_json_file(bad, "report"); }), bad + ": $.a: duplicate key");
  EXPECT_EQ(error_of([&] { read_json_file(dir.string(), "report"); }),
            dir.string() + ": a directory, not a report");
  EXPECT_EQ(error_of([&] { read_json_file((dir / "none.json").string(), "config file"); }),
            (dir / "none.json").string() + ": cannot open config file: No such file or directory");
}

TEST(TextTable, AlignsColumnsTrimsLinesAndLetsAShortRowRunOn) {
  using Align = TextTable::Align;
  TextTable table({{}, {Align::right}, {Align::left, 6}}, "  ");
  table.add({"name", "ms", "note"});
  table.add({"a", "10.5", ""});
  table.add({"longer", "1.0", "x"});
  table.add({"b", "a reason far wider than the column"});
  EXPECT_EQ(table.str(),
            "  name      ms  note\n"
            "  a       10.5\n"
            "  longer   1.0  x\n"
            "  b       a reason far wider than the column\n");
}

TEST(Constraints, OneCheckNamesWhatAResultBreaks) {
  Constraints c;
  c.max_workspace_bytes = 1024;
  c.deterministic_only = true;
  c.max_rel_error = 1e-4;
  EXPECT_EQ(constraint_violation(c, 2048, true, 0.0), "workspace 2.0 KiB > 1.0 KiB");
  EXPECT_EQ(constraint_violation(c, 0, false, 0.0), "not deterministic");
  EXPECT_EQ(constraint_violation(c, 0, true, 2e-3), "max_rel 0.002 > 0.0001");
  EXPECT_EQ(constraint_violation(c, 0, true, std::nullopt), "max_rel ? > 0.0001");
  EXPECT_EQ(constraint_violation(c, 1024, true, 1e-5), std::nullopt);
  EXPECT_EQ(constraint_violation({}, 1 << 30, false, std::nullopt), std::nullopt);
}

}  // namespace
}  // namespace convbp
