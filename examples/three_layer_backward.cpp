// The backward pass of a three-layer convolution net on convbp's run-time API: each layer's
// data and weights passes run on the implementation the tuning database picks for its shape,
// and the program says which one and why (database hit / tuned now / default).
//
//   convbp_example [--db FILE] [--on-miss tune|default] [--budget SECONDS] [--threads N]
//
// The net: x0 [4,3,32,32] -conv1 3x3-> relu -> x1 [4,16,32,32] -conv2 3x3/2-> relu ->
// x2 [4,32,16,16] -conv3 1x1-> y [4,32,16,16], loss = sum(y^2)/2, so dy = y. The forward pass
// is the example's own fp64 loops (a framework would use its own); the end checks conv1's
// weight gradient, which depends on every backward step, against the same loops' fp64 backward
// pass. The example includes the installed API only (<convbp/autotuner.h>).
#include <convbp/autotuner.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <string>
#include <vector>

namespace {

struct Layer {
  const char* name;
  convbp::ConvProblem problem;
  std::vector<float> w, dw, db;
  std::vector<float> x, z;  // input, pre-activation output (kept from the forward pass)
};

convbp::ConvProblem conv(std::int64_t n, std::int64_t c, std::int64_t hw, std::int64_t k,
                         std::int64_t r, std::int64_t stride, std::int64_t pad) {
  convbp::ConvProblem p;
  p.n = n;
  p.c = c;
  p.h = p.w = hw;
  p.k = k;
  p.r = p.s = r;
  p.stride_h = p.stride_w = stride;
  p.pad_top = p.pad_left = p.pad_bottom = p.pad_right = pad;
  p.validate();
  return p;
}

// Calls f(x index, w index, y index) for every product of the convolution's definition
// (groups 1 and no dilation: all this net needs).
template <typename F>
void for_each_product(const convbp::ConvProblem& p, F f) {
  for (std::int64_t n = 0; n < p.n; ++n)
    for (std::int64_t k = 0; k < p.k; ++k)
      for (std::int64_t oh = 0; oh < p.p(); ++oh)
        for (std::int64_t ow = 0; ow < p.q(); ++ow)
          for (std::int64_t c = 0; c < p.c; ++c)
            for (std::int64_t r = 0; r < p.r; ++r)
              for (std::int64_t s = 0; s < p.s; ++s) {
                const std::int64_t h = oh * p.stride_h - p.pad_top + r;
                const std::int64_t w = ow * p.stride_w - p.pad_left + s;
                if (h < 0 || h >= p.h || w < 0 || w >= p.w) continue;
                f(((n * p.c + c) * p.h + h) * p.w + w, ((k * p.c + c) * p.r + r) * p.s + s,
                  ((n * p.k + k) * p.p() + oh) * p.q() + ow);
              }
}

std::vector<float> forward(const convbp::ConvProblem& p, const std::vector<float>& x,
                           const std::vector<float>& w) {
  std::vector<double> y(p.y_elems());
  for_each_product(p, [&](auto xi, auto wi, auto yi) { y[yi] += double(x[xi]) * w[wi]; });
  return {y.begin(), y.end()};
}

std::vector<double> backward_data(const convbp::ConvProblem& p, const std::vector<float>& dy,
                                  const std::vector<float>& w) {
  std::vector<double> dx(p.x_elems());
  for_each_product(p, [&](auto xi, auto wi, auto yi) { dx[xi] += double(dy[yi]) * w[wi]; });
  return dx;
}

std::vector<double> backward_weights(const convbp::ConvProblem& p, const std::vector<float>& x,
                                     const std::vector<float>& dy) {
  std::vector<double> dw(p.w_elems());
  for_each_product(p, [&](auto xi, auto wi, auto yi) { dw[wi] += double(dy[yi]) * x[xi]; });
  return dw;
}

[[noreturn]] void usage(const char* message) {
  std::fprintf(stderr,
               "convbp_example: %s\nusage: convbp_example [--db FILE] [--on-miss tune|default] "
               "[--budget SECONDS] [--threads N]\n",
               message);
  std::exit(2);
}

}  // namespace

