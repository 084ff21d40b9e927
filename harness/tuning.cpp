#include "tuning.h"

#include <sys/stat.h>

#include <algorithm>
#include <filesystem>
#include <limits>
#include <map>
#include <set>
#include <system_error>

#include "backward.h"
#include "io.h"
#include "json_input.h"
#include "selection.h"

namespace convbp {

using nlohmann::json;

bool TuningEntry::operator==(const TuningEntry& o) const {
  auto same_best = [](const std::optional<Best>& a, const std::optional<Best>& b) {
    if (a.has_value() != b.has_value()) return false;
    if (!a) return true;
    return a->impl == b->impl && a->time_ms == b->time_ms && a->runner_up == b->runner_up &&
           a->margin == b->margin && a->tie == b->tie;
  };
  return problem == o.problem && pass == o.pass && tuned_as == o.tuned_as && date == o.date &&
         candidates == o.candidates && results == o.results && rejected == o.rejected &&
         same_best(best, o.best);
}

const TuningSection* TuningDb::section(const json& fingerprint) const {
  for (const TuningSection& s : sections) {
    if (s.fingerprint == fingerprint) return &s;
  }
  return nullptr;
}

const TuningEntry* TuningDb::find(const json& fingerprint, const ConvProblem& problem,
                                  Pass pass) const {
  const TuningSection* s = section(fingerprint);
  if (!s) return nullptr;
  for (const TuningEntry& e : s->entries) {
    if (e.pass == pass && e.problem == problem) return &e;
  }
  return nullptr;
}

void TuningDb::put(const json& fingerprint, TuningEntry entry) {
  auto s = std::find_if(sections.begin(), sections.end(),
                        [&](const TuningSection& t) { return t.fingerprint == fingerprint; });
  if (s == sections.end()) {
    sections.push_back({fingerprint, {}});
    s = sections.end() - 1;
  }
  for (TuningEntry& e : s->entries) {
    if (e.pass == entry.pass && e.problem == entry.problem) {
      e = std::move(entry);
      return;
    }
  }
  s->entries.push_back(std::move(entry));
}

void TuningDb::merge(const json& fingerprint, TuningEntry entry) {
  if (const TuningEntry* old = find(fingerprint, entry.problem, entry.pass)) {
    entry = merge_entries(*old, std::move(entry));
  }
  put(fingerprint, std::move(entry));
}

std::size_t TuningDb::entry_count() const {
  std::size_t n = 0;
  for (const TuningSection& s : sections) n += s.entries.size();
  return n;
}

// --- JSON ------------------------------------------------------------------------------------

namespace {

json entry_to_json(const TuningEntry& e) {
  json results = json::array();
  for (const TunedResult& r : e.results) {
    results.push_back({{"impl", r.impl},
                       {"median_ms", r.median_ms},
                       {"stddev_ms", r.stddev_ms},
                       {"reps", r.reps},
                       {"workspace_bytes", r.workspace_bytes},
                       {"deterministic", r.deterministic},
                       {"max_rel", r.max_rel},
                       {"detail", r.detail}});
  }
  json rejected = json::array();
  for (const RejectedResult& r : e.rejected) {
    rejected.push_back({{"impl", r.impl}, {"status", to_string(r.status)}, {"why", r.why}});
  }
  return {{"problem", e.problem.key()}, {"pass", to_string(e.pass)},
          {"tuned_as", e.tuned_as},     {"date", e.date},
          {"candidates", e.candidates}, {"results", results},
          {"rejected", rejected},       {"best", to_json(e.best)}};
}

TuningEntry entry_from_json(const JsonReader& n) {
  n.exact_keys(
      {"problem", "pass", "tuned_as", "date", "candidates", "results", "rejected", "best"});
  TuningEntry e;
  try {
    e.problem = ConvProblem::parse_key(n["problem"].string());
  } catch (const InvalidProblem& error) {
    n["problem"].fail(error.what());
  }
  const std::optional<Pass> pass = parse_pass(n["pass"].string());
  if (!pass) n["pass"].fail("expected \"data\" or \"weights\"");
  e.pass = *pass;
  e.tuned_as = n["tuned_as"].string();
  e.date = n["date"].utc_date();  // merges compare dates: only real ones
  // One implementation once per list: a second result of one implementation would be a second,
  // different answer to one question.
  auto twice = [](const JsonReader& at, const std::string& impl) {
    at.fail("\"" + impl + "\" is listed twice in one entry");
  };
  const JsonReader candidates = n["candidates"];
  for (std::size_t i = 0; i < candidates.size(); ++i) {
    const std::string impl = candidates[i].string();
    if (std::find(e.candidates.begin(), e.candidates.end(), impl) != e.candidates.end()) {
      twice(candidates[i], impl);
    }
    e.candidates.push_back(impl);
  }
  const JsonReader results = n["results"];
  for (std::size_t i = 0; i < results.size(); ++i) {
    const JsonReader r = results[i];
    r.exact_keys({"impl", "median_ms", "stddev_ms", "reps", "workspace_bytes", "deterministic",
                  "max_rel", "detail"});
    TunedResult t;
    t.impl = r["impl"].string();
    t.median_ms = r["median_ms"].number(0);
    t.stddev_ms = r["stddev_ms"].number(0);
    t.reps = int(r["reps"].integer(1, std::numeric_limits<int>::max()));
    t.workspace_bytes =
        std::size_t(r["workspace_bytes"].unsigned_integer(std::numeric_limits<std::size_t>::max()));
    t.deterministic = r["deterministic"].boolean();
    t.max_rel = r["max_rel"].number(0);
    t.detail = r["detail"].string();
    if (std::find(e.candidates.begin(), e.candidates.end(), t.impl) == e.candidates.end()) {
      r["impl"].fail("\"" + t.impl + "\" is not among the entry's candidates");
    }
    if (std::any_of(e.results.begin(), e.results.end(),
                    [&](const TunedResult& u) { return u.impl == t.impl; })) {
      twice(r["impl"], t.impl);
    }
    if (!e.results.empty() && t.median_ms < e.results.back().median_ms) {
      r["median_ms"].fail("results must be ranked fastest first");
    }
    e.results.push_back(std::move(t));
  }
  const JsonReader rejected = n["rejected"];
  for (std::size_t i = 0; i < rejected.size(); ++i) {
    const JsonReader r = rejected[i];
    r.exact_keys({"impl", "status", "why"});
    RejectedResult x;
    x.impl = r["impl"].string();
    if (std::any_of(e.rejected.begin(), e.rejected.end(),
                    [&](const RejectedResult& y) { return y.impl == x.impl; })) {
      twice(r["impl"], x.impl);
    }
    const std::optional<Status> status = parse_status(r["status"].string());
    if (!status || *status == Status::ok) {
      r["status"].fail("expected unsupported, incorrect, error, timeout or crashed");
    }
    x.status = *status;
    x.why = r["why"].string();
    e.rejected.push_back(std::move(x));
  }
  const JsonReader best = n["best"];
  if (!best.is_null()) {
    e.best = best_from_json(best);
    const auto chosen = std::find_if(e.results.begin(), e.results.end(),
                                     [&](const TunedResult& r) { return r.impl == e.best->impl; });
    if (chosen == e.results.end()) {
      best["impl"].fail("\"" + e.best->impl + "\" is not among the entry's results");
    }
    if (e.best->time_ms != chosen->median_ms) {
      best["time_ms"].expected("the median_ms of \"" + e.best->impl + "\"'s result (" +
                               brief(chosen->median_ms) + ")");
    }
    check_runner_up(best, *e.best, [&](const std::string& impl) -> std::optional<double> {
      for (const TunedResult& r : e.results) {
        if (r.impl == impl) return r.median_ms;
      }
      return std::nullopt;
    });
  }
  return e;
}

}  // namespace

json to_json(const TuningDb& db) {
  json sections = json::array();
  for (const TuningSection& s : db.sections) {
    // Sorted, so that a database under version control diffs by entry.
    std::vector<const TuningEntry*> sorted;
    for (const TuningEntry& e : s.entries) sorted.push_back(&e);
    std::sort(sorted.begin(), sorted.end(), [](const TuningEntry* a, const TuningEntry* b) {
      const std::string ka = a->problem.key(), kb = b->problem.key();
      return ka != kb ? ka < kb : a->pass < b->pass;
    });
    json entries = json::array();
    for (const TuningEntry* e : sorted) entries.push_back(entry_to_json(*e));
    sections.push_back({{"fingerprint", s.fingerprint}, {"entries", entries}});
  }
  return {{"schema", kTuningSchema}, {"sections", sections}};
}

namespace {

TuningDb read_db(const JsonReader& root) {
  const json& doc = root.raw();
  if (!doc.is_object() || !doc.contains("schema")) {
    root.fail(std::string("not a convbp tuning database (no \"schema\": \"") + kTuningSchema +
              "\")");
  }
  if (!doc["schema"].is_string() || doc["schema"] != kTuningSchema) {
    root["schema"].fail(std::string("expected \"") + kTuningSchema + "\", got " +
                        brief(doc["schema"]) + ": not a convbp tuning database of this version");
  }
  root.exact_keys({"schema", "sections"});
  TuningDb db;
  const JsonReader sections = root["sections"];
  for (std::size_t i = 0; i < sections.size(); ++i) {
    const JsonReader s = sections[i];
    s.exact_keys({"fingerprint", "entries"});
    if (!s["fingerprint"].raw().is_object()) s["fingerprint"].fail("expected an object");
    // Compared whole, never read, but a thread count is one.
    if (s["fingerprint"].contains("threads")) {
      s["fingerprint"]["threads"].integer(1, std::numeric_limits<int>::max());
    }
    for (const TuningSection& earlier : db.sections) {
      if (earlier.fingerprint == s["fingerprint"].raw()) {
        s["fingerprint"].fail("the same fingerprint as an earlier section");
      }
    }
    TuningSection section{s["fingerprint"].raw(), {}};
    const JsonReader entries = s["entries"];
    for (std::size_t k = 0; k < entries.size(); ++k) {
      TuningEntry e = entry_from_json(entries[k]);
      for (const TuningEntry& earlier : section.entries) {
        if (earlier.problem == e.problem && earlier.pass == e.pass) {
          entries[k].fail("a second entry for " + e.problem.key() + " " + to_string(e.pass));
        }
      }
      section.entries.push_back(std::move(e));
    }
    db.sections.push_back(std::move(section));
  }
  return db;
}

}  // namespace

TuningDb tuning_db_from_json(const json& doc, const std::string& file) {
  try {
    return read_db(JsonReader(doc, JsonDialect::document));
  } catch (const JsonInputError& e) {
    throw TuningError(printable(file) + ": " + e.what());
  }
}

// --- the file ----------------------------------------------------------------------------------

TuningDb read_tuning_db(const std::string& path, FileVersion* version) {
  namespace fs = std::filesystem;
  const std::string name = printable(path);
  std::error_code ec;
  if (version) *version = {};
  if (!fs::exists(path, ec)) {
    // Only a file that is not there is an empty database; a name too long or a folder we may
    // not search is an error.
    if (!ec || ec == std::errc::no_such_file_or_directory) return {};
    throw TuningError(name + ": cannot read the tuning database: " + ec.message());
  }
  const char* untouched =
      " (convbp leaves the file as it is: fix it, or move it away to start anew)";
  if (!fs::is_regular_file(path, ec)) throw TuningError(name + ": not a regular file");
  std::string content;
  try {
    content = read_file(path, version);
  } catch (const std::system_error& e) {
    throw TuningError(name + ": cannot read the tuning database: " + e.code().message());
  }
  if (content.find_first_not_of(" \t\r\n") == std::string::npos) {
    throw TuningError(name + ": empty file, not a convbp tuning database" + untouched);
  }
  json doc;
  try {
    doc = parse_json_input(content);
  } catch (const JsonInputError& e) {
    throw TuningError(name + ": " + e.what() + untouched);
  }
  try {
    return tuning_db_from_json(doc, path);
  } catch (const TuningError& e) {
    throw TuningError(e.what() + std::string(untouched));
  }
}

std::string set_aside_unreadable(const std::string& given) {
  const std::string path = resolve_links(given);  // the file, not a link to it, is set aside
  FileLock lock(path + ".lock");
  try {
    read_tuning_db(path);
    return "";  // readable now: another process replaced it meanwhile
  } catch (const TuningError&) {
  }
  std::string stamp = utc_now();
  std::replace(stamp.begin(), stamp.end(), ':', '-');
  std::string aside = path + ".unreadable-" + stamp;
  std::error_code ec;
  for (int i = 2; std::filesystem::exists(aside, ec); ++i) {
    aside = path + ".unreadable-" + stamp + "-" + std::to_string(i);
  }
  std::filesystem::rename(path, aside, ec);
  if (ec) throw std::runtime_error(path + ": cannot set it aside: " + ec.message());
  return aside;
}

TuningDb merge_into_file(const std::string& path, const json& fingerprint,
                         const std::vector<TuningEntry>& entries, FileVersion* version) {
  FileLock lock(resolve_links(path) + ".lock");  // one lock through a link and the file
  TuningDb db = read_tuning_db(path);            // throws on a corrupt file: nothing is written
  for (const TuningEntry& e : entries) db.merge(fingerprint, e);
  write_json_atomic(path, to_json(db));
  // Taken before the lock is released: taken after, it could be another writer's, whose entries
  // `db` lacks.
  if (version) *version = file_version(path);
  return db;
}

// --- entries and cases -----------------------------------------------------------------------

TuningEntry entry_from_case(const Case& c) {
  TuningEntry e;
  e.problem = c.problem;
  e.pass = c.pass;
  e.tuned_as = c.name;
  e.date = utc_now();
  for (const Result& r : c.results) {
    // A family's name too, so that an entry answers a later run that selects the family.
    if (!r.family.empty() &&
        std::find(e.candidates.begin(), e.candidates.end(), r.family) == e.candidates.end()) {
      e.candidates.push_back(r.family);
    }
    e.candidates.push_back(r.impl);
    if (r.status == Status::ok && r.time) {
      e.results.push_back({r.impl, r.time->median, r.time->stddev, r.time->reps, r.workspace_bytes,
                           r.deterministic, r.error ? r.error->max_rel : 0.0, r.detail});
    } else if (r.status != Status::ok) {
      e.rejected.push_back({r.impl, r.status, r.why});
    }
  }
  std::stable_sort(
      e.results.begin(), e.results.end(),
      [](const TunedResult& a, const TunedResult& b) { return a.median_ms < b.median_ms; });
  e.best = choose_best(c.results);
  return e;
}

TuningEntry merge_entries(const TuningEntry& old, TuningEntry fresh) {
  auto listed = [](const std::vector<std::string>& names, const std::string& name) {
    return std::find(names.begin(), names.end(), name) != names.end();
  };
  // Measured again by `fresh`: listed among its own candidates (not those taken from `old`
  // below), itself or through its family.
  const std::vector<std::string> measured = fresh.candidates;
  auto remeasured = [&](const std::string& impl) {
    return std::any_of(measured.begin(), measured.end(),
                       [&](const std::string& c) { return stands_for(c, impl); });
  };
  // A budget-limited timeout says less than what `old` measured or rejected for good.
  std::erase_if(fresh.rejected, [&](const RejectedResult& x) {
    return !listed(measured, x.impl) && listed(old.candidates, x.impl);
  });
  bool kept = false;
  for (const std::string& c : old.candidates) {
    if (remeasured(c) || listed(fresh.candidates, c)) continue;
    fresh.candidates.push_back(c);
    kept = true;
  }
  for (const TunedResult& r : old.results) {
    if (remeasured(r.impl)) continue;
    fresh.results.push_back(r);
    kept = true;
  }
  for (const RejectedResult& x : old.rejected) {
    if (remeasured(x.impl) ||
        std::any_of(fresh.rejected.begin(), fresh.rejected.end(),
                    [&](const RejectedResult& y) { return y.impl == x.impl; })) {
      continue;
    }
    fresh.rejected.push_back(x);
    kept = true;
  }
  if (kept) {
    std::stable_sort(
        fresh.results.begin(), fresh.results.end(),
        [](const TunedResult& a, const TunedResult& b) { return a.median_ms < b.median_ms; });
    fresh.best = choose_best(results_of(fresh));
  }
  return fresh;
}

void drop_timeouts_from_candidates(TuningEntry& entry, const Case& measured) {
  for (const Result& r : measured.results) {
    if (r.status != Status::timeout) continue;
    // The implementation, and the name it was selected under: an entry that lists that name
    // would cover the timed-out implementation for `convbp tune`.
    std::erase_if(entry.candidates, [&](const std::string& c) {
      return c == r.impl || (!r.family.empty() && c == r.family);
    });
  }
}

std::vector<Result> results_of(const TuningEntry& entry) {
  std::vector<Result> out;
  for (const TunedResult& t : entry.results) {
    Result r;
    r.impl = t.impl;
    r.status = Status::ok;
    r.detail = t.detail;
    TimeStats time;
    time.median = time.min = time.max = t.median_ms;
    time.stddev = t.stddev_ms;
    time.reps = t.reps;
    time.noisy = t.stddev_ms > 0.1 * t.median_ms;
    r.time = time;
    r.gflops = t.median_ms > 0 ? entry.problem.flops() / (t.median_ms * 1e6) : 0;
    ErrorStats error;
    error.max_rel = t.max_rel;
    r.error = error;
    r.workspace_bytes = t.workspace_bytes;
    r.deterministic = t.deterministic;
    out.push_back(std::move(r));
  }
  return out;
}

std::vector<Asked> asked(const std::vector<Candidate>& candidates) {
  std::vector<Asked> out;
  for (const Candidate& c : candidates) out.emplace_back(c.impl->name(), c.family);
  return out;
}

std::vector<Asked> asked_of_entry(const TuningEntry& entry,
                                  const std::vector<const Backward*>& selected) {
  auto listed = [&](const std::string& name) {
    return std::find(entry.candidates.begin(), entry.candidates.end(), name) !=
           entry.candidates.end();
  };
  std::vector<const Backward*> to_resolve, recorded;
  for (const Backward* b : selected) {
    (b->opt_in() && listed(b->name()) ? recorded : to_resolve).push_back(b);
  }
  std::vector<Asked> out = asked(resolve(to_resolve, entry.problem, entry.pass));
  for (const Backward* family : recorded) {
    auto add = [&](const std::string& impl) {
      if (std::any_of(out.begin(), out.end(), [&](const Asked& a) { return a.impl == impl; })) {
        return;
      }
      if (impl == family->name()) {
        out.emplace_back(impl);
      } else if (family->member(impl)) {
        out.emplace_back(impl, family->name());
      }
    };
    for (const TunedResult& r : entry.results) add(r.impl);
    for (const RejectedResult& x : entry.rejected) add(x.impl);
  }
  return out;
}

Case case_from_entry(const TuningEntry& entry, const std::string& name, int count,
                     const std::vector<Asked>& asked) {
  Case c;
  c.name = name;
  c.problem = entry.problem;
  c.pass = entry.pass;
  c.count = count;
  c.flops = entry.problem.flops();
  const std::vector<Result> ok = results_of(entry);
  // Each asked implementation's result, under the name it was selected under; each once.
  std::set<std::string> taken;
  for (const Asked& a : asked) {
    for (const Result& r : ok) {
      if (r.impl != a.impl || !taken.insert(r.impl).second) continue;
      c.results.push_back(r);
      c.results.back().family = a.family;
    }
    for (const RejectedResult& x : entry.rejected) {
      if (x.impl != a.impl || !taken.insert(x.impl).second) continue;
      Result result;
      result.impl = x.impl;
      result.family = a.family;
      result.status = x.status;
      result.why = x.why;
      c.results.push_back(std::move(result));
    }
  }
  c.best = choose_best(c.results);
  return c;
}

std::optional<std::string> missing_candidate(const TuningEntry& entry,
                                             const std::vector<Asked>& asked, bool timeouts_count) {
  auto listed = [&](const std::string& name) {
    return !name.empty() && std::find(entry.candidates.begin(), entry.candidates.end(), name) !=
                                entry.candidates.end();
  };
  for (const Asked& a : asked) {
    if (listed(a.impl) || listed(a.family)) continue;
    if (timeouts_count &&
        std::any_of(entry.rejected.begin(), entry.rejected.end(), [&](const RejectedResult& x) {
          return x.status == Status::timeout && x.impl == a.impl;
        })) {
      continue;
    }
    return a.impl;
  }
  return std::nullopt;
}

// --- fingerprints ----------------------------------------------------------------------------

namespace {

void flatten(const json& j, const std::string& prefix, std::map<std::string, std::string>& out) {
  if (j.is_object()) {
    for (const auto& [key, value] : j.items()) {
      flatten(value, prefix.empty() ? key : prefix + "." + key, out);
    }
  } else {
    out[prefix] = j.is_string() ? j.get<std::string>() : j.dump();
  }
}

}  // namespace

std::string fingerprint_difference(const json& from, const json& to) {
  std::map<std::string, std::string> a, b;
  flatten(from, "", a);
  flatten(to, "", b);
  std::set<std::string> keys;
  for (const auto& [k, v] : a) keys.insert(k);
  for (const auto& [k, v] : b) keys.insert(k);
  std::string out;
  for (const std::string& k : keys) {
    const auto x = a.find(k), y = b.find(k);
    const std::string va = x == a.end() ? "(none)" : x->second;
    const std::string vb = y == b.end() ? "(none)" : y->second;
    if (va == vb) continue;
    out += (out.empty() ? "" : ", ") + k + " " + va + " -> " + vb;
  }
  return out.empty() ? "nothing" : out;
}

}  // namespace convbp
