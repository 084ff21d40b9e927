#include "tuning.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <limits>
#include <map>
#include <set>
#include <sstream>

#include "context.h"
#include "json_input.h"

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

json best_to_json(const std::optional<Best>& best) {
  if (!best) return nullptr;
  return {{"impl", best->impl},
          {"time_ms", best->time_ms},
          {"runner_up", best->runner_up},
          {"margin", best->margin},
          {"tie", best->tie}};
}

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
          {"rejected", rejected},       {"best", best_to_json(e.best)}};
}

// Typed, strict access to a database document: every error names the file and JSON path.
class Node {
 public:
  Node(const json& j, std::string path, const std::string& file)
      : j_(j), path_(std::move(path)), file_(file) {}

  [[noreturn]] void fail(const std::string& message) const {
    throw TuningError(file_ + ": " + path_ + ": " + message);
  }
  void object_with(std::initializer_list<const char*> keys) const {
    if (!j_.is_object()) fail("expected an object, got " + brief(j_));
    for (const auto& item : j_.items()) {
      const std::string& key = item.key();  // a binding a lambda can capture (clang 14)
      if (std::none_of(keys.begin(), keys.end(), [&](const char* k) { return key == k; })) {
        Node(item.value(), path_ + "." + key, file_).fail("unknown key");
      }
    }
    for (const char* k : keys) {
      if (!j_.contains(k)) fail(std::string("missing key \"") + k + "\"");
    }
  }
  Node operator[](const char* key) const { return Node(j_.at(key), path_ + "." + key, file_); }
  Node operator[](std::size_t i) const {
    return Node(j_.at(i), path_ + "[" + std::to_string(i) + "]", file_);
  }
  std::size_t size() const {
    if (!j_.is_array()) fail("expected an array, got " + brief(j_));
    return j_.size();
  }
  bool is_null() const { return j_.is_null(); }
  std::string str() const {
    if (!j_.is_string()) fail("expected a string, got " + brief(j_));
    return j_.get<std::string>();
  }
  double number() const {
    if (!j_.is_number() || !std::isfinite(j_.get<double>()) || j_.get<double>() < 0) {
      fail("expected a number >= 0, got " + brief(j_));
    }
    return j_.get<double>();
  }
  double signed_number() const {
    if (!j_.is_number()) fail("expected a number, got " + brief(j_));
    return j_.get<double>();
  }
  // An integer from 0 to max: never truncated into the narrower field it fills.
  std::uint64_t unsigned_integer(std::uint64_t max) const {
    const bool negative =
        j_.is_number_integer() && !j_.is_number_unsigned() && j_.get<std::int64_t>() < 0;
    if (!j_.is_number_integer() || negative || j_.get<std::uint64_t>() > max) {
      fail("expected an integer from 0 to " + std::to_string(max) + ", got " + brief(j_));
    }
    return j_.get<std::uint64_t>();
  }
  bool boolean() const {
    if (!j_.is_boolean()) fail("expected true or false, got " + brief(j_));
    return j_.get<bool>();
  }
  const json& raw() const { return j_; }
  const std::string& path() const { return path_; }

 private:
  const json& j_;
  std::string path_;
  const std::string& file_;
};

