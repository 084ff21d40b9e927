// ConvProblem: one convolution layer shape, its data type and layout, and everything derived
// from it.
//
// Every derived size (output p/q, element counts, flops) is computed here and nowhere else,
// and every problem has one canonical key that parses back (`key()` / `parse_key()`); the
// key names results in reports, tests and the tuning database.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>

namespace convbp {

enum class Pass { data, weights };  // data: dx from dy and w; weights: dw and db from x and dy

const char* to_string(Pass pass);
std::optional<Pass> parse_pass(std::string_view text);

// Element type of every tensor of a problem (x, w, dy and the outputs dx, dw, db alike).
// Implementations accumulate in fp32 at least; TF32 is a math mode of f32 entries, not a dtype.
enum class DType { f32, bf16, f16 };
// Memory order of the tensors. nchw: x, dx [n, c, h, w]; dy [n, k, p, q]; w, dw [k, c/g, r, s].
// nhwc (channels last, PyTorch's channels_last and cuDNN's NHWC): x, dx [n, h, w, c];
// dy [n, p, q, k]; w, dw [k, r, s, c/g]. db is [k] in both.
enum class Layout { nchw, nhwc };

const char* to_string(DType dtype);
const char* to_string(Layout layout);
std::optional<DType> parse_dtype(std::string_view text);    // "f32", "bf16", "f16"
std::optional<Layout> parse_layout(std::string_view text);  // "nchw", "nhwc"
// Bytes of one element: 4 or 2.
std::size_t dtype_size(DType dtype);

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
  DType dtype = DType::f32;
  Layout layout = Layout::nchw;

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

  // n8_c64_h56_w56_k64_r3_s3_st1x1_pad1x1x1x1_dil1x1_g1 (pad order: top, left, bottom, right)
  // for f32 NCHW, the key every report and database written before dtypes used; any other
  // dtype or layout appends both: ..._g1_bf16_nhwc, ..._g1_f32_nhwc, ..._g1_f16_nchw.
  std::string key() const;
  // Inverse of key(); throws InvalidProblem naming the malformed part. Validates the result.
  // Accepts the explicit ..._g1_f32_nchw too (it prints back without the suffix).
  static ConvProblem parse_key(std::string_view key);

  bool operator==(const ConvProblem&) const = default;
};

// Largest byte count of any one buffer we allow; beyond it a shape is rejected as too large
// for memory rather than attempted.
inline constexpr std::int64_t kMaxBufferBytes = std::int64_t{1} << 36;  // 64 GiB
// Largest value of any one field (sizes, strides, padding, dilation, groups): a 32-bit int.
inline constexpr std::int64_t kMaxDim = 2147483647;

}  // namespace convbp
