// Fuzzes the readers of the peers' problem strings (harness/peer_formats.h): a suite file of
// benchdnn / MIOpenDriver lines and a --problem argument. Bad input may only throw ConfigError
// (the file) or PeerFormatError (the argument); every problem read is valid, and written back
// as a benchdnn line it reads back to the same convolution.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "fuzz.h"
#include "peer_formats.h"

namespace {

void check_round_trip(const convbp::ConvProblem& p, const std::string& name) {
  try {
    p.validate();
  } catch (const convbp::InvalidProblem& e) {
    convbp::fuzz::check(false, "a problem read from a peer's line is invalid", e.what());
  }
  const std::string line = convbp::to_benchdnn(p, convbp::Pass::weights, name);
  try {
    convbp::BenchdnnKnobs knobs;
    const auto back = convbp::parse_benchdnn_line(line, knobs);
    convbp::fuzz::check(back.size() == 1, "a written line reads back to other than one problem",
                        line);
    convbp::ConvProblem q = back[0].problem;
    convbp::fuzz::check(q.p() == p.p() && q.q() == p.q(), "a written line changes the output",
                        p.key() + " -> " + line);
    q.pad_bottom = p.pad_bottom;  // the least padding that gives the same output
    q.pad_right = p.pad_right;
    convbp::fuzz::check(q.key() == p.key(), "a written line reads back to another problem",
                        p.key() + " -> " + line + " -> " + q.key());
  } catch (const convbp::PeerFormatError& e) {
    convbp::fuzz::check(false, "a written line does not read back", line + ": " + e.what());
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  try {
    const convbp::Suite suite = convbp::parse_problem_lines(text, "fuzz.txt");
    for (const convbp::Layer& layer : suite.layers) check_round_trip(layer.problem, layer.name);
  } catch (const convbp::ConfigError&) {
  }
  try {
    const convbp::PeerProblem p = convbp::parse_problem_argument(text);
    check_round_trip(p.problem, p.name);
  } catch (const convbp::PeerFormatError&) {
  }
  return 0;
}
