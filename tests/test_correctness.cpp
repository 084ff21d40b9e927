// Silent wrong answers the harness must not let through, and memory it must not overcommit:
// parallel regions that get fewer threads than planned, plans that go wrong only on later
// calls, nondeterminism, implementations that write into their inputs, and allocations that
// exceed the memory available. Misbehaving test implementations are registered with
// add_backward and wrap a correct plan.
#include <gtest/gtest.h>

#include <atomic>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <functional>

#include "autotuner.h"
#include "data.h"
#include "naive.h"
#include "runner.h"
#include "shapes.h"
#include "temp_dir.h"
#include "tune.h"
#include "tuning.h"
#include "validate.h"

namespace convbp {
namespace {

constexpr std::uint64_t kSeed = 7;

// Restores the thread count and the memory figure after a test that changed them.
class Settings : public ::testing::Test {
 protected:
  void SetUp() override { saved_threads_ = threads(); }
  void TearDown() override {
    set_threads(saved_threads_);
    set_available_memory_for_testing(std::nullopt);
  }

 private:
  int saved_threads_ = 0;
};

// Runs `plan` on the case's data from inside a caller's OpenMP region of two threads (one
// thread calls it, as a framework's parallel layer scheduler would), and checks every output
// against the fp64 reference. Returns the failure, "" when correct.
std::string run_inside_parallel_region(const ConvProblem& pr, Pass pass,
                                       const std::function<void(const Tensors&)>& run) {
  CaseData data(pr, pass, kSeed);
  const Tensors t = data.tensors();
#pragma omp parallel num_threads(2)
  {
#pragma omp single
    run(t);
  }
  const double tol = tolerance_for(pr.accumulation_length(pass), 1.0);
  if (pass == Pass::data) {
    std::vector<double> dx(pr.x_elems());
    reference_backward_data(pr, data.dy.data_as<float>(), data.w.data_as<float>(), dx.data());
    return compare(data.dx.floats(), dx, tol, "dx", {pr.n, pr.c, pr.h, pr.w}).failure;
  }
  std::vector<double> dw(pr.w_elems()), db(pr.b_elems());
  reference_backward_weights(pr, data.x.data_as<float>(), data.dy.data_as<float>(), dw.data(),
                             db.data());
  const ErrorStats w =
      compare(data.dw.floats(), dw, tol, "dw", {pr.k, pr.c_per_group(), pr.r, pr.s});
  const ErrorStats b = compare(data.db.floats(), db, tol, "db", {pr.k});
  return worse(w, b).failure;
}

std::string run_plan_inside_parallel_region(const std::string& impl, const ConvProblem& pr,
                                            Pass pass) {
  std::unique_ptr<Plan> plan = find_backward(impl)->plan(pr, pass);
  std::vector<unsigned char> workspace(plan->workspace_bytes() + 1);
  return run_inside_parallel_region(pr, pass,
                                    [&](const Tensors& t) { plan->run(t, workspace.data()); });
}

// The shape: n = 4, dx of 432 elements, dw of 108.
const ConvProblem kFourSamples = square(4, 3, 6, 4, 3, 1, 1);

using Im2colBatched = Settings;

TEST_F(Im2colBatched, WritesEveryOutputWhenTheCallersParallelRegionLeavesItOneThread) {
  set_threads(2);
  for (Pass pass : {Pass::data, Pass::weights}) {
    EXPECT_EQ(run_plan_inside_parallel_region("im2col_gemm.batched", kFourSamples, pass), "")
        << to_string(pass) << " seed " << kSeed << " problem " << kFourSamples.key();
  }
}

TEST_F(Im2colBatched, WorkspaceIsCappedAtOneGibibyteHoweverManyThreads) {
  set_threads(16);
  // VGG-16 conv1_2 at batch 16: one worker's im2col buffer is 116 MB.
  const ConvProblem pr = square(16, 64, 224, 64, 3, 1, 1);
  for (Pass pass : {Pass::data, Pass::weights}) {
    std::unique_ptr<Plan> plan = find_backward("im2col_gemm.batched")->plan(pr, pass);
    EXPECT_LE(plan->workspace_bytes(), std::size_t{1} << 30) << to_string(pass) << " " << pr.key();
    EXPECT_GT(plan->workspace_bytes(), std::size_t{1} << 29) << "still uses several workers";
  }
}

// Audit of our own OpenMP regions (impls/, the reference): every one must be correct when the
// team is smaller than planned. (Libraries such as oneDNN run their own thread pools.)
using OpenMpRegions = Settings;

TEST_F(OpenMpRegions, EveryOwnImplementationIsCorrectWhenTheCallerLeavesItOneThread) {
  set_threads(2);
  const ConvProblem pr = square(4, 8, 9, 8, 3, 1, 1);  // 3x3 stride 1: Winograd runs it
  for (const char* name : {"naive", "im2col_gemm.per_sample", "im2col_gemm.batched",
                           "winograd.f2x3", "winograd.f4x3"}) {
    const Backward* b = find_backward(name);
    ASSERT_NE(b, nullptr) << name;
    if (!b->available().ok) continue;  // Winograd needs AVX2
    for (Pass pass : {Pass::data, Pass::weights}) {
      EXPECT_EQ(run_plan_inside_parallel_region(b->name(), pr, pass), "")
          << b->name() << " " << to_string(pass) << " seed " << kSeed << " problem " << pr.key();
    }
  }
}

using AutotunerFallback = Settings;

TEST_F(AutotunerFallback, FirstFallbackIsCorrectInsideACallersParallelRegion) {
  set_threads(2);
  AutotunerOptions options;
  options.on_miss = AutotunerOptions::OnMiss::fallback;
  Autotuner tuner("", options);
  for (Pass pass : {Pass::data, Pass::weights}) {
    TunedPlan& plan = tuner.plan(kFourSamples, pass);
    ASSERT_EQ(plan.impl(), "im2col_gemm.batched");
    EXPECT_EQ(
        run_inside_parallel_region(kFourSamples, pass, [&](const Tensors& t) { plan.run(t); }), "")
        << to_string(pass) << " seed " << kSeed << " problem " << kFourSamples.key();
  }
}

// A correct plan (im2col_gemm.per_sample) with something done around each call; `call` counts
// from 1.
using Around = std::function<void(const Tensors&, int call)>;

class WrappedPlan final : public Plan {
 public:
  WrappedPlan(std::unique_ptr<Plan> inner, Around before, Around after)
      : inner_(std::move(inner)), before_(std::move(before)), after_(std::move(after)) {}
  std::size_t workspace_bytes() const override { return inner_->workspace_bytes(); }
  void run(const Tensors& t, void* workspace) override {
    ++calls_;
    if (before_) before_(t, calls_);
    inner_->run(t, workspace);
    if (after_) after_(t, calls_);
  }

