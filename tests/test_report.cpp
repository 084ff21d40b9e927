#include <gtest/gtest.h>

#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <functional>
#include <thread>

#include "io.h"
#include "merge.h"
#include "report.h"
#include "selection.h"
#include "timing.h"

namespace convbp {
namespace {

Report sample_report() {
  Report report;
  report.context = {{"cpu", {{"model", "test"}}}, {"threads", 2}};
  report.settings = {{"config", "configs/smoke.json"}};
  report.complete = false;
  Case c;
  c.name = "smoke:odd";
  c.problem = ConvProblem::parse_key("n3_c5_h17_w9_k7_r2_s5_st2x1_pad1x0x2x1_dil1x2_g1");
  c.pass = Pass::weights;
  c.count = 2;
  c.flops = c.problem.flops();
  c.seed = 42;
  Result ok;
  ok.impl = "im2col_gemm.batched";
  ok.detail = "threads";
  ok.time = TimeStats{1.5, 1.25, 2.0, 0.125, 5, 100, false, {1.25, 1.5, 2.0}};
  ok.gflops = 3.5;
  ok.error = ErrorStats{1e-6, 2e-7, 1e-7, 1e-5, "dw", 12, 0, false, ""};
  ok.workspace_bytes = 4096;
  ok.deterministic = false;
  Result skipped;
  skipped.impl = "winograd.f2x3";
  skipped.status = Status::unsupported;
  skipped.why = "needs 3x3 kernel, stride 1, dilation 1";
  c.results = {ok, skipped};
  c.best = choose_best(c.results);
  report.cases = {c};
  return report;
}

TEST(Report, WriteReadRoundTripKeepsEveryField) {
  const Report original = sample_report();
  const std::string path = ::testing::TempDir() + "/round_trip.json";
  write_json_atomic(path, to_json(original));
  const Report back = read_report(path);
  EXPECT_EQ(to_json(back), to_json(original));
  ASSERT_EQ(back.cases.size(), 1u);
  EXPECT_EQ(back.cases[0].problem, original.cases[0].problem);
  EXPECT_EQ(back.cases[0].results[1].status, Status::unsupported);
  EXPECT_EQ(back.cases[0].results[0].time->median, 1.5);
  EXPECT_FALSE(back.complete);
  EXPECT_EQ(back.cases[0].best->impl, "im2col_gemm.batched");
}

TEST(Report, AtomicWriteLeavesNoTempFileAndReplacesTheOldReport) {
  const std::string dir = ::testing::TempDir() + "/atomic";
  std::filesystem::create_directories(dir);
  const std::string path = dir + "/r.json";
  std::ofstream(path) << "old";
  write_json_atomic(path, to_json(sample_report()));
  int files = 0;
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    ++files;
    EXPECT_EQ(entry.path().filename(), "r.json");
  }
  EXPECT_EQ(files, 1);
  EXPECT_NO_THROW(read_report(path));
}

TEST(Report, AnUnwritableDirectoryIsAClearError) {
  try {
    write_json_atomic("/nonexistent_dir/r.json", to_json(sample_report()));
    ADD_FAILURE() << "wrote into a missing directory";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("does not exist"), std::string::npos) << e.what();
  }
}

TEST(Report, ABrokenReportNamesTheJsonPath) {
  nlohmann::json doc = to_json(sample_report());
  doc["cases"][0]["results"][0]["status"] = "fast";
  try {
    report_from_json(doc);
    ADD_FAILURE() << "accepted an unknown status";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("$.cases[0].results[0].status"), std::string::npos)
        << e.what();
  }
  doc = to_json(sample_report());
  doc["cases"][0].erase("pass");
  EXPECT_THROW(report_from_json(doc), std::runtime_error);
}

// The message report_from_json gives for the sample report with `edit` applied, "" if none.
std::string error_of_edited_report(const std::function<void(nlohmann::json&)>& edit) {
  nlohmann::json doc = to_json(sample_report());
  edit(doc);
  try {
    report_from_json(doc);
    return "";
  } catch (const std::runtime_error& e) {
    return e.what();
  }
}

