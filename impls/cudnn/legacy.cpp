// The legacy cuDNN backward algorithms, cudnnConvolutionBackwardData / BackwardFilter with a
// fixed algorithm, each in strict FP32 (CUDNN_FMA_MATH: no tensor cores), with TF32 allowed
// (CUDNN_TENSOR_OP_MATH), and for bf16 and f16 tensors with fp32 accumulation (`.fp32acc`:
// compute type FLOAT, CUDNN_TENSOR_OP_MATH), in NCHW and NHWC alike. One entry per algorithm name
// covers both passes where cuDNN has the algorithm for both; the algorithm numbers differ between
// the passes (data ALGO_3 is FFT_TILING, filter ALGO_3 is its own kernel), so the names follow the
// enums' names.
#include <algorithm>
#include <cstdio>

#include "common.h"

namespace convbp::cudnn {
namespace {

struct Algorithm {
  const char* name;
  int data;         // cudnnConvolutionBwdDataAlgo_t, or -1: none for this pass
  int filter;       // cudnnConvolutionBwdFilterAlgo_t, or -1
  const char* why;  // why a pass without the algorithm is declined
};

// Non-determinism as cudnn_ops.h marks the enums: data ALGO_0, filter ALGO_0 and ALGO_3 sum
// with atomics.
bool nondeterministic(Pass pass, int algo) {
  return pass == Pass::data ? algo == CUDNN_CONVOLUTION_BWD_DATA_ALGO_0
                            : algo == CUDNN_CONVOLUTION_BWD_FILTER_ALGO_0 ||
                                  algo == CUDNN_CONVOLUTION_BWD_FILTER_ALGO_3;
}

constexpr Algorithm kAlgorithms[] = {
    {"algo0", CUDNN_CONVOLUTION_BWD_DATA_ALGO_0, CUDNN_CONVOLUTION_BWD_FILTER_ALGO_0, ""},
    {"algo1", CUDNN_CONVOLUTION_BWD_DATA_ALGO_1, CUDNN_CONVOLUTION_BWD_FILTER_ALGO_1, ""},
    {"algo3", -1, CUDNN_CONVOLUTION_BWD_FILTER_ALGO_3,
     "cuDNN's ALGO_3 is a backward-filter algorithm (for data, ALGO_3 is fft_tiling)"},
    {"fft", CUDNN_CONVOLUTION_BWD_DATA_ALGO_FFT, CUDNN_CONVOLUTION_BWD_FILTER_ALGO_FFT, ""},
    {"fft_tiling", CUDNN_CONVOLUTION_BWD_DATA_ALGO_FFT_TILING,
     CUDNN_CONVOLUTION_BWD_FILTER_ALGO_FFT_TILING, ""},
    {"winograd", CUDNN_CONVOLUTION_BWD_DATA_ALGO_WINOGRAD, -1,
     "cuDNN has no fused Winograd for the weights pass (BWD_FILTER_ALGO_WINOGRAD is not "
     "implemented); see winograd_nonfused"},
    {"winograd_nonfused", CUDNN_CONVOLUTION_BWD_DATA_ALGO_WINOGRAD_NONFUSED,
     CUDNN_CONVOLUTION_BWD_FILTER_ALGO_WINOGRAD_NONFUSED, ""},
};

const char* algo_enum_name(Pass pass, int algo) {
  static const char* const data[] = {"ALGO_0",          "ALGO_1",        "ALGO_FFT",
                                     "ALGO_FFT_TILING", "ALGO_WINOGRAD", "ALGO_WINOGRAD_NONFUSED"};
  static const char* const filter[] = {"ALGO_0",         "ALGO_1",        "ALGO_FFT",
                                       "ALGO_3",         "ALGO_WINOGRAD", "ALGO_WINOGRAD_NONFUSED",
                                       "ALGO_FFT_TILING"};
  return pass == Pass::data ? data[algo] : filter[algo];
}

// The workspace query doubles as the support check: cuDNN answers CUDNN_STATUS_NOT_SUPPORTED
// for a shape the algorithm cannot do.
cudnnStatus_t query_workspace(const LegacyDescriptors& d, Pass pass, int algo, std::size_t* bytes) {
  clear_last_error();
  const auto held = lock_handles();  // the process's cuDNN handle (common.h)
  return pass == Pass::data
             ? cudnnGetConvolutionBackwardDataWorkspaceSize(
                   handle(), d.w, d.dy, d.conv, d.x, cudnnConvolutionBwdDataAlgo_t(algo), bytes)
             : cudnnGetConvolutionBackwardFilterWorkspaceSize(
                   handle(), d.x, d.dy, d.conv, d.w, cudnnConvolutionBwdFilterAlgo_t(algo), bytes);
}

class LegacyPlan final : public DevicePlan {
 public:
  LegacyPlan(const ConvProblem& pr, Pass pass, int algo, bool tensor_op, AlgorithmClass cls,
             std::unique_ptr<LegacyDescriptors> d, std::size_t workspace)
      : DevicePlan(pr, pass, workspace),
        algo_(algo),
        tensor_op_(tensor_op),
        cls_(cls),
        d_(std::move(d)) {}

