// `naive`: the reference implementation. Loops follow the definition; the only concession to
// speed is OpenMP over independent outputs and hoisting the padding bounds out of the inner
// loop, so that it can check real ResNet-50 layers in seconds.
#include "naive.h"

#include <algorithm>
#include <vector>

#include "backward.h"
#include "conv_util.h"
#include "layout.h"

namespace convbp {
namespace {

template <typename T>
void forward_loops(const ConvProblem& pr, const T* x, const T* w, double* y) {
  const std::int64_t P = pr.p(), Q = pr.q(), cpg = pr.c_per_group(), kpg = pr.k_per_group();
#pragma omp parallel for collapse(2) schedule(dynamic)
  for (std::int64_t n = 0; n < pr.n; ++n) {
    for (std::int64_t k = 0; k < pr.k; ++k) {
      const std::int64_t g = k / kpg;
      std::vector<double> acc(P * Q, 0.0);
      for (std::int64_t cg = 0; cg < cpg; ++cg) {
        const T* x_plane = x + ((n * pr.c) + g * cpg + cg) * pr.h * pr.w;
        for (std::int64_t r = 0; r < pr.r; ++r) {
          const OutputRange ps = valid_outputs(P, pr.h, pr.stride_h, pr.pad_top, r * pr.dilation_h);
          for (std::int64_t s = 0; s < pr.s; ++s) {
            const OutputRange qs =
                valid_outputs(Q, pr.w, pr.stride_w, pr.pad_left, s * pr.dilation_w);
            const double wv = w[((k * cpg + cg) * pr.r + r) * pr.s + s];
            for (std::int64_t p = ps.lo; p < ps.hi; ++p) {
              const T* x_row = x_plane + (p * pr.stride_h - pr.pad_top + r * pr.dilation_h) * pr.w;
              for (std::int64_t q = qs.lo; q < qs.hi; ++q) {
                acc[p * Q + q] +=
                    double(x_row[q * pr.stride_w - pr.pad_left + s * pr.dilation_w]) * wv;
              }
            }
          }
        }
      }
      std::copy(acc.begin(), acc.end(), y + (n * pr.k + k) * P * Q);
    }
  }
}

}  // namespace

void reference_forward(const ConvProblem& problem, const double* x, const double* w, double* y) {
  forward_loops(problem, x, w, y);
}

namespace {

template <typename T>
void backward_data_loops(const ConvProblem& pr, const T* dy, const T* w, double* dx) {
  const std::int64_t P = pr.p(), Q = pr.q(), cpg = pr.c_per_group(), kpg = pr.k_per_group();
  // Scatter form: each (n, c) plane of dx is owned by one thread, so no two threads write the
  // same element and the sum order is fixed (the reference is deterministic).
#pragma omp parallel for collapse(2) schedule(dynamic)
  for (std::int64_t n = 0; n < pr.n; ++n) {
    for (std::int64_t c = 0; c < pr.c; ++c) {
      const std::int64_t g = c / cpg, cg = c % cpg;
      std::vector<double> acc(pr.h * pr.w, 0.0);
      for (std::int64_t k = g * kpg; k < (g + 1) * kpg; ++k) {
        const T* dy_plane = dy + (n * pr.k + k) * P * Q;
        for (std::int64_t r = 0; r < pr.r; ++r) {
          const OutputRange ps = valid_outputs(P, pr.h, pr.stride_h, pr.pad_top, r * pr.dilation_h);
          for (std::int64_t s = 0; s < pr.s; ++s) {
            const OutputRange qs =
                valid_outputs(Q, pr.w, pr.stride_w, pr.pad_left, s * pr.dilation_w);
            const double wv = w[((k * cpg + cg) * pr.r + r) * pr.s + s];
            for (std::int64_t p = ps.lo; p < ps.hi; ++p) {
              double* acc_row =
                  acc.data() + (p * pr.stride_h - pr.pad_top + r * pr.dilation_h) * pr.w;
              const T* dy_row = dy_plane + p * Q;
              for (std::int64_t q = qs.lo; q < qs.hi; ++q) {
                acc_row[q * pr.stride_w - pr.pad_left + s * pr.dilation_w] +=
                    double(dy_row[q]) * wv;
              }
            }
          }
        }
      }
      std::copy(acc.begin(), acc.end(), dx + (n * pr.c + c) * pr.h * pr.w);
    }
  }
}

template <typename T>
void backward_weights_loops(const ConvProblem& pr, const T* x, const T* dy, double* dw,
                            double* db) {
  const std::int64_t P = pr.p(), Q = pr.q(), cpg = pr.c_per_group(), kpg = pr.k_per_group();
#pragma omp parallel for collapse(2) schedule(dynamic)
  for (std::int64_t k = 0; k < pr.k; ++k) {
    for (std::int64_t cg = 0; cg < cpg; ++cg) {
      const std::int64_t c = (k / kpg) * cpg + cg;
      for (std::int64_t r = 0; r < pr.r; ++r) {
        const OutputRange ps = valid_outputs(P, pr.h, pr.stride_h, pr.pad_top, r * pr.dilation_h);
        for (std::int64_t s = 0; s < pr.s; ++s) {
          const OutputRange qs =
              valid_outputs(Q, pr.w, pr.stride_w, pr.pad_left, s * pr.dilation_w);
          double acc = 0.0;
          for (std::int64_t n = 0; n < pr.n; ++n) {
            const T* x_plane = x + (n * pr.c + c) * pr.h * pr.w;
            const T* dy_plane = dy + (n * pr.k + k) * P * Q;
            for (std::int64_t p = ps.lo; p < ps.hi; ++p) {
              const T* x_row = x_plane + (p * pr.stride_h - pr.pad_top + r * pr.dilation_h) * pr.w;
              for (std::int64_t q = qs.lo; q < qs.hi; ++q) {
                acc += double(dy_plane[p * Q + q]) *
                       double(x_row[q * pr.stride_w - pr.pad_left + s * pr.dilation_w]);
              }
            }
          }
          dw[((k * cpg + cg) * pr.r + r) * pr.s + s] = acc;
        }
      }
    }
  }
#pragma omp parallel for
  for (std::int64_t k = 0; k < pr.k; ++k) {
    double acc = 0.0;
    for (std::int64_t n = 0; n < pr.n; ++n) {
      const T* plane = dy + (n * pr.k + k) * P * Q;
      for (std::int64_t i = 0; i < P * Q; ++i) acc += double(plane[i]);
    }
    db[k] = acc;
  }
}

}  // namespace

void reference_backward_data(const ConvProblem& problem, const float* dy, const float* w,
                             double* dx) {
  backward_data_loops(problem, dy, w, dx);
}
void reference_backward_data(const ConvProblem& problem, const double* dy, const double* w,
                             double* dx) {
  backward_data_loops(problem, dy, w, dx);
}
void reference_backward_weights(const ConvProblem& problem, const float* x, const float* dy,
                                double* dw, double* db) {
  backward_weights_loops(problem, x, dy, dw, db);
}
void reference_backward_weights(const ConvProblem& problem, const double* x, const double* dy,
                                double* dw, double* db) {
  backward_weights_loops(problem, x, dy, dw, db);
}

namespace {

class NaivePlan final : public Plan {
 public:
  NaivePlan(const ConvProblem& problem, Pass pass)
      : problem_(problem),
        pass_(pass),
        out_(pass == Pass::data ? problem.x_elems() : problem.w_elems()),
        bias_(pass == Pass::weights ? problem.k : 0) {}

