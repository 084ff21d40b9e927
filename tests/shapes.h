// Shape helpers shared by the implementation tests.
#pragma once

#include "problem.h"

namespace convbp {

// Square image and kernel, the same stride and padding on every side.
inline ConvProblem square(std::int64_t n, std::int64_t c, std::int64_t hw, std::int64_t k,
                          std::int64_t rs, std::int64_t stride, std::int64_t pad,
                          std::int64_t groups = 1) {
  return ConvProblem{.n = n,
                     .c = c,
                     .h = hw,
                     .w = hw,
                     .k = k,
                     .r = rs,
                     .s = rs,
                     .stride_h = stride,
                     .stride_w = stride,
                     .pad_top = pad,
                     .pad_left = pad,
                     .pad_bottom = pad,
                     .pad_right = pad,
                     .groups = groups};
}

}  // namespace convbp
