// Suite configs (schema convbp.config/1, docs/config.md): layer shapes plus run settings.
#pragma once

#include <nlohmann/json.hpp>
#include <stdexcept>
#include <string>
#include <vector>

#include "problem.h"

namespace convbp {

// A config that cannot be used. The message names the file, the JSON path and what was
// expected: "configs/x.json: layers[3].stride: expected an integer >= 1 or [h, w], got "a"".
class ConfigError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// The accepted range of every numeric setting (docs/config.md; the command line's options use
// the same ones). Shape fields range up to kMaxDim (problem.h).
inline constexpr int kMaxWarmup = 1000;
inline constexpr int kMaxReps = 1000;
inline constexpr int kMaxCount = 1000000;
inline constexpr double kMinSecondsPerCase = 0.001, kMaxSecondsPerCase = 86400;
inline constexpr double kMaxMinRepSeconds = 60;

struct TimingSettings {
  int warmup = 1;                   // untimed runs before timing
  int reps = 5;                     // timed repetitions; the median is the figure
  double max_seconds_per_case = 3;  // timing budget per result; a single run over it = timeout
  double min_rep_seconds = 0.02;    // fast cases loop inside a repetition until this long
};

struct Layer {
  std::string name;
  ConvProblem problem;
  int count = 1;  // occurrences in the network; a network total weights the layer's time by it
  // The passes to run; empty = the suite's. Set by problem-line suites whose lines state
  // different passes (benchdnn --dir, MIOpenDriver -F; peer_formats.h).
  std::vector<Pass> passes = {};
  // Whether the problem's dtype and layout are the layer's own rather than the suite's dtypes
  // and layouts: set by problem-line suites (benchdnn --dt, --stag/--dtag), whose every line
  // states one.
  bool own_types = false;
};

struct Suite {
  std::string name;
  std::string source;  // where the shapes come from (an object `source` in one line)
  std::string file;    // path it was loaded from, or "<built-in default>"
  std::vector<Pass> passes{Pass::data, Pass::weights};
  // Every layer runs in each of these dtypes and layouts (docs/config.md).
  std::vector<DType> dtypes{DType::f32};
  std::vector<Layout> layouts{Layout::nchw};
  std::vector<std::string> impls{"*"};  // glob patterns over implementation names
  TimingSettings timing;
  std::vector<Layer> layers;
};

// Parses a suite document; `file` only labels error messages.
Suite parse_suite(const nlohmann::json& doc, const std::string& file);
// Reads and parses a file (ConfigError on a missing file or malformed JSON).
Suite load_suite(const std::string& path);
// Resolves a suite argument: an existing path, or a name under configs/ ("resnet50").
Suite load_suite_argument(const std::string& argument);
// The built-in default suite (configs/default.json, compiled in).
Suite default_suite();

// Shell-style glob over implementation names: '*' any run, '?' one character.
bool glob_match(std::string_view pattern, std::string_view name);

}  // namespace convbp
