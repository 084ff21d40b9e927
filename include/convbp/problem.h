// ConvProblem: one convolution layer shape, NCHW fp32, and everything derived from it.
//
// Every derived size (output p/q, element counts, flops) is computed here and nowhere else,
// and every problem has one canonical key that parses back (`key()` / `parse_key()`); the
// key names results in reports, tests and the tuning database.
#pragma once

#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>

namespace convbp {

enum class Pass { data, weights };  // data: dx from dy and w; weights: dw and db from x and dy

const char* to_string(Pass pass);
std::optional<Pass> parse_pass(std::string_view text);

// A shape that cannot exist (zero sizes, groups that do not divide, ...). Distinct from an
// implementation declining a valid shape, which is a Support{false, why}.
class InvalidProblem : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct ConvProblem {
  std::int64_t n = 1, c = 1, h = 1, w = 1;  // input: batch, channels, height, width
  std::int64_t k = 1, r = 1, s = 1;         // filters: count, height, width
  std::int64_t stride_h = 1, stride_w = 1;
  std::int64_t pad_top = 0, pad_left = 0, pad_bottom = 0, pad_right = 0;
  std::int64_t dilation_h = 1, dilation_w = 1;  // 1 = no dilation
  std::int64_t groups = 1;

  // Output size. Only meaningful once validate() has passed.
  std::int64_t p() const;
  std::int64_t q() const;
  std::int64_t c_per_group() const { return c / groups; }
  std::int64_t k_per_group() const { return k / groups; }
  // Extent of the dilated kernel.
  std::int64_t dilated_r() const { return (r - 1) * dilation_h + 1; }
  std::int64_t dilated_s() const { return (s - 1) * dilation_w + 1; }

  // Element counts of the tensors: x and dx [n, c, h, w]; w and dw [k, c/g, r, s];
  // dy [n, k, p, q]; db [k].
  std::int64_t x_elems() const { return n * c * h * w; }
  std::int64_t w_elems() const { return k * c_per_group() * r * s; }
  std::int64_t y_elems() const { return n * k * p() * q(); }
  std::int64_t b_elems() const { return k; }

  // Direct-convolution flop count of one pass: 2*n*k*p*q*(c/g)*r*s (the bias sum of the
  // weights pass, n*k*p*q adds, is not counted so that both passes compare with forward).
  double flops() const;

  // Length of the dot product behind one output element, which sets the rounding error:
  // data: (k/g)*r*s (fewer where stride skips taps); weights: n*p*q.
  std::int64_t accumulation_length(Pass pass) const;

  // Throws InvalidProblem naming the first impossible field: a size below 1 (padding below
  // 0), any field above kMaxDim, groups that do not divide c and k, a dilated kernel larger
  // than the padded input, a tensor over kMaxBufferBytes.
  void validate() const;

  // n8_c64_h56_w56_k64_r3_s3_st1x1_pad1x1x1x1_dil1x1_g1 (pad order: top, left, bottom, right).
  std::string key() const;
  // Inverse of key(); throws InvalidProblem naming the malformed part. Validates the result.
  static ConvProblem parse_key(std::string_view key);

  bool operator==(const ConvProblem&) const = default;
};

// Largest byte count of any one buffer we allow; beyond it a shape is rejected as too large
// for memory rather than attempted.
inline constexpr std::int64_t kMaxBufferBytes = std::int64_t{1} << 36;  // 64 GiB
// Largest value of any one field (sizes, strides, padding, dilation, groups): a 32-bit int.
inline constexpr std::int64_t kMaxDim = 2147483647;

}  // namespace convbp
