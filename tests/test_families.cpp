// Families: implementations whose members depend on the problem (cuDNN's engine
// configurations). A test family, registered here, proves on any machine what the harness does
// with them: it runs, reports and stores the members under their own names, finds a member by
// its name alone, answers a later run from the tuning database, and plans a member from it.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <filesystem>

#include "autotuner.h"
#include "context.h"
#include "runner.h"
#include "shapes.h"
#include "temp_dir.h"
#include "tuning.h"

namespace convbp {
namespace {

constexpr std::uint64_t kSeed = 5;

// Set by member m0's plan when armed: a signal arriving between two members.
std::atomic<bool> g_stop{false};
bool g_stop_armed = false;

// A correct implementation under another name: the per-sample im2col+GEMM's plan.
class TestMember final : public Backward {
 public:
  explicit TestMember(std::string name) : name_(std::move(name)) {}
  std::string name() const override { return name_; }
  Support supports(const ConvProblem&, Pass) const override { return Support::yes(); }
  std::unique_ptr<Plan> plan(const ConvProblem& pr, Pass pass) const override {
    if (g_stop_armed && name_ == "test.family.m0") g_stop = true;
    return find_backward("im2col_gemm.per_sample")->plan(pr, pass);
  }

 private:
  std::string name_;
};

const TestMember& m0() {
  static const TestMember m("test.family.m0");
  return m;
}
const TestMember& m1() {
  static const TestMember m("test.family.m1");
  return m;
}

// Members: none for an odd channel count (declined), m0 for c = 2 mod 4, m0 and m1 for c = 0
// mod 4.
class TestFamily final : public Backward {
 public:
  std::string name() const override { return "test.family"; }
  Support supports(const ConvProblem& pr, Pass) const override {
    return pr.c % 2 ? Support::no("test.family has no member for an odd channel count")
                    : Support::yes();
  }
  std::vector<const Backward*> members(const ConvProblem& pr, Pass) const override {
    if (pr.c % 4 == 0) return {&m0(), &m1()};
    return {&m0()};
  }
  const Backward* member(const std::string& name) const override {
    if (name == m0().name()) return &m0();
    if (name == m1().name()) return &m1();
    return nullptr;
  }
  std::string members_named() const override { return "test.family.m<i>"; }
  std::unique_ptr<Plan> plan(const ConvProblem& pr, Pass pass) const override {
    return m0().plan(pr, pass);
  }
};

const Backward& family() {
  static const Backward* registered = [] {
    add_backward(std::make_unique<TestFamily>());
    return find_backward("test.family");
  }();
  return *registered;
}

// A path for a tuning database that does not exist yet.
std::string fresh_database(const std::string& name) {
  const std::filesystem::path dir = test::test_temp_dir("families");
  std::filesystem::remove(dir / name);
  return (dir / name).string();
}

Case run(const ConvProblem& pr, Pass pass, const std::vector<const Backward*>& impls,
         bool validate_only = true) {
  RunOptions options;
  options.validate_only = validate_only;
  options.seed = kSeed;
  TimingSettings timing;
  timing.warmup = 0;
  timing.reps = 1;
  return run_case({pr.key(), pr, pass, 1}, impls, timing, options, 0);
}

TEST(Families, RunAsTheirMembersEachReportedUnderItsOwnName) {
  const Backward& f = family();
  const Case four = run(square(2, 4, 6, 3, 3, 1, 1), Pass::data, {&f});
  ASSERT_EQ(four.results.size(), 2u);
  EXPECT_EQ(four.results[0].impl, "test.family.m0");
  EXPECT_EQ(four.results[1].impl, "test.family.m1");
  for (const Result& r : four.results) {
    EXPECT_EQ(r.status, Status::ok) << r.impl << " seed " << kSeed << ": " << r.why;
    EXPECT_EQ(r.family, "test.family") << r.impl;
  }
  const Case two = run(square(2, 2, 6, 3, 3, 1, 1), Pass::weights, {&f});
  ASSERT_EQ(two.results.size(), 1u);
  EXPECT_EQ(two.results[0].impl, "test.family.m0");
  EXPECT_EQ(two.results[0].status, Status::ok) << two.results[0].why;
}

TEST(Families, AFamilyWithNoMemberForAShapeDeclinesItUnderItsOwnName) {
  const Case odd = run(square(1, 3, 5, 2, 3, 1, 1), Pass::data, {&family()});
  ASSERT_EQ(odd.results.size(), 1u);
  EXPECT_EQ(odd.results[0].impl, "test.family");
  EXPECT_EQ(odd.results[0].status, Status::unsupported);
  EXPECT_EQ(odd.results[0].why, "test.family has no member for an odd channel count");
  EXPECT_TRUE(odd.results[0].family.empty());
}

TEST(Families, AMemberIsFoundAndSelectedByItsFullName) {
  family();
  EXPECT_EQ(find_backward("test.family.m1"), &m1());
  EXPECT_EQ(find_backward("test.family.m7"), nullptr);
  EXPECT_TRUE(stands_for("test.family", "test.family.m1"));
  EXPECT_TRUE(stands_for("naive", "naive"));
  EXPECT_FALSE(stands_for("im2col_gemm.batched", "test.family.m1"));
  EXPECT_FALSE(stands_for("test.family.m0", "test.family.m1"));

  const auto by_name = select_impls({"test.family.m1"}, true);
  ASSERT_EQ(by_name.size(), 1u);
  EXPECT_EQ(by_name[0], &m1());
  const auto by_glob = select_impls({"test.*"}, true);
  ASSERT_EQ(by_glob.size(), 1u);
  EXPECT_EQ(by_glob[0], &family());
  EXPECT_THROW(select_impls({"test.family.m7"}, true), SelectionError);
  // Registered names stay unique.
  EXPECT_THROW(add_backward(std::make_unique<TestFamily>()), std::invalid_argument);
}

// An opt-in implementation (a costly search) that computes correctly.
class TestOptIn final : public Backward {
 public:
  std::string name() const override { return "test.opt_in"; }
  bool opt_in() const override { return true; }
  Support supports(const ConvProblem&, Pass) const override { return Support::yes(); }
  std::unique_ptr<Plan> plan(const ConvProblem& pr, Pass pass) const override {
    return find_backward("im2col_gemm.per_sample")->plan(pr, pass);
  }
};

TEST(Families, AnOptInImplementationIsSelectedByItsFullNameOnly) {
  if (!find_backward("test.opt_in")) add_backward(std::make_unique<TestOptIn>());
  const Backward* opt_in = find_backward("test.opt_in");
  for (const char* glob : {"*", "test.*", "test.opt_in*"}) {
    const auto selected = select_impls({glob}, false);
    EXPECT_EQ(std::count(selected.begin(), selected.end(), opt_in), 0) << glob;
  }
  const auto by_name = select_impls({"test.opt_in"}, true);
  ASSERT_EQ(by_name.size(), 1u);
  EXPECT_EQ(by_name[0], opt_in);
  try {
    select_impls({"test.opt_*"}, true);
    ADD_FAILURE() << "a glob matching only an opt-in implementation selected it";
  } catch (const SelectionError& e) {
    EXPECT_NE(std::string(e.what()).find("but the opt-in test.opt_in, which are selected by full "
                                         "name only"),
              std::string::npos)
        << e.what();
  }
}

// An opt-in family standing for a costly search: each time it is asked for its members (or
// whether it supports a shape) counts as a search.
std::atomic<int> g_searches{0};
const TestMember& searched() {
  static const TestMember m("test.search.m0");
  return m;
}
class TestSearch final : public Backward {
 public:
  std::string name() const override { return "test.search"; }
  bool opt_in() const override { return true; }
  Support supports(const ConvProblem&, Pass) const override {
    ++g_searches;
    return Support::yes();
  }
  std::vector<const Backward*> members(const ConvProblem&, Pass) const override {
    ++g_searches;
    return {&searched()};
  }
  const Backward* member(const std::string& name) const override {
    return name == searched().name() ? &searched() : nullptr;
  }
  std::string members_named() const override { return "test.search.m<i>"; }
  std::unique_ptr<Plan> plan(const ConvProblem& pr, Pass pass) const override {
    return searched().plan(pr, pass);
  }
};

// A database entry answers for an opt-in family without running its search again: the member
// it recorded under the family is planned by name.
TEST(Families, ADatabaseHitDoesNotRunAnOptInFamilysSearchAgain) {
  if (!find_backward("test.search")) add_backward(std::make_unique<TestSearch>());
  const std::string db = fresh_database("search.json");
  const ConvProblem pr = square(2, 8, 6, 4, 3, 1, 1);
  AutotunerOptions options;
  options.impls = {"test.search", "im2col_gemm.batched"};
  options.tune_seconds = 0.5;
  {
    Autotuner tuner(db, options);
    tuner.plan(pr, Pass::data);
    EXPECT_EQ(tuner.tuned_count(), 1);
  }
  const int searches = g_searches;
  EXPECT_GT(searches, 0);
  Autotuner again(db, options);
  TunedPlan& hit = again.plan(pr, Pass::data);
  EXPECT_EQ(hit.source(), PlanSource::database) << hit.why();
  EXPECT_EQ(again.tuned_count(), 0);
  EXPECT_EQ(g_searches, searches) << "the database hit ran the search again";
  const TuningDb stored = read_tuning_db(db);
  const TuningEntry* e = stored.find(machine_fingerprint(threads()), pr, Pass::data);
  ASSERT_NE(e, nullptr);
  EXPECT_NE(std::find(e->candidates.begin(), e->candidates.end(), "test.search.m0"),
            e->candidates.end());
}

TEST(Families, AMemberSelectedByNameAndThroughItsFamilyRunsOnce) {
  const ConvProblem pr = square(2, 4, 6, 3, 3, 1, 1);
  const Case c = run(pr, Pass::data, {&family(), &m1()}, false);
  ASSERT_EQ(c.results.size(), 2u);
  EXPECT_EQ(c.results[1].impl, "test.family.m1");
  const TuningEntry entry = entry_from_case(c);
  const Case answered =
      case_from_entry(entry, "again", 1, asked(resolve({&family(), &m1()}, pr, Pass::data)));
  EXPECT_EQ(answered.results.size(), 2u);
}

TEST(Families, AReportKeepsTheFamilyOfEachMember) {
  Report report;
  report.cases.push_back(run(square(1, 4, 5, 2, 3, 1, 1), Pass::data, {&family()}));
  const Report back = report_from_json(to_json(report));
  ASSERT_EQ(back.cases.at(0).results.size(), 2u);
  EXPECT_EQ(back.cases[0].results[1].impl, "test.family.m1");
  EXPECT_EQ(back.cases[0].results[1].family, "test.family");
}

TEST(Families, ATuningEntryAnswersALaterRunThatSelectsTheFamily) {
  const ConvProblem pr = square(2, 4, 6, 3, 3, 1, 1);
  const Case measured = run(pr, Pass::data, {&family()}, false);
  const TuningEntry entry = entry_from_case(measured);
  for (const char* name : {"test.family", "test.family.m0", "test.family.m1"}) {
    EXPECT_NE(std::find(entry.candidates.begin(), entry.candidates.end(), name),
              entry.candidates.end())
        << name;
  }
  const std::vector<Asked> selected = asked(resolve({&family()}, pr, Pass::data));
  const std::vector<Asked> with_naive =
      asked(resolve({&family(), find_backward("naive")}, pr, Pass::data));
  EXPECT_EQ(missing_candidate(entry, selected), std::nullopt);
  EXPECT_EQ(missing_candidate(entry, with_naive), "naive");
  // An entry written before, which lists the family but not its members, still answers.
  TuningEntry older = entry;
  std::erase_if(older.candidates, [](const std::string& c) { return c != "test.family"; });
  EXPECT_EQ(missing_candidate(older, selected), std::nullopt);

  const Case answered = case_from_entry(entry, "again", 1, selected);
  ASSERT_EQ(answered.results.size(), 2u);
  for (const Result& r : answered.results) {
    EXPECT_EQ(r.status, Status::ok) << r.impl;
    EXPECT_EQ(r.family, "test.family") << r.impl;
  }
  ASSERT_TRUE(answered.best.has_value());
  EXPECT_EQ(answered.best->impl.rfind("test.family.m", 0), 0u) << answered.best->impl;
}

TEST(Families, TheAutotunerPlansTheDatabasesMemberByName) {
  family();
  const std::string db = fresh_database("db.json");
  const ConvProblem pr = square(2, 8, 6, 4, 3, 1, 1);
  AutotunerOptions options;
  options.impls = {"test.family"};
  options.tune_seconds = 0.5;
  std::string tuned;
  {
    Autotuner tuner(db, options);
    TunedPlan& plan = tuner.plan(pr, Pass::weights);
    EXPECT_EQ(plan.source(), PlanSource::tuned) << plan.why();
    tuned = plan.impl();
    EXPECT_EQ(tuned.rfind("test.family.m", 0), 0u) << tuned;
  }
  Autotuner again(db, options);
  TunedPlan& hit = again.plan(pr, Pass::weights);
  EXPECT_EQ(hit.source(), PlanSource::database) << hit.why();
  EXPECT_EQ(hit.impl(), tuned);
  EXPECT_EQ(again.tuned_count(), 0);
}

TEST(Families, AStopBetweenTwoMembersMarksTheCaseInterrupted) {
  const ConvProblem pr = square(1, 4, 5, 2, 3, 1, 1);
  RunOptions options;
  options.validate_only = true;
  options.seed = kSeed;
  options.stop = &g_stop;
  g_stop = false;
  g_stop_armed = true;
  const Case c = run_case({pr.key(), pr, Pass::data, 1}, {&family(), find_backward("naive")},
                          TimingSettings{}, options, 0);
  g_stop_armed = false;
  g_stop = false;
  // m0 ran (the signal came during it); m1 and naive, after it, did not.
  ASSERT_EQ(c.results.size(), 1u);
  EXPECT_EQ(c.results[0].impl, "test.family.m0");
  EXPECT_FALSE(c.complete);
}

// A device that is gone for now (as after a lost CUDA context): its result is an error, and the
// case is not stored, so that a later run measures it.
// Registered for good, it declines every other shape (other tests of this binary see it).
const ConvProblem kGoneShape = square(1, 2, 5, 2, 3, 1, 1);

class GoneForNow final : public Backward {
 public:
  std::string name() const override { return "test.gone_for_now"; }
  Support supports(const ConvProblem& pr, Pass) const override {
    if (pr.key() != kGoneShape.key()) return Support::no("test.gone_for_now: one test's shape");
    return Support::not_now("device lost for now");
  }
  std::unique_ptr<Plan> plan(const ConvProblem&, Pass) const override {
    throw std::logic_error("never planned");
  }
};

TEST(Families, APassingFailureIsAnErrorAndKeepsTheCaseOutOfTheDatabase) {
  static const bool registered = [] {
    add_backward(std::make_unique<GoneForNow>());
    return true;
  }();
  (void)registered;
  const ConvProblem& pr = kGoneShape;
  const Case c = run(pr, Pass::data, {find_backward("test.gone_for_now")});
  ASSERT_EQ(c.results.size(), 1u);
  EXPECT_EQ(c.results[0].status, Status::error);
  EXPECT_EQ(c.results[0].why, "device lost for now");
  EXPECT_FALSE(c.complete);

  const std::string db = fresh_database("gone.json");
  AutotunerOptions options;
  options.impls = {"test.gone_for_now", "im2col_gemm.per_sample"};
  options.tune_seconds = 0.3;
  for (int i = 0; i < 2; ++i) {
    Autotuner tuner(db, options);
    TunedPlan& plan = tuner.plan(pr, Pass::data);
    EXPECT_EQ(plan.source(), PlanSource::tuned) << "run " << i << ": " << plan.why();
    EXPECT_EQ(plan.impl(), "im2col_gemm.per_sample");
  }
}

}  // namespace
}  // namespace convbp
