// Shape helpers shared by the implementation tests.
#pragma once

#include <vector>

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

// The validation sweep every implementation is checked on (tests/test_impls.cpp), and family
// tests reuse: stride, asymmetric padding, dilation, groups, depthwise, batch 1, non-square,
// odd and tiny sizes, and a few longer accumulations.
inline std::vector<ConvProblem> sweep() {
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
  // Channels a multiple of 16 (oneDNN's AVX-512 Winograd takes these), with equal padding, and
  // with unequal top/bottom or left/right padding; strided depthwise; odd channel counts.
  shapes.push_back(square(2, 16, 8, 16, 3, 1, 1));
  shapes.push_back({.n = 2,
                    .c = 16,
                    .h = 10,
                    .w = 10,
                    .k = 16,
                    .r = 3,
                    .s = 3,
                    .pad_top = 1,
                    .pad_left = 1,
                    .pad_bottom = 0,
                    .pad_right = 0});
  shapes.push_back({.n = 2,
                    .c = 16,
                    .h = 9,
                    .w = 10,
                    .k = 32,
                    .r = 3,
                    .s = 3,
                    .pad_top = 1,
                    .pad_left = 0,
                    .pad_bottom = 1,
                    .pad_right = 1});
  shapes.push_back(square(1, 32, 5, 32, 3, 2, 1, 32));
  shapes.push_back(square(3, 19, 10, 21, 3, 1, 1));
  return shapes;
}

}  // namespace convbp