  std::string detail() const override {
    return direct() ? "direct loops, fp64 accumulation"
                    : std::string("direct loops, fp64 accumulation, output rounded to ") +
                          to_string(problem_.dtype);
  }

  void run(const Tensors& t, void*) override {
    if (direct()) {
      if (pass_ == Pass::data) {
        reference_backward_data(problem_, t.dy_as<float>(), t.w_as<float>(), out_.data());
        std::copy(out_.begin(), out_.end(), t.dx_as<float>());
      } else {
        reference_backward_weights(problem_, t.x_as<float>(), t.dy_as<float>(), out_.data(),
                                   bias_.data());
        std::copy(out_.begin(), out_.end(), t.dw_as<float>());
        std::copy(bias_.begin(), bias_.end(), t.db_as<float>());
      }
      return;
    }
    // Any other dtype or layout: the inputs as logical NCHW doubles (exact), the fp64 loops,
    // and each output rounded once to the dtype, in the layout.
    const ConvProblem& pr = problem_;
    const std::vector<double> dy = load_logical(pr, TensorKind::dy, t.dy, pr.y_elems());
    if (pass_ == Pass::data) {
      const std::vector<double> w = load_logical(pr, TensorKind::w, t.w, pr.w_elems());
      reference_backward_data(pr, dy.data(), w.data(), out_.data());
      store_logical(pr, TensorKind::x, out_, t.dx);
    } else {
      const std::vector<double> x = load_logical(pr, TensorKind::x, t.x, pr.x_elems());
      reference_backward_weights(pr, x.data(), dy.data(), out_.data(), bias_.data());
      store_logical(pr, TensorKind::w, out_, t.dw);
      store_logical(pr, TensorKind::b, bias_, t.db);
    }
  }

 private:
  bool direct() const { return problem_.dtype == DType::f32 && problem_.layout == Layout::nchw; }
  ConvProblem problem_;
  Pass pass_;
  std::vector<double> out_, bias_;
};

class Naive final : public Backward {
 public:
  std::string name() const override { return "naive"; }
  // The reference (every dtype and layout), and the last fallback: it runs every valid problem.
  Roles roles() const override { return {.reference = true, .baseline = false, .fallback = 3}; }
  Support supports(const ConvProblem&, Pass) const override { return Support::yes(); }
  void run_reference(const ConvProblem& problem, Pass pass, const Tensors& in, double* dx,
                     double* dw, double* db) const override {
    // f32 NCHW is read where it lies; any other dtype or layout through its logical doubles
    // (exact: every bf16, fp16 and fp32 value is a double).
    const bool direct = problem.dtype == DType::f32 && problem.layout == Layout::nchw;
    auto logical = [&](TensorKind tensor, const void* data, std::int64_t elems) {
      return load_logical(problem, tensor, data, std::size_t(elems));
    };
    if (pass == Pass::data && direct) {
      reference_backward_data(problem, in.dy_as<float>(), in.w_as<float>(), dx);
    } else if (pass == Pass::data) {
      reference_backward_data(problem, logical(TensorKind::dy, in.dy, problem.y_elems()).data(),
                              logical(TensorKind::w, in.w, problem.w_elems()).data(), dx);
    } else if (direct) {
      reference_backward_weights(problem, in.x_as<float>(), in.dy_as<float>(), dw, db);
    } else {
      reference_backward_weights(problem, logical(TensorKind::x, in.x, problem.x_elems()).data(),
                                 logical(TensorKind::dy, in.dy, problem.y_elems()).data(), dw, db);
    }
  }
  std::unique_ptr<Plan> plan(const ConvProblem& problem, Pass pass) const override {
    return std::make_unique<NaivePlan>(problem, pass);
  }
};

}  // namespace

std::vector<std::unique_ptr<Backward>> make_naive_backwards() {
  std::vector<std::unique_ptr<Backward>> list;
  list.push_back(std::make_unique<Naive>());
  return list;
}

}  // namespace convbp