int main(int argc, char** argv) {
  std::string db = "tuning.json";
  convbp::AutotunerOptions options;
  options.tune_seconds = 2;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (i + 1 >= argc) usage(("missing value after " + a).c_str());
    const std::string v = argv[++i];
    if (a == "--db") {
      db = v;
    } else if (a == "--on-miss" && (v == "tune" || v == "default")) {
      options.on_miss = v == "tune" ? convbp::AutotunerOptions::OnMiss::tune
                                    : convbp::AutotunerOptions::OnMiss::fallback;
    } else if (a == "--budget") {
      options.tune_seconds = std::atof(v.c_str());
    } else if (a == "--threads") {
      options.threads = std::atoi(v.c_str());
    } else {
      usage(("unknown option " + a + " " + v).c_str());
    }
  }

  const std::int64_t n = 4;
  std::vector<Layer> net;
  net.push_back({"conv1", conv(n, 3, 32, 16, 3, 1, 1), {}, {}, {}, {}, {}});
  net.push_back({"conv2", conv(n, 16, 32, 32, 3, 2, 1), {}, {}, {}, {}, {}});
  net.push_back({"conv3", conv(n, 32, 16, 32, 1, 1, 0), {}, {}, {}, {}, {}});

  std::mt19937 rng(7);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<float> x(net[0].problem.x_elems());
  for (float& v : x) v = normal(rng);
  for (std::size_t l = 0; l < net.size(); ++l) {
    Layer& layer = net[l];
    const convbp::ConvProblem& p = layer.problem;
    const float scale = std::sqrt(2.0f / float(p.c * p.r * p.s));  // He initialisation
    layer.w.resize(p.w_elems());
    for (float& v : layer.w) v = normal(rng) * scale;
    layer.x = x;
    layer.z = forward(p, layer.x, layer.w);
    x = layer.z;
    if (l + 1 < net.size()) {
      for (float& v : x) v = std::max(v, 0.0f);  // relu
    }
  }

  try {
    convbp::Autotuner tuner(db, options);
    std::printf("three-layer conv net, batch %lld, tuning database %s\n", (long long)n, db.c_str());
    std::vector<float> dy = x;  // loss = sum(y^2)/2
    for (std::size_t l = net.size(); l-- > 0;) {
      Layer& layer = net[l];
      const convbp::ConvProblem& p = layer.problem;
      if (l + 1 < net.size()) {
        for (std::size_t i = 0; i < dy.size(); ++i) dy[i] = layer.z[i] > 0 ? dy[i] : 0.0f;
      }
      layer.dw.resize(p.w_elems());
      layer.db.resize(p.b_elems());
      std::vector<float> dx(l > 0 ? p.x_elems() : 0);
      convbp::Tensors t;
      t.x = layer.x.data();
      t.w = layer.w.data();
      t.dy = dy.data();
      t.dx = dx.data();
      t.dw = layer.dw.data();
      t.db = layer.db.data();
      // The first layer's input needs no gradient: only its weights pass runs.
      std::vector<convbp::Pass> passes = {convbp::Pass::weights};
      if (l > 0) passes.push_back(convbp::Pass::data);
      for (convbp::Pass pass : passes) {
        convbp::TunedPlan& plan = tuner.plan(p, pass);
        plan.run(t);
        std::printf("%s %-7s %-24s %s\n", layer.name, convbp::to_string(pass), plan.impl().c_str(),
                    plan.why().c_str());
      }
      dy = std::move(dx);
    }

    // conv1's weight gradient against the fp64 reference, from the same dy it received.
    Layer& first = net[0];
    const convbp::ConvProblem& p = first.problem;
    std::vector<float> dy1(p.y_elems());
    {
      // Recompute dy1 = relu'(z1) * conv2's data pass, all in fp64.
      const std::vector<double> dx3 = backward_data(net[2].problem, net[2].z, net[2].w);
      std::vector<float> dy2(dx3.size());
      for (std::size_t i = 0; i < dy2.size(); ++i) dy2[i] = net[1].z[i] > 0 ? float(dx3[i]) : 0;
      const std::vector<double> dx2 = backward_data(net[1].problem, dy2, net[1].w);
      for (std::size_t i = 0; i < dy1.size(); ++i) dy1[i] = first.z[i] > 0 ? float(dx2[i]) : 0;
    }
    const std::vector<double> dw_ref = backward_weights(p, first.x, dy1);
    double max_diff = 0, max_ref = 0;
    for (std::size_t i = 0; i < dw_ref.size(); ++i) {
      max_diff = std::max(max_diff, std::abs(double(first.dw[i]) - dw_ref[i]));
      max_ref = std::max(max_ref, std::abs(dw_ref[i]));
    }
    const double rel = max_diff / max_ref;
    std::printf("conv1 dw vs fp64 reference: max_rel %.2e\n", rel);
    if (!(rel < 1e-3)) {
      std::fprintf(stderr, "convbp_example: conv1 dw differs from the reference\n");
      return 1;
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "convbp_example: %s\n", e.what());
    return 1;
  }
  return 0;
}
