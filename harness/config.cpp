#include "config.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include "json_input.h"

namespace convbp {

extern const char* const kDefaultSuiteJson;  // generated from configs/default.json

namespace {

using nlohmann::json;

class Reader {
 public:
  explicit Reader(std::string file) : file_(std::move(file)) {}

  [[noreturn]] void fail(const std::string& path, const std::string& message) const {
    throw ConfigError(file_ + ": " + (path.empty() ? "" : path + ": ") + message);
  }
  [[noreturn]] void expected(const std::string& path, const std::string& what,
                             const json& got) const {
    fail(path, "expected " + what + ", got " + brief(got));
  }

  void only_keys(const json& object, const std::string& path,
                 const std::set<std::string>& allowed) const {
    for (const auto& [key, value] : object.items()) {
      if (!allowed.count(key)) {
        std::string list;
        for (const auto& a : allowed) list += (list.empty() ? "" : ", ") + a;
        fail(join(path, key), "unknown key (allowed: " + list + ")");
      }
    }
  }

  // An integer in [min, max]: a fraction, a string or a value out of range (an unsigned one
  // too large for 64 signed bits included) is an error, never truncated.
  std::int64_t integer(const json& v, const std::string& path, std::int64_t min,
                       std::int64_t max) const {
    if (v.is_number_unsigned() && v.get<std::uint64_t>() > std::uint64_t(max)) {
      expected(path, "an integer <= " + std::to_string(max), v);
    }
    if (!v.is_number_integer() || v.get<std::int64_t>() < min) {
      expected(path, "an integer >= " + std::to_string(min), v);
    }
    if (v.get<std::int64_t>() > max) expected(path, "an integer <= " + std::to_string(max), v);
    return v.get<std::int64_t>();
  }

  double number(const json& v, const std::string& path, double min, double max) const {
    if (!v.is_number() || v.get<double>() < min) {
      expected(path, "a number >= " + decimal(min), v);
    }
    if (v.get<double>() > max) expected(path, "a number <= " + decimal(max), v);
    return v.get<double>();
  }

  static std::string decimal(double v) {
    std::ostringstream text;
    text << v;
    return text.str();
  }

  std::string string(const json& v, const std::string& path) const {
    if (!v.is_string() || v.get<std::string>().empty()) expected(path, "a non-empty string", v);
    return v.get<std::string>();
  }

  // An int, or an array of exactly one of the `lengths` sizes, each element an int >= min.
  std::vector<std::int64_t> int_or_array(const json& v, const std::string& path, std::int64_t min,
                                         const std::string& what,
                                         std::initializer_list<std::size_t> lengths) const {
    if (v.is_number_integer()) return {integer(v, path, min, kMaxDim)};
    bool length_ok = false;
    for (std::size_t l : lengths) length_ok |= v.is_array() && v.size() == l;
    if (!length_ok) expected(path, what, v);
    std::vector<std::int64_t> out;
    for (std::size_t i = 0; i < v.size(); ++i) {
      out.push_back(integer(v[i], path + "[" + std::to_string(i) + "]", min, kMaxDim));
    }
    return out;
  }

  static std::string join(const std::string& path, const std::string& key) {
    return path.empty() ? key : path + "." + key;
  }

  const std::string& file() const { return file_; }

