// Isolation (RunOptions::isolate, docs/isolation.md): candidates that crash or hang on one shape,
// registered here with add_backward, are recorded as `crashed` (with the signal) and `timeout`,
// and the other candidates of the case and the later cases are still measured, correctly, into a
// report and a tuning database that read back.
#include <gtest/gtest.h>
#include <omp.h>

#include <chrono>
#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <thread>

#include "isolate.h"
#include "runner.h"
#include "temp_dir.h"
#include "tune.h"
#include "tuning.h"

namespace convbp {
namespace {

// The shape the misbehaving candidates fail on: 3 input channels. Every other shape they run
// correctly (the per-sample im2col+GEMM).
constexpr int kBadChannels = 3;

enum class Misbehaviour { segfault, abort, hang };

class MisbehavingPlan final : public Plan {
 public:
  MisbehavingPlan(Misbehaviour how) : how_(how) {}
  void run(const Tensors&, void*) override {
    switch (how_) {
      case Misbehaviour::segfault:
        // The default action, as when no handler is installed: under ASan its own SEGV handler
        // would report and abort, and the child would die of SIGABRT instead.
        std::signal(SIGSEGV, SIG_DFL);
        std::raise(SIGSEGV);
        break;
      case Misbehaviour::abort:
        std::abort();
      case Misbehaviour::hang:
        for (;;) std::this_thread::sleep_for(std::chrono::seconds(1));
    }
  }
  std::size_t workspace_bytes() const override { return 0; }

 private:
  Misbehaviour how_;
};

class Misbehaving final : public Backward {
 public:
  Misbehaving(std::string name, Misbehaviour how) : name_(std::move(name)), how_(how) {}
  std::string name() const override { return name_; }
  Support supports(const ConvProblem&, Pass) const override { return Support::yes(); }
  std::unique_ptr<Plan> plan(const ConvProblem& pr, Pass pass) const override {
    if (pr.c == kBadChannels) return std::make_unique<MisbehavingPlan>(how_);
    return find_backward("im2col_gemm.per_sample")->plan(pr, pass);
  }

 private:
  std::string name_;
  Misbehaviour how_;
};

// The size of the OpenMP team its plan gets, in `detail`; runs the per-sample im2col+GEMM.
class TeamPlan final : public Plan {
 public:
  TeamPlan(std::unique_ptr<Plan> inner, int team) : inner_(std::move(inner)), team_(team) {}
  void run(const Tensors& t, void* ws) override { inner_->run(t, ws); }
  std::size_t workspace_bytes() const override { return inner_->workspace_bytes(); }
  std::string detail() const override { return "team of " + std::to_string(team_); }

