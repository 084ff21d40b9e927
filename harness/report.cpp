#include "report.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <limits>
#include <sstream>
#include <stdexcept>

#include "json_input.h"

namespace convbp {

using nlohmann::json;

namespace {
constexpr const char* kStatusNames[] = {"ok",    "unsupported", "incorrect",
                                        "error", "timeout",     "crashed"};
constexpr int kStatusCount = int(std::size(kStatusNames));
}  // namespace

const char* to_string(Status status) { return kStatusNames[int(status)]; }

std::optional<Status> parse_status(std::string_view text) {
  for (int i = 0; i < kStatusCount; ++i) {
    if (text == kStatusNames[i]) return Status(i);
  }
  return std::nullopt;
}

std::optional<Best> choose_best(const std::vector<Result>& results) {
  std::vector<const Result*> ok;
  for (const Result& r : results) {
    if (r.status == Status::ok && r.time) ok.push_back(&r);
  }
  if (ok.empty()) return std::nullopt;
  std::sort(ok.begin(), ok.end(),
            [](auto* a, auto* b) { return a->time->median < b->time->median; });
  const Result* first = ok[0];
  Best best;
  if (ok.size() > 1) {
    const Result* second = ok[1];
    // Noise: the larger standard deviation of the two, and never below 1% (run-to-run drift
    // on a shared machine is at least that), nor above 5%: one outlier repetition inflates a
    // stddev without moving the median, and a tie must not hand the win to a far slower result.
    const double noise =
        std::min(std::max({first->time->stddev, second->time->stddev, 0.01 * first->time->median}),
                 0.05 * first->time->median);
    if (second->time->median - first->time->median <= noise) {
      best.tie = true;
      auto rank = [](const Result* r) {
        return std::make_pair(r->deterministic ? 0 : 1, r->workspace_bytes);
      };
      if (rank(second) < rank(first)) std::swap(first, second);
    }
    best.runner_up = second->impl;
    best.margin = second->time->median / first->time->median - 1.0;
  }
  best.impl = first->impl;
  best.time_ms = first->time->median;
  return best;
}

namespace {

json to_json(const ErrorStats& e) {
  json j = {{"output", e.output},       {"max_abs", e.max_abs},     {"max_rel", e.max_rel},
            {"rel_l2", e.rel_l2},       {"tolerance", e.tolerance}, {"worst_index", e.worst_index},
            {"nan_count", e.nan_count}, {"all_zero", e.all_zero}};
  return j;
}

json to_json(const TimeStats& t) {
  return {{"median", t.median}, {"min", t.min},        {"max", t.max},
          {"stddev", t.stddev}, {"reps", t.reps},      {"iterations", t.iterations},
          {"noisy", t.noisy},   {"samples", t.samples}};
}

}  // namespace

json to_json(const Result& r) {
  json j = {{"impl", r.impl},
            {"status", to_string(r.status)},
            {"why", r.why},
            {"detail", r.detail},
            {"time_ms", r.time ? to_json(*r.time) : json(nullptr)},
            {"gflops", r.gflops},
            {"error", r.error ? to_json(*r.error) : json(nullptr)},
            {"workspace_bytes", r.workspace_bytes},
            {"deterministic", r.deterministic}};
  if (!r.family.empty()) j["family"] = r.family;
  return j;
}

namespace {

json to_json(const Case& c) {
  json results = json::array();
  for (const Result& r : c.results) results.push_back(to_json(r));
  json best = nullptr;
  if (c.best) {
    best = {{"impl", c.best->impl},
            {"time_ms", c.best->time_ms},
            {"runner_up", c.best->runner_up},
            {"margin", c.best->margin},
            {"tie", c.best->tie}};
  }
  return {{"name", c.name},
          {"problem", c.problem.key()},
          {"pass", to_string(c.pass)},
          {"count", c.count},
          {"flops", c.flops},
          {"seed", c.seed},
          {"results", results},
          {"best", best}};
}

constexpr std::int64_t kIntMax = std::numeric_limits<int>::max();
constexpr std::int64_t kInt64Max = std::numeric_limits<std::int64_t>::max();

// Typed access with the JSON path in every error.
class Get {
 public:
  Get(const json& j, std::string path) : j_(j), path_(std::move(path)) {}
  Get operator[](const std::string& key) const {
    if (!j_.is_object() || !j_.contains(key)) fail("missing key \"" + key + "\"");
    return Get(j_[key], path_ + "." + key);
  }
  Get operator[](std::size_t i) const { return Get(j_[i], path_ + "[" + std::to_string(i) + "]"); }
  bool has(const std::string& key) const {
    return j_.is_object() && j_.contains(key) && !j_[key].is_null();
  }
  template <typename T>
  T as() const {
    try {
      return j_.get<T>();
    } catch (const json::exception&) {
      fail("wrong type: " + brief(j_));
    }
  }
  // An integer in [min, max]; nlohmann's get<int> would truncate a fraction or wrap a large
  // value silently.
  std::int64_t integer(std::int64_t min, std::int64_t max) const {
    const bool too_large = j_.is_number_unsigned() && j_.get<std::uint64_t>() > std::uint64_t(max);
    if (too_large || !j_.is_number_integer() || j_.get<std::int64_t>() < min ||
        j_.get<std::int64_t>() > max) {
      fail("expected an integer from " + std::to_string(min) + " to " + std::to_string(max) +
           ", got " + brief(j_));
    }
    return j_.get<std::int64_t>();
  }
  std::uint64_t unsigned_integer() const {
    if (!j_.is_number_unsigned() && !(j_.is_number_integer() && j_.get<std::int64_t>() >= 0)) {
      fail("expected an integer >= 0, got " + brief(j_));
    }
    return j_.get<std::uint64_t>();
  }
  std::size_t size() const {
    if (!j_.is_array()) fail("expected an array");
    return j_.size();
  }
  const json& raw() const { return j_; }
  [[noreturn]] void fail(const std::string& message) const {
    throw std::runtime_error(path_ + ": " + message);
  }