 private:
  std::unique_ptr<Plan> inner_;
  Around before_, after_;
  int calls_ = 0;
};

class Misbehaving final : public Backward {
 public:
  Misbehaving(std::string name, Around before, Around after, std::size_t workspace = 0)
      : name_(std::move(name)),
        before_(std::move(before)),
        after_(std::move(after)),
        workspace_(workspace) {}
  std::string name() const override { return name_; }
  Support supports(const ConvProblem&, Pass) const override { return Support::yes(); }
  std::unique_ptr<Plan> plan(const ConvProblem& pr, Pass pass) const override {
    auto inner = find_backward("im2col_gemm.per_sample")->plan(pr, pass);
    if (workspace_) return std::make_unique<BigWorkspace>(std::move(inner), workspace_);
    return std::make_unique<WrappedPlan>(std::move(inner), before_, after_);
  }

 private:
  // Declares a larger workspace than it uses.
  class BigWorkspace final : public Plan {
   public:
    BigWorkspace(std::unique_ptr<Plan> inner, std::size_t bytes)
        : inner_(std::move(inner)), bytes_(bytes) {}
    std::size_t workspace_bytes() const override { return bytes_; }
    void run(const Tensors& t, void* workspace) override { inner_->run(t, workspace); }

   private:
    std::unique_ptr<Plan> inner_;
    std::size_t bytes_;
  };

