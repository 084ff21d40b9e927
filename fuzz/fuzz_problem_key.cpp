// Fuzzes ConvProblem::parse_key, the parser behind --problem and every key in reports and
// tuning databases. Bad input may only throw InvalidProblem; a key that parses is a valid
// problem whose canonical key parses back to the same problem.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "fuzz.h"
#include "problem.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  convbp::ConvProblem p;
  try {
    p = convbp::ConvProblem::parse_key(text);
  } catch (const convbp::InvalidProblem&) {
    return 0;
  }
  const std::string key = p.key();
  try {
    p.validate();
    convbp::fuzz::check(convbp::ConvProblem::parse_key(key).key() == key,
                        "the canonical key does not parse back to itself", key);
  } catch (const convbp::InvalidProblem& e) {
    convbp::fuzz::check(false, "an accepted key is not a valid problem",
                        std::string(text) + " -> " + e.what());
  }
  return 0;
}