 private:
  const json& j_;
  std::string path_;
};

ErrorStats error_from(const Get& g) {
  ErrorStats e;
  e.output = g["output"].as<std::string>();
  e.max_abs = g["max_abs"].as<double>();
  e.max_rel = g["max_rel"].as<double>();
  e.rel_l2 = g["rel_l2"].as<double>();
  e.tolerance = g["tolerance"].as<double>();
  e.worst_index = g["worst_index"].integer(-1, kInt64Max);
  e.nan_count = g["nan_count"].integer(0, kInt64Max);
  e.all_zero = g["all_zero"].as<bool>();
  return e;
}

TimeStats time_from(const Get& g) {
  TimeStats t;
  t.median = g["median"].as<double>();
  t.min = g["min"].as<double>();
  t.max = g["max"].as<double>();
  t.stddev = g["stddev"].as<double>();
  t.reps = int(g["reps"].integer(0, kIntMax));
  t.iterations = g["iterations"].integer(0, kInt64Max);
  t.noisy = g["noisy"].as<bool>();
  if (g.has("samples")) t.samples = g["samples"].as<std::vector<double>>();
  return t;
}

Result result_from(const Get& rg) {
  Result r;
  r.impl = rg["impl"].as<std::string>();
  auto status = parse_status(rg["status"].as<std::string>());
  if (!status) rg["status"].fail("unknown status");
  r.status = *status;
  r.why = rg["why"].as<std::string>();
  r.detail = rg["detail"].as<std::string>();
  if (rg.has("time_ms")) r.time = time_from(rg["time_ms"]);
  r.gflops = rg["gflops"].as<double>();
  if (rg.has("error")) r.error = error_from(rg["error"]);
  r.workspace_bytes = std::size_t(rg["workspace_bytes"].unsigned_integer());
  r.deterministic = rg["deterministic"].as<bool>();
  if (rg.has("family")) r.family = rg["family"].as<std::string>();
  return r;
}

}  // namespace

Result result_from_json(const json& doc, const std::string& path) {
  return result_from(Get(doc, path));
}

json to_json(const Report& report) {
  json cases = json::array();
  for (const Case& c : report.cases) cases.push_back(to_json(c));
  return {{"schema", "convbp.report/1"},
          {"complete", report.complete},
          {"context", report.context},
          {"settings", report.settings},
          {"cases", cases}};
}

Report report_from_json(const json& doc) {
  Get root(doc, "$");
  if (root["schema"].as<std::string>() != "convbp.report/1") {
    root["schema"].fail("expected \"convbp.report/1\"");
  }
  Report report;
  report.complete = root["complete"].as<bool>();
  report.context = root["context"].raw();
  report.settings = root["settings"].raw();
  const Get cases = root["cases"];
  for (std::size_t i = 0; i < cases.size(); ++i) {
    const Get g = cases[i];
    Case c;
    c.name = g["name"].as<std::string>();
    try {
      c.problem = ConvProblem::parse_key(g["problem"].as<std::string>());
    } catch (const InvalidProblem& e) {
      g["problem"].fail(e.what());
    }
    auto pass = parse_pass(g["pass"].as<std::string>());
    if (!pass) g["pass"].fail("expected \"data\" or \"weights\"");
    c.pass = *pass;
    c.count = int(g["count"].integer(1, kIntMax));
    c.flops = g["flops"].as<double>();
    c.seed = g["seed"].unsigned_integer();
    const Get results = g["results"];
    for (std::size_t k = 0; k < results.size(); ++k) c.results.push_back(result_from(results[k]));
    if (g.has("best")) {
      const Get b = g["best"];
      c.best =
          Best{b["impl"].as<std::string>(), b["time_ms"].as<double>(),
               b["runner_up"].as<std::string>(), b["margin"].as<double>(), b["tie"].as<bool>()};
    }
    report.cases.push_back(std::move(c));
  }
  return report;
}

namespace {

std::filesystem::path folder_of(const std::filesystem::path& target) {
  return target.has_parent_path() ? target.parent_path() : std::filesystem::path(".");
}

// The temp file write_json_atomic writes before renaming it over the target.
std::filesystem::path temp_of(const std::filesystem::path& target) {
  return folder_of(target) /
         ("." + target.filename().string() + ".tmp." + std::to_string(::getpid()));
}

}  // namespace

void check_writable(const std::string& path) {
  namespace fs = std::filesystem;
  const fs::path target(path);
  const std::string name = printable(path);
  if (!is_utf8(path)) {
    throw std::runtime_error(name + ": the path is not valid UTF-8 (convbp records it in JSON)");
  }
  const fs::path dir = folder_of(target);
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) {
    throw std::runtime_error(name + ": cannot write: directory " + printable(dir.string()) +
                             " does not exist" + (ec ? " (" + ec.message() + ")" : ""));
  }
  if (target.filename().empty() || fs::is_directory(target, ec)) {
    throw std::runtime_error(name + ": cannot write: a directory, not a file name");
  }
  // Creating (and removing) the temp file proves the name's length and the folder's
  // permissions the way the real write will meet them.
  const fs::path temp = temp_of(target);
  const int fd = ::open(temp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (fd < 0) {
    const int error = errno;
    if (error != EEXIST) throw std::runtime_error(name + ": cannot write: " + std::strerror(error));
    return;  // left by this process id before: the write replaces it
  }
  ::close(fd);
  ::unlink(temp.c_str());
}

void write_json_atomic(const std::string& path, const json& doc) {
  namespace fs = std::filesystem;
  const fs::path target(path);
  const fs::path dir = folder_of(target);
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) {
    throw std::runtime_error(path + ": cannot write: directory " + dir.string() +
                             " does not exist");
  }
  const fs::path temp = temp_of(target);
  const std::string text = doc.dump(1) + "\n";
  // Written, flushed to the disk, renamed over the target, and the directory flushed too: after
  // a power loss the file is the old one or the new one, never empty.
  const int fd = ::open(temp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) {
    throw std::runtime_error(path + ": cannot write: " + temp.string() + ": " +
                             std::strerror(errno));
  }
  auto fail = [&](const std::string& what) {
    const std::string reason = std::strerror(errno);
    ::close(fd);
    fs::remove(temp, ec);
    throw std::runtime_error(path + ": " + what + ": " + reason);
  };
  for (std::size_t done = 0; done < text.size();) {
    const ssize_t n = ::write(fd, text.data() + done, text.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) fail("write failed");
    done += std::size_t(n);
  }
  if (::fsync(fd) != 0) fail("fsync failed");
  if (::close(fd) != 0) {
    fs::remove(temp, ec);
    throw std::runtime_error(path + ": write failed: " + std::strerror(errno));
  }
  fs::rename(temp, target, ec);
  if (ec) {
    const std::string reason = ec.message();
    fs::remove(temp, ec);
    throw std::runtime_error(path + ": cannot replace: " + reason);
  }
  if (const int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC); dfd >= 0) {
    ::fsync(dfd);  // the rename; a file system that cannot sync a directory has nothing to do
    ::close(dfd);
  }
}

