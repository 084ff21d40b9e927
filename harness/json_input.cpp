#include "json_input.h"

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <set>
#include <sstream>
#include <system_error>
#include <vector>

#include "io.h"

namespace convbp {

namespace {

struct Frame {
  bool array = false;
  std::size_t index = 0;       // arrays: the element being read
  std::string key;             // objects: the member being read
  std::set<std::string> keys;  // objects: every key seen, to catch duplicates
};

std::string path_of(const std::vector<Frame>& stack) {
  std::string path = "$";
  for (std::size_t i = 0; i + 1 < stack.size(); ++i) {
    // Appending (rather than chaining operator+) keeps GCC 12's -Wrestrict false positive away.
    if (stack[i].array) {
      path += '[';
      path += std::to_string(stack[i].index);
      path += ']';
    } else {
      path += '.';
      path += stack[i].key;
    }
    if (path.size() > 80) return path + "...";
  }
  return path;
}

// A lexical pass over the text before the parser builds anything: tracks the JSON path, fails
// on nesting beyond the limit and on a key repeated within one object. Malformed text is left
// to the parser's own error.
void check_structure(std::string_view text) {
  std::vector<Frame> stack;
  bool expect_key = false;
  for (std::size_t i = 0; i < text.size(); ++i) {
    const char ch = text[i];
    if (ch == '"') {
      std::size_t end = i + 1;
      while (end < text.size() && text[end] != '"') end += text[end] == '\\' ? 2 : 1;
      if (expect_key && !stack.empty() && !stack.back().array) {
        Frame& top = stack.back();
        top.key = std::string(text.substr(i + 1, std::min(end, text.size()) - i - 1));
        if (!top.keys.insert(top.key).second) {
          stack.push_back({});  // path_of names the members of every frame but the last
          throw JsonInputError(printable(path_of(stack)) + ": duplicate key");
        }
        expect_key = false;
      }
      i = end;
    } else if (ch == '{' || ch == '[') {
      if (stack.size() >= std::size_t(kMaxJsonDepth)) {
        stack.push_back({});
        throw JsonInputError(printable(path_of(stack)) + ": nested deeper than " +
                             std::to_string(kMaxJsonDepth) + " levels (the limit for JSON input)");
      }
      stack.push_back({ch == '[', 0, "", {}});
      expect_key = ch == '{';
    } else if (ch == '}' || ch == ']') {
      if (!stack.empty()) stack.pop_back();
      expect_key = false;
    } else if (ch == ',' && !stack.empty()) {
      if (stack.back().array) {
        ++stack.back().index;
      } else {
        expect_key = true;
      }
    }
  }
}

}  // namespace

nlohmann::json parse_json_input(std::string_view text) {
  check_structure(text);
  try {
    return nlohmann::json::parse(text);
  } catch (const nlohmann::json::exception& e) {
    // parse_error, and out_of_range for a number no double holds (1e400).
    throw JsonInputError(std::string("malformed JSON: ") + e.what());
  }
}

std::string read_input_file(const std::string& path, const std::string& what) {
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) {
    throw JsonInputError(printable(path) + ": a directory, not a " + what);
  }
  try {
    return read_file(path);
  } catch (const std::system_error& e) {
    // EFBIG: opened, but larger than read_file reads.
    const char* verb = e.code().value() == EFBIG ? ": cannot read " : ": cannot open ";
    throw JsonInputError(printable(path) + verb + what + ": " + e.code().message());
  }
}

nlohmann::json read_json_file(const std::string& path, const std::string& what) {
  const std::string text = read_input_file(path, what);
  try {
    return parse_json_input(text);
  } catch (const JsonInputError& e) {
    throw JsonInputError(printable(path) + ": " + e.what());
  }
}

// --- JsonReader ------------------------------------------------------------------------------

namespace {

std::string decimal(double v) {
  std::ostringstream text;
  text << v;
  return text.str();
}

}  // namespace

JsonReader::JsonReader(const nlohmann::json& doc, JsonDialect dialect)
    : JsonReader(doc, dialect == JsonDialect::config ? "" : "$", dialect) {}

JsonReader::JsonReader(const nlohmann::json& value, std::string path, JsonDialect dialect)
    : j_(&value), path_(std::move(path)), dialect_(dialect) {}

