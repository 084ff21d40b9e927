// winograd.f2x3 and winograd.f4x3: both passes of 3x3 stride-1 convolutions with Winograd's
// minimal filtering algorithms F(2x2,3x3) and F(4x4,3x3) (Lavin & Gray 2016), on AVX2 + FMA.
// This file decides what each variant supports and how much accuracy it may lose; the work is
// in data_pass.cpp and weights_pass.cpp. Compiled without AVX2: it only checks the CPU.
#include "winograd.h"

#include <string>

namespace convbp {
namespace {

class Winograd final : public Backward {
 public:
  // data_factor / weights_factor: see tolerance_factor().
  Winograd(int m, double data_factor, double weights_factor)
      : m_(m), data_factor_(data_factor), weights_factor_(weights_factor) {}

  std::string name() const override { return m_ == 2 ? "winograd.f2x3" : "winograd.f4x3"; }

  Support available() const override {
    __builtin_cpu_init();
    if (!__builtin_cpu_supports("avx2") || !__builtin_cpu_supports("fma")) {
      return Support::no("needs AVX2 and FMA");
    }
    return Support::yes();
  }

  Support supports(const ConvProblem& pr, Pass) const override {
    // The transforms and the AVX2 kernels are fp32 throughout, on NCHW planes.
    if (Support s = needs_f32_nchw(pr, name()); !s.ok) return s;
    if (pr.r != 3 || pr.s != 3 || pr.stride_h != 1 || pr.stride_w != 1 || pr.dilation_h != 1 ||
        pr.dilation_w != 1) {
      return Support::no("needs 3x3 kernel, stride 1, dilation 1");
    }
    return Support::yes();
  }

  std::unique_ptr<Plan> plan(const ConvProblem& pr, Pass pass) const override {
    return pass == Pass::data ? winograd::make_data_plan(pr, m_)
                              : winograd::make_weights_plan(pr, m_);
  }

  // The tolerance as a multiple of the harness's direct-summation bound 16 u sqrt(L)
  // (harness/validate.cpp). Measured (docs/winograd.md): the worst max_rel over 4000 random
  // 3x3 stride-1 shapes and the ResNet-50 / VGG-16 layers, as a fraction of that bound, was
  //   f2x3: dx 0.09, dw 0.07 (direct im2col_gemm: 0.06, 0.06)  -> factor 1, as for direct;
  //   f4x3: dx 2.2,  dw 0.75                                   -> factors 5 and 2 (2x margin).
  // F(4x4,3x3)'s transforms (entries up to 8 in A, 5 in B, fractions down to 1/24 in G) add an
  // error of their own that does not shrink with the accumulation length, so its worst case
  // is at the shortest sums (k = 1, L = 9); on the real layers it stays below 0.7 of the bound.
  double tolerance_factor(Pass pass) const override {
    return pass == Pass::data ? data_factor_ : weights_factor_;
  }

 private:
  int m_;
  double data_factor_, weights_factor_;
};

}  // namespace

std::vector<std::unique_ptr<Backward>> make_winograd_backwards() {
  std::vector<std::unique_ptr<Backward>> list;
  list.push_back(std::make_unique<Winograd>(2, 1.0, 1.0));
  list.push_back(std::make_unique<Winograd>(4, 5.0, 2.0));
  return list;
}

}  // namespace convbp
