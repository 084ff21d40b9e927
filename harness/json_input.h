// Reading convbp's JSON files (suite configs, reports, tuning databases) without trusting them:
// nesting is bounded before any recursive code (nlohmann::json's dump, comparison) sees the
// document, duplicate keys are errors rather than silently dropped, and every failure is one
// line that the caller prefixes with the file name.
#pragma once

#include <nlohmann/json.hpp>
#include <stdexcept>
#include <string>
#include <string_view>

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

bool is_utf8(std::string_view text);
// `text` with every byte that is not part of valid printable UTF-8 written as \xNN, for
// messages that name a path the user gave.
std::string printable(std::string_view text);

}  // namespace convbp