  bool deterministic() const override { return !nondeterministic(pass_, algo_); }
  double tolerance_factor() const override {
    return cudnn::tolerance_factor(cls_, problem_, pass_);
  }
  std::string detail() const override {
    return std::string(pass_ == Pass::data ? "cudnnConvolutionBackwardData BWD_DATA_"
                                           : "cudnnConvolutionBackwardFilter BWD_FILTER_") +
           algo_enum_name(pass_, algo_) +
           (tensor_op_ ? ", CUDNN_TENSOR_OP_MATH" : ", CUDNN_FMA_MATH") +
           (problem_.dtype == DType::f32
                ? std::string()
                : std::string(", ") + to_string(problem_.dtype) + " tensors, compute type FLOAT") +
           (problem_.layout == Layout::nhwc ? ", NHWC" : "") + db_detail();
  }

 protected:
  void compute() override {
    const float one = 1.0f, zero = 0.0f;
    if (pass_ == Pass::data) {
      CONVBP_CHECK(cudnnConvolutionBackwardData(handle(), &one, d_->w, io_.w, d_->dy, io_.dy,
                                                d_->conv, cudnnConvolutionBwdDataAlgo_t(algo_),
                                                workspace_.get(), workspace_.bytes(), &zero, d_->x,
                                                io_.dx));
    } else {
      CONVBP_CHECK(cudnnConvolutionBackwardFilter(handle(), &one, d_->x, io_.x, d_->dy, io_.dy,
                                                  d_->conv, cudnnConvolutionBwdFilterAlgo_t(algo_),
                                                  workspace_.get(), workspace_.bytes(), &zero,
                                                  d_->w, io_.dw));
    }
  }

 private:
  int algo_;
  bool tensor_op_;
  AlgorithmClass cls_;
  std::unique_ptr<LegacyDescriptors> d_;
};

class LegacyBackward final : public CudnnBackward {
 public:
  LegacyBackward(const Algorithm& algorithm, Precision precision)
      : a_(algorithm), precision_(precision) {}

  std::string name() const override {
    return std::string("cudnn.") + a_.name + "." + to_string(precision_);
  }
  // ALGO_0 in strict fp32, cuDNN's plainest algorithm for both passes, is what the speedup
  // column compares with on the GPU (as im2col_gemm.per_sample is on the CPU).
  Roles roles() const override {
    return {.reference = false,
            .baseline = a_.name == std::string("algo0") && precision_ == Precision::fp32,
            .fallback = 0};
  }
  // Every legacy algorithm, in every precision (FP32, TF32; fp32acc for 16-bit tensors), is one
  // network-total strategy: per case the fastest correct of them, as cudnnFind with tensor-op
  // math allowed (PyTorch's default for convolutions) picks.
  std::string strategy() const override { return "cudnn.find"; }

