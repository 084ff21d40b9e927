#include "tolerance.h"

#include <algorithm>
#include <cmath>

namespace convbp {

double unit_roundoff(DType dtype) {
  switch (dtype) {
    case DType::bf16:
      return 0x1p-8;  // 8-bit significand (7 stored + the implicit bit)
    case DType::f16:
      return 0x1p-11;  // 11-bit significand (10 stored + the implicit bit)
    case DType::f32:
      break;
  }
  return 0x1p-24;
}

double tolerance_for(std::int64_t accumulation_length, double family_factor, DType dtype) {
  // 2^-24 is fp32's unit roundoff. The factor 16 covers the spread of the worst element over
  // millions of outputs, measured on the test sweep with margin; the floor keeps very short
  // sums (length 1) from demanding exactness.
  const double length = double(std::max<std::int64_t>(accumulation_length, 4));
  const double fp32_sum = family_factor * 16.0 * unit_roundoff(DType::f32) * std::sqrt(length);
  if (dtype == DType::f32) return fp32_sum;
  // A bf16/fp16 output is the fp32 result (error fp32_sum, relative to the output's scale)
  // rounded once to nearest in the dtype: at most u * |value| more, and |value| is at most the
  // scale times (1 + fp32_sum). max_rel and rel_l2 are both relative to the scale.
  return fp32_sum + unit_roundoff(dtype) * (1.0 + fp32_sum);
}

}  // namespace convbp
