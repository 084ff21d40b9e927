#include "config.h"

#include <algorithm>
#include <filesystem>
#include <optional>
#include <set>

#include "json_input.h"
#include "peer_formats.h"

namespace convbp {

extern const char* const kDefaultSuiteJson;  // generated from configs/default.json

namespace {

using nlohmann::json;

const std::vector<std::string> kShapeKeys = {"n", "c",      "h",   "w",        "k",      "r",
                                             "s", "stride", "pad", "dilation", "groups", "count"};

// An int, or an array of exactly one of the `lengths` sizes, each element an int >= min.
std::vector<std::int64_t> int_or_array(const JsonReader& v, std::int64_t min,
                                       const std::string& what,
                                       std::initializer_list<std::size_t> lengths) {
  if (v.raw().is_number_integer()) return {v.integer(min, kMaxDim)};
  bool length_ok = false;
  for (std::size_t l : lengths) length_ok |= v.raw().is_array() && v.raw().size() == l;
  if (!length_ok) v.expected(what);
  std::vector<std::int64_t> out;
  for (std::size_t i = 0; i < v.size(); ++i) out.push_back(v[i].integer(min, kMaxDim));
  return out;
}

// One shape key's value, read with its range and forms (docs/config.md): an integer, or for
// stride, dilation and pad an integer or an array. The same for a layer's keys and the defaults.
std::vector<std::int64_t> read_shape_field(const std::string& key, const JsonReader& v) {
  if (key == "stride") return int_or_array(v, 1, "an integer >= 1 or [h, w]", {2});
  if (key == "dilation") return int_or_array(v, 1, "an integer >= 1 (1 = none) or [h, w]", {2});
  if (key == "pad") {
    return int_or_array(v, 0, "an integer >= 0, [h, w] or [top, left, bottom, right]", {2, 4});
  }
  if (key == "count") return {v.integer(1, kMaxCount)};
  return {v.integer(1, kMaxDim)};
}

Layer parse_layer(const JsonReader& defaults, const JsonReader& entry) {
  if (!entry.raw().is_object()) entry.expected("an object describing a layer");
  std::vector<std::string> allowed = kShapeKeys;
  allowed.push_back("name");
  entry.only_keys(allowed);

  // A key given in the layer wins over the suite defaults; errors name where the value came from.
  auto lookup = [&](const std::string& key) -> std::optional<JsonReader> {
    if (entry.contains(key)) return entry[key];
    if (defaults.contains(key)) return defaults[key];
    return std::nullopt;
  };
  auto required_int = [&](const std::string& key, const std::string& fallback_key) {
    std::optional<JsonReader> v = lookup(key);
    if (!v && !fallback_key.empty()) v = lookup(fallback_key);
    if (!v) entry.fail("missing required key \"" + key + "\"");
    return read_shape_field(key, *v)[0];
  };
  auto optional_int = [&](const std::string& key, std::int64_t fallback) {
    const std::optional<JsonReader> v = lookup(key);
    return v ? read_shape_field(key, *v)[0] : fallback;
  };

  Layer layer;
  layer.name = entry.contains("name") ? entry["name"].non_empty_string() : entry.path();
  ConvProblem& pr = layer.problem;
  pr.n = optional_int("n", 1);
  pr.c = required_int("c", "");
  pr.h = required_int("h", "");
  pr.w = required_int("w", "h");  // square unless told
  pr.k = required_int("k", "");
  pr.r = required_int("r", "");
  pr.s = required_int("s", "r");
  pr.groups = optional_int("groups", 1);
  layer.count = int(optional_int("count", 1));

  if (const auto v = lookup("stride")) {
    auto st = read_shape_field("stride", *v);
    pr.stride_h = st[0];
    pr.stride_w = st.size() == 2 ? st[1] : st[0];
  }
  if (const auto v = lookup("dilation")) {
    auto dil = read_shape_field("dilation", *v);
    pr.dilation_h = dil[0];
    pr.dilation_w = dil.size() == 2 ? dil[1] : dil[0];
  }
  if (const auto v = lookup("pad")) {
    auto pad = read_shape_field("pad", *v);
    if (pad.size() == 1) pad = {pad[0], pad[0], pad[0], pad[0]};
    if (pad.size() == 2) pad = {pad[0], pad[1], pad[0], pad[1]};
    pr.pad_top = pad[0];
    pr.pad_left = pad[1];
    pr.pad_bottom = pad[2];
    pr.pad_right = pad[3];
  }
  try {
    pr.validate();
  } catch (const InvalidProblem& e) {
    entry.fail(std::string("impossible shape: ") + e.what());
  }
  return layer;
}

// `source`: a string, or an object saying how a tool made the suite (scripts/suite_from_torch.py:
// the model, the library versions, the command), which reports carry as one line.
std::string read_source(const JsonReader& v) {
  if (!v.raw().is_object()) {
    if (!v.raw().is_string()) v.expected("a non-empty string or an object");
    return v.non_empty_string();
  }
  v.only_keys({"model", "versions", "command", "input", "notes"});
  for (const char* key : {"model", "command"}) {
    if (!v.contains(key)) v.fail(std::string("missing required key \"") + key + "\"");
  }
  std::string text = v["model"].non_empty_string();
  if (v.contains("versions")) {
    const JsonReader versions = v["versions"];
    if (!versions.raw().is_object()) versions.expected("an object of library versions");
    for (const auto& [library, version] : versions.raw().items()) {
      text += ", " + library + " " + versions[library].non_empty_string();
    }
  }
  if (v.contains("input")) text += "; input " + v["input"].non_empty_string();
  if (v.contains("notes")) text += "; " + v["notes"].non_empty_string();
  return text + "; made by " + v["command"].non_empty_string();
}

Suite read_suite(const JsonReader& doc) {
  if (!doc.raw().is_object()) doc.expected("a JSON object with \"suite\" and \"layers\"");
  doc.only_keys({"schema", "suite", "source", "defaults", "passes", "dtypes", "layouts", "impls",
                 "timing", "layers"});
  Suite suite;
  if (doc.contains("schema") && doc.raw()["schema"] != "convbp.config/1") {
    doc["schema"].expected("\"convbp.config/1\"");
  }
  if (!doc.contains("suite")) doc.fail("missing required key \"suite\"");
  suite.name = doc["suite"].non_empty_string();
  if (doc.contains("source")) suite.source = read_source(doc["source"]);

  static const json kNoDefaults = json::object();
  JsonReader defaults(kNoDefaults, "defaults", JsonDialect::config);
  if (doc.contains("defaults")) {
    defaults = doc["defaults"];
    if (!defaults.raw().is_object()) defaults.expected("an object of layer fields");
    defaults.only_keys(kShapeKeys);
    // Every default, whether or not a layer uses it: a bad one is an error where it is written.
    for (const auto& item : defaults.raw().items())
      read_shape_field(item.key(), defaults[item.key()]);
  }
  // "passes", "dtypes" and "layouts": non-empty lists of distinct names (a name twice would run
  // every case twice and count it twice in the totals).
  auto name_list = [&](const char* key, const char* expected, auto parse, auto& out) {
    if (!doc.contains(key)) return;
    const JsonReader v = doc[key];
    if (!v.raw().is_array() || v.raw().empty()) v.expected("a non-empty array");
    out.clear();
    for (std::size_t i = 0; i < v.size(); ++i) {
      auto value = v[i].raw().is_string() ? parse(v[i].string()) : std::nullopt;
      if (!value) v[i].expected(expected);
      if (std::find(out.begin(), out.end(), *value) != out.end()) {
        v[i].expected("a value not listed before");
      }
      out.push_back(*value);
    }
  };
  name_list("passes", "\"data\" or \"weights\"", parse_pass, suite.passes);
  name_list("dtypes", "\"f32\", \"bf16\" or \"f16\"", parse_dtype, suite.dtypes);
  name_list("layouts", "\"nchw\" or \"nhwc\"", parse_layout, suite.layouts);
  if (doc.contains("impls")) {
    const JsonReader v = doc["impls"];
    if (!v.raw().is_array() || v.raw().empty()) v.expected("a non-empty array of name patterns");
    suite.impls.clear();
    for (std::size_t i = 0; i < v.size(); ++i) {
      const std::string pattern = v[i].non_empty_string();
      if (std::find(suite.impls.begin(), suite.impls.end(), pattern) != suite.impls.end()) {
        v[i].expected("a pattern not listed before");
      }
      suite.impls.push_back(pattern);
    }
  }
  if (doc.contains("timing")) {
    const JsonReader t = doc["timing"];
    if (!t.raw().is_object()) t.expected("an object");
    t.only_keys({"warmup", "reps", "max_seconds_per_case", "min_rep_seconds"});
    TimingSettings& timing = suite.timing;
    if (t.contains("warmup")) timing.warmup = int(t["warmup"].integer(0, kMaxWarmup));
    if (t.contains("reps")) timing.reps = int(t["reps"].integer(1, kMaxReps));
    if (t.contains("max_seconds_per_case")) {
      timing.max_seconds_per_case =
          t["max_seconds_per_case"].number(kMinSecondsPerCase, kMaxSecondsPerCase);
    }
    if (t.contains("min_rep_seconds")) {
      timing.min_rep_seconds = t["min_rep_seconds"].number(0, kMaxMinRepSeconds);
    }
  }
  if (!doc.contains("layers")) doc.fail("missing required key \"layers\"");
  const JsonReader layers = doc["layers"];
  if (!layers.raw().is_array() || layers.raw().empty()) layers.expected("a non-empty array");
  std::set<std::string> names;
  for (std::size_t i = 0; i < layers.size(); ++i) {
    suite.layers.push_back(parse_layer(defaults, layers[i]));
    if (!names.insert(suite.layers.back().name).second) {
      JsonReader(layers[i].raw(), layers[i].path() + ".name", JsonDialect::config)
          .fail("duplicate layer name \"" + suite.layers.back().name + "\"");
    }
  }
  return suite;
}

}  // namespace

Suite parse_suite(const json& doc, const std::string& file) {
  try {
    Suite suite = read_suite(JsonReader(doc, JsonDialect::config));
    suite.file = file;
    return suite;
  } catch (const JsonInputError& e) {
    throw ConfigError(file + ": " + e.what());
  }
}

Suite load_suite(const std::string& path) {
  // Reports record the config's path in JSON, which must be UTF-8: refuse before measuring.
  if (!is_utf8(path)) {
    throw ConfigError(printable(path) +
                      ": the path is not valid UTF-8 (reports record it in JSON)");
  }
  std::string text;
  try {
    text = read_input_file(path, "config file");
  } catch (const JsonInputError& e) {
    throw ConfigError(e.what());
  }
  // Not JSON (which starts with '{'): lines of benchdnn or MIOpenDriver problems.
  if (is_problem_lines(text)) return parse_problem_lines(text, path);
  json doc;
  try {
    doc = parse_json_input(text);
  } catch (const JsonInputError& e) {
    throw ConfigError(printable(path) + ": " + e.what());
  }
  return parse_suite(doc, path);
}

Suite load_suite_argument(const std::string& argument) {
  namespace fs = std::filesystem;
  // The error_code forms: a name too long or a folder we may not search is "no such file",
  // with the reason, rather than an exception.
  std::error_code ec;
  if (fs::exists(argument, ec)) return load_suite(argument);
  const std::string reason =
      ec && ec != std::errc::no_such_file_or_directory ? " (" + ec.message() + ")" : "";
  // A bare name: look in ./configs, then in the source tree this binary was built from.
  if (argument.find('/') == std::string::npos) {
    for (const fs::path& dir : {fs::path("configs"), fs::path(CONVBP_SOURCE_DIR) / "configs"}) {
      const fs::path candidate = dir / (argument + ".json");
      std::error_code ignored;
      if (fs::exists(candidate, ignored)) return load_suite(candidate.string());
    }
  }
  throw ConfigError(printable(argument) + ": no such config file" + reason +
                    " (nor a suite of that name in configs/)");
}

Suite default_suite() {
  return parse_suite(parse_json_input(kDefaultSuiteJson),
                     "<built-in default: configs/default.json>");
}

bool glob_match(std::string_view pattern, std::string_view name) {
  // Iterative matcher with backtracking to the last '*'.
  std::size_t p = 0, n = 0, star = std::string_view::npos, mark = 0;
  while (n < name.size()) {
    if (p < pattern.size() && (pattern[p] == '?' || pattern[p] == name[n])) {
      ++p, ++n;
    } else if (p < pattern.size() && pattern[p] == '*') {
      star = p++;
      mark = n;
    } else if (star != std::string_view::npos) {
      p = star + 1;
      n = ++mark;
    } else {
      return false;
    }
  }
  while (p < pattern.size() && pattern[p] == '*') ++p;
  return p == pattern.size();
}

}  // namespace convbp