void JsonReader::fail(const std::string& message) const {
  // A key may hold any character JSON allows, a line break included: the message stays one line.
  throw JsonInputError(path_.empty() ? message : printable(path_) + ": " + message);
}

void JsonReader::expected(const std::string& what) const {
  fail("expected " + what + ", got " + brief(*j_));
}

JsonReader JsonReader::child(const nlohmann::json& value, const std::string& step) const {
  // Appending (rather than chaining operator+) keeps GCC 12's -Wrestrict false positive away.
  std::string path = path_;
  if (!path.empty() && step.front() != '[') path += '.';
  path += step;
  return JsonReader(value, std::move(path), dialect_);
}

bool JsonReader::contains(const std::string& key) const {
  return j_->is_object() && j_->contains(key);
}

bool JsonReader::has(const std::string& key) const {
  return contains(key) && !(*j_)[key].is_null();
}

JsonReader JsonReader::operator[](const std::string& key) const {
  if (!j_->is_object()) expected("an object");
  if (!j_->contains(key)) fail("missing key \"" + key + "\"");
  return child((*j_)[key], key);
}

void JsonReader::only_keys(const std::vector<std::string>& allowed) const {
  if (!j_->is_object()) expected("an object");
  for (const auto& item : j_->items()) {
    if (std::find(allowed.begin(), allowed.end(), item.key()) != allowed.end()) continue;
    std::vector<std::string> sorted = allowed;
    std::sort(sorted.begin(), sorted.end());
    std::string list;
    for (const std::string& a : sorted) list += (list.empty() ? "" : ", ") + a;
    child(item.value(), item.key()).fail("unknown key (allowed: " + list + ")");
  }
}

void JsonReader::exact_keys(const std::vector<std::string>& keys) const {
  only_keys(keys);
  for (const std::string& key : keys) {
    if (!j_->contains(key)) fail("missing key \"" + key + "\"");
  }
}

std::size_t JsonReader::size() const {
  if (!j_->is_array()) expected("an array");
  return j_->size();
}

JsonReader JsonReader::operator[](std::size_t index) const {
  if (index >= size()) fail("missing element [" + std::to_string(index) + "]");
  std::string step = "[";
  step += std::to_string(index);
  step += ']';
  return child((*j_)[index], step);
}

std::string JsonReader::string() const {
  if (!j_->is_string()) expected("a string");
  return j_->get<std::string>();
}

std::string JsonReader::non_empty_string() const {
  if (!j_->is_string() || j_->get<std::string>().empty()) expected("a non-empty string");
  return j_->get<std::string>();
}

bool JsonReader::boolean() const {
  if (!j_->is_boolean()) expected("true or false");
  return j_->get<bool>();
}

void JsonReader::out_of_range(const std::string& kind, const std::string& min,
                              const std::string& max, bool above, bool has_min,
                              bool has_max) const {
  if (dialect_ == JsonDialect::config) {
    if (above && has_max) expected(kind + " <= " + max);
    if (has_min) expected(kind + " >= " + min);
  } else if (has_min && has_max) {
    expected(kind + " from " + min + " to " + max);
  } else if (has_min) {
    expected(kind + " >= " + min);
  }
  if (has_max) expected(kind + " <= " + max);
  expected(kind);
}

double JsonReader::number(double min, double max) const {
  const bool ok = j_->is_number() && std::isfinite(j_->get<double>());
  const bool above = ok && j_->get<double>() > max;
  if (!ok || above || j_->get<double>() < min) {
    out_of_range("a number", decimal(min), decimal(max), above, std::isfinite(min),
                 std::isfinite(max));
  }
  return j_->get<double>();
}

std::int64_t JsonReader::integer(std::int64_t min, std::int64_t max) const {
  // An unsigned value beyond 64 signed bits is above any max; a float (1e19, 5.0) is no integer.
  const bool above = (j_->is_number_unsigned() && j_->get<std::uint64_t>() > std::uint64_t(max)) ||
                     (j_->is_number_integer() && j_->get<std::int64_t>() > max);
  if (above || !j_->is_number_integer() || j_->get<std::int64_t>() < min) {
    out_of_range("an integer", std::to_string(min), std::to_string(max), above, true, true);
  }
  return j_->get<std::int64_t>();
}

