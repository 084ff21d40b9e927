// Every registered implementation against the fp64 reference, through the harness's own
// validation path (NaN-poisoned outputs, max-error tolerance), on a sweep of small shapes that
// cover stride, asymmetric padding, dilation, groups, depthwise, non-square and odd sizes.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <set>

#include "backward.h"
#include "blas.h"
#include "data.h"
#include "runner.h"
#include "selection.h"
#include "shapes.h"

namespace convbp {
namespace {

constexpr std::uint64_t kSeed = 11;

// Families that claim every shape must never decline one.
bool claims_everything(const std::string& name) {
  return name == "naive" || name.rfind("im2col_gemm.", 0) == 0;
}

TEST(Implementations, SweepCoversAtLeastThirtyShapes) { EXPECT_GE(sweep().size(), 30u); }

class EveryImplementation : public ::testing::TestWithParam<std::size_t> {};

TEST_P(EveryImplementation, MatchesTheReferenceOrDeclinesWithAReason) {
  const ConvProblem pr = sweep().at(GetParam());
  ASSERT_NO_THROW(pr.validate()) << pr.key();
  // Every implementation but the opt-in searches (cudnn.search.*: seconds per case; they have
  // tests of their own in test_cudnn.cpp).
  std::vector<const Backward*> impls;
  for (const Backward* b : registry()) {
    if (!b->opt_in()) impls.push_back(b);
  }
  RunOptions options;
  options.validate_only = true;
  options.seed = kSeed;
  int checked = 0;
  for (Pass pass : {Pass::data, Pass::weights}) {
    const Case c = run_case({pr.key(), pr, pass, 1}, impls, TimingSettings{}, options, 0);
    for (const Result& r : c.results) {
      const std::string context = r.impl + " " + to_string(pass) + " seed " +
                                  std::to_string(kSeed) + " problem " + pr.key();
      if (r.status == Status::unsupported) {
        EXPECT_FALSE(claims_everything(r.impl)) << context << ": declined: " << r.why;
        EXPECT_FALSE(r.why.empty()) << context << ": declined without a reason";
        continue;
      }
      EXPECT_EQ(r.status, Status::ok) << context << ": " << to_string(r.status) << ": " << r.why;
      ASSERT_TRUE(r.error.has_value()) << context;
      EXPECT_LE(r.error->max_rel, r.error->tolerance) << context;
      ++checked;
    }
  }
  // naive and both im2col_gemm variants, both passes, at least.
  EXPECT_GE(checked, 6) << pr.key();
}

INSTANTIATE_TEST_SUITE_P(Sweep, EveryImplementation,
                         ::testing::Range<std::size_t>(0, sweep().size()),
                         [](const auto& info) { return sweep().at(info.param).key(); });

// Deliberately broken implementations: the harness must catch each.
enum class Defect { skip_one_element, all_zero, slightly_wrong };

class BrokenPlan final : public Plan {
 public:
  BrokenPlan(const ConvProblem& pr, Defect defect) : pr_(pr), defect_(defect) {}
  void run(const Tensors& t, void* workspace) override {
    // Start from a correct result, then break it.
    const Backward* good = find_backward("im2col_gemm.per_sample");
    auto plan = good->plan(pr_, Pass::data);
    std::vector<std::uint8_t> ws(plan->workspace_bytes());
    plan->run(t, ws.data());
    (void)workspace;
    const std::int64_t count = pr_.x_elems();
    float* dx = t.dx_as<float>();
    switch (defect_) {
      case Defect::skip_one_element:
        dx[count / 2] = std::numeric_limits<float>::quiet_NaN();  // as if never written
        break;
      case Defect::all_zero:
        std::fill(dx, dx + count, 0.0f);
        break;
      case Defect::slightly_wrong:
        dx[count - 1] += 1e-3f * std::abs(dx[count - 1]) + 1e-3f;
        break;
    }
  }

 private:
  ConvProblem pr_;
  Defect defect_;
};

class Broken final : public Backward {
 public:
  explicit Broken(Defect defect) : defect_(defect) {}
  std::string name() const override { return "broken"; }
  Support supports(const ConvProblem&, Pass pass) const override {
    return pass == Pass::data ? Support::yes() : Support::no("data pass only");
  }
  std::unique_ptr<Plan> plan(const ConvProblem& pr, Pass) const override {
    return std::make_unique<BrokenPlan>(pr, defect_);
  }

