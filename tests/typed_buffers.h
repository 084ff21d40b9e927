// One pass of an implementation on tensors of any dtype and layout, driven plan by plan (upload,
// run, download) on buffers made here, and checked against the fp64 reference computed on the
// very inputs the implementation read (already rounded to the dtype). For the library entries'
// tests (oneDNN, cuDNN) of bf16, f16 and NHWC, independent of the harness's own data path.
#pragma once

#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "backward.h"
#include "dtype.h"
#include "naive.h"
#include "validate.h"

namespace convbp::typed {

// Index of NCHW element (a, b, i, j) of an [d0, d1, d2, d3] tensor in `layout` (NHWC:
// [d0, d2, d3, d1]; the weights' [k, c/g, r, s] becomes [k, r, s, c/g] likewise).
inline std::size_t at(Layout layout, const std::int64_t (&d)[4], std::int64_t a, std::int64_t b,
                      std::int64_t i, std::int64_t j) {
  if (layout == Layout::nchw) return std::size_t(((a * d[1] + b) * d[2] + i) * d[3] + j);
  return std::size_t(((a * d[2] + i) * d[3] + j) * d[1] + b);
}

// An NCHW float tensor as the bytes of a buffer of the problem's dtype and layout, and back.
inline std::vector<std::uint8_t> to_buffer(const ConvProblem& pr, const std::vector<float>& nchw,
                                           const std::int64_t (&d)[4]) {
  std::vector<std::uint8_t> out(nchw.size() * dtype_size(pr.dtype));
  std::size_t flat = 0;
  for (std::int64_t a = 0; a < d[0]; ++a)
    for (std::int64_t b = 0; b < d[1]; ++b)
      for (std::int64_t i = 0; i < d[2]; ++i)
        for (std::int64_t j = 0; j < d[3]; ++j)
          store_from_double(pr.dtype, out.data(), at(pr.layout, d, a, b, i, j), nchw[flat++]);
  return out;
}
inline std::vector<float> from_buffer(const ConvProblem& pr, const std::vector<std::uint8_t>& buf,
                                      const std::int64_t (&d)[4]) {
  std::vector<float> out(buf.size() / dtype_size(pr.dtype));
  std::size_t flat = 0;
  for (std::int64_t a = 0; a < d[0]; ++a)
    for (std::int64_t b = 0; b < d[1]; ++b)
      for (std::int64_t i = 0; i < d[2]; ++i)
        for (std::int64_t j = 0; j < d[3]; ++j)
          out[flat++] = float(load_as_double(pr.dtype, buf.data(), at(pr.layout, d, a, b, i, j)));
  return out;
}

// The rounding of one output element to the dtype, relative to the output's scale: 2^-8 for
// bf16, 2^-11 for f16 (as the harness's per-dtype model charges it), 0 for f32.
inline double output_rounding(DType dtype) {
  return dtype == DType::bf16 ? 0x1p-8 : dtype == DType::f16 ? 0x1p-11 : 0.0;
}

struct Outcome {
  ErrorStats error;
  std::string detail;  // the plan's
};

// Runs `pass` of `b` on `pr` with inputs uniform in [-1, 1) from `seed`, rounded to the dtype.
// The bound is the fp32 accumulation bound times the plan's (else the entry's) factor, plus the
// output's rounding to the dtype.
inline Outcome run_and_check(const Backward& b, const ConvProblem& pr, Pass pass,
                             std::uint64_t seed) {
  const std::int64_t xd[4] = {pr.n, pr.c, pr.h, pr.w}, yd[4] = {pr.n, pr.k, pr.p(), pr.q()},
                     wd[4] = {pr.k, pr.c_per_group(), pr.r, pr.s}, bd[4] = {1, pr.k, 1, 1};
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<float> uniform(-1.0f, 1.0f);
  auto random = [&](std::int64_t count) {
    std::vector<float> v(std::size_t(count), 0.0f);
    for (float& e : v) e = float(round_to(pr.dtype, uniform(rng)));
    return v;
  };
  const std::vector<float> x = random(pr.x_elems()), w = random(pr.w_elems()),
                           dy = random(pr.y_elems());
  const auto bx = to_buffer(pr, x, xd), bw = to_buffer(pr, w, wd), bdy = to_buffer(pr, dy, yd);
  std::vector<std::uint8_t> bdx(bx.size(), 0xff), bdw(bw.size(), 0xff),
      bdb(std::size_t(pr.k) * dtype_size(pr.dtype), 0xff);  // NaN in every dtype
  Tensors t;
  t.x = bx.data();
  t.w = bw.data();
  t.dy = bdy.data();
  t.dx = bdx.data();
  t.dw = bdw.data();
  t.db = bdb.data();
  t.dtype = pr.dtype;
  t.layout = pr.layout;
  auto plan = b.plan(pr, pass);
  std::vector<std::uint8_t> workspace(plan->workspace_bytes());
  plan->upload(t);
  plan->run(t, workspace.data());
  plan->download(t);
  const double factor =
      plan->tolerance_factor() > 0 ? plan->tolerance_factor() : b.tolerance_factor(pass);
  const double tol =
      tolerance_for(pr.accumulation_length(pass), factor) + output_rounding(pr.dtype);
  Outcome out;
  out.detail = plan->detail();
  if (pass == Pass::data) {
    std::vector<double> ref(pr.x_elems());
    reference_backward_data(pr, dy.data(), w.data(), ref.data());
    out.error = compare(from_buffer(pr, bdx, xd), ref, tol, "dx", {pr.n, pr.c, pr.h, pr.w});
  } else {
    std::vector<double> ref_w(pr.w_elems()), ref_b(pr.b_elems());
    reference_backward_weights(pr, x.data(), dy.data(), ref_w.data(), ref_b.data());
    out.error = worse(
        compare(from_buffer(pr, bdw, wd), ref_w, tol, "dw", {pr.k, pr.c_per_group(), pr.r, pr.s}),
        compare(from_buffer(pr, bdb, bd), ref_b, tol, "db", {pr.k}));
  }
  return out;
}

}  // namespace convbp::typed
