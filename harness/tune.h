// `convbp tune`: a suite run in which the tuning database answers every case it already holds,
// and every newly measured case is merged into it at once (docs/tuning.md).
#pragma once

#include <functional>
#include <set>
#include <string>
#include <vector>

#include "autotuner.h"
#include "config.h"
#include "report.h"
#include "runner.h"

namespace convbp {

// `convbp tune`: run_suite with the database answering every case it already holds under this
// machine's fingerprint (nothing measured for those, not even the reference), and every newly
// finished case merged into the database at once.
struct TuneSettings {
  std::string database;  // path
  Constraints constraints;
  bool retune = false;  // measure every case again, merged into its entry (merge_entries)
};
struct TuneOutcome {
  Report report;  // best: chosen under the constraints
  int measured = 0;
  int from_database = 0;
  std::set<std::string> answered;  // "<key> <pass>" of cases the database answered
  std::vector<std::string> notes;  // stale sections, entries merged from other tuners, ...
};
// `save_report` gets the report after each finished case (complete = false) and at the end.
TuneOutcome tune_suite(const Suite& suite, RunOptions options, const TuneSettings& settings,
                       const std::function<void(const Report&)>& save_report = {});

// One row per case: the chosen implementation, its time, the margin over the runner-up,
// where it came from (database / measured), and notes (tie, constraint exclusions).
std::string tune_table(const TuneOutcome& outcome, const Constraints& constraints);

}  // namespace convbp