  std::string name_;
  Around before_, after_;
  std::size_t workspace_;
};

float* first_output(const Tensors& t) { return t.dx ? t.dx_as<float>() : t.dw_as<float>(); }

int g_calls = 0;
std::vector<int> g_poisoned_calls;
// test.stops_the_run raises g_stop (as a SIGINT handler would) at the first call of its
// g_stop_at-th plan, i.e. in the g_stop_at-th case that runs it.
std::atomic<bool> g_stop{false};
int g_stop_at = 0, g_plans_called = 0;

const Backward& misbehaving(const std::string& name) {
  static const bool registered = [] {
    // Doubles dy before computing: consistent with a reference computed afterwards.
    add_backward(std::make_unique<Misbehaving>(
        "test.writes_its_input",
        [](const Tensors& t, int) {
          float* dy = const_cast<float*>(t.dy_as<float>());
          dy[0] *= 2.0f;
          dy[5] = 3.0f;
        },
        nullptr));
    // Correct on its first call, then one element far off.
    add_backward(std::make_unique<Misbehaving>("test.wrong_when_warm", nullptr,
                                               [](const Tensors& t, int call) {
                                                 if (call > 1) first_output(t)[0] += 1.0f;
                                               }));
    // Within tolerance every time, but later calls differ from the first in one bit.
    add_backward(std::make_unique<Misbehaving>("test.nondeterministic", nullptr,
                                               [](const Tensors& t, int call) {
                                                 float* out = first_output(t);
                                                 if (call > 1) {
                                                   out[1] = std::nextafter(out[1], INFINITY);
                                                 }
                                               }));
    // Records which calls found their outputs poisoned.
    add_backward(std::make_unique<Misbehaving>(
        "test.records_poison",
        [](const Tensors& t, int call) {
          g_calls = call;
          if (std::isnan(first_output(t)[0])) g_poisoned_calls.push_back(call);
        },
        nullptr));
    add_backward(std::make_unique<Misbehaving>("test.huge_workspace", nullptr, nullptr,
                                               std::size_t{64} << 20));
    add_backward(std::make_unique<Misbehaving>(
        "test.stops_the_run",
        [](const Tensors&, int call) {
          if (call == 1 && ++g_plans_called == g_stop_at) g_stop = true;
        },
        nullptr));
    // Correct, and after test.stops_the_run in the registry: what a stop leaves out.
    add_backward(std::make_unique<Misbehaving>("test.after_the_stop", nullptr, nullptr));
    return true;
  }();
  (void)registered;
  return *find_backward(name);
}

Case run(const ConvProblem& pr, Pass pass, const std::vector<const Backward*>& impls,
         bool validate_only) {
  RunOptions options;
  options.validate_only = validate_only;
  options.seed = kSeed;
  TimingSettings timing;
  timing.warmup = 1;
  timing.reps = 3;
  timing.min_rep_seconds = 1e-4;
  timing.max_seconds_per_case = 1.0;
  return run_case({pr.key(), pr, pass, 1}, impls, timing, options, 0);
}

const ConvProblem kSmall = square(2, 4, 6, 3, 3, 1, 1);

using Runner = Settings;

TEST_F(Runner, APlanThatGoesWrongOnLaterCallsIsIncorrectWhenTimedAndWhenOnlyValidated) {
  for (bool validate_only : {false, true}) {
    for (Pass pass : {Pass::data, Pass::weights}) {
      const Case c = run(kSmall, pass, {&misbehaving("test.wrong_when_warm")}, validate_only);
      ASSERT_EQ(c.results.size(), 1u);
      const Result& r = c.results[0];
      EXPECT_EQ(r.status, Status::incorrect)
          << to_string(pass) << (validate_only ? " validate" : " run") << " seed " << kSeed
          << " problem " << kSmall.key();
      EXPECT_NE(r.why.find(validate_only ? "second call" : "last timed call"), std::string::npos)
          << r.why;
      EXPECT_FALSE(c.best) << "an incorrect plan cannot win";
    }
  }
}

TEST_F(Runner, TheFirstAndTheLastTimedCallFindTheirOutputsPoisoned) {
  for (Pass pass : {Pass::data, Pass::weights}) {
    g_calls = 0;
    g_poisoned_calls.clear();
    const Case c = run(kSmall, pass, {&misbehaving("test.records_poison")}, false);
    ASSERT_EQ(c.results.size(), 1u);
    EXPECT_EQ(c.results[0].status, Status::ok) << c.results[0].why;
    ASSERT_TRUE(c.results[0].time);
    // Validation, warm-up, then the timed calls, of which the last is checked.
    EXPECT_EQ(g_calls, 2 + c.results[0].time->reps * c.results[0].time->iterations)
        << to_string(pass);
    EXPECT_EQ(g_poisoned_calls, (std::vector<int>{1, g_calls})) << to_string(pass);
  }
}

TEST_F(Runner, DeterminismIsMeasuredBitForBitNotTakenFromThePlan) {
  for (bool validate_only : {false, true}) {
    for (Pass pass : {Pass::data, Pass::weights}) {
      const Case c =
          run(kSmall, pass,
              {find_backward("im2col_gemm.per_sample"), &misbehaving("test.nondeterministic")},
              validate_only);
      ASSERT_EQ(c.results.size(), 2u);
      const std::string where = std::string(to_string(pass)) +
                                (validate_only ? " validate" : " run") + " seed " +
                                std::to_string(kSeed) + " problem " + kSmall.key();
      EXPECT_EQ(c.results[0].status, Status::ok) << where << ": " << c.results[0].why;
      EXPECT_TRUE(c.results[0].deterministic) << where;
      const Result& r = c.results[1];
      EXPECT_EQ(r.status, Status::ok) << where << ": " << r.why;
      EXPECT_FALSE(r.deterministic) << where;
      EXPECT_NE(r.detail.find("differed bit for bit"), std::string::npos) << r.detail;
    }
  }
}

TEST_F(Runner, AnImplementationWritingIntoItsInputsIsIncorrectAndTheNextOneSeesCleanInputs) {
  for (Pass pass : {Pass::data, Pass::weights}) {
    const std::string where = std::string(to_string(pass)) + " seed " + std::to_string(kSeed) +
                              " problem " + kSmall.key();
    const Case c = run(kSmall, pass,
                       {&misbehaving("test.writes_its_input"), find_backward("naive"),
                        find_backward("im2col_gemm.per_sample")},
                       true);
    ASSERT_EQ(c.results.size(), 3u);
    EXPECT_EQ(c.results[0].status, Status::incorrect) << where;
    EXPECT_NE(c.results[0].why.find("wrote into its input dy"), std::string::npos)
        << where << ": " << c.results[0].why;
    for (int i : {1, 2}) {
      EXPECT_EQ(c.results[i].status, Status::ok)
          << c.results[i].impl << " " << where << ": " << c.results[i].why;
    }
  }
}

TEST(CaseInputs, RestoreSaysWhichInputChangedWhereAndPutsTheSeedsDataBack) {
  CaseData data(kSmall, Pass::weights, kSeed);
  const CaseData clean(kSmall, Pass::weights, kSeed);
  EXPECT_EQ(data.restore_inputs(kSmall), "");
  data.x.set(7, 2.0);
  data.x.set(9, 2.0);
  EXPECT_EQ(data.restore_inputs(kSmall), "x: 2 element(s) changed, first at [0,0,1,1]");
  EXPECT_EQ(std::memcmp(data.x.data(), clean.x.data(), data.x.bytes()), 0)
      << "seed " << kSeed << " problem " << kSmall.key();
  EXPECT_EQ(data.restore_inputs(kSmall), "");
}

TEST_F(Runner, AWorkspaceBeyondAvailableMemoryIsOutOfMemoryWithoutTouchingIt) {
  set_available_memory_for_testing(std::size_t{1} << 20);
  const Case c =
      run(kSmall, Pass::data,
          {&misbehaving("test.huge_workspace"), find_backward("im2col_gemm.per_sample")}, true);
  ASSERT_EQ(c.results.size(), 2u);
  EXPECT_EQ(c.results[0].status, Status::error) << "problem " << kSmall.key();
  EXPECT_EQ(c.results[0].why.rfind("out of memory", 0), 0u) << c.results[0].why;
  EXPECT_EQ(c.results[1].status, Status::ok) << c.results[1].why;
}

TEST_F(Runner, ACaseWhoseDataDoesNotFitIsOutOfMemoryAndTheSuiteGoesOn) {
  set_available_memory_for_testing(std::size_t{1} << 20);
  Suite suite;
  suite.name = "memory";
  suite.file = "<test>";
  suite.passes = {Pass::data};
  suite.impls = {"im2col_gemm.per_sample"};
  suite.timing.reps = 1;
  suite.layers = {{"big", square(2, 64, 64, 64, 1, 1, 0), 1}, {"small", kSmall, 1}};
  RunOptions options;
  options.validate_only = true;
  options.seed = kSeed;
  const Report report = run_suite(suite, options);
  ASSERT_EQ(report.cases.size(), 2u);
  ASSERT_EQ(report.cases[0].results.size(), 1u);
  EXPECT_EQ(report.cases[0].results[0].status, Status::error);
  EXPECT_EQ(report.cases[0].results[0].why.rfind("out of memory", 0), 0u)
      << report.cases[0].results[0].why;
  ASSERT_EQ(report.cases[1].results.size(), 1u);
  EXPECT_EQ(report.cases[1].results[0].status, Status::ok)
      << "seed " << kSeed << " problem " << kSmall.key() << ": " << report.cases[1].results[0].why;
}

// A stop (SIGINT, SIGTERM) during a case ends it before its next implementation: the case is
// kept, marked interrupted with the results it has (and its best of those), shown so, and never
// stored in a tuning database; the case before it, finished, is stored.
TEST_F(Runner, ACaseCutShortByAStopIsMarkedInterruptedAndNeverStoredInADatabase) {
  misbehaving("test.stops_the_run");
  Suite suite;
  suite.name = "stopped";
  suite.file = "<test>";
  suite.passes = {Pass::data};
  suite.timing.warmup = 0;
  suite.timing.reps = 1;
  suite.timing.min_rep_seconds = 1e-4;
  suite.layers = {{"first", kSmall, 1}, {"second", square(2, 4, 7, 3, 3, 1, 1), 1}};
  RunOptions options;
  options.seed = kSeed;
  options.impls = {"test.stops_the_run", "test.after_the_stop"};
  options.stop = &g_stop;
  g_stop = false;
  g_plans_called = 0;
  g_stop_at = 2;  // during the second case
  TuneSettings settings;
  settings.database = (test::test_temp_dir("correctness") / "db.json").string();
  std::filesystem::remove(settings.database);
  const TuneOutcome out = tune_suite(suite, options, settings);
  g_stop = false;
  const Report& report = out.report;
  EXPECT_FALSE(report.complete);
  ASSERT_EQ(report.cases.size(), 2u);
  EXPECT_FALSE(report.cases[0].interrupted);
  EXPECT_EQ(report.cases[0].results.size(), 2u);
  const Case& cut = report.cases[1];
  EXPECT_TRUE(cut.interrupted);
  ASSERT_EQ(cut.results.size(), 1u) << "test.after_the_stop ran after the stop";
  EXPECT_EQ(cut.results[0].impl, "test.stops_the_run");
  ASSERT_TRUE(cut.best);
  EXPECT_EQ(cut.best->impl, "test.stops_the_run");
  EXPECT_TRUE(report_from_json(to_json(report)).cases[1].interrupted);
  const std::string table = winners_table(report, {"naive"});
  EXPECT_NE(table.find("stopped:second *"), std::string::npos) << table;
  EXPECT_NE(table.find("* interrupted"), std::string::npos) << table;
  const std::string tuned = tune_table(out, {});
  EXPECT_NE(tuned.find("interrupted: best of the implementations that ran; not stored"),
            std::string::npos)
      << tuned;
  const TuningDb db = read_tuning_db(settings.database);
  ASSERT_EQ(db.entry_count(), 1u);
  EXPECT_EQ(db.sections[0].entries[0].problem, kSmall) << "the finished case, not the cut one";
  EXPECT_EQ(out.measured, 1);
}

TEST(Memory, AvailableMemoryIsReadFromTheSystem) {
  const std::size_t bytes = available_memory();
  EXPECT_GT(bytes, std::size_t{0});
  set_available_memory_for_testing(std::size_t{12345});
  EXPECT_EQ(available_memory(), 12345u);
  set_available_memory_for_testing(std::nullopt);
  EXPECT_GT(available_memory(), std::size_t{12345});
}

}  // namespace
}  // namespace convbp
