// Fuzzes the report reader (read_report: what `convbp show` reads). Bad input may only throw
// std::runtime_error (a message naming the JSON path); a report that reads writes back to JSON
// that reads again to the same report.
#include <cstddef>
#include <cstdint>
#include <stdexcept>

#include "fuzz.h"
#include "report.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string path = convbp::fuzz::as_file(data, size);
  convbp::Report report;
  try {
    report = convbp::read_report(path);
  } catch (const std::runtime_error&) {
    return 0;
  }
  const nlohmann::json once = convbp::to_json(report);
  try {
    const nlohmann::json twice = convbp::to_json(convbp::report_from_json(once));
    convbp::fuzz::check(once == twice, "the report does not round-trip", once.dump());
  } catch (const std::runtime_error& e) {
    convbp::fuzz::check(false, "a report that read cannot read its own JSON", e.what());
  }
  // The tables a user sees must render too.
  convbp::winners_table(report, {"im2col_gemm.per_sample"});
  convbp::results_table(report);
  return 0;
}
