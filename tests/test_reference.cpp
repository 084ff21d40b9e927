// Proves the fp64 reference (impls/naive.cpp) against finite differences of the forward
// convolution: for the loss L = sum(y * g), dL/dx = backward_data(dy = g) and
// dL/dw = backward_weights(dy = g). L is linear in x and in w, so a central difference with a
// power-of-two step is exact up to double rounding, and every element is checked.
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "data.h"
#include "naive.h"

namespace convbp {
namespace {

constexpr std::uint64_t kSeed = 7;

struct Shape {
  const char* what;
  ConvProblem problem;
};

const Shape kShapes[] = {
    {"plain 3x3", {.n = 2, .c = 3, .h = 5, .w = 5, .k = 4, .r = 3, .s = 3}},
    {"padded",
     {.n = 1,
      .c = 2,
      .h = 4,
      .w = 4,
      .k = 3,
      .r = 3,
      .s = 3,
      .pad_top = 1,
      .pad_left = 1,
      .pad_bottom = 1,
      .pad_right = 1}},
    {"stride 2",
     {.n = 2,
      .c = 2,
      .h = 7,
      .w = 6,
      .k = 3,
      .r = 3,
      .s = 3,
      .stride_h = 2,
      .stride_w = 2,
      .pad_top = 1,
      .pad_left = 1,
      .pad_bottom = 1,
      .pad_right = 1}},
    {"asymmetric padding",
     {.n = 1,
      .c = 2,
      .h = 5,
      .w = 4,
      .k = 2,
      .r = 3,
      .s = 2,
      .pad_top = 2,
      .pad_left = 0,
      .pad_bottom = 0,
      .pad_right = 1}},
    {"dilation",
     {.n = 1, .c = 2, .h = 7, .w = 8, .k = 2, .r = 3, .s = 2, .dilation_h = 2, .dilation_w = 3}},
    {"groups",
     {.n = 2,
      .c = 4,
      .h = 5,
      .w = 5,
      .k = 6,
      .r = 3,
      .s = 3,
      .pad_top = 1,
      .pad_left = 1,
      .pad_bottom = 1,
      .pad_right = 1,
      .groups = 2}},
    {"depthwise",
     {.n = 1,
      .c = 3,
      .h = 6,
      .w = 5,
      .k = 3,
      .r = 3,
      .s = 3,
      .stride_h = 2,
      .pad_top = 1,
      .pad_left = 1,
      .pad_bottom = 1,
      .pad_right = 1,
      .groups = 3}},
    {"non-square, batch 1, everything",
     {.n = 1,
      .c = 4,
      .h = 9,
      .w = 5,
      .k = 2,
      .r = 2,
      .s = 3,
      .stride_h = 2,
      .stride_w = 1,
      .pad_top = 1,
      .pad_left = 0,
      .pad_bottom = 2,
      .pad_right = 1,
      .dilation_h = 1,
      .dilation_w = 2,
      .groups = 2}},
};

std::vector<double> to_double(const std::vector<float>& v) { return {v.begin(), v.end()}; }

double loss(const ConvProblem& pr, const std::vector<double>& x, const std::vector<double>& w,
            const std::vector<double>& g) {
  std::vector<double> y(pr.y_elems());
  reference_forward(pr, x.data(), w.data(), y.data());
  double sum = 0;
  for (std::size_t i = 0; i < y.size(); ++i) sum += y[i] * g[i];
  return sum;
}

// Central difference of the loss along every element of `v`.
std::vector<double> finite_difference(const ConvProblem& pr, std::vector<double>& v,
                                      const std::vector<double>& x, const std::vector<double>& w,
                                      const std::vector<double>& g) {
  constexpr double kStep = 0.5;
  std::vector<double> grad(v.size());
  for (std::size_t i = 0; i < v.size(); ++i) {
    const double saved = v[i];
    v[i] = saved + kStep;
    const double up = loss(pr, x, w, g);
    v[i] = saved - kStep;
    const double down = loss(pr, x, w, g);
    v[i] = saved;
    grad[i] = (up - down) / (2 * kStep);
  }
  return grad;
}

void expect_close(const std::vector<double>& got, const std::vector<double>& want,
                  const std::string& what, const ConvProblem& pr) {
  ASSERT_EQ(got.size(), want.size());
  double scale = 1e-30, worst = 0;
  std::size_t worst_at = 0;
  for (double v : want) scale = std::max(scale, std::abs(v));
  for (std::size_t i = 0; i < got.size(); ++i) {
    if (std::abs(got[i] - want[i]) > worst) worst = std::abs(got[i] - want[i]), worst_at = i;
  }
  EXPECT_LE(worst / scale, 1e-12) << what << " at flat index " << worst_at << ": reference "
                                  << got[worst_at] << " vs finite difference " << want[worst_at]
                                  << "; seed " << kSeed << ", problem " << pr.key();
}

class ReferenceGradient : public ::testing::TestWithParam<Shape> {};

TEST_P(ReferenceGradient, DataPassEqualsFiniteDifferenceOfForward) {
  const ConvProblem& pr = GetParam().problem;
  pr.validate();
  CaseData data(pr, Pass::data, kSeed);
  std::vector<float> xf(pr.x_elems());
  fill_uniform(xf, kSeed + 100);
  std::vector<double> x = to_double(xf), w = to_double(data.w.floats()),
                      g = to_double(data.dy.floats());
  std::vector<double> dx(pr.x_elems());
  reference_backward_data(pr, data.dy.data_as<float>(), data.w.data_as<float>(), dx.data());
  expect_close(dx, finite_difference(pr, x, x, w, g), "dx", pr);
}

TEST_P(ReferenceGradient, WeightsPassEqualsFiniteDifferenceOfForward) {
  const ConvProblem& pr = GetParam().problem;
  CaseData data(pr, Pass::weights, kSeed);
  std::vector<float> wf(pr.w_elems());
  fill_uniform(wf, kSeed + 100);
  std::vector<double> x = to_double(data.x.floats()), w = to_double(wf),
                      g = to_double(data.dy.floats());
  std::vector<double> dw(pr.w_elems()), db(pr.k);
  reference_backward_weights(pr, data.x.data_as<float>(), data.dy.data_as<float>(), dw.data(),
                             db.data());
  expect_close(dw, finite_difference(pr, w, x, w, g), "dw", pr);

  // Forward with bias: y[n,k,p,q] + b[k]. Difference the loss along each b[k].
  std::vector<double> y(pr.y_elems()), b(pr.k, 0.25), db_fd(pr.k);
  reference_forward(pr, x.data(), w.data(), y.data());
  const std::int64_t plane = pr.p() * pr.q();
  auto loss_with_bias = [&] {
    double sum = 0;
    for (std::size_t i = 0; i < y.size(); ++i) sum += (y[i] + b[(i / plane) % pr.k]) * g[i];
    return sum;
  };
  for (std::int64_t k = 0; k < pr.k; ++k) {
    b[k] += 0.5;
    const double up = loss_with_bias();
    b[k] -= 1.0;
    const double down = loss_with_bias();
    b[k] += 0.5;
    db_fd[k] = up - down;  // step 2 * 0.5
  }
  expect_close(db, db_fd, "db", pr);
}

INSTANTIATE_TEST_SUITE_P(Shapes, ReferenceGradient, ::testing::ValuesIn(kShapes),
                         [](const auto& info) {
                           std::string name = info.param.what;
                           for (char& ch : name) {
                             if (!std::isalnum(static_cast<unsigned char>(ch))) ch = '_';
                           }
                           return name;
                         });

}  // namespace
}  // namespace convbp