 private:
  std::unique_ptr<Plan> inner_;
  int team_;
};

class TeamReporter final : public Backward {
 public:
  std::string name() const override { return "test.isolation.team"; }
  Support supports(const ConvProblem&, Pass) const override { return Support::yes(); }
  std::unique_ptr<Plan> plan(const ConvProblem& pr, Pass pass) const override {
    int team = 0;
#pragma omp parallel
    {
#pragma omp single
      team = omp_get_num_threads();
    }
    return std::make_unique<TeamPlan>(find_backward("im2col_gemm.per_sample")->plan(pr, pass),
                                      team);
  }
};

void register_test_impls() {
  static const bool once = [] {
    add_backward(std::make_unique<Misbehaving>("test.isolation.segfault", Misbehaviour::segfault));
    add_backward(std::make_unique<Misbehaving>("test.isolation.abort", Misbehaviour::abort));
    add_backward(std::make_unique<Misbehaving>("test.isolation.hang", Misbehaviour::hang));
    add_backward(std::make_unique<TeamReporter>());
    return true;
  }();
  (void)once;
}

// Two layers: the first with the bad channel count, the second without; the data pass only.
Suite two_layers() {
  Suite suite;
  suite.name = "isolation";
  suite.file = "<test>";
  suite.passes = {Pass::data};
  suite.impls = {"test.isolation.segfault", "test.isolation.abort", "test.isolation.hang",
                 "im2col_gemm.per_sample"};
  suite.timing.warmup = 1;
  suite.timing.reps = 2;
  suite.timing.max_seconds_per_case = 0.5;
  suite.layers = {
      {"bad", ConvProblem::parse_key("n2_c3_h9_w7_k4_r3_s3_st1x1_pad1x1x1x1_dil1x1_g1"), 1},
      {"good", ConvProblem::parse_key("n2_c4_h8_w9_k5_r3_s3_st1x1_pad1x1x1x1_dil1x1_g1"), 1}};
  return suite;
}

RunOptions isolated(double timeout_s) {
  RunOptions options;
  options.isolate = true;
  options.candidate_timeout_s = timeout_s;
  options.seed = 3;
  return options;
}

const Result& result_of(const Case& c, const std::string& impl) {
  for (const Result& r : c.results) {
    if (r.impl == impl) return r;
  }
  ADD_FAILURE() << c.name << ": no result for " << impl;
  static const Result none;
  return none;
}

std::string temp_path(const std::string& name) {
  const std::filesystem::path dir = test::test_temp_dir("isolation");
  std::filesystem::remove(dir / name);
  return (dir / name).string();
}

// The statuses expected of the suite above, checked on a report as measured or as read back.
void expect_crash_hang_and_the_rest_measured(const Report& report) {
  ASSERT_EQ(report.cases.size(), 2u);
  const Case& bad = report.cases[0];
  const Result& segfault = result_of(bad, "test.isolation.segfault");
  EXPECT_EQ(segfault.status, Status::crashed);
  EXPECT_NE(segfault.why.find("killed by SIGSEGV"), std::string::npos) << segfault.why;
  const Result& aborted = result_of(bad, "test.isolation.abort");
  EXPECT_EQ(aborted.status, Status::crashed);
  EXPECT_NE(aborted.why.find("killed by SIGABRT"), std::string::npos) << aborted.why;
  const Result& hang = result_of(bad, "test.isolation.hang");
  EXPECT_EQ(hang.status, Status::timeout);
  EXPECT_NE(hang.why.find("no result within 2 s"), std::string::npos) << hang.why;
  // The candidate after them in the same case, and every candidate of the next case.
  const Result& after = result_of(bad, "im2col_gemm.per_sample");
  EXPECT_EQ(after.status, Status::ok) << after.why;
  ASSERT_TRUE(after.time && after.error);
  EXPECT_TRUE(after.error->ok() && after.error->max_rel <= after.error->tolerance);
  ASSERT_TRUE(bad.best);
  EXPECT_EQ(bad.best->impl, "im2col_gemm.per_sample");  // crashed and timeout never win
  const Case& good = report.cases[1];
  ASSERT_EQ(good.results.size(), 4u);
  for (const Result& r : good.results) {
    EXPECT_EQ(r.status, Status::ok) << r.impl << ": " << r.why;
    EXPECT_TRUE(r.time.has_value()) << r.impl;
    ASSERT_TRUE(r.error.has_value()) << r.impl;
    EXPECT_LE(r.error->max_rel, r.error->tolerance) << r.impl;
  }
  EXPECT_TRUE(good.best);
}

TEST(Isolation, CrashingAndHangingCandidatesAreRecordedAndTheSuiteGoesOn) {
  register_test_impls();
  const std::string path = temp_path("report.json");
  int saves = 0;
  const Report report = run_suite(two_layers(), isolated(2), [&](const Report& partial) {
    write_json_atomic(path, to_json(partial));
    ++saves;
  });
  EXPECT_TRUE(report.complete);
  EXPECT_EQ(saves, 1);  // after the crashing case: the report the run saves keeps it
  expect_crash_hang_and_the_rest_measured(report);
  EXPECT_EQ(report.settings["isolate"], true);
  EXPECT_EQ(report.settings["candidate_timeout_s"], 2.0);

  // The report saved after the first case reads back with its crash and its timeout.
  const Report saved = read_report(path);
  ASSERT_EQ(saved.cases.size(), 1u);
  EXPECT_EQ(result_of(saved.cases[0], "test.isolation.segfault").status, Status::crashed);
  EXPECT_EQ(result_of(saved.cases[0], "test.isolation.hang").status, Status::timeout);
  // The whole report too, and `convbp show --all` lists the crash with its signal.
  write_json_atomic(path, to_json(report));
  expect_crash_hang_and_the_rest_measured(read_report(path));
  const std::string table = results_table(read_report(path));
  EXPECT_NE(table.find("crashed"), std::string::npos) << table;
  EXPECT_NE(table.find("killed by SIGSEGV"), std::string::npos) << table;
}

TEST(Isolation, TuningDatabaseKeepsCrashedAndTimedOutCandidatesAsRejected) {
  register_test_impls();
  const std::string db = temp_path("tuning.json");
  const TuneOutcome first = tune_suite(two_layers(), isolated(2), {db, {}, false});
  EXPECT_EQ(first.measured, 2);
  expect_crash_hang_and_the_rest_measured(first.report);

  const TuningDb stored = read_tuning_db(db);
  ASSERT_EQ(stored.entry_count(), 2u);
  const TuningEntry* bad = nullptr;
  for (const TuningEntry& e : stored.sections.at(0).entries) {
    if (e.problem.c == kBadChannels) bad = &e;
  }
  ASSERT_NE(bad, nullptr);
  ASSERT_EQ(bad->results.size(), 1u);  // only the correct one is ranked
  EXPECT_EQ(bad->results[0].impl, "im2col_gemm.per_sample");
  ASSERT_TRUE(bad->best);
  EXPECT_EQ(bad->best->impl, "im2col_gemm.per_sample");
  std::map<std::string, Status> rejected;
  for (const RejectedResult& r : bad->rejected) rejected[r.impl] = r.status;
  EXPECT_EQ(rejected["test.isolation.segfault"], Status::crashed);
  EXPECT_EQ(rejected["test.isolation.abort"], Status::crashed);
  EXPECT_EQ(rejected["test.isolation.hang"], Status::timeout);

  // A second tuning is answered by the database, crashes included, without running anything.
  const TuneOutcome second = tune_suite(two_layers(), isolated(2), {db, {}, false});
  EXPECT_EQ(second.measured, 0);
  EXPECT_EQ(second.from_database, 2);
  EXPECT_EQ(result_of(second.report.cases[0], "test.isolation.segfault").status, Status::crashed);
}

// GNU libgomp's thread pool does not survive fork: a child forked from a thread that ran a
// parallel region waits forever at its own first one. The harness forks from a new thread, and
// the child sets the run's thread count again; this proves both, with the parent's pool hot.
TEST(Isolation, ChildRunsOpenMpTeamsOfTheRunsThreadCountAfterTheParentUsedOpenMp) {
  register_test_impls();
  const int saved = threads();
  set_threads(2);
  int parent_team = 0;
#pragma omp parallel
  {
#pragma omp single
    parent_team = omp_get_num_threads();
  }
  ASSERT_EQ(parent_team, 2);
  const ConvProblem pr =
      ConvProblem::parse_key("n4_c8_h12_w12_k8_r3_s3_st1x1_pad1x1x1x1_dil1x1_g1");
  TimingSettings timing;
  timing.reps = 2;
  timing.max_seconds_per_case = 0.5;
  const Case c =
      run_case({"team", pr, Pass::weights, 1},
               {find_backward("test.isolation.team"), find_backward("im2col_gemm.batched")}, timing,
               isolated(30), 0);
  set_threads(saved);
  const Result& team = result_of(c, "test.isolation.team");
  EXPECT_EQ(team.status, Status::ok) << team.why;
  EXPECT_EQ(team.detail, "team of 2");
  const Result& batched = result_of(c, "im2col_gemm.batched");
  EXPECT_EQ(batched.status, Status::ok) << batched.why;
}

TEST(Isolation, StopSignalEndsAHangingCandidateAtOnceAndMarksTheRunIncomplete) {
  register_test_impls();
  std::atomic<bool> stop{false};
  RunOptions options = isolated(600);
  options.stop = &stop;
  options.impls = {"test.isolation.hang"};
  std::thread raiser([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    stop = true;
  });
  const auto start = std::chrono::steady_clock::now();
  const Report report = run_suite(two_layers(), options);
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  raiser.join();
  EXPECT_FALSE(report.complete);
  EXPECT_TRUE(report.cases.empty());  // the only candidate of the first case did not finish
  EXPECT_LT(seconds, 30.0);
}

TEST(Isolation, ChildEndingsAreTold) {
  EXPECT_EQ(run_in_child([] { return std::string("answer"); }, 10).answer, "answer");
  const ChildOutcome exited = run_in_child([]() -> std::string { std::_Exit(3); }, 10);
  EXPECT_EQ(exited.ending, ChildOutcome::Ending::crashed);
  EXPECT_NE(exited.why.find("exited with status 3 without a result"), std::string::npos)
      << exited.why;
  const ChildOutcome threw =
      run_in_child([]() -> std::string { throw std::runtime_error("no"); }, 10);
  EXPECT_EQ(threw.ending, ChildOutcome::Ending::crashed);
  EXPECT_EQ(signal_name(SIGKILL), "SIGKILL");
}

}  // namespace
}  // namespace convbp
