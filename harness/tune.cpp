#include "tune.h"

#include <algorithm>
#include <cstdio>

#include "context.h"
#include "io.h"
#include "selection.h"
#include "table.h"
#include "tuning.h"

namespace convbp {

using nlohmann::json;

namespace {

std::string entry_id(const ConvProblem& problem, Pass pass) {
  return problem.key() + " " + to_string(pass);
}

}  // namespace

TuneOutcome tune_suite(const Suite& suite, RunOptions options, const TuneSettings& settings,
                       const std::function<void(const Report&)>& save_report) {
  TuneOutcome out;
  const json fingerprint = machine_fingerprint(threads());
  // The version kept is always that of the content in `db` (read from the same descriptor, or
  // written under the lock): a newer one on disk means another tuner wrote.
  FileVersion version;
  TuningDb db = read_tuning_db(settings.database, &version);  // a bad file stops us here
  if (!db.section(fingerprint)) {
    for (const TuningSection& s : db.sections) {
      out.notes.push_back(
          std::to_string(s.entries.size()) + " entries were tuned under another fingerprint (" +
          fingerprint_difference(s.fingerprint, fingerprint) + "): kept in the database, not used");
    }
  }

  std::vector<bool> answered_flags;  // per case, in run order: whether the database answered
  std::set<std::string> measured_now;
  int merged_from_others = 0;
  options.lookup = [&](const CaseSpec& spec,
                       const std::vector<const Backward*>& impls) -> std::optional<Case> {
    answered_flags.push_back(false);
    const std::string id = entry_id(spec.problem, spec.pass);
    if (settings.retune && !measured_now.count(id)) return std::nullopt;
    if (file_version(settings.database) != version) {
      db = read_tuning_db(settings.database, &version);  // another tuner wrote: use its entries
    }
    const TuningEntry* e = db.find(fingerprint, spec.problem, spec.pass);
    if (!e) return std::nullopt;
    const std::vector<Asked> names = asked_of_entry(*e, impls);
    if (auto missing = missing_candidate(*e, names)) {
      out.notes.push_back(spec.name + " " + to_string(spec.pass) + ": the entry did not try " +
                          *missing + ": tuned again");
      return std::nullopt;
    }
    answered_flags.back() = true;
    ++out.from_database;
    out.answered.insert(id);
    return case_from_entry(*e, spec.name, spec.count, names);
  };

  std::size_t stored_upto = 0;
  // Stores every measured case that finished: one not cut short by a signal (run_case stops
  // between implementations when interrupted) nor holding a passing failure (Case::complete false).
  auto store_finished = [&](const Report& report) {
    for (; stored_upto < report.cases.size(); ++stored_upto) {
      const Case& c = report.cases[stored_upto];
      if (stored_upto < answered_flags.size() && answered_flags[stored_upto]) continue;
      if (!c.complete) continue;
      const std::size_t before =
          db.entry_count() + (db.find(fingerprint, c.problem, c.pass) ? 0 : 1);
      db = merge_into_file(settings.database, fingerprint, {entry_from_case(c)}, &version);
      merged_from_others += int(db.entry_count() - before);
      measured_now.insert(entry_id(c.problem, c.pass));
      ++out.measured;
    }
  };
  auto finish = [&](Report report) {
    for (Case& c : report.cases) c.best = select_best(c.results, settings.constraints).best;
    json from_db = json::array();
    for (std::size_t i = 0; i < report.cases.size() && i < answered_flags.size(); ++i) {
      if (answered_flags[i])
        from_db.push_back(report.cases[i].name + " " + to_string(report.cases[i].pass));
    }
    report.settings["tuning"] = {{"database", settings.database},
                                 {"fingerprint", fingerprint},
                                 {"constraints", settings.constraints.describe()},
                                 {"retune", settings.retune},
                                 {"from_database", from_db}};
    return report;
  };

  Report report = run_suite(suite, options, [&](const Report& partial) {
    store_finished(partial);
    if (save_report) save_report(finish(partial));
  });
  store_finished(report);
  out.report = finish(std::move(report));
  if (save_report) save_report(out.report);
  if (merged_from_others > 0) {
    out.notes.push_back(std::to_string(merged_from_others) +
                        " entries written meanwhile by another tuner were kept");
  }
  return out;
}

std::string tune_table(const TuneOutcome& outcome, const Constraints& constraints) {
  using Align = TextTable::Align;
  TextTable table({{}, {}, {}, {Align::right}, {Align::right}, {}, {}});
  table.add({"case", "pass", "best", "ms", "margin", "source", ""});
  for (const Case& c : outcome.report.cases) {
    const Selection s = select_best(c.results, constraints);
    std::vector<std::string> row = {
        c.name, to_string(c.pass),
        "-",    "-",
        "-",    outcome.answered.count(entry_id(c.problem, c.pass)) ? "database" : "measured",
        ""};
    std::string note;
    if (s.best) {
      row[2] = s.best->impl;
      char ms[32];
      std::snprintf(ms, sizeof ms, "%.3f", s.best->time_ms);
      row[3] = ms;
      row[4] = s.best->runner_up.empty() ? "-" : percent(s.best->margin);
      if (s.best->tie) note = "tie with " + s.best->runner_up;
    } else {
      note = s.reason;
    }
    if (c.interrupted) {
      note += std::string(note.empty() ? "" : "; ") +
              "interrupted: best of the implementations that ran; not stored";
    }
    if (!s.excluded.empty()) {
      note += std::string(note.empty() ? "" : "; ") + "excluded " +
              std::to_string(s.excluded.size()) + " (" + s.excluded.front() +
              (s.excluded.size() > 1 ? ", ..." : "") + ")";
    }
    row[6] = note;
    table.add(std::move(row));
  }
  return table.str();
}

}  // namespace convbp
