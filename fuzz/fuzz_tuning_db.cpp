// Fuzzes the tuning-database reader (read_tuning_db: what `convbp tune --db` and every
// Autotuner read). Bad input may only throw TuningError; a database that reads writes back to
// JSON that reads again to the same database.
#include <cstddef>
#include <cstdint>

#include "fuzz.h"
#include "tuning.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string path = convbp::fuzz::as_file(data, size);
  convbp::TuningDb db;
  try {
    db = convbp::read_tuning_db(path);
  } catch (const convbp::TuningError&) {
    return 0;
  }
  const nlohmann::json once = convbp::to_json(db);
  try {
    const nlohmann::json twice = convbp::to_json(convbp::tuning_db_from_json(once, path));
    convbp::fuzz::check(once == twice, "the database does not round-trip", once.dump());
  } catch (const convbp::TuningError& e) {
    convbp::fuzz::check(false, "a database that read cannot read its own JSON", e.what());
  }
  return 0;
}
