// The tuning database (schema convbp.tuning/1, docs/tuning.md): per machine fingerprint, per
// canonical key and pass, the ranked correct results of a tuning and the winner.
//
// Safety rules: a file that is not a valid database is an error naming the file and the JSON
// path, and is never written over; every write re-reads the file under an advisory lock
// (flock on FILE.lock), merges, and replaces it atomically (temp file + rename), so concurrent
// tuners keep each other's entries and an interrupted one leaves a complete file.
#pragma once

#include <nlohmann/json.hpp>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "io.h"
#include "report.h"
#include "selection.h"

namespace convbp {

inline constexpr const char* kTuningSchema = "convbp.tuning/1";

// A database file that cannot be used: malformed JSON, another schema, a bad field. The
// message names the file and the JSON path ("t.json: $.sections[0].entries[2].pass: ...").
class TuningError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// One correct (status ok) result of a tuning.
struct TunedResult {
  std::string impl;
  double median_ms = 0;
  double stddev_ms = 0;
  int reps = 0;
  std::size_t workspace_bytes = 0;
  bool deterministic = true;
  double max_rel = 0;  // error against the fp64 reference
  std::string detail;
  bool operator==(const TunedResult&) const = default;
};

// A candidate that could not win, and why (unsupported, incorrect, error, timeout).
struct RejectedResult {
  std::string impl;
  Status status = Status::unsupported;
  std::string why;
  bool operator==(const RejectedResult&) const = default;
};

struct TuningEntry {
  ConvProblem problem;
  Pass pass = Pass::data;
  std::string tuned_as;                 // the case that tuned it ("default:conv1"), for people
  std::string date;                     // UTC, for people; never part of a lookup
  std::vector<std::string> candidates;  // every implementation tried: what a hit must cover
  std::vector<TunedResult> results;     // fastest first
  std::vector<RejectedResult> rejected;
  std::optional<Best> best;  // without constraints; plan() and `tune` re-select with theirs
  bool operator==(const TuningEntry& o) const;
};

struct TuningSection {
  nlohmann::json fingerprint;  // machine_fingerprint(): entries are only valid under it
  std::vector<TuningEntry> entries;
};

struct TuningDb {
  std::vector<TuningSection> sections;

  const TuningSection* section(const nlohmann::json& fingerprint) const;
  const TuningEntry* find(const nlohmann::json& fingerprint, const ConvProblem& problem,
                          Pass pass) const;
  // Adds the entry under the fingerprint, replacing one of the same key and pass.
  void put(const nlohmann::json& fingerprint, TuningEntry entry);
  // Adds the entry under the fingerprint, merged (merge_entries) into one of the same key and
  // pass.
  void merge(const nlohmann::json& fingerprint, TuningEntry entry);
  std::size_t entry_count() const;
};

nlohmann::json to_json(const TuningDb& db);
// Throws TuningError naming `file` and the JSON path of the first bad field.
TuningDb tuning_db_from_json(const nlohmann::json& doc, const std::string& file);
// A missing file is an empty database; anything else that is not one is a TuningError. In
// `version` (when given): the version of the very file read ({} when none), so that a reader can
// tell when another process has written since.
TuningDb read_tuning_db(const std::string& path, FileVersion* version = nullptr);

// Under the file's lock: when `path` is still not a readable tuning database, renames it to
// PATH.unreadable-<UTC time> and returns that name; returns "" when it has become readable
// meanwhile. Throws std::runtime_error when the rename fails.
std::string set_aside_unreadable(const std::string& path);

// Merges `entries` (under `fingerprint`) into the file at `path`: under an exclusive flock on
// path + ".lock", re-reads the file, adds the entries or merges each into the file's entry of
// the same key and pass (merge_entries), writes it atomically. Returns the database as written
// (with every other writer's entries), and in `version` (when given) the version written.
TuningDb merge_into_file(const std::string& path, const nlohmann::json& fingerprint,
                         const std::vector<TuningEntry>& entries, FileVersion* version = nullptr);

// `fresh` measured again every implementation it lists in `candidates` (and a listed family's
// members): its results and rejections replace `old`'s for those; what `old` holds for any
// other implementation stays (`convbp tune --retune --impl X` re-measures X alone). A rejection
// of `fresh`'s for an implementation outside its candidates (a budget-limited timeout, below)
// is dropped where `old` covers that implementation. Results are re-ranked and the best chosen
// again when anything of `old` stays. The date and tuned_as are `fresh`'s.
TuningEntry merge_entries(const TuningEntry& old, TuningEntry fresh);

// The Autotuner's timeouts come from its small on-line budget (AutotunerOptions::tune_seconds
// shared among the candidates) and say nothing permanent. They stay in `rejected`, but leave
// `candidates` (with the name a timed-out implementation was selected under), so that the entry
// does not cover them for `convbp tune`, which measures them with its full budget; the
// Autotuner counts them as tried (missing_candidate with `timeouts_count`), so that it does not
// tune the shape again at every start. `entry` is entry_from_case(measured).
void drop_timeouts_from_candidates(TuningEntry& entry, const Case& measured);

// What a lookup asks a database entry about: one implementation by name, and the name it was
// selected under when it is a family's member (Candidate in backward.h, by name).
struct Asked {
  Asked(std::string impl, std::string family = "")
      : impl(std::move(impl)), family(std::move(family)) {}
  std::string impl;
  std::string family;
};
// The registry's resolved candidates (resolve() in backward.h), by name.
std::vector<Asked> asked(const std::vector<Candidate>& candidates);
// What a database entry must answer for the `selected` implementations on its problem and pass:
// asked(resolve(...)), except that an opt-in family the entry lists (a search that costs
// seconds: cudnn.search.*) is not resolved again but stands for what the entry recorded under
// it (its members' results, or its own decline).
std::vector<Asked> asked_of_entry(const TuningEntry& entry,
                                  const std::vector<const Backward*>& selected);

// A finished case as a database entry (candidates: every implementation it tried, and the name
// each was selected under), and back (limited to the implementations in `asked`, which the
// entry must cover).
TuningEntry entry_from_case(const Case& c);
Case case_from_entry(const TuningEntry& entry, const std::string& name, int count,
                     const std::vector<Asked>& asked);
// Whether an entry tried every implementation in `asked` (listed itself, or under the name it
// was selected under, as entries list both); if not, the first it lacks. With `timeouts_count`,
// an implementation rejected as `timeout` counts as tried even when it is not among the
// candidates (the Autotuner's rule, above).
std::optional<std::string> missing_candidate(const TuningEntry& entry,
                                             const std::vector<Asked>& asked,
                                             bool timeouts_count = false);

// An entry's ranked results as the ok Results they were measured as.
std::vector<Result> results_of(const TuningEntry& entry);

// The fields in which two fingerprints differ: "threads 1 -> 2, convbp 0.1.0+a -> 0.1.0+b".
std::string fingerprint_difference(const nlohmann::json& from, const nlohmann::json& to);

}  // namespace convbp
