#include "report.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <iterator>
#include <limits>
#include <stdexcept>

#include "json_input.h"
#include "table.h"
#include "totals.h"

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
  if (!r.strategy.empty()) j["strategy"] = r.strategy;
  return j;
}

namespace {

json to_json(const Case& c) {
  json results = json::array();
  for (const Result& r : c.results) results.push_back(to_json(r));
  json j = {{"name", c.name},     {"problem", c.problem.key()}, {"pass", to_string(c.pass)},
            {"count", c.count},   {"flops", c.flops},           {"seed", c.seed},
            {"results", results}, {"best", to_json(c.best)}};
  if (c.interrupted) j["interrupted"] = true;
  return j;
}

constexpr std::int64_t kIntMax = std::numeric_limits<int>::max();
constexpr std::int64_t kInt64Max = std::numeric_limits<std::int64_t>::max();

ErrorStats error_from(const JsonReader& g) {
  g.exact_keys({"output", "max_abs", "max_rel", "rel_l2", "tolerance", "worst_index", "nan_count",
                "all_zero"});
  ErrorStats e;
  e.output = g["output"].string();
  e.max_abs = g["max_abs"].number();
  e.max_rel = g["max_rel"].number();
  e.rel_l2 = g["rel_l2"].number();
  e.tolerance = g["tolerance"].number();
  e.worst_index = g["worst_index"].integer(-1, kInt64Max);
  e.nan_count = g["nan_count"].integer(0, kInt64Max);
  e.all_zero = g["all_zero"].boolean();
  return e;
}

TimeStats time_from(const JsonReader& g) {
  g.only_keys({"median", "min", "max", "stddev", "reps", "iterations", "noisy", "samples"});
  TimeStats t;
  // Times are finite and not negative; a measured result has at least one repetition (a case
  // answered from a tuning database has no calls per repetition to tell: 0 iterations).
  t.median = g["median"].number(0);
  t.min = g["min"].number(0);
  t.max = g["max"].number(0);
  t.stddev = g["stddev"].number(0);
  t.reps = int(g["reps"].integer(1, kIntMax));
  t.iterations = g["iterations"].integer(0, kInt64Max);
  t.noisy = g["noisy"].boolean();
  if (g.has("samples")) {
    const JsonReader samples = g["samples"];
    for (std::size_t i = 0; i < samples.size(); ++i) t.samples.push_back(samples[i].number(0));
  }
  return t;
}

Result result_from(const JsonReader& rg) {
  rg.only_keys({"impl", "status", "why", "detail", "time_ms", "gflops", "error", "workspace_bytes",
                "deterministic", "family", "strategy"});
  Result r;
  r.impl = rg["impl"].string();
  auto status = parse_status(rg["status"].string());
  if (!status) rg["status"].fail("unknown status");
  r.status = *status;
  r.why = rg["why"].string();
  r.detail = rg["detail"].string();
  if (rg.has("time_ms")) r.time = time_from(rg["time_ms"]);
  r.gflops = rg["gflops"].number(0);
  if (rg.has("error")) r.error = error_from(rg["error"]);
  r.workspace_bytes = std::size_t(rg["workspace_bytes"].unsigned_integer(SIZE_MAX));
  r.deterministic = rg["deterministic"].boolean();
  if (rg.has("family")) r.family = rg["family"].string();
  if (rg.has("strategy")) r.strategy = rg["strategy"].string();
  return r;
}

}  // namespace

json to_json(const std::optional<Best>& best) {
  if (!best) return nullptr;
  return {{"impl", best->impl},
          {"time_ms", best->time_ms},
          {"runner_up", best->runner_up},
          {"margin", best->margin},
          {"tie", best->tie}};
}

Best best_from_json(const JsonReader& b) {
  b.exact_keys({"impl", "time_ms", "runner_up", "margin", "tie"});
  return Best{b["impl"].string(), b["time_ms"].number(0), b["runner_up"].string(),
              b["margin"].number(), b["tie"].boolean()};
}

void check_runner_up(const JsonReader& at, const Best& best,
                     const std::function<std::optional<double>(const std::string&)>& median_of) {
  if (best.runner_up.empty()) {
    if (best.margin != 0) at["margin"].expected("0 where there is no runner_up");
    if (best.tie) at["tie"].expected("false where there is no runner_up");
    return;
  }
  const std::optional<double> second =
      best.runner_up == best.impl ? std::nullopt : median_of(best.runner_up);
  if (!second) {
    at["runner_up"].fail("\"" + best.runner_up + "\" is not another of the ranked results");
  }
  if (best.time_ms > 0) {
    const double margin = *second / best.time_ms - 1.0;
    if (std::abs(best.margin - margin) > 1e-9 * std::max(1.0, std::abs(margin))) {
      char text[32];
      std::snprintf(text, sizeof text, "%.4g", margin);
      at["margin"].expected("the runner_up's median over the best's, less 1 (" + std::string(text) +
                            ")");
    }
  }
  if (!best.tie && best.margin < 0) {
    at["margin"].expected("a runner_up no faster than the best, unless they tie");
  }
}