TuningEntry entry_from_json(const Node& n) {
  n.object_with(
      {"problem", "pass", "tuned_as", "date", "candidates", "results", "rejected", "best"});
  TuningEntry e;
  try {
    e.problem = ConvProblem::parse_key(n["problem"].str());
  } catch (const InvalidProblem& error) {
    n["problem"].fail(error.what());
  }
  const std::optional<Pass> pass = parse_pass(n["pass"].str());
  if (!pass) n["pass"].fail("expected \"data\" or \"weights\"");
  e.pass = *pass;
  e.tuned_as = n["tuned_as"].str();
  e.date = n["date"].str();
  const Node candidates = n["candidates"];
  for (std::size_t i = 0; i < candidates.size(); ++i) e.candidates.push_back(candidates[i].str());
  const Node results = n["results"];
  for (std::size_t i = 0; i < results.size(); ++i) {
    const Node r = results[i];
    r.object_with({"impl", "median_ms", "stddev_ms", "reps", "workspace_bytes", "deterministic",
                   "max_rel", "detail"});
    TunedResult t;
    t.impl = r["impl"].str();
    t.median_ms = r["median_ms"].number();
    t.stddev_ms = r["stddev_ms"].number();
    t.reps = int(r["reps"].unsigned_integer(std::numeric_limits<int>::max()));
    t.workspace_bytes =
        std::size_t(r["workspace_bytes"].unsigned_integer(std::numeric_limits<std::size_t>::max()));
    t.deterministic = r["deterministic"].boolean();
    t.max_rel = r["max_rel"].number();
    t.detail = r["detail"].str();
    if (std::find(e.candidates.begin(), e.candidates.end(), t.impl) == e.candidates.end()) {
      r["impl"].fail("\"" + t.impl + "\" is not among the entry's candidates");
    }
    if (!e.results.empty() && t.median_ms < e.results.back().median_ms) {
      r["median_ms"].fail("results must be ranked fastest first");
    }
    e.results.push_back(std::move(t));
  }
  const Node rejected = n["rejected"];
  for (std::size_t i = 0; i < rejected.size(); ++i) {
    const Node r = rejected[i];
    r.object_with({"impl", "status", "why"});
    RejectedResult x;
    x.impl = r["impl"].str();
    const std::optional<Status> status = parse_status(r["status"].str());
    if (!status || *status == Status::ok) {
      r["status"].fail("expected unsupported, incorrect, error, timeout or crashed");
    }
    x.status = *status;
    x.why = r["why"].str();
    e.rejected.push_back(std::move(x));
  }
  const Node best = n["best"];
  if (!best.is_null()) {
    best.object_with({"impl", "time_ms", "runner_up", "margin", "tie"});
    e.best = Best{best["impl"].str(), best["time_ms"].number(), best["runner_up"].str(),
                  best["margin"].signed_number(), best["tie"].boolean()};
    const bool known = std::any_of(e.results.begin(), e.results.end(),
                                   [&](const TunedResult& r) { return r.impl == e.best->impl; });
    if (!known) best["impl"].fail("\"" + e.best->impl + "\" is not among the entry's results");
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

TuningDb tuning_db_from_json(const json& doc, const std::string& file) {
  const Node root(doc, "$", file);
  if (!doc.is_object() || !doc.contains("schema")) {
    root.fail(std::string("not a convbp tuning database (no \"schema\": \"") + kTuningSchema +
              "\")");
  }
  if (!doc["schema"].is_string() || doc["schema"] != kTuningSchema) {
    root["schema"].fail(std::string("expected \"") + kTuningSchema + "\", got " +
                        doc["schema"].dump() + ": not a convbp tuning database of this version");
  }
  root.object_with({"schema", "sections"});
  TuningDb db;
  const Node sections = root["sections"];
  for (std::size_t i = 0; i < sections.size(); ++i) {
    const Node s = sections[i];
    s.object_with({"fingerprint", "entries"});
    if (!s["fingerprint"].raw().is_object()) s["fingerprint"].fail("expected an object");
    for (const TuningSection& earlier : db.sections) {
      if (earlier.fingerprint == s["fingerprint"].raw()) {
        s["fingerprint"].fail("the same fingerprint as an earlier section");
      }
    }
    TuningSection section{s["fingerprint"].raw(), {}};
    const Node entries = s["entries"];
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

namespace {

// Identity of one version of the database file. Writers never change a file in place (they
// rename a new one over it), so a version stands for one content.
struct FileVersion {
  dev_t dev = 0;
  ino_t ino = 0;
  off_t size = -1;
  long mtime_ns = 0;
  bool operator==(const FileVersion&) const = default;
};

FileVersion version_of(const struct stat& st) {
  return {st.st_dev, st.st_ino, st.st_size,
          long(st.st_mtim.tv_sec) * 1000000000L + st.st_mtim.tv_nsec};
}

// The version now at `path` ({} when there is none).
FileVersion file_version(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return {};
  return version_of(st);
}

// The database at `path`, and in `version` the version of the very file read (the descriptor's
// fstat): another writer may replace the file at any moment, and a version taken by path
// before or after the read could belong to another content.
TuningDb read_versioned(const std::string& path, FileVersion& version) {
  namespace fs = std::filesystem;
  std::error_code ec;
  version = {};
  if (!fs::exists(path, ec)) {
    // Only a file that is not there is an empty database; a name too long or a folder we may
    // not search is an error.
    if (!ec || ec == std::errc::no_such_file_or_directory) return {};
    throw TuningError(printable(path) + ": cannot read the tuning database: " + ec.message());
  }
  const char* untouched =
      " (convbp leaves the file as it is: fix it, or move it away to start anew)";
  if (!fs::is_regular_file(path, ec)) throw TuningError(path + ": not a regular file");
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    throw TuningError(path + ": cannot read the tuning database: " + std::strerror(errno));
  }
  struct stat st {};
  std::string content;
  bool read_ok = ::fstat(fd, &st) == 0;
  for (char buf[65536]; read_ok;) {
    const ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      read_ok = n == 0;
      break;
    }
    content.append(buf, std::size_t(n));
  }
  const int error = errno;
  ::close(fd);
  if (!read_ok) {
    throw TuningError(path + ": cannot read the tuning database: " + std::strerror(error));
  }
  version = version_of(st);
  if (content.find_first_not_of(" \t\r\n") == std::string::npos) {
    throw TuningError(path + ": empty file, not a convbp tuning database" + untouched);
  }
  json doc;
  try {
    doc = parse_json_input(content);
  } catch (const JsonInputError& e) {
    throw TuningError(path + ": " + e.what() + untouched);
  }
  try {
    return tuning_db_from_json(doc, path);
  } catch (const TuningError& e) {
    throw TuningError(e.what() + std::string(untouched));
  }
}

}  // namespace

TuningDb read_tuning_db(const std::string& path) {
  FileVersion version;
  return read_versioned(path, version);
}

namespace {

std::string utc_now() {
  std::time_t now = std::time(nullptr);
  char date[64];
  std::strftime(date, sizeof date, "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&now));
  return date;
}

}  // namespace

// --- writing under the lock ------------------------------------------------------------------

namespace {

// An exclusive flock held for the lifetime of the object. The lock file stays: removing it
// would let a third process lock a new inode while the second still holds the old one.
class FileLock {
 public:
  explicit FileLock(const std::string& path) {
    fd_ = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0666);
    if (fd_ < 0) {
      throw std::runtime_error(path + ": cannot open the lock file: " + std::strerror(errno));
    }
    while (::flock(fd_, LOCK_EX) != 0) {
      if (errno == EINTR) continue;
      const int error = errno;
      ::close(fd_);
      throw std::runtime_error(path + ": cannot lock: " + std::strerror(error));
    }
  }
  ~FileLock() {
    ::flock(fd_, LOCK_UN);
    ::close(fd_);
  }
  FileLock(const FileLock&) = delete;
  FileLock& operator=(const FileLock&) = delete;

 private:
  int fd_ = -1;
};

}  // namespace

std::string set_aside_unreadable(const std::string& path) {
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

namespace {

// merge_into_file, with the version it wrote in `version`, taken before the lock is released:
// taken after, it could be another writer's, whose entries `db` lacks.
TuningDb merge_versioned(const std::string& path, const json& fingerprint,
                         const std::vector<TuningEntry>& entries, FileVersion& version) {
  FileLock lock(path + ".lock");
  TuningDb db = read_tuning_db(path);  // throws on a corrupt file: nothing is written
  for (const TuningEntry& e : entries) db.merge(fingerprint, e);
  write_json_atomic(path, to_json(db));
  version = file_version(path);
  return db;
}

}  // namespace

TuningDb merge_into_file(const std::string& path, const json& fingerprint,
                         const std::vector<TuningEntry>& entries) {
  FileVersion version;
  return merge_versioned(path, fingerprint, entries, version);
}

// --- entries and cases -----------------------------------------------------------------------

namespace {

std::string entry_id(const ConvProblem& problem, Pass pass) {
  return problem.key() + " " + to_string(pass);
}

}  // namespace

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

// --- selection -------------------------------------------------------------------------------

std::string format_bytes(std::size_t bytes) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  double v = double(bytes);
  int u = 0;
  while (v >= 1024 && u < 4) {
    v /= 1024;
    ++u;
  }
  char buf[32];
  if (u == 0) {
    std::snprintf(buf, sizeof buf, "%zu B", bytes);
  } else {
    std::snprintf(buf, sizeof buf, "%.1f %s", v, units[u]);
  }
  return buf;
}

std::optional<std::size_t> parse_bytes(const std::string& text) {
  if (text.empty()) return std::nullopt;
  std::size_t used = 0;
  double v = 0;
  try {
    v = std::stod(text, &used);
  } catch (const std::exception&) {
    return std::nullopt;
  }
  std::string unit = text.substr(used);
  if (!unit.empty() && (unit.back() == 'B' || unit.back() == 'b')) unit.pop_back();
  if (unit.size() == 2 && (unit[1] == 'i' || unit[1] == 'I')) unit.pop_back();
  double scale = 1;
  if (unit.empty()) {
    scale = 1;
  } else if (unit == "K" || unit == "k") {
    scale = 1024.0;
  } else if (unit == "M" || unit == "m") {
    scale = 1024.0 * 1024;
  } else if (unit == "G" || unit == "g") {
    scale = 1024.0 * 1024 * 1024;
  } else {
    return std::nullopt;
  }
  if (!(v >= 0) || v * scale > 1e18) return std::nullopt;
  return std::size_t(v * scale);
}

namespace {

std::string percent(double fraction) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f%%", fraction * 100);
  return buf;
}

std::string general(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.3g", v);
  return buf;
}

}  // namespace

Selection select_best(const std::vector<Result>& results, const Constraints& constraints) {
  Selection s;
  std::vector<Result> admitted;
  int correct = 0;
  for (const Result& r : results) {
    if (r.status != Status::ok || !r.time) continue;
    ++correct;
    const auto& max_ws = constraints.max_workspace_bytes;
    const auto& max_err = constraints.max_rel_error;
    if (max_ws && r.workspace_bytes > *max_ws) {
      s.excluded.push_back(r.impl + ": workspace " + format_bytes(r.workspace_bytes) + " > " +
                           format_bytes(*max_ws));
    } else if (constraints.deterministic_only && !r.deterministic) {
      s.excluded.push_back(r.impl + ": not deterministic");
    } else if (max_err && (!r.error || r.error->max_rel > *max_err)) {
      s.excluded.push_back(r.impl + ": max_rel " + (r.error ? general(r.error->max_rel) : "?") +
                           " > " + general(*max_err));
    } else {
      admitted.push_back(r);
    }
  }
  s.best = choose_best(admitted);
  if (!s.best) {
    s.reason = correct == 0 ? "no correct implementation"
                            : "none of the " + std::to_string(correct) +
                                  " correct implementations meets the constraints (" +
                                  constraints.describe() + ")";
    return s;
  }
  const std::string meeting = s.excluded.empty() ? "" : " meeting the constraints";
  if (admitted.size() == 1) {
    s.reason = "the only correct implementation" + meeting;
  } else if (s.best->tie) {
    auto find = [&](const std::string& name) {
      return *std::find_if(admitted.begin(), admitted.end(),
                           [&](const Result& r) { return r.impl == name; });
    };
    const Result& a = find(s.best->impl);
    const Result& b = find(s.best->runner_up);
    const std::string settled = a.deterministic && !b.deterministic     ? "determinism"
                                : a.workspace_bytes < b.workspace_bytes ? "smaller workspace"
                                                                        : "time";
    s.reason = "tie with " + b.impl + " (" + percent(std::abs(s.best->margin)) +
               ", within noise) settled by " + settled;
  } else {
    s.reason = "fastest of " + std::to_string(admitted.size()) + " correct" + meeting + ", " +
               percent(s.best->margin) + " ahead of " + s.best->runner_up;
  }
  return s;
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

// --- convbp tune -----------------------------------------------------------------------------

TuneOutcome tune_suite(const Suite& suite, RunOptions options, const TuneSettings& settings,
                       const std::function<void(const Report&)>& save_report) {
  TuneOutcome out;
  const json fingerprint = machine_fingerprint(threads());
  // The version kept is always that of the content in `db` (read from the same descriptor, or
  // written under the lock): a newer one on disk means another tuner wrote.
  FileVersion version;
  TuningDb db = read_versioned(settings.database, version);  // a bad file stops us here
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
      db = read_versioned(settings.database, version);  // another tuner wrote: use its entries
    }
    const TuningEntry* e = db.find(fingerprint, spec.problem, spec.pass);
    if (!e) return std::nullopt;
    const std::vector<Asked> names = asked(resolve(impls, spec.problem, spec.pass));
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
      db = merge_versioned(settings.database, fingerprint, {entry_from_case(c)}, version);
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
  std::vector<std::vector<std::string>> rows;
  rows.push_back({"case", "pass", "best", "ms", "margin", "source", ""});
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
    if (!s.excluded.empty()) {
      note += std::string(note.empty() ? "" : "; ") + "excluded " +
              std::to_string(s.excluded.size()) + " (" + s.excluded.front() +
              (s.excluded.size() > 1 ? ", ..." : "") + ")";
    }
    row[6] = note;
    rows.push_back(std::move(row));
  }
  std::vector<std::size_t> width(7, 0);
  for (const auto& row : rows) {
    for (std::size_t i = 0; i < row.size(); ++i) width[i] = std::max(width[i], row[i].size());
  }
  std::ostringstream text;
  for (const auto& row : rows) {
    std::string line;
    for (std::size_t i = 0; i < row.size(); ++i) {
      std::string cell = row[i];
      const bool right = i == 3 || i == 4;
      const std::string fill(width[i] - cell.size(), ' ');
      line += (i ? "  " : "") + (right ? fill + cell : cell + fill);
    }
    while (!line.empty() && line.back() == ' ') line.pop_back();
    text << line << "\n";
  }
  return text.str();
}

}  // namespace convbp
