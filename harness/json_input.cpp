#include "json_input.h"

#include <cstdio>
#include <set>
#include <vector>

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
