// winograd.f2x3 and winograd.f4x3 against the fp64 reference, through the harness's own
// validation path (NaN-poisoned outputs and workspace, the family's documented tolerance), on a
// sweep built to break tiling code: tiny images (smaller than one tile), odd tails, every
// padding from 0 to 3 including asymmetric, channel counts around the kernels' 3/4/8/24
// blocking, groups, batch 1, and enough tiles for several blocks per thread.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <string>
#include <vector>

#include "backward.h"
#include "data.h"
#include "runner.h"

namespace convbp {
namespace {

constexpr std::uint64_t kSeed = 23;
const char* const kVariants[] = {"winograd.f2x3", "winograd.f4x3"};

ConvProblem conv3x3(std::int64_t n, std::int64_t c, std::int64_t h, std::int64_t w, std::int64_t k,
                    std::int64_t pad_top, std::int64_t pad_left, std::int64_t pad_bottom,
                    std::int64_t pad_right, std::int64_t groups = 1) {
  return ConvProblem{.n = n,
                     .c = c,
                     .h = h,
                     .w = w,
                     .k = k,
                     .r = 3,
                     .s = 3,
                     .pad_top = pad_top,
                     .pad_left = pad_left,
                     .pad_bottom = pad_bottom,
                     .pad_right = pad_right,
                     .groups = groups};
}

std::vector<ConvProblem> sweep() {
  std::vector<ConvProblem> shapes;
  // Images from 1x1 to 5x5 (and thin ones) with symmetric padding 0, 1, 2: fewer pixels than
  // one tile, so every tile overhangs the image. Shapes with no output are invalid; skipped.
  const std::pair<int, int> tiny[] = {{1, 1}, {2, 2}, {3, 3}, {4, 4}, {5, 5},
                                      {1, 5}, {5, 1}, {2, 3}, {4, 1}, {3, 5}};
  for (auto [h, w] : tiny) {
    for (int pad = 0; pad <= 2; ++pad) {
      if (h + 2 * pad < 3 || w + 2 * pad < 3) continue;
      shapes.push_back(conv3x3(2, 3, h, w, 4, pad, pad, pad, pad));
    }
  }
  // Channel counts around the blocking (3 and 4 in the kernels, 8 lanes in the transforms),
  // with odd spatial tails for both tile sizes.
  const std::int64_t cs[] = {1, 2, 4, 5, 7, 8, 9, 12, 16, 31, 33};
  const std::int64_t ks[] = {1, 3, 4, 8, 9, 24, 25, 2, 13, 6, 11};
  const std::int64_t hs[] = {7, 9, 13, 10, 6, 11};
  for (std::size_t i = 0; i < std::size(cs); ++i) {
    const std::int64_t h = hs[i % std::size(hs)], w = hs[(i + 2) % std::size(hs)];
    shapes.push_back(conv3x3(i % 3 == 0 ? 1 : 2, cs[i], h, w, ks[i], 1, 1, 1, 1));
  }
  // Asymmetric padding, and padding 3 (wider than the kernel: dx's effective padding is -1).
  shapes.push_back(conv3x3(2, 5, 9, 11, 6, 0, 1, 2, 0));
  shapes.push_back(conv3x3(1, 4, 8, 7, 5, 2, 0, 1, 1));
  shapes.push_back(conv3x3(3, 6, 10, 6, 3, 1, 2, 0, 2));
  shapes.push_back(conv3x3(1, 3, 6, 11, 4, 0, 2, 1, 0));
  shapes.push_back(conv3x3(2, 4, 5, 7, 4, 3, 3, 3, 3));
  shapes.push_back(conv3x3(1, 2, 4, 4, 3, 0, 3, 2, 1));
  // Groups: even, odd per-group counts, depthwise.
  shapes.push_back(conv3x3(2, 8, 9, 9, 6, 1, 1, 1, 1, 2));
  shapes.push_back(conv3x3(1, 12, 11, 7, 20, 1, 1, 1, 1, 4));
  shapes.push_back(conv3x3(2, 15, 8, 10, 21, 0, 1, 2, 1, 3));
  shapes.push_back(conv3x3(2, 6, 8, 8, 6, 1, 1, 1, 1, 6));
  shapes.push_back(conv3x3(1, 9, 13, 13, 9, 2, 2, 2, 2, 9));
  // Many tiles: several blocks per thread, and a last block that is mostly padding.
  shapes.push_back(conv3x3(3, 16, 30, 29, 16, 1, 1, 1, 1));
  shapes.push_back(conv3x3(1, 8, 61, 53, 12, 1, 0, 1, 2));
  // Longer sums, res-like channel counts (the accumulation the tolerance scales with).
  shapes.push_back(conv3x3(2, 64, 14, 14, 64, 1, 1, 1, 1));
  shapes.push_back(conv3x3(1, 128, 7, 7, 96, 1, 1, 1, 1));
  return shapes;
}

Result check_one(const Backward& b, const ConvProblem& pr, Pass pass, std::uint64_t seed) {
  RunOptions options;
  options.validate_only = true;
  options.seed = seed;
  const Case c = run_case({pr.key(), pr, pass, 1}, {&b}, TimingSettings{}, options, 0);
  return c.results.at(0);
}

class WinogradSweep : public ::testing::TestWithParam<const char*> {};

TEST_P(WinogradSweep, MatchesTheReferenceOnEveryShapeWithinItsToleranceAtTheWorstElement) {
  const Backward* b = find_backward(GetParam());
  ASSERT_NE(b, nullptr) << GetParam() << " is not registered";
  if (Support s = b->available(); !s.ok) GTEST_SKIP() << s.why;
  for (Pass pass : {Pass::data, Pass::weights}) {
    double worst_ratio = 0;
    std::string worst_key;
    for (const ConvProblem& pr : sweep()) {
      ASSERT_NO_THROW(pr.validate()) << pr.key();
      ASSERT_TRUE(b->supports(pr, pass).ok) << b->name() << " declined " << pr.key();
      const Result r = check_one(*b, pr, pass, kSeed);
      const std::string context = b->name() + " " + to_string(pass) + " seed " +
                                  std::to_string(kSeed) + " problem " + pr.key();
      ASSERT_EQ(r.status, Status::ok) << context << ": " << to_string(r.status) << ": " << r.why;
      ASSERT_TRUE(r.error.has_value()) << context;
      EXPECT_LE(r.error->max_rel, r.error->tolerance)
          << context << ": worst element " << r.error->worst_index << " of " << r.error->output;
      EXPECT_LE(r.error->rel_l2, r.error->tolerance) << context;
      const double ratio = r.error->max_rel / r.error->tolerance;
      if (ratio > worst_ratio) {
        worst_ratio = ratio;
        worst_key = pr.key();
      }
    }
    // For the record (docs/winograd.md): how close the sweep comes to the tolerance.
    std::printf("%s %s: worst max_rel / tolerance %.3f at %s (seed %llu)\n", b->name().c_str(),
                to_string(pass), worst_ratio, worst_key.c_str(),
                static_cast<unsigned long long>(kSeed));
  }
}

INSTANTIATE_TEST_SUITE_P(Variants, WinogradSweep, ::testing::ValuesIn(kVariants),
                         [](const auto& info) {
                           std::string name = info.param;
                           std::replace(name.begin(), name.end(), '.', '_');
                           return name;
                         });

TEST(Winograd, DeclinesWhatItCannotDoAndSaysWhy) {
  for (const char* name : kVariants) {
    const Backward* b = find_backward(name);
    ASSERT_NE(b, nullptr) << name;
    ConvProblem base = conv3x3(1, 4, 8, 8, 4, 1, 1, 1, 1);
    ConvProblem k5 = base, stride2 = base, dilated = base, k3x1 = base;
    k5.r = k5.s = 5;
    stride2.stride_w = 2;
    dilated.dilation_h = 2;
    k3x1.s = 1;
    for (const ConvProblem& pr : {k5, stride2, dilated, k3x1}) {
      for (Pass pass : {Pass::data, Pass::weights}) {
        const Support s = b->supports(pr, pass);
        EXPECT_FALSE(s.ok) << name << " " << pr.key();
        EXPECT_EQ(s.why, "needs 3x3 kernel, stride 1, dilation 1") << name << " " << pr.key();
      }
    }
    EXPECT_TRUE(b->supports(base, Pass::data).ok);
    EXPECT_TRUE(b->supports(base, Pass::weights).ok);
  }
}

TEST(Winograd, ToleranceIsLargerForTheLargerTile) {
  const Backward* f2 = find_backward("winograd.f2x3");
  const Backward* f4 = find_backward("winograd.f4x3");
  ASSERT_TRUE(f2 && f4);
  for (Pass pass : {Pass::data, Pass::weights}) {
    EXPECT_GE(f2->tolerance_factor(pass), 1.0);
    EXPECT_GT(f4->tolerance_factor(pass), f2->tolerance_factor(pass));
  }
}

// Bit-identical results from two runs: each thread sums its share of the weights pass
// separately, so this checks that the order of the sums is fixed, not just their value.
TEST(Winograd, RepeatedRunsAreBitIdentical) {
  const ConvProblem pr = conv3x3(3, 16, 30, 29, 16, 1, 1, 1, 1);
  for (const char* name : kVariants) {
    const Backward* b = find_backward(name);
    if (Support s = b->available(); !s.ok) GTEST_SKIP() << s.why;
    for (Pass pass : {Pass::data, Pass::weights}) {
      CaseData data(pr, pass, kSeed);
      std::vector<std::vector<float>> outputs;
      for (int run = 0; run < 2; ++run) {
        auto plan = b->plan(pr, pass);
        std::vector<std::uint8_t> workspace(plan->workspace_bytes(), 0xff);
        data.poison_outputs();
        plan->run(data.tensors(), workspace.data());
        std::vector<float> out = (pass == Pass::data ? data.dx : data.dw).floats();
        if (pass == Pass::weights) {
          const std::vector<float> db = data.db.floats();
          out.insert(out.end(), db.begin(), db.end());
        }
        outputs.push_back(std::move(out));
      }
      ASSERT_EQ(outputs[0].size(), outputs[1].size());
      EXPECT_EQ(std::memcmp(outputs[0].data(), outputs[1].data(), outputs[0].size() * 4), 0)
          << name << " " << to_string(pass) << " seed " << kSeed << " problem " << pr.key();
    }
  }
}

TEST(Winograd, CorrectWithOneThread) {
  const int saved = threads();
  set_threads(1);
  const ConvProblem pr = conv3x3(2, 9, 17, 15, 10, 1, 2, 0, 1);
  for (const char* name : kVariants) {
    const Backward* b = find_backward(name);
    if (Support s = b->available(); !s.ok) continue;
    for (Pass pass : {Pass::data, Pass::weights}) {
      const Result r = check_one(*b, pr, pass, kSeed);
      EXPECT_EQ(r.status, Status::ok) << name << " " << to_string(pass) << " seed " << kSeed
                                      << " problem " << pr.key() << ": " << r.why;
    }
  }
  set_threads(saved);
}

}  // namespace
}  // namespace convbp
