#include "tolerance.h"

#include <algorithm>
#include <cmath>

namespace convbp {

double tolerance_for(std::int64_t accumulation_length, double family_factor) {
  // 2^-24 is fp32's unit roundoff. The factor 16 covers the spread of the worst element over
  // millions of outputs, measured on the test sweep with margin; the floor keeps very short
  // sums (length 1) from demanding exactness.
  constexpr double kUnitRoundoff = 0x1p-24;
  const double length = double(std::max<std::int64_t>(accumulation_length, 4));
  return family_factor * 16.0 * kUnitRoundoff * std::sqrt(length);
}

}  // namespace convbp