// The sample's second result made an ok "naive" at 1.2 ms, faster than the best (1.5 ms), and
// named its runner-up with `margin`: what no run writes.
void faster_runner_up(nlohmann::json& d, double margin) {
  nlohmann::json& c = d["cases"][0];
  c["results"][1] = c["results"][0];
  c["results"][1]["impl"] = "naive";
  c["results"][1]["time_ms"]["median"] = 1.2;
  c["best"]["runner_up"] = "naive";
  c["best"]["margin"] = margin;
}

// What no run writes is an error at its path, as the tuning reader's rules have it.
TEST(Report, AnInconsistentReportIsAnErrorAtItsPath) {
  const std::vector<std::pair<std::function<void(nlohmann::json&)>, std::string>> cases = {
      {[](nlohmann::json& d) { d["cases"][0]["best"]["impl"] = "winograd.f2x3"; },
       "$.cases[0].best.impl: \"winograd.f2x3\" is not among the case's ok results"},
      {[](nlohmann::json& d) { d["cases"][0]["best"]["impl"] = "nosuch"; },
       "$.cases[0].best.impl: \"nosuch\" is not among"},
      {[](nlohmann::json& d) { d["cases"][0]["results"][0]["time_ms"] = nullptr; },
       "$.cases[0].best.impl: \"im2col_gemm.batched\" is not among the case's ok results with "
       "a time_ms"},
      {[](nlohmann::json& d) { d["cases"][0]["best"]["time_ms"] = 1.25; },
       "$.cases[0].best.time_ms: expected the time_ms.median of \"im2col_gemm.batched\"'s "
       "result (1.5), got 1.25"},
      {[](nlohmann::json& d) { d["cases"][0]["best"]["runner_up"] = "winograd.f2x3"; },
       "$.cases[0].best.runner_up: \"winograd.f2x3\" is not another of the ranked results"},
      {[](nlohmann::json& d) { d["cases"][0]["best"]["tie"] = true; },
       "$.cases[0].best.tie: expected false where there is no runner_up, got true"},
      {[](nlohmann::json& d) { faster_runner_up(d, 0.2); },
       "$.cases[0].best.margin: expected the runner_up's median over the best's, less 1 (-0.2), "
       "got 0.2"},
      {[](nlohmann::json& d) { faster_runner_up(d, 1.2 / 1.5 - 1); },
       "$.cases[0].best.margin: expected a runner_up no faster than the best, unless they tie"},
      {[](nlohmann::json& d) { d["cases"][0]["results"][0]["time_ms"]["median"] = -1.5; },
       "$.cases[0].results[0].time_ms.median: expected a number >= 0, got -1.5"},
      {[](nlohmann::json& d) { d["cases"][0]["results"][0]["time_ms"]["min"] = NAN; },
       "$.cases[0].results[0].time_ms.min: expected a number >= 0"},
      {[](nlohmann::json& d) { d["cases"][0]["results"][0]["time_ms"]["stddev"] = -0.1; },
       "$.cases[0].results[0].time_ms.stddev: expected a number >= 0"},
      {[](nlohmann::json& d) { d["cases"][0]["results"][0]["time_ms"]["samples"][1] = -1; },
       "$.cases[0].results[0].time_ms.samples[1]: expected a number >= 0"},
      {[](nlohmann::json& d) { d["cases"][0]["results"][0]["time_ms"]["reps"] = 0; },
       "$.cases[0].results[0].time_ms.reps: expected an integer from 1 to 2147483647, got 0"},
      {[](nlohmann::json& d) { d["cases"][0]["results"][0]["gflops"] = -3.5; },
       "$.cases[0].results[0].gflops: expected a number >= 0, got -3.5"},
      {[](nlohmann::json& d) { d["cases"][0]["flops"] = -1.0; },
       "$.cases[0].flops: expected a number >= 0, got -1.0"},
      {[](nlohmann::json& d) { d["network"] = 3; },
       "$.network: expected an array of network totals, got 3"},
      {[](nlohmann::json& d) { d["note"] = "mine"; }, "$.note: unknown key"},
      {[](nlohmann::json& d) { d["context"] = nullptr; },
       "$.context: expected an object, got null"},
      {[](nlohmann::json& d) { d["settings"] = "x"; }, "$.settings: expected an object, got \"x\""},
      {[](nlohmann::json& d) { d["cases"][0]["results"][1]["speed"] = 1; },
       "$.cases[0].results[1].speed: unknown key"},
      {[](nlohmann::json& d) { d["cases"][0]["interrupted"] = "yes"; },
       "$.cases[0].interrupted: expected true or false"},
  };
  for (const auto& [edit, message] : cases) {
    const std::string error = error_of_edited_report(edit);
    EXPECT_NE(error.find(message), std::string::npos)
        << "wanted: " << message << "\ngot: " << error;
  }
}

