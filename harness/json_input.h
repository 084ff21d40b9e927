// Reading convbp's JSON files (suite configs, reports, tuning databases) without trusting them:
// nesting is bounded before any recursive code (nlohmann::json's dump, comparison) sees the
// document, duplicate keys are errors rather than silently dropped, every field is read through
// one strict, typed reader (JsonReader) that knows its JSON path, and every failure is one line
// that names the file, the path and the value.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <limits>
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace convbp {

// The deepest nesting of arrays and objects accepted (docs/bad_input.md). convbp's own files
// nest at most 6 deep; the limit keeps a damaged or hostile file from exhausting the stack.
inline constexpr int kMaxJsonDepth = 64;

// Why a text is not acceptable JSON: "malformed JSON: ...", "$.layers[0].c: duplicate key",
// "$.a[0][0]...: nested deeper than 64 levels". Without the file name.
class JsonInputError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Parses `text` (JsonInputError on malformed JSON, a number out of range, a duplicate key or
// nesting deeper than kMaxJsonDepth).
nlohmann::json parse_json_input(std::string_view text);

// A value for an error message: compact JSON, cut to about 60 characters; never throws.
std::string brief(const nlohmann::json& value);

// Reads and parses the JSON file at `path`; `what` names the kind of file in messages. Throws
// JsonInputError with the (printable) file name first: "NAME: a directory, not a WHAT",
// "NAME: cannot open WHAT: REASON", "NAME: malformed JSON: ...".
nlohmann::json read_json_file(const std::string& path, const std::string& what);
// The text of the file at `path`, with read_json_file's first two errors (for a file that may
// not be JSON: a suite of problem lines).
std::string read_input_file(const std::string& path, const std::string& what);

// How a reader words its messages, one way per kind of document.
enum class JsonDialect {
  // Suite configs, written by people (docs/config.md): paths from the top without a root
  // ("layers[3].stride"), and the bound a number crossed ("an integer <= 1000").
  config,
  // Reports and tuning databases, written by convbp: paths from the root "$"
  // ("$.cases[0].count"), and a number's whole range ("an integer from 1 to 2147483647").
  document,
};

// One value of a parsed document and where it sits: typed, strict access in which every failure
// is a JsonInputError "PATH: what was expected, got VALUE" (without the file name, which the
// caller adds). Numbers are never truncated or wrapped: a fraction where an integer is expected,
// or a value out of range, is an error. The reader refers to the document, which must outlive it.
class JsonReader {
 public:
  // The root of `doc` ("$" or, for configs, ""), or a value at `path` (a child's answer).
  JsonReader(const nlohmann::json& doc, JsonDialect dialect);
  JsonReader(const nlohmann::json& value, std::string path, JsonDialect dialect);

  const nlohmann::json& raw() const { return *j_; }
  const std::string& path() const { return path_; }

  [[noreturn]] void fail(const std::string& message) const;
  // fail("expected WHAT, got VALUE")
  [[noreturn]] void expected(const std::string& what) const;

  // --- objects
  bool is_null() const { return j_->is_null(); }
  // Whether the object holds `key` (the value may be null).
  bool contains(const std::string& key) const;
  // Whether the object holds `key` with a value other than null.
  bool has(const std::string& key) const;
  // The member `key`: "expected an object" unless an object, "missing key "KEY"" unless there.
  JsonReader operator[](const std::string& key) const;
  // Every key must be among `allowed`: "PATH.KEY: unknown key (allowed: a, b, ...)".
  void only_keys(const std::vector<std::string>& allowed) const;
  // only_keys(keys), and every one of them there.
  void exact_keys(const std::vector<std::string>& keys) const;

  // --- arrays
  std::size_t size() const;  // "expected an array" unless one
  JsonReader operator[](std::size_t index) const;

  // --- scalars
  std::string string() const;
  std::string non_empty_string() const;
  bool boolean() const;
  double number(double min = -std::numeric_limits<double>::infinity(),
                double max = std::numeric_limits<double>::infinity()) const;
  std::int64_t integer(std::int64_t min, std::int64_t max) const;
  std::uint64_t unsigned_integer(
      std::uint64_t max = std::numeric_limits<std::uint64_t>::max()) const;
  std::vector<double> numbers() const;
  // A UTC date and time in the one form convbp writes (utc_now() in io.h,
  // "YYYY-MM-DDTHH:MM:SSZ"): a real date (month 1-12, the month's days, February 29th in leap
  // years) and time (seconds up to 60, a leap second), and no more than a day after this
  // machine's clock, since readers compare such dates (a merge prefers the newer) and one in the
  // future would win over every later one. Fixed-width, such dates order as strings do.
  std::string utc_date() const;

 private:
  JsonReader child(const nlohmann::json& value, const std::string& step) const;
  // "an integer from 1 to 1000" or, in a config, the bound crossed: "an integer <= 1000".
  [[noreturn]] void out_of_range(const std::string& kind, const std::string& min,
                                 const std::string& max, bool above, bool has_min,
                                 bool has_max) const;

  const nlohmann::json* j_;
  std::string path_;
  JsonDialect dialect_;
};

bool is_utf8(std::string_view text);
// `text` with every byte that is not part of valid printable UTF-8 written as \xNN, for
// messages that name a path the user gave.
std::string printable(std::string_view text);

}  // namespace convbp