 private:
  Defect defect_;
};

Result run_broken(Defect defect) {
  const Broken broken(defect);
  const ConvProblem pr = square(2, 8, 9, 8, 3, 1, 1);
  RunOptions options;
  options.validate_only = true;
  options.seed = kSeed;
  const Case c = run_case({"broken", pr, Pass::data, 1}, {&broken}, TimingSettings{}, options, 0);
  return c.results.at(0);
}

TEST(Validation, AnUnwrittenElementIsCaughtByNaNPoisoning) {
  const Result r = run_broken(Defect::skip_one_element);
  EXPECT_EQ(r.status, Status::incorrect);
  EXPECT_NE(r.why.find("NaN"), std::string::npos) << r.why;
  EXPECT_NE(r.why.find("--seed 11"), std::string::npos) << "failure must name the seed: " << r.why;
  EXPECT_NE(r.why.find("n2_c8_h9_w9"), std::string::npos) << "and the problem key: " << r.why;
}

TEST(Validation, AnAllZeroOutputIsDistrusted) {
  const Result r = run_broken(Defect::all_zero);
  EXPECT_EQ(r.status, Status::incorrect);
  EXPECT_NE(r.why.find("all-zero"), std::string::npos) << r.why;
}

TEST(Validation, OneElementOffByATenthOfAPercentFailsTheMaxErrorCheck) {
  const Result r = run_broken(Defect::slightly_wrong);
  EXPECT_EQ(r.status, Status::incorrect) << "max_rel " << r.error->max_rel;
  // rel_l2 over 1296 elements dilutes one bad element; the maximum error does not.
  EXPECT_GT(r.error->max_rel, r.error->tolerance);
}

TEST(Validation, TheBestResultIsTheFastestOkOneAndTiesPreferDeterminism) {
  auto result = [](std::string impl, Status status, double median, double stddev, bool det) {
    Result r;
    r.impl = std::move(impl);
    r.status = status;
    r.deterministic = det;
    if (status == Status::ok)
      r.time = TimeStats{median, median, median, stddev, 5, 1, false, {median}};
    return r;
  };
  auto best = choose_best({result("slow", Status::ok, 2.0, 0.01, true),
                           result("fast_but_wrong", Status::incorrect, 0.5, 0.0, true),
                           result("fast", Status::ok, 1.0, 0.01, true)});
  ASSERT_TRUE(best.has_value());
  EXPECT_EQ(best->impl, "fast");
  EXPECT_EQ(best->runner_up, "slow");
  EXPECT_NEAR(best->margin, 1.0, 1e-12);
  EXPECT_FALSE(best->tie);
  // 1.00 vs 1.005 with 2% noise: a tie, settled in favour of the deterministic one.
  best = choose_best({result("atomic", Status::ok, 1.0, 0.02, false),
                      result("ordered", Status::ok, 1.005, 0.02, true)});
  EXPECT_TRUE(best->tie);
  EXPECT_EQ(best->impl, "ordered");
  EXPECT_FALSE(choose_best({result("x", Status::timeout, 0, 0, true)}).has_value());
}

// im2col_gemm.batched runs OpenBLAS single-threaded inside its own team and must hand back the
// count the caller had, which need not be convbp's threads() (an application may run OpenBLAS
// with its own setting).
TEST(Im2colGemm, BatchedRestoresTheCallersOpenBlasThreadCount) {
  const int saved = threads();
  set_threads(2);
  openblas_set_num_threads(1);  // the caller's own setting, not threads()
  const ConvProblem p = ConvProblem::parse_key("n4_c3_h8_w7_k5_r3_s3_st1x1_pad1x1x1x1_dil1x1_g1");
  const Backward* batched = find_backward("im2col_gemm.batched");
  ASSERT_NE(batched, nullptr);
  std::unique_ptr<Plan> plan = batched->plan(p, Pass::data);
  std::vector<float> dy(p.y_elems(), 0.5f), w(p.w_elems(), 0.25f), dx(p.x_elems());
  std::vector<unsigned char> workspace(plan->workspace_bytes());
  Tensors t;
  t.dy = dy.data();
  t.w = w.data();
  t.dx = dx.data();
  plan->run(t, workspace.data());
  const int after = openblas_get_num_threads();
  set_threads(saved);
  EXPECT_EQ(after, 1) << plan->detail();
}

// Roles are properties of the implementations; the harness finds them through the registry.
TEST(Roles, OneReferenceOneBaselinePerDeviceAndTheFallbackOrder) {
  int references = 0;
  for (const Backward* b : registry()) references += b->roles().reference ? 1 : 0;
  EXPECT_EQ(references, 1);
  EXPECT_EQ(reference_backward().name(), "naive");
  std::set<Device> devices;
  for (const Backward* b : baselines()) {
    EXPECT_TRUE(devices.insert(b->device()).second) << "a second baseline on " << b->name();
  }
  ASSERT_FALSE(baselines().empty());
  EXPECT_EQ(baselines().front()->name(), "im2col_gemm.per_sample");
  const std::vector<std::string> expected = {"im2col_gemm.batched", "im2col_gemm.per_sample",
                                             "naive"};
  EXPECT_EQ(default_fallbacks(), expected);
}

TEST(Roles, OnlyTheReferenceRunsInFp64) {
  const ConvProblem pr = ConvProblem::parse_key("n2_c3_h5_w5_k4_r3_s3_st1x1_pad1x1x1x1_dil1x1_g1");
  std::vector<float> dy(pr.y_elems(), 1.0f), w(pr.w_elems(), 0.5f);
  std::vector<double> dx(pr.x_elems(), -1.0);
  Tensors in;
  in.dy = dy.data();
  in.w = w.data();
  reference_backward().run_reference(pr, Pass::data, in, dx.data(), nullptr, nullptr);
  // dx[0,0,2,2], inside the padding, sees all 9 taps of each of the 4 filters (all dy 1, w 0.5).
  EXPECT_DOUBLE_EQ(dx[pr.w * 2 + 2], 4 * 9 * 0.5) << pr.key();
  const Backward* other = find_backward("im2col_gemm.batched");
  ASSERT_NE(other, nullptr);
  EXPECT_THROW(other->run_reference(pr, Pass::data, in, dx.data(), nullptr, nullptr),
               std::logic_error);
}

}  // namespace
}  // namespace convbp