// What convbp writes reads back: a validate report (ok results without a time, no best), an
// incomplete one, crashed and timed-out results, an interrupted case, a merged report, and the
// network total as it was written before totals were per dtype and layout (one object).
TEST(Report, EveryKindOfReportConvbpWritesReadsBack) {
  Report report = sample_report();
  Case validated = report.cases[0];
  for (Result& r : validated.results) r.time.reset();
  validated.best.reset();
  Case isolated = report.cases[0];
  isolated.results[1].status = Status::crashed;
  isolated.results[1].why = "killed by SIGSEGV (Segmentation fault)";
  isolated.results.push_back(isolated.results[1]);
  isolated.results.back().impl = "winograd.f4x3";
  isolated.results.back().status = Status::timeout;
  Case interrupted = report.cases[0];
  interrupted.results.pop_back();
  interrupted.interrupted = true;
  interrupted.complete = false;
  report.cases = {validated, isolated, interrupted};
  report.settings["merged"] = {
      {{"file", "a.json"}, {"shard", "0/2"}, {"host", "vm"}, {"cases", 3}, {"complete", false}}};
  const nlohmann::json doc = to_json(report);
  ASSERT_TRUE(doc["network"].is_array());
  EXPECT_EQ(to_json(report_from_json(doc)), doc);
  const Report back = report_from_json(doc);
  EXPECT_FALSE(back.cases[0].best);
  EXPECT_FALSE(back.cases[1].interrupted);
  EXPECT_TRUE(back.cases[2].interrupted);
  EXPECT_FALSE(back.cases[2].complete);
  nlohmann::json old = doc;
  old["network"] = doc["network"][0];
  EXPECT_NO_THROW(report_from_json(old));
  nlohmann::json none = doc;
  none.erase("network");
  EXPECT_NO_THROW(report_from_json(none));
  // The reports kept in the repository (results/) read too.
  for (const char* kept : {"default-reference.json", "torchvision_resnet50-reference.json"}) {
    EXPECT_NO_THROW(read_report(std::string(CONVBP_SOURCE_DIR) + "/results/" + kept)) << kept;
  }
}

