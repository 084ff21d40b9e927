// Element types of the tensors: fp32, bf16 and fp16 values, and their rounding.
//
// bf16 and fp16 are stored as their 16-bit patterns (`bfloat16`, `float16` below), so that the
// buffers have a well-defined layout on every compiler; kernels convert with to_float and
// round with to_bfloat16 / to_float16, both round-to-nearest-even as the hardware does.
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>

#include "problem.h"

namespace convbp {

struct bfloat16 {
  std::uint16_t bits = 0;
};
struct float16 {
  std::uint16_t bits = 0;
};

// The C++ type of a DType's elements.
template <DType D>
struct element_of;
template <>
struct element_of<DType::f32> {
  using type = float;
};
template <>
struct element_of<DType::bf16> {
  using type = bfloat16;
};
template <>
struct element_of<DType::f16> {
  using type = float16;
};
template <DType D>
using element_t = typename element_of<D>::type;

inline float to_float(float v) { return v; }

inline float to_float(bfloat16 v) {
  const std::uint32_t bits = std::uint32_t(v.bits) << 16;
  float f;
  std::memcpy(&f, &bits, sizeof f);
  return f;
}

// Round to nearest even; NaN stays NaN (quiet), overflow rounds to Inf as in hardware.
inline bfloat16 to_bfloat16(float f) {
  std::uint32_t bits;
  std::memcpy(&bits, &f, sizeof bits);
  if (std::isnan(f)) return bfloat16{std::uint16_t((bits >> 16) | 0x40)};
  bits += 0x7fff + ((bits >> 16) & 1);
  return bfloat16{std::uint16_t(bits >> 16)};
}

inline float to_float(float16 v) {
  const std::uint32_t sign = std::uint32_t(v.bits & 0x8000) << 16;
  const std::uint32_t exponent = (v.bits >> 10) & 0x1f;
  const std::uint32_t mantissa = v.bits & 0x3ff;
  if (exponent == 0x1f) {  // Inf or NaN
    const std::uint32_t bits = sign | 0x7f800000u | (mantissa << 13);
    float f;
    std::memcpy(&f, &bits, sizeof f);
    return f;
  }
  // Normal or subnormal: the value is exact in float.
  const float magnitude = exponent == 0 ? std::ldexp(float(mantissa), -24)
                                        : std::ldexp(float(mantissa | 0x400), int(exponent) - 25);
  return sign ? -magnitude : magnitude;
}

// Round to nearest even; beyond fp16's range (65504, halfway to 65536 and up) gives Inf, as the
// hardware conversion does: callers that must not overflow check with fits_float16.
inline float16 to_float16(float f) {
  std::uint32_t bits;
  std::memcpy(&bits, &f, sizeof bits);
  const std::uint16_t sign = std::uint16_t((bits >> 16) & 0x8000);
  const float a = std::fabs(f);
  if (std::isnan(f)) return float16{std::uint16_t(sign | 0x7e00)};
  if (a >= 65520.0f) return float16{std::uint16_t(sign | 0x7c00)};  // rounds past 65504
  if (a < 0x1p-14f) {
    // Subnormal (or zero): multiples of 2^-24; nearbyint rounds to nearest even.
    const float units = std::nearbyint(a * 0x1p24f);
    return float16{std::uint16_t(sign | std::uint16_t(units))};
  }
  int exponent;
  const float m = std::frexp(a, &exponent);  // a = m * 2^exponent, m in [0.5, 1)
  // 11 significant bits: a = units * 2^(exponent - 11), units in [1024, 2048).
  float units = std::nearbyint(std::ldexp(m, 11));
  if (units == 2048.0f) {
    units = 1024.0f;
    ++exponent;
  }
  const int biased = exponent - 1 + 15;
  if (biased >= 31) return float16{std::uint16_t(sign | 0x7c00)};
  return float16{std::uint16_t(sign | (biased << 10) | (std::uint16_t(units) & 0x3ff))};
}

inline constexpr double kFloat16Max = 65504.0;

// Whether `v` rounds to a finite fp16 value.
inline bool fits_float16(double v) { return std::fabs(v) < 65520.0; }

// `v` rounded to the nearest value of `dtype` (via fp32, as a kernel writing that dtype does).
inline double round_to(DType dtype, double v) {
  const float f = float(v);
  switch (dtype) {
    case DType::bf16:
      return to_float(to_bfloat16(f));
    case DType::f16:
      return to_float(to_float16(f));
    case DType::f32:
      break;
  }
  return f;
}

// Element i of a buffer of `dtype`, as a double.
inline double load_as_double(DType dtype, const void* data, std::size_t i) {
  switch (dtype) {
    case DType::bf16:
      return to_float(static_cast<const bfloat16*>(data)[i]);
    case DType::f16:
      return to_float(static_cast<const float16*>(data)[i]);
    case DType::f32:
      break;
  }
  return static_cast<const float*>(data)[i];
}

// Stores `v` rounded to `dtype` (fp16 overflow gives Inf: check fits_float16 first).
inline void store_from_double(DType dtype, void* data, std::size_t i, double v) {
  switch (dtype) {
    case DType::bf16:
      static_cast<bfloat16*>(data)[i] = to_bfloat16(float(v));
      return;
    case DType::f16:
      static_cast<float16*>(data)[i] = to_float16(float(v));
      return;
    case DType::f32:
      break;
  }
  static_cast<float*>(data)[i] = float(v);
}

}  // namespace convbp
