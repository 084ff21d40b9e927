// Fuzzes the suite-config reader (load_suite: the file behind `convbp run FILE`). Bad input may
// only throw ConfigError; a suite that loads holds valid problems.
#include <cstddef>
#include <cstdint>

#include "config.h"
#include "fuzz.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string path = convbp::fuzz::as_file(data, size);
  convbp::Suite suite;
  try {
    suite = convbp::load_suite(path);
  } catch (const convbp::ConfigError&) {
    return 0;
  }
  for (const convbp::Layer& layer : suite.layers) {
    try {
      layer.problem.validate();
    } catch (const convbp::InvalidProblem& e) {
      convbp::fuzz::check(false, "a loaded suite holds an invalid problem", e.what());
    }
    convbp::fuzz::check(layer.count >= 1, "a layer count below 1", layer.name);
  }
  return 0;
}