 private:
  std::string file_;
};

const std::set<std::string> kShapeKeys = {"n", "c",      "h",   "w",        "k",      "r",
                                          "s", "stride", "pad", "dilation", "groups", "count"};

Layer parse_layer(const Reader& rd, const json& defaults, const json& entry,
                  const std::string& path) {
  if (!entry.is_object()) rd.expected(path, "an object describing a layer", entry);
  std::set<std::string> allowed = kShapeKeys;
  allowed.insert("name");
  rd.only_keys(entry, path, allowed);

  // A key given in the layer wins over the suite defaults; errors name where the value came from.
  auto lookup = [&](const std::string& key, std::string* where) -> const json* {
    if (entry.contains(key)) {
      *where = path + "." + key;
      return &entry[key];
    }
    if (defaults.contains(key)) {
      *where = "defaults." + key;
      return &defaults[key];
    }
    return nullptr;
  };
  auto required_int = [&](const std::string& key, const std::string& fallback_key) {
    std::string where;
    const json* v = lookup(key, &where);
    if (!v && !fallback_key.empty()) v = lookup(fallback_key, &where);
    if (!v) rd.fail(path, "missing required key \"" + key + "\"");
    return rd.integer(*v, where, 1, kMaxDim);
  };
  auto optional_int = [&](const std::string& key, std::int64_t fallback, std::int64_t min,
                          std::int64_t max) {
    std::string where;
    const json* v = lookup(key, &where);
    return v ? rd.integer(*v, where, min, max) : fallback;
  };

  Layer layer;
  layer.name = entry.contains("name") ? rd.string(entry["name"], path + ".name") : path;
  ConvProblem& pr = layer.problem;
  pr.n = optional_int("n", 1, 1, kMaxDim);
  pr.c = required_int("c", "");
  pr.h = required_int("h", "");
  pr.w = required_int("w", "h");  // square unless told
  pr.k = required_int("k", "");
  pr.r = required_int("r", "");
  pr.s = required_int("s", "r");
  pr.groups = optional_int("groups", 1, 1, kMaxDim);
  layer.count = int(optional_int("count", 1, 1, kMaxCount));

  std::string where;
  if (const json* v = lookup("stride", &where)) {
    auto st = rd.int_or_array(*v, where, 1, "an integer >= 1 or [h, w]", {2});
    pr.stride_h = st[0];
    pr.stride_w = st.size() == 2 ? st[1] : st[0];
  }
  if (const json* v = lookup("dilation", &where)) {
    auto dil = rd.int_or_array(*v, where, 1, "an integer >= 1 (1 = none) or [h, w]", {2});
    pr.dilation_h = dil[0];
    pr.dilation_w = dil.size() == 2 ? dil[1] : dil[0];
  }
  if (const json* v = lookup("pad", &where)) {
    auto pad = rd.int_or_array(*v, where, 0,
                               "an integer >= 0, [h, w] or [top, left, bottom, right]", {2, 4});
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
    rd.fail(path, std::string("impossible shape: ") + e.what());
  }
  return layer;
}

}  // namespace

Suite parse_suite(const json& doc, const std::string& file) {
  Reader rd(file);
  if (!doc.is_object()) rd.expected("", "a JSON object with \"suite\" and \"layers\"", doc);
  rd.only_keys(doc, "",
               {"schema", "suite", "source", "defaults", "passes", "dtypes", "layouts", "impls",
                "timing", "layers"});
  Suite suite;
  suite.file = file;
  if (doc.contains("schema") && doc["schema"] != "convbp.config/1") {
    rd.expected("schema", "\"convbp.config/1\"", doc["schema"]);
  }
  if (!doc.contains("suite")) rd.fail("", "missing required key \"suite\"");
  suite.name = rd.string(doc["suite"], "suite");
  if (doc.contains("source")) suite.source = rd.string(doc["source"], "source");

  json defaults = json::object();
  if (doc.contains("defaults")) {
    defaults = doc["defaults"];
    if (!defaults.is_object()) rd.expected("defaults", "an object of layer fields", defaults);
    rd.only_keys(defaults, "defaults", kShapeKeys);
  }
  if (doc.contains("passes")) {
    const json& v = doc["passes"];
    if (!v.is_array() || v.empty()) rd.expected("passes", "a non-empty array", v);
    suite.passes.clear();
    for (std::size_t i = 0; i < v.size(); ++i) {
      const std::string path = "passes[" + std::to_string(i) + "]";
      auto pass = v[i].is_string() ? parse_pass(v[i].get<std::string>()) : std::nullopt;
      if (!pass) rd.expected(path, "\"data\" or \"weights\"", v[i]);
      suite.passes.push_back(*pass);
    }
  }
  // "dtypes" and "layouts": non-empty lists of distinct names.
  auto name_list = [&](const char* key, const char* expected, auto parse, auto& out) {
    if (!doc.contains(key)) return;
    const json& v = doc[key];
    if (!v.is_array() || v.empty()) rd.expected(key, "a non-empty array", v);
    out.clear();
    for (std::size_t i = 0; i < v.size(); ++i) {
      const std::string path = std::string(key) + "[" + std::to_string(i) + "]";
      auto value = v[i].is_string() ? parse(v[i].template get<std::string>()) : std::nullopt;
      if (!value) rd.expected(path, expected, v[i]);
      if (std::find(out.begin(), out.end(), *value) != out.end()) {
        rd.expected(path, "a value not listed before", v[i]);
      }
      out.push_back(*value);
    }
  };
  name_list("dtypes", "\"f32\", \"bf16\" or \"f16\"", parse_dtype, suite.dtypes);
  name_list("layouts", "\"nchw\" or \"nhwc\"", parse_layout, suite.layouts);
  if (doc.contains("impls")) {
    const json& v = doc["impls"];
    if (!v.is_array() || v.empty()) rd.expected("impls", "a non-empty array of name patterns", v);
    suite.impls.clear();
    for (std::size_t i = 0; i < v.size(); ++i) {
      suite.impls.push_back(rd.string(v[i], "impls[" + std::to_string(i) + "]"));
    }
  }
  if (doc.contains("timing")) {
    const json& t = doc["timing"];
    if (!t.is_object()) rd.expected("timing", "an object", t);
    rd.only_keys(t, "timing", {"warmup", "reps", "max_seconds_per_case", "min_rep_seconds"});
    if (t.contains("warmup"))
      suite.timing.warmup = int(rd.integer(t["warmup"], "timing.warmup", 0, kMaxWarmup));
    if (t.contains("reps"))
      suite.timing.reps = int(rd.integer(t["reps"], "timing.reps", 1, kMaxReps));
    if (t.contains("max_seconds_per_case")) {
      suite.timing.max_seconds_per_case =
          rd.number(t["max_seconds_per_case"], "timing.max_seconds_per_case", kMinSecondsPerCase,
                    kMaxSecondsPerCase);
    }
    if (t.contains("min_rep_seconds")) {
      suite.timing.min_rep_seconds =
          rd.number(t["min_rep_seconds"], "timing.min_rep_seconds", 0, kMaxMinRepSeconds);
    }
  }
  if (!doc.contains("layers")) rd.fail("", "missing required key \"layers\"");
  const json& layers = doc["layers"];
  if (!layers.is_array() || layers.empty()) rd.expected("layers", "a non-empty array", layers);
  std::set<std::string> names;
  for (std::size_t i = 0; i < layers.size(); ++i) {
    const std::string path = "layers[" + std::to_string(i) + "]";
    suite.layers.push_back(parse_layer(rd, defaults, layers[i], path));
    if (!names.insert(suite.layers.back().name).second) {
      rd.fail(path + ".name", "duplicate layer name \"" + suite.layers.back().name + "\"");
    }
  }
  return suite;
}

Suite load_suite(const std::string& path) {
  namespace fs = std::filesystem;
  const std::string name = printable(path);
  // Reports record the config's path in JSON, which must be UTF-8: refuse before measuring.
  if (!is_utf8(path)) {
    throw ConfigError(name + ": the path is not valid UTF-8 (reports record it in JSON)");
  }
  std::error_code ec;
  if (fs::is_directory(path, ec)) throw ConfigError(name + ": a directory, not a config file");
  std::ifstream in(path);
  if (!in) throw ConfigError(name + ": cannot open config file");
  std::stringstream text;
  text << in.rdbuf();
  json doc;
  try {
    doc = parse_json_input(text.str());
  } catch (const JsonInputError& e) {
    throw ConfigError(name + ": " + e.what());
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
