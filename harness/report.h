// Reports (schema convbp.report/1, docs/report.md): what a run measured, case by case.
#pragma once

#include <functional>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "json_input.h"
#include "problem.h"
#include "timing.h"
#include "validate.h"

namespace convbp {

// Only `ok` results can be best. `crashed`: the candidate, run in a child process (runner.h,
// RunOptions::isolate), killed it or made it exit without a result.
enum class Status { ok, unsupported, incorrect, error, timeout, crashed };
const char* to_string(Status status);
std::optional<Status> parse_status(std::string_view text);

struct Result {
  std::string impl;
  std::string family;  // the selected family this member came from (Backward::members); "" if none
  // The network-total strategy the implementation declared (Backward::strategy()); "" if none.
  std::string strategy;
  Status status = Status::ok;
  std::string why;     // reason for any status but ok
  std::string detail;  // what the implementation ran (a library's kernel name, a caveat)
  std::optional<TimeStats> time;
  double gflops = 0;  // direct-convolution flops / median time
  std::optional<ErrorStats> error;
  std::size_t workspace_bytes = 0;
  bool deterministic = true;
};

struct Best {
  std::string impl;
  double time_ms = 0;
  std::string runner_up;  // empty when only one result was ok
  double margin = 0;      // runner_up time / best time - 1
  bool tie = false;       // within the noise of the runner-up; settled by determinism, workspace
};

struct Case {
  std::string name;  // suite:layer
  ConvProblem problem;
  Pass pass = Pass::data;
  int count = 1;
  double flops = 0;
  std::uint64_t seed = 0;
  std::vector<Result> results;
  std::optional<Best> best;
  // Every implementation ran to a lasting answer (as Report::complete, for one case). False
  // when stopped by a signal, or when one could not run for a passing reason (a lost CUDA
  // context): such a case is never stored in a tuning database. Not saved in reports (a case
  // read from one is complete unless interrupted).
  bool complete = true;
  // Stopped by a signal (SIGINT, SIGTERM) before every selected implementation ran: `results`
  // hold those that ran, and `best` is the best of them, not of all. Saved in reports as
  // "interrupted": true (absent when false); read back as an incomplete case.
  bool interrupted = false;
};

struct Report {
  nlohmann::json context = nlohmann::json::object();   // machine, libraries, build
  nlohmann::json settings = nlohmann::json::object();  // config, timing, threads, filters
  std::vector<Case> cases;
  bool complete = true;  // false when the run was interrupted
};

nlohmann::json to_json(const Report& report);
// Throws std::runtime_error naming the JSON path of the first bad field.
Report report_from_json(const nlohmann::json& doc);

// A best, as in a report's cases[].best and a tuning database's entries[].best; null when none.
nlohmann::json to_json(const std::optional<Best>& best);
// Throws JsonInputError naming the JSON path of the first bad field.
Best best_from_json(const JsonReader& value);
// Throws JsonInputError at `at` (the best's JSON) unless its runner_up, margin and tie are what
// choose_best and select_best write: runner_up empty with margin 0 and no tie, or the name of
// another ranked result, `median_of` giving its median (nullopt when there is no such result),
// with margin = its median / best.time_ms - 1, not negative unless a tie reordered the two.
void check_runner_up(const JsonReader& at, const Best& best,
                     const std::function<std::optional<double>(const std::string&)>& median_of);

// One result, as in a report's results[] (an isolated candidate's child sends it this way).
nlohmann::json to_json(const Result& result);
// Throws std::runtime_error naming the JSON path (under `path`) of the first bad field.
Result result_from_json(const nlohmann::json& doc, const std::string& path = "$");

// Throws std::runtime_error naming the file, and the JSON path of the first bad field. Besides
// each field's type and range, a report must be consistent as convbp writes it: a best that
// names an ok result with a time and has its median, times that are finite and not negative.
Report read_report(const std::string& path);

// The winners table: one row per case with the best implementation, its time and GF/s, and
// its speedup over the first of `baselines` with an ok result in the case (the CLI passes the
// implementations with Roles::baseline, one per device: im2col_gemm.per_sample on the CPU,
// cudnn.algo0.fp32 on the GPU).
std::string winners_table(const Report& report, const std::vector<std::string>& baselines);

// Every result of every case, correct ones fastest first, then the others with their status.
std::string results_table(const Report& report);

// For validate-only reports: per case, how many implementations were ok, and which were not.
std::string validation_table(const Report& report);

}  // namespace convbp
