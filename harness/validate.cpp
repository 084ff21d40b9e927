#include "validate.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <span>

namespace convbp {

bool ErrorStats::ok() const { return failure.empty(); }

std::string index_string(std::int64_t flat, const std::vector<std::int64_t>& shape) {
  std::vector<std::int64_t> idx(shape.size());
  for (std::size_t d = shape.size(); d-- > 0;) {
    idx[d] = flat % shape[d];
    flat /= shape[d];
  }
  std::string s = "[";
  for (std::size_t d = 0; d < idx.size(); ++d) {
    if (d) s += ',';
    s += std::to_string(idx[d]);
  }
  return s + "]";
}

namespace {

template <typename T>
ErrorStats compare_values(std::span<const T> out, const std::vector<double>& ref, double tolerance,
                          const std::string& output, const std::vector<std::int64_t>& shape,
                          double scale_floor) {
  ErrorStats e;
  e.output = output;
  e.tolerance = tolerance;
  double ref_max = 0, diff_sq = 0, ref_sq = 0;
  std::int64_t first_nan = -1, first_overflow = -1;
  bool out_all_zero = true;
  for (std::size_t i = 0; i < out.size(); ++i) {
    const double o = out[i], r = ref[i];
    if (!std::isfinite(o)) {
      if (e.nan_count++ == 0) first_nan = std::int64_t(i);
      if (std::isinf(o) && std::isfinite(r) && first_overflow < 0) first_overflow = std::int64_t(i);
      continue;
    }
    out_all_zero &= (o == 0.0);
    const double d = std::abs(o - r);
    if (d > e.max_abs || e.worst_index < 0) {
      e.max_abs = d;
      e.worst_index = std::int64_t(i);
    }
    ref_max = std::max(ref_max, std::abs(r));
    diff_sq += d * d;
    ref_sq += r * r;
  }
  const double scale = std::max(ref_max, scale_floor);
  e.max_rel = scale > 0 ? e.max_abs / scale : e.max_abs;
  const double norm = std::max(std::sqrt(ref_sq), scale_floor);
  e.rel_l2 = norm > 0 ? std::sqrt(diff_sq) / norm : std::sqrt(diff_sq);
  e.all_zero = out_all_zero && ref_max > 0 && e.nan_count == 0;
  if (first_overflow >= 0) {
    char figures[64];
    std::snprintf(figures, sizeof figures, " (reference %.6g)", ref[std::size_t(first_overflow)]);
    e.failure = output + ": overflow to Inf at " + index_string(first_overflow, shape) + figures +
                "; " + std::to_string(e.nan_count) + " NaN/Inf element(s) in all";
  } else if (e.nan_count > 0) {
    e.failure = output + ": " + std::to_string(e.nan_count) + " NaN/Inf element(s), first at " +
                index_string(first_nan, shape) + " (never written, or overflow)";
  } else if (e.all_zero) {
    e.failure = output + ": all-zero output from nonzero inputs";
  } else if (e.max_rel > tolerance || e.rel_l2 > tolerance) {
    char figures[160];
    std::snprintf(figures, sizeof figures, "error above tolerance %.3g (max_rel %.3g, rel_l2 %.3g",
                  tolerance, e.max_rel, e.rel_l2);
    e.failure = output + ": " + figures + ", worst at " + index_string(e.worst_index, shape) + ")";
  }
  return e;
}

}  // namespace

ErrorStats compare(const std::vector<float>& out, const std::vector<double>& ref, double tolerance,
                   const std::string& output, const std::vector<std::int64_t>& shape,
                   double scale_floor) {
  return compare_values(std::span<const float>(out), ref, tolerance, output, shape, scale_floor);
}

ErrorStats compare(std::span<const float> out, const std::vector<double>& ref, double tolerance,
                   const std::string& output, const std::vector<std::int64_t>& shape,
                   double scale_floor) {
  return compare_values(out, ref, tolerance, output, shape, scale_floor);
}

ErrorStats compare(const std::vector<double>& out, const std::vector<double>& ref, double tolerance,
                   const std::string& output, const std::vector<std::int64_t>& shape,
                   double scale_floor) {
  return compare_values(std::span<const double>(out), ref, tolerance, output, shape, scale_floor);
}

const ErrorStats& worse(const ErrorStats& a, const ErrorStats& b) {
  if (a.ok() != b.ok()) return a.ok() ? b : a;
  const double ra = a.tolerance > 0 ? a.max_rel / a.tolerance : a.max_rel;
  const double rb = b.tolerance > 0 ? b.max_rel / b.tolerance : b.max_rel;
  return ra >= rb ? a : b;
}

}  // namespace convbp