  Support supports(const ConvProblem& pr, Pass pass) const override {
    if (Support s = precision_support(precision_, pr, name()); !s.ok) return s;
    const int algo = algo_for(pass);
    if (algo < 0) return Support::no(a_.why);
    if (Support s = legacy_api_support(pr); !s.ok) return s;
    if (Support s = validation_support(cls(pr.dtype), pr, pass); !s.ok) return s;
    try {
      LegacyDescriptors d(pr, math());
      std::size_t bytes = 0;
      if (cudnnStatus_t s = query_workspace(d, pass, algo, &bytes); s != CUDNN_STATUS_SUCCESS) {
        const char* call = pass == Pass::data ? "cudnnGetConvolutionBackwardDataWorkspaceSize: "
                                              : "cudnnGetConvolutionBackwardFilterWorkspaceSize: ";
        // NOT_SUPPORTED and BAD_PARAM are cuDNN declining the shape; anything else (a
        // sublibrary that failed to load, an internal error) is not, and says so.
        const bool decline = (CUDNN_STATUS_CATEGORY(s) == CUDNN_STATUS_NOT_SUPPORTED &&
                              s != CUDNN_STATUS_NOT_SUPPORTED_INCOMPATIBLE_CUDA_DRIVER &&
                              s != CUDNN_STATUS_NOT_SUPPORTED_INCOMPATIBLE_CUDART &&
                              s != CUDNN_STATUS_NOT_SUPPORTED_RUNTIME_PREREQUISITE_MISSING &&
                              s != CUDNN_STATUS_NOT_SUPPORTED_SUBLIBRARY_UNAVAILABLE) ||
                             CUDNN_STATUS_CATEGORY(s) == CUDNN_STATUS_BAD_PARAM;
        return Support::no(std::string(decline ? "cuDNN declines the shape: "
                                               : "cuDNN error (not a decline of the shape): ") +
                           call + describe(s));
      }
    } catch (const std::exception& e) {
      return Support::no(e.what());
    }
    return Support::yes();
  }

  std::unique_ptr<Plan> plan(const ConvProblem& pr, Pass pass) const override {
    const int algo = algo_for(pass);
    auto d = std::make_unique<LegacyDescriptors>(pr, math());
    std::size_t bytes = 0;
    check(query_workspace(*d, pass, algo, &bytes), "cudnnGetConvolutionBackward*WorkspaceSize");
    return std::make_unique<LegacyPlan>(pr, pass, algo, tensor_op(), cls(pr.dtype), std::move(d),
                                        bytes);
  }

  // Without the problem the dtype is unknown: the looser of bf16's and f16's bounds.
  double tolerance_factor(Pass) const override {
    if (precision_ != Precision::fp32acc) return tolerance_factor_bound(cls(DType::f32));
    return std::max(tolerance_factor_bound(cls(DType::bf16)),
                    tolerance_factor_bound(cls(DType::f16)));
  }

 private:
  bool tensor_op() const { return precision_ != Precision::fp32; }
  AlgorithmClass cls(DType dtype) const { return legacy_class(a_.name, tensor_op(), dtype); }
  int algo_for(Pass pass) const { return pass == Pass::data ? a_.data : a_.filter; }
  cudnnMathType_t math() const { return tensor_op() ? CUDNN_TENSOR_OP_MATH : CUDNN_FMA_MATH; }

  Algorithm a_;
  Precision precision_;
};

}  // namespace

std::vector<std::unique_ptr<Backward>> make_legacy_backwards() {
  std::vector<std::unique_ptr<Backward>> list;
  for (Precision precision : {Precision::fp32, Precision::tf32, Precision::fp32acc}) {
    for (const Algorithm& a : kAlgorithms)
      list.push_back(std::make_unique<LegacyBackward>(a, precision));
  }
  return list;
}

}  // namespace convbp::cudnn