Report read_report(const std::string& path) {
  const std::string name = printable(path);
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) {
    throw std::runtime_error(name + ": a directory, not a report");
  }
  std::ifstream in(path);
  if (!in) throw std::runtime_error(name + ": cannot open report");
  std::stringstream text;
  text << in.rdbuf();
  json doc;
  try {
    doc = parse_json_input(text.str());
  } catch (const JsonInputError& e) {
    throw std::runtime_error(name + ": " + e.what());
  }
  try {
    return report_from_json(doc);
  } catch (const std::runtime_error& e) {
    throw std::runtime_error(name + ": " + e.what());
  }
}

namespace {

std::string fixed(double v, int digits) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", digits, v);
  return buf;
}

std::string pad_right(std::string s, std::size_t width) {
  if (s.size() < width) s.append(width - s.size(), ' ');
  return s;
}

std::string pad_left(std::string s, std::size_t width) {
  if (s.size() < width) s.insert(0, width - s.size(), ' ');
  return s;
}

}  // namespace

std::string winners_table(const Report& report, const std::vector<std::string>& baselines) {
  struct Row {
    std::string name, pass, best, time, gflops, speedup, note;
  };
  std::vector<Row> rows;
  std::vector<std::string> used;  // the baselines the rows compare with, for the header
  rows.push_back({"case", "pass", "best", "ms", "GF/s", "", ""});
  for (const Case& c : report.cases) {
    Row row{c.name, to_string(c.pass), "-", "-", "-", "-", ""};
    if (c.best) {
      row.best = c.best->impl;
      row.time = fixed(c.best->time_ms, 3);
      row.gflops = fixed(c.flops / (c.best->time_ms * 1e6), 1);
      bool compared = false;
      for (const std::string& baseline : baselines) {
        for (const Result& r : c.results) {
          if (compared || r.impl != baseline || r.status != Status::ok || !r.time) continue;
          row.speedup = fixed(r.time->median / c.best->time_ms, 2) + "x";
          compared = true;
          if (std::find(used.begin(), used.end(), baseline) == used.end()) used.push_back(baseline);
        }
      }
      if (c.best->tie) row.note = "tie with " + c.best->runner_up;
    } else {
      row.note = "no correct implementation";
    }
    rows.push_back(row);
  }
  if (used.empty() && !baselines.empty()) used.push_back(baselines.front());
  for (const std::string& baseline : used) {
    rows.front().speedup += (rows.front().speedup.empty() ? "vs " : " or ") + baseline;
  }
  std::size_t wn = 0, wp = 0, wb = 0, wt = 0, wg = 0, ws = 0;
  for (const Row& r : rows) {
    wn = std::max(wn, r.name.size());
    wp = std::max(wp, r.pass.size());
    wb = std::max(wb, r.best.size());
    wt = std::max(wt, r.time.size());
    wg = std::max(wg, r.gflops.size());
    ws = std::max(ws, r.speedup.size());
  }
  std::ostringstream out;
  for (const Row& r : rows) {
    std::string line = pad_right(r.name, wn) + "  " + pad_right(r.pass, wp) + "  " +
                       pad_right(r.best, wb) + "  " + pad_left(r.time, wt) + "  " +
                       pad_left(r.gflops, wg) + "  " + pad_left(r.speedup, ws) +
                       (r.note.empty() ? "" : "  " + r.note);
    while (!line.empty() && line.back() == ' ') line.pop_back();
    out << line << "\n";
  }
  return out.str();
}