// A case cut short by a signal says so in the report, in the tables, and through a merge.
TEST(Report, AnInterruptedCaseIsMarkedInTheReportTheTablesAndTheMerge) {
  Report report = sample_report();
  Case whole = report.cases[0];
  whole.name = "smoke:whole";
  report.cases[0].interrupted = true;
  report.cases.push_back(whole);
  const nlohmann::json doc = to_json(report);
  EXPECT_EQ(doc["cases"][0]["interrupted"], true);
  EXPECT_FALSE(doc["cases"][1].contains("interrupted")) << "absent on a finished case";
  const Report back = report_from_json(doc);
  EXPECT_TRUE(back.cases[0].interrupted);
  EXPECT_FALSE(back.cases[1].interrupted);
  for (const std::string& table :
       {winners_table(back, {"naive"}), results_table(back), validation_table(back)}) {
    EXPECT_NE(table.find("smoke:odd *"), std::string::npos) << table;
    EXPECT_EQ(table.find("smoke:whole *"), std::string::npos) << table;
    EXPECT_NE(table.find("\n* interrupted: the run was stopped during this case"),
              std::string::npos)
        << table;
  }
  EXPECT_EQ(winners_table(report_from_json(to_json(sample_report())), {"naive"}).find("*"),
            std::string::npos)
      << "no mark nor footnote without an interrupted case";
  std::vector<std::string> notes;
  const Report merged = merge_reports({{"a.json", back}}, OnDuplicate::error, notes);
  EXPECT_TRUE(merged.cases[0].interrupted);
  EXPECT_TRUE(report_from_json(to_json(merged)).cases[0].interrupted);
}

TEST(Report, WinnersTableShowsBestTimeGflopsAndSpeedupOverTheBaseline) {
  Report report = sample_report();
  Result baseline;
  baseline.impl = "im2col_gemm.per_sample";
  baseline.time = TimeStats{3.0, 3.0, 3.0, 0.0, 5, 1, false, {3.0}};
  report.cases[0].results.push_back(baseline);
  report.cases[0].best = choose_best(report.cases[0].results);
  const std::string table = winners_table(report, {"im2col_gemm.per_sample"});
  EXPECT_NE(table.find("smoke:odd"), std::string::npos) << table;
  EXPECT_NE(table.find("im2col_gemm.batched"), std::string::npos) << table;
  EXPECT_NE(table.find("2.00x"), std::string::npos) << table;
  EXPECT_NE(table.find("1.500"), std::string::npos) << table;
}

// A GPU suite has no CPU baseline result: each case compares with the first baseline it has.
TEST(Report, WinnersTableComparesWithTheBaselineOfTheDeviceThatRan) {
  Report report = sample_report();
  Result gpu_baseline;
  gpu_baseline.impl = "cudnn.algo0.fp32";
  gpu_baseline.time = TimeStats{6.0, 6.0, 6.0, 0.0, 5, 1, false, {6.0}};
  report.cases[0].results.push_back(gpu_baseline);
  report.cases[0].best = choose_best(report.cases[0].results);
  const std::string table = winners_table(report, {"im2col_gemm.per_sample", "cudnn.algo0.fp32"});
  EXPECT_NE(table.find("vs cudnn.algo0.fp32"), std::string::npos) << table;
  EXPECT_NE(table.find("4.00x"), std::string::npos) << table;
}

}  // namespace
}  // namespace convbp

namespace convbp {
namespace {

// A device plan times itself (CUDA events) and may spend more wall time than the figure it
// returns (back-to-back calls): the figure is what is recorded, with or without a warm-up.
TEST(Timing, ASelfTimedCallsOwnFigureIsTheTimeWithOrWithoutAWarmup) {
  for (int warmup : {0, 1}) {
    TimingSettings timing;
    timing.warmup = warmup;
    timing.reps = 3;
    timing.min_rep_seconds = 0.001;
    timing.max_seconds_per_case = 1;
    int calls = 0;
    const TimeStats t = measure(
        "self-timed",
        [&] {
          ++calls;
          std::this_thread::sleep_for(std::chrono::microseconds(300));
          return 0.125;  // ms, as if from CUDA events
        },
        timing);
    EXPECT_EQ(t.median, 0.125) << "warmup " << warmup;
    EXPECT_EQ(t.reps, 3) << "warmup " << warmup;
    // Repetitions are sized by the wall time a call costs (about 0.3 ms, read off one more
    // untimed call), not by the figure it reports: a few calls per 1 ms repetition, not eight.
    EXPECT_LE(t.iterations, 4) << "warmup " << warmup;
    EXPECT_EQ(calls, warmup + 1 + 3 * t.iterations) << "warmup " << warmup;
  }
}

}  // namespace
}  // namespace convbp