std::uint64_t JsonReader::unsigned_integer(std::uint64_t max) const {
  const bool negative =
      j_->is_number_integer() && !j_->is_number_unsigned() && j_->get<std::int64_t>() < 0;
  const bool above = j_->is_number_integer() && !negative && j_->get<std::uint64_t>() > max;
  if (!j_->is_number_integer() || negative || above) {
    out_of_range("an integer", "0", std::to_string(max), above, true,
                 max != std::numeric_limits<std::uint64_t>::max());
  }
  return j_->get<std::uint64_t>();
}

std::vector<double> JsonReader::numbers() const {
  std::vector<double> out;
  for (std::size_t i = 0; i < size(); ++i) out.push_back((*this)[i].number());
  return out;
}

std::string JsonReader::utc_date() const {
  const std::string text = string();
  static const char kForm[] = "dddd-dd-ddTdd:dd:ddZ";  // d: a digit
  bool form = text.size() == sizeof kForm - 1;
  for (std::size_t i = 0; form && i < text.size(); ++i) {
    form = kForm[i] == 'd' ? text[i] >= '0' && text[i] <= '9' : text[i] == kForm[i];
  }
  if (!form) expected("a UTC date and time as convbp writes it, \"YYYY-MM-DDTHH:MM:SSZ\"");
  auto field = [&](std::size_t at, std::size_t length) {
    return std::stoi(text.substr(at, length));
  };
  std::tm tm{};
  tm.tm_year = field(0, 4) - 1900;
  tm.tm_mon = field(5, 2) - 1;
  tm.tm_mday = field(8, 2);
  tm.tm_hour = field(11, 2);
  tm.tm_min = field(14, 2);
  tm.tm_sec = field(17, 2);
  const int year = tm.tm_year + 1900;
  const bool leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
  const int days[] = {31, leap ? 29 : 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  if (tm.tm_mon < 0 || tm.tm_mon > 11 || tm.tm_mday < 1 || tm.tm_mday > days[tm.tm_mon] ||
      tm.tm_hour > 23 || tm.tm_min > 59 || tm.tm_sec > 60) {
    expected("a real UTC date and time, \"YYYY-MM-DDTHH:MM:SSZ\"");
  }
  return text;
}

std::string brief(const nlohmann::json& value) {
  std::string text = value.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  if (text.size() > 60) text = text.substr(0, 57) + "...";
  return text;
}

namespace {

// Length of the valid UTF-8 sequence starting at text[i], or 0.
std::size_t utf8_length(std::string_view text, std::size_t i) {
  const auto byte = [&](std::size_t k) { return static_cast<unsigned char>(text[k]); };
  const unsigned char b = byte(i);
  std::size_t length = 0;
  std::uint32_t code = 0;
  if (b < 0x80) return 1;
  if ((b & 0xE0) == 0xC0) {
    length = 2, code = b & 0x1F;
  } else if ((b & 0xF0) == 0xE0) {
    length = 3, code = b & 0x0F;
  } else if ((b & 0xF8) == 0xF0) {
    length = 4, code = b & 0x07;
  } else {
    return 0;
  }
  if (i + length > text.size()) return 0;
  for (std::size_t k = 1; k < length; ++k) {
    if ((byte(i + k) & 0xC0) != 0x80) return 0;
    code = (code << 6) | (byte(i + k) & 0x3F);
  }
  // Overlong forms, surrogates and code points beyond Unicode are not UTF-8.
  const std::uint32_t least[] = {0, 0, 0x80, 0x800, 0x10000};
  if (code < least[length] || code > 0x10FFFF || (code >= 0xD800 && code <= 0xDFFF)) return 0;
  return length;
}

}  // namespace

bool is_utf8(std::string_view text) {
  for (std::size_t i = 0; i < text.size();) {
    const std::size_t length = utf8_length(text, i);
    if (length == 0) return false;
    i += length;
  }
  return true;
}

std::string printable(std::string_view text) {
  std::string out;
  for (std::size_t i = 0; i < text.size();) {
    const std::size_t length = utf8_length(text, i);
    if (length == 0 || (length == 1 && static_cast<unsigned char>(text[i]) < 0x20)) {
      char hex[8];
      std::snprintf(hex, sizeof hex, "\\x%02X", static_cast<unsigned char>(text[i]));
      out += hex;
      ++i;
    } else {
      out.append(text.substr(i, length));
      i += length;
    }
  }
  return out;
}

}  // namespace convbp