std::string results_table(const Report& report) {
  std::ostringstream out;
  for (const Case& c : report.cases) {
    out << c.name << "  " << to_string(c.pass) << "  " << c.problem.key() << "\n";
    std::vector<const Result*> sorted;
    for (const Result& r : c.results) sorted.push_back(&r);
    std::stable_sort(sorted.begin(), sorted.end(), [](const Result* a, const Result* b) {
      if ((a->time.has_value()) != (b->time.has_value())) return a->time.has_value();
      return a->time && b->time && a->time->median < b->time->median;
    });
    std::size_t width = 0;
    for (const Result* r : sorted) width = std::max(width, r->impl.size());
    for (const Result* r : sorted) {
      std::string line =
          "  " + pad_right(r->impl, width) + "  " + pad_right(to_string(r->status), 11);
      if (r->time) {
        line += pad_left(fixed(r->time->median, 3), 10) + " ms" + pad_left(fixed(r->gflops, 1), 8) +
                " GF/s";
      }
      if (r->error) {
        char err[48];
        std::snprintf(err, sizeof err, "  max_rel %.1e", r->error->max_rel);
        line += err;
      }
      if (r->status != Status::ok) line += "  " + r->why;
      out << line << "\n";
    }
  }
  return out.str();
}

std::string validation_table(const Report& report) {
  std::ostringstream out;
  std::size_t width = 4;
  for (const Case& c : report.cases) width = std::max(width, c.name.size());
  out << pad_right("case", width) << "  pass     ok  unsupported  failed\n";
  for (const Case& c : report.cases) {
    int ok = 0, unsupported = 0;
    std::string failed;
    for (const Result& r : c.results) {
      if (r.status == Status::ok) {
        ++ok;
      } else if (r.status == Status::unsupported) {
        ++unsupported;
      } else {
        failed += (failed.empty() ? "" : ", ") + r.impl + " (" + to_string(r.status) + ")";
      }
    }
    out << pad_right(c.name, width) << "  " << pad_right(to_string(c.pass), 7) << "  "
        << pad_left(std::to_string(ok), 2) << "  " << pad_left(std::to_string(unsupported), 11)
        << "  " << (failed.empty() ? "-" : failed) << "\n";
  }
  return out.str();
}

}  // namespace convbp