namespace {

// A case's best is one of its ok results with a time (choose_best, select_best), and has its
// median: a best that names another is not what any run chose.
void check_best(const JsonReader& at, const Best& best, const std::vector<Result>& results) {
  const auto chosen = std::find_if(results.begin(), results.end(), [&](const Result& r) {
    return r.impl == best.impl && r.status == Status::ok && r.time;
  });
  if (chosen == results.end()) {
    at["impl"].fail("\"" + best.impl + "\" is not among the case's ok results with a time_ms");
  }
  if (best.time_ms != chosen->time->median) {
    at["time_ms"].expected("the time_ms.median of \"" + best.impl + "\"'s result (" +
                           brief(chosen->time->median) + ")");
  }
  check_runner_up(at, best, [&](const std::string& impl) -> std::optional<double> {
    for (const Result& r : results) {
      if (r.impl == impl && r.status == Status::ok && r.time) return r.time->median;
    }
    return std::nullopt;
  });
}

}  // namespace

Result result_from_json(const json& doc, const std::string& path) {
  return result_from(JsonReader(doc, path, JsonDialect::document));
}

json to_json(const Report& report) {
  json cases = json::array();
  bool timed = false;
  for (const Case& c : report.cases) {
    cases.push_back(to_json(c));
    timed = timed || c.best.has_value();
  }
  json doc = {{"schema", "convbp.report/1"},
              {"complete", report.complete},
              {"context", report.context},
              {"settings", report.settings},
              {"cases", cases}};
  // Derived from the cases, for readers (scripts/plot.py); convbp recomputes it when it reads.
  if (timed) doc["network"] = network_json(report);
  return doc;
}

Report report_from_json(const json& doc) {
  const JsonReader root(doc, JsonDialect::document);
  if (root["schema"].string() != "convbp.report/1") {
    root["schema"].fail("expected \"convbp.report/1\"");
  }
  // As strict as the tuning reader: an unknown key is an error, here and in every case and
  // result, not data dropped. (context and settings are kept as written; merge checks the
  // parts it reads.)
  // "network" is derived from the cases and recomputed, but must be what convbp writes: an array
  // of totals (an object, one total, before totals were per dtype and layout).
  root.only_keys({"schema", "complete", "context", "settings", "cases", "network"});
  if (root.contains("network") && !root["network"].raw().is_array() &&
      !root["network"].raw().is_object()) {
    root["network"].expected("an array of network totals");
  }
  Report report;
  report.complete = root["complete"].boolean();
  // Kept as written, but objects, as every run writes them (merge reads parts of both).
  for (const char* key : {"context", "settings"}) {
    if (!root[key].raw().is_object()) root[key].expected("an object");
  }
  report.context = root["context"].raw();
  report.settings = root["settings"].raw();
  const JsonReader cases = root["cases"];
  for (std::size_t i = 0; i < cases.size(); ++i) {
    const JsonReader g = cases[i];
    g.only_keys(
        {"name", "problem", "pass", "count", "flops", "seed", "results", "best", "interrupted"});
    Case c;
    c.name = g["name"].string();
    try {
      c.problem = ConvProblem::parse_key(g["problem"].string());
    } catch (const InvalidProblem& e) {
      g["problem"].fail(e.what());
    }
    auto pass = parse_pass(g["pass"].string());
    if (!pass) g["pass"].fail("expected \"data\" or \"weights\"");
    c.pass = *pass;
    c.count = int(g["count"].integer(1, kIntMax));
    c.flops = g["flops"].number(0);
    c.seed = g["seed"].unsigned_integer();
    const JsonReader results = g["results"];
    for (std::size_t k = 0; k < results.size(); ++k) c.results.push_back(result_from(results[k]));
    if (g.has("best")) {
      c.best = best_from_json(g["best"]);
      check_best(g["best"], *c.best, c.results);
    }
    if (g.contains("interrupted")) c.interrupted = g["interrupted"].boolean();
    c.complete = !c.interrupted;
    report.cases.push_back(std::move(c));
  }
  return report;
}

