// Comparison of an implementation's output with the fp64 reference.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "problem.h"
#include "tolerance.h"

namespace convbp {

struct ErrorStats {
  double max_abs = 0;    // max |out - ref|
  double max_rel = 0;    // max |out - ref| / max |ref|: the worst element on the output's scale
  double rel_l2 = 0;     // ||out - ref||_2 / ||ref||_2
  double tolerance = 0;  // bound on max_rel (and rel_l2)
  std::string output;    // which output the figures come from ("dx", "dw", "db")
  std::int64_t worst_index = -1;  // flat index of the worst element
  std::int64_t nan_count = 0;     // NaN or Inf elements (an unwritten element stays NaN)
  bool all_zero = false;          // every element zero while the reference is not
  bool ok() const;
  // "" when ok, else why not, in words: "dx: 12 NaN elements (first at [0,3,1,2])".
  std::string failure;
};

// `shape` names the dimensions for messages ([n, c, h, w] of dx, ...).
// `scale_floor` is the least scale max_rel divides by: an output of very few elements (db of
// one filter) can be a sum that cancels to nearly 0, while its rounding error scales with the
// terms, not with the sum; the caller passes the norm of the terms there.
// An Inf where the reference is finite is named as an overflow with its index and the
// reference's value ("dx: overflow to Inf at [0,3,1,2] (reference 7.1e+04)"): fp16's range
// ends at 65504.
ErrorStats compare(const std::vector<float>& out, const std::vector<double>& ref, double tolerance,
                   const std::string& output, const std::vector<std::int64_t>& shape,
                   double scale_floor = 0.0);
// The same on a buffer of floats (an f32 NCHW output, compared where it lies).
ErrorStats compare(std::span<const float> out, const std::vector<double>& ref, double tolerance,
                   const std::string& output, const std::vector<std::int64_t>& shape,
                   double scale_floor = 0.0);
// The same for an output already converted to doubles (a bf16 or fp16 output, or one in
// NHWC, brought to the reference's NCHW order).
ErrorStats compare(const std::vector<double>& out, const std::vector<double>& ref, double tolerance,
                   const std::string& output, const std::vector<std::int64_t>& shape,
                   double scale_floor = 0.0);

// The worse of two comparisons (by max_rel relative to tolerance; failures first).
const ErrorStats& worse(const ErrorStats& a, const ErrorStats& b);

// "[0,3,1,2]" for a flat index of an array with the given shape.
std::string index_string(std::int64_t flat, const std::vector<std::int64_t>& shape);

}  // namespace convbp
