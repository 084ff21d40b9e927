// Every registered implementation against the fp64 reference, through the harness's own
// validation path (NaN-poisoned outputs, max-error tolerance), on a sweep of small shapes that
// cover stride, asymmetric padding, dilation, groups, depthwise, non-square and odd sizes.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>

#include "backward.h"
#include "data.h"
#include "runner.h"
#include "shapes.h"

namespace convbp {
namespace {

constexpr std::uint64_t kSeed = 11;

std::vector<ConvProblem> sweep() {
  std::vector<ConvProblem> shapes = {
      // 3x3 stride 1 with every padding (the Winograd shapes), odd tails, tiny images.
      square(2, 8, 9, 8, 3, 1, 1),
      square(1, 3, 5, 4, 3, 1, 0),
      square(2, 5, 7, 6, 3, 1, 2),
      square(1, 16, 3, 8, 3, 1, 1),
      square(3, 4, 1, 5, 3, 1, 1),
      square(1, 7, 2, 3, 3, 1, 1),
      square(2, 9, 13, 11, 3, 1, 1),
      square(1, 32, 6, 16, 3, 1, 1),
      square(2, 4, 4, 4, 3, 1, 2),
      square(1, 12, 11, 20, 3, 1, 1, 4),
      square(2, 6, 8, 6, 3, 1, 1, 6),
      // Other kernels and strides.
      square(2, 16, 7, 8, 1, 1, 0),
      square(2, 8, 8, 16, 1, 2, 0),
      square(1, 3, 15, 8, 7, 2, 3),
      square(2, 6, 11, 4, 5, 1, 2),
      square(1, 4, 12, 6, 3, 2, 1),
      square(2, 4, 9, 4, 2, 2, 0),
      square(1, 8, 10, 8, 3, 3, 1),
      square(1, 10, 9, 10, 3, 2, 1, 10),
      square(1, 6, 6, 9, 1, 1, 0, 3),
      square(2, 3, 11, 5, 11, 4, 0),
      square(1, 4, 5, 4, 4, 1, 0),
      square(1, 2, 3, 2, 3, 1, 0),
  };
  // Non-square, asymmetric padding, dilation, mixed strides.
  shapes.push_back({.n = 3,
                    .c = 5,
                    .h = 17,
                    .w = 9,
                    .k = 7,
                    .r = 2,
                    .s = 5,
                    .stride_h = 2,
                    .stride_w = 1,
                    .pad_top = 1,
                    .pad_left = 0,
                    .pad_bottom = 2,
                    .pad_right = 1,
                    .dilation_h = 1,
                    .dilation_w = 2});
  shapes.push_back({.n = 1,
                    .c = 4,
                    .h = 6,
                    .w = 11,
                    .k = 3,
                    .r = 3,
                    .s = 3,
                    .pad_top = 0,
                    .pad_left = 2,
                    .pad_bottom = 1,
                    .pad_right = 0});
  shapes.push_back({.n = 2,
                    .c = 6,
                    .h = 12,
                    .w = 10,
                    .k = 4,
                    .r = 3,
                    .s = 3,
                    .pad_top = 2,
                    .pad_left = 2,
                    .pad_bottom = 2,
                    .pad_right = 2,
                    .dilation_h = 2,
                    .dilation_w = 2});
  shapes.push_back({.n = 1,
                    .c = 8,
                    .h = 9,
                    .w = 7,
                    .k = 8,
                    .r = 3,
                    .s = 1,
                    .stride_h = 1,
                    .stride_w = 2,
                    .pad_top = 1,
                    .pad_left = 0,
                    .pad_bottom = 1,
                    .pad_right = 0,
                    .groups = 2});
  shapes.push_back({.n = 2,
                    .c = 4,
                    .h = 10,
                    .w = 14,
                    .k = 4,
                    .r = 3,
                    .s = 3,
                    .stride_h = 2,
                    .stride_w = 3,
                    .pad_top = 1,
                    .pad_left = 2,
                    .pad_bottom = 0,
                    .pad_right = 1,
                    .dilation_h = 2,
                    .dilation_w = 1,
                    .groups = 4});
  shapes.push_back({.n = 1,
                    .c = 3,
                    .h = 8,
                    .w = 5,
                    .k = 2,
                    .r = 1,
                    .s = 3,
                    .pad_top = 0,
                    .pad_left = 1,
                    .pad_bottom = 0,
                    .pad_right = 1});
  shapes.push_back({.n = 4,
                    .c = 2,
                    .h = 5,
                    .w = 8,
                    .k = 3,
                    .r = 3,
                    .s = 3,
                    .pad_top = 1,
                    .pad_left = 0,
                    .pad_bottom = 0,
                    .pad_right = 2});
  // Sizes where every window overhangs the input (padding larger than half the kernel).
  shapes.push_back({.n = 1,
                    .c = 2,
                    .h = 2,
                    .w = 3,
                    .k = 2,
                    .r = 3,
                    .s = 3,
                    .pad_top = 2,
                    .pad_left = 2,
                    .pad_bottom = 2,
                    .pad_right = 2});
  // A longer accumulation (res-like, scaled down) so the tolerance is exercised.
  shapes.push_back(square(4, 64, 10, 32, 3, 1, 1));
  shapes.push_back(square(2, 128, 7, 64, 1, 1, 0));
  return shapes;
}

// Families that claim every shape must never decline one.
bool claims_everything(const std::string& name) {
  return name == "naive" || name.rfind("im2col_gemm.", 0) == 0;
}

TEST(Implementations, SweepCoversAtLeastThirtyShapes) { EXPECT_GE(sweep().size(), 30u); }

class EveryImplementation : public ::testing::TestWithParam<std::size_t> {};

TEST_P(EveryImplementation, MatchesTheReferenceOrDeclinesWithAReason) {
  const ConvProblem pr = sweep().at(GetParam());
  ASSERT_NO_THROW(pr.validate()) << pr.key();
  std::vector<const Backward*> impls(registry().begin(), registry().end());
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
    switch (defect_) {
      case Defect::skip_one_element:
        t.dx[count / 2] = std::numeric_limits<float>::quiet_NaN();  // as if never written
        break;
      case Defect::all_zero:
        std::fill(t.dx, t.dx + count, 0.0f);
        break;
      case Defect::slightly_wrong:
        t.dx[count - 1] += 1e-3f * std::abs(t.dx[count - 1]) + 1e-3f;
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

}  // namespace
}  // namespace convbp