Report read_report(const std::string& path) {
  const json doc = read_json_file(path, "report");  // JsonInputError names the file
  try {
    return report_from_json(doc);
  } catch (const std::runtime_error& e) {
    throw std::runtime_error(printable(path) + ": " + e.what());
  }
}

namespace {

std::string fixed(double v, int digits) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", digits, v);
  return buf;
}

using Align = TextTable::Align;

// The mark of an interrupted case in the tables, and the footnote that says what it means.
constexpr const char* kInterruptedMark = " *";

std::string interrupted_footnote(const Report& report) {
  const bool any = std::any_of(report.cases.begin(), report.cases.end(),
                               [](const Case& c) { return c.interrupted; });
  return any ? "* interrupted: the run was stopped during this case; only the implementations "
               "that ran before are in it, and its best is the best of those\n"
             : "";
}

}  // namespace

std::string winners_table(const Report& report, const std::vector<std::string>& baselines) {
  std::vector<std::vector<std::string>> rows;
  std::vector<std::string> used;  // the baselines the rows compare with, for the header
  for (const Case& c : report.cases) {
    std::vector<std::string> row{c.name + (c.interrupted ? kInterruptedMark : ""),
                                 to_string(c.pass),
                                 "-",
                                 "-",
                                 "-",
                                 "-",
                                 ""};
    if (c.best) {
      row[2] = c.best->impl;
      row[3] = fixed(c.best->time_ms, 3);
      row[4] = fixed(c.flops / (c.best->time_ms * 1e6), 1);
      bool compared = false;
      for (const std::string& baseline : baselines) {
        for (const Result& r : c.results) {
          if (compared || r.impl != baseline || r.status != Status::ok || !r.time) continue;
          row[5] = fixed(r.time->median / c.best->time_ms, 2) + "x";
          compared = true;
          if (std::find(used.begin(), used.end(), baseline) == used.end()) used.push_back(baseline);
        }
      }
      if (c.best->tie) row[6] = "tie with " + c.best->runner_up;
    } else {
      row[6] = "no correct implementation";
    }
    rows.push_back(std::move(row));
  }
  if (used.empty() && !baselines.empty()) used.push_back(baselines.front());
  std::string speedup;
  for (const std::string& baseline : used) speedup += (speedup.empty() ? "vs " : " or ") + baseline;
  TextTable table({{}, {}, {}, {Align::right}, {Align::right}, {Align::right}, {}});
  table.add({"case", "pass", "best", "ms", "GF/s", speedup});
  for (auto& row : rows) table.add(std::move(row));
  return table.str() + interrupted_footnote(report);
}

std::string results_table(const Report& report) {
  std::string out;
  for (const Case& c : report.cases) {
    out += c.name + (c.interrupted ? kInterruptedMark : "") + "  " + to_string(c.pass) + "  " +
           c.problem.key() + "\n";
    std::vector<const Result*> sorted;
    for (const Result& r : c.results) sorted.push_back(&r);
    std::stable_sort(sorted.begin(), sorted.end(), [](const Result* a, const Result* b) {
      if ((a->time.has_value()) != (b->time.has_value())) return a->time.has_value();
      return a->time && b->time && a->time->median < b->time->median;
    });
    // impl, status, time, GF/s, error; the widths of the table before it was a TextTable. A
    // result without a time runs on after its status: its error, and why.
    TextTable table({{}, {Align::left, 9}, {Align::right, 13}, {Align::right, 11}, {}}, "  ");
    for (const Result* r : sorted) {
      std::string last;  // error, then why
      if (r->error) {
        char text[48];
        std::snprintf(text, sizeof text, "max_rel %.1e", r->error->max_rel);
        last = text;
      }
      if (r->status != Status::ok && !r->why.empty()) last += (last.empty() ? "" : "  ") + r->why;
      if (r->time) {
        table.add({r->impl, to_string(r->status), fixed(r->time->median, 3) + " ms",
                   fixed(r->gflops, 1) + " GF/s", last});
      } else {
        table.add({r->impl, to_string(r->status), last});
      }
    }
    out += table.str();
  }
  return out + interrupted_footnote(report);
}

std::string validation_table(const Report& report) {
  TextTable table({{}, {Align::left, 7}, {Align::right}, {Align::right}, {}});
  table.add({"case", "pass", "ok", "unsupported", "failed"});
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
    table.add({c.name + (c.interrupted ? kInterruptedMark : ""), to_string(c.pass),
               std::to_string(ok), std::to_string(unsupported), failed.empty() ? "-" : failed});
  }
  return table.str() + interrupted_footnote(report);
}

}  // namespace convbp
