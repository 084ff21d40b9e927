// Index helpers shared by the CPU implementations.
#pragma once

#include <algorithm>
#include <cstdint>

namespace convbp {

// Output positions o in [lo, hi) whose input position o*stride - pad + tap lies in [0, in_size):
// the loops over o then need no bounds test. `tap` is the kernel offset times the dilation.
struct OutputRange {
  std::int64_t lo, hi;
};
inline OutputRange valid_outputs(std::int64_t out_size, std::int64_t in_size, std::int64_t stride,
                                 std::int64_t pad, std::int64_t tap) {
  const std::int64_t first = pad - tap;          // o*stride >= first
  const std::int64_t end = in_size + pad - tap;  // o*stride < end
  const std::int64_t lo = std::min(first <= 0 ? 0 : (first + stride - 1) / stride, out_size);
  const std::int64_t hi = end <= 0 ? 0 : (end + stride - 1) / stride;
  return {lo, std::clamp(hi, lo, out_size)};
}

}  // namespace convbp
