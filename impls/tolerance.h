// The fp32 rounding bound that validation holds every output to, and that an implementation's
// own error model (impls/cudnn/error_model.cpp) is expressed against.
#pragma once

#include <cstdint>

namespace convbp {

// Tolerance for an output of a dot-product length `accumulation_length`: rounding error of
// fp32 summation grows like sqrt(length) for random data (Higham, ch. 3), times a family
// factor for algorithms that round more (Winograd transforms, TF32).
double tolerance_for(std::int64_t accumulation_length, double family_factor);

}  // namespace convbp
