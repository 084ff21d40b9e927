#include "error_model.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <iterator>
#include <limits>

#include "tolerance.h"

namespace convbp::cudnn {
namespace {

constexpr double kU = 0x1p-24;  // fp32 unit roundoff
// TF32 keeps 10 mantissa bits: unit roundoff 2^-11. The weights-pass kernels measured on the
// H200 shrink dw by about 2^-10 on average (a bias, not noise), which is what truncating both
// inputs does; kInputMargin covers that twice.
constexpr double kUTf32 = 0x1p-11;
// Tensor cores accumulate fp32 without round-to-nearest (they align and truncate: Fasi, Higham,
// Mikaitis, Pranesh 2021). Measured: 3.0x the fp32 accumulation term at L = 1.6M.
constexpr double kTensorCoreAccumulation = 4.0;
// The margin of the input-rounding and transform terms over the worst element measured.
constexpr double kInputMargin = 4.0;

// Growth of the input rounding error through the 2-D Winograd transforms of an n x n tile
// (n = m + r - 1): the square of the 1-D growth, which rises steeply with the number of
// interpolation points (Barabasz et al. 2020). Calibrated on the H200 (docs/cudnn.md): n = 6
// (F(4x4, 3x3)) reaches 103 u, n = 8 (F(4x4, 5x5)) 40400 u; the values leave a factor 2.5-3
// (with kInputMargin) over them. No tile above 8 has a model.
double winograd_amplification(std::int64_t n) {
  if (n <= 4) return 4.0;
  if (n <= 6) return 64.0;
  if (n <= 8) return 32768.0;
  return std::numeric_limits<double>::infinity();
}

std::int64_t winograd_tile_points(const AlgorithmClass& cls, const ConvProblem& pr) {
  return cls.winograd_tile + std::max(pr.r, pr.s) - 1;
}

// log2 of the FFT size: the padded input plane rounded up to powers of two per dimension (a
// tiled FFT uses smaller tiles, so this bounds it).
double fft_log2_points(const ConvProblem& pr) {
  auto bits = [](std::int64_t extent) {
    return std::ceil(std::log2(double(std::max<std::int64_t>(extent, 2))));
  };
  return bits(pr.h + pr.pad_top + pr.pad_bottom) + bits(pr.w + pr.pad_left + pr.pad_right);
}

// Unit roundoff of what a class's multiplications read (see error_model.h).
double input_unit(const AlgorithmClass& cls) {
  if (!cls.tensor_cores) return kU;
  switch (cls.dtype) {
    case DType::f32:
      return kUTf32;
    case DType::bf16:
      return cls.method == Method::direct ? kU : 0x1p-8;
    case DType::f16:
      return cls.method == Method::direct ? kU : 0x1p-11;
  }
  return kU;
}

double fp32_bound(const ConvProblem& pr, Pass pass) {
  return tolerance_for(pr.accumulation_length(pass), 1.0);
}

}  // namespace

// Engines that transform without a note saying so. Engine 17 (weights; cuDNN 9.14 on the H200,
// no numerical note) returned dw with the errors of the legacy WINOGRAD_NONFUSED, equal to the
// last digit, on all 8 shapes both ran (3x3 and 5x5 filters): it is that algorithm.
constexpr std::int64_t kUnnotedWinograd[] = {17};

AlgorithmClass engine_class(std::int64_t engine, const EngineNotes& notes, DType dtype) {
  AlgorithmClass cls;
  cls.dtype = dtype;
  cls.tensor_cores = notes.tensor_core;
  if (notes.fft) {
    cls.method = Method::fft;
  } else if (notes.winograd ||
             std::count(std::begin(kUnnotedWinograd), std::end(kUnnotedWinograd), engine) > 0) {
    cls.method = Method::winograd;
    // A note's tile is taken as the output tile m: the larger reading, so the looser bound.
    cls.winograd_tile = notes.winograd_tile > 0 ? notes.winograd_tile : 4;
  }
  return cls;
}

// cuDNN does not say which kernel a legacy algorithm runs; with CUDNN_TENSOR_OP_MATH it may use
// tensor cores, so the model allows for them, except for Winograd: on the H200 (cuDNN 9.14)
// its errors under TENSOR_OP_MATH were those under FMA_MATH to the last digit on all 12 cases
// (CUDA cores), and a TF32 Winograd bound would be too loose to validate anything
// (validation_support). Were a cuDNN to run it in TF32, validation would say so. The nonfused
// Winograd's errors fit 4x4 output tiles (F(4x4, 3x3), F(4x4, 5x5)); the fused one is given the
// same bound, larger than its F(2x2, 3x3) would need.
AlgorithmClass legacy_class(const std::string& algorithm, bool tensor_op_math, DType dtype) {
  AlgorithmClass cls;
  cls.dtype = dtype;
  if (algorithm == "fft" || algorithm == "fft_tiling") cls.method = Method::fft;
  if (algorithm == "winograd" || algorithm == "winograd_nonfused") cls.method = Method::winograd;
  cls.tensor_cores = tensor_op_math && cls.method != Method::winograd;
  return cls;
}

std::string AlgorithmClass::describe() const {
  std::string s;
  switch (method) {
    case Method::direct:
      s = "direct (implicit GEMM)";
      break;
    case Method::fft:
      s = "FFT";
      break;
    case Method::winograd:
      s = "Winograd F(" + std::to_string(winograd_tile) + "x" + std::to_string(winograd_tile) +
          ", r x s)";
      break;
  }
  if (dtype != DType::f32) {
    return s + " on " + to_string(dtype) +
           (tensor_cores ? " tensors, tensor cores, fp32 accumulation"
                         : " tensors, CUDA cores, fp32 accumulation");
  }
  return s + (tensor_cores ? " on TF32 tensor cores" : " on CUDA cores (fp32)");
}

double error_bound(const AlgorithmClass& cls, const ConvProblem& pr, Pass pass) {
  const double accumulation =
      fp32_bound(pr, pass) * (cls.tensor_cores ? kTensorCoreAccumulation : 1.0);
  const double amplification =
      cls.method == Method::winograd ? winograd_amplification(winograd_tile_points(cls, pr)) : 1.0;
  const double input = kInputMargin * (input_unit(cls) * amplification - kU);
  const double fft = cls.method == Method::fft ? 8.0 * kU * fft_log2_points(pr) : 0.0;
  return accumulation + input + fft;
}

double tolerance_factor(const AlgorithmClass& cls, const ConvProblem& pr, Pass pass) {
  return error_bound(cls, pr, pass) / fp32_bound(pr, pass);
}

double tolerance_factor_bound(const AlgorithmClass& cls) {
  // The accumulation term is a constant factor; the others are largest against the smallest
  // fp32 bound (L <= 4), and the FFT term at the largest plane (2^31 x 2^31 points).
  const double smallest = tolerance_for(4, 1.0);
  const double amplification =
      cls.method == Method::winograd ? winograd_amplification(cls.winograd_tile + 4) : 1.0;
  const double input = kInputMargin * (input_unit(cls) * amplification - kU);
  const double fft = cls.method == Method::fft ? 8.0 * kU * 62.0 : 0.0;
  return (cls.tensor_cores ? kTensorCoreAccumulation : 1.0) + (input + fft) / smallest;
}

Support validation_support(const AlgorithmClass& cls, const ConvProblem& pr, Pass pass) {
  const double bound = error_bound(cls, pr, pass);
  if (bound <= kLargestUsefulBound) return Support::yes();
  char figure[32];
  std::snprintf(figure, sizeof figure, "%.3g", bound);
  return Support::no("the error model of " + cls.describe() + " allows " +
                     (std::isfinite(bound)
                          ? std::string(figure) + " of the output's scale"
                          : std::string("any error (no model for this Winograd tile)")) +
                     " here, too loose to tell a right answer from a wrong one (docs/cudnn.md)");
}

}  // namespace convbp::cudnn
