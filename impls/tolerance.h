// The rounding bound that validation holds every output to (per dtype), and that an
// implementation's own error model (impls/cudnn/error_model.cpp) is expressed against.
#pragma once

#include <cstdint>

#include "problem.h"

namespace convbp {

// Tolerance for an output of a dot-product length `accumulation_length` in `dtype`
// (docs/conv_backward.md, "Error model per dtype"): rounding error of fp32 summation grows like
// sqrt(length) for random data (Higham, ch. 3), times a family factor for algorithms that round
// more (Winograd transforms, TF32); a bf16 or fp16 output adds its one rounding to the dtype,
// at most the dtype's unit roundoff relative to the element (2^-8 for bf16, 2^-11 for fp16).
// The inputs are the dtype's values already (the reference reads the same rounded inputs) and
// their products are exact in fp32, so nothing else is charged: an implementation that
// accumulates in bf16 or fp16 exceeds it.
double tolerance_for(std::int64_t accumulation_length, double family_factor,
                     DType dtype = DType::f32);
// The unit roundoff of a dtype: 2^-24 (f32), 2^-8 (bf16), 2^-11 (f16).
double unit_roundoff(DType dtype);

}  // namespace convbp
