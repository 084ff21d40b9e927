// What every cuDNN entry shares: status checks, the device and its cuDNN handle (made at first
// use, never at static init), device buffers, the timed device plan, versions. Tolerances
// come from the error model (error_model.h).
//
// Two families sit on top (docs/cudnn.md):
//   legacy.cpp   cudnn.<algorithm>.fp32|.tf32  the cudnnConvolutionBackward{Data,Filter} algorithms
//   engines.cpp  cudnn.engine.fp32|.tf32       families: on each shape, the v9 graph API engine
//                                              configurations the heuristics (modes A, B) and the
//                                              fallback list offer, each run as a member
//                                              cudnn.engine<id>[.k<knob>=<value>...].fp32|.tf32
//                cudnn.search.fp32|.tf32       opt-in families: the configurations a timed search
//                                              of every engine's knob space found beyond those
//                                              (search.cpp; the graph API in engine_api.*)
#pragma once

#include <cublas_v2.h>
#include <cuda_runtime_api.h>
#include <cudnn.h>

#include <cstddef>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "backward.h"
#include "error_model.h"

namespace convbp::cudnn {

// The precision an entry computes in. fp32: f32 tensors on CUDA cores (CUDNN_FMA_MATH, or engine
// configurations without the TENSOR_CORE note); tf32: f32 tensors with TF32 tensor cores
// allowed; fp32acc: bf16 or f16 tensors with fp32 accumulation (compute type FLOAT, tensor cores
// allowed: CUDNN_TENSOR_OP_MATH, or any configuration that neither down-converts nor reduces in
// lower precision). An entry's name ends in its precision: cudnn.algo1.fp32acc.
enum class Precision { fp32, tf32, fp32acc };
const char* to_string(Precision precision);
// yes when the entry's precision computes the problem's dtype: fp32 and tf32 take f32, fp32acc
// takes bf16 and f16; else no, naming the entry that does (`name` with the other suffix).
Support precision_support(Precision precision, const ConvProblem& problem, const std::string& name);
// cuDNN's data type of a problem's tensors: CUDNN_DATA_FLOAT, _BFLOAT16 or _HALF.
cudnnDataType_t data_type(DType dtype);

// Status checks: the message names the call (its text up to the first parenthesis) and the
// status string, plus cuDNN's own last-error message when it has one.
void check(cudaError_t status, const char* call);
void check(cudnnStatus_t status, const char* call);
void check(cublasStatus_t status, const char* call);
std::string describe(cudnnStatus_t status);  // "CUDNN_STATUS_NOT_SUPPORTED (reason)"
// Empties cuDNN's per-thread message log, so that describe() after a call reports that call.
void clear_last_error();
#define CONVBP_CHECK(call) \
  (::convbp::cudnn::clear_last_error(), ::convbp::cudnn::check((call), #call))

// The error that left this process's CUDA context unusable (an illegal address in a kernel,
// say), or "" while none has: every later CUDA call would fail with it.
std::string context_lost();

// Whether a CUDA device and cuDNN are usable: "no CUDA device (...)" when cudaGetDeviceCount
// fails (no driver, libcuda missing: cudaErrorInsufficientDriver, cudaErrorNoDevice) or finds
// none. Computed once, at the first call.
const Support& device_support();
// The process-wide cuDNN handle on the current device; throws when device_support() is no.
// Never destroyed: tearing it down after the CUDA runtime has unloaded at exit would fail.
cudnnHandle_t handle();
// convbp drives one CUDA device per process: the one current on the thread that first used
// cuDNN, on which the handle is made. Every cuDNN plan is made and run there. other_device()
// is the calling thread's current device where it is another, else -1 (no allocation: the
// run-time API checks it on every call); wrong_device() is the error for it, naming `what` and
// both devices (a plan's buffers or the caller's pointers would be on the wrong device).
int other_device();
std::invalid_argument wrong_device(const std::string& what, int current);
// The cuDNN handle and db's cuBLAS handle are one per process, and each carries a stream: work
// enqueued on either goes to whatever stream was set last, by any thread. Whoever enqueues on
// them, or sets their stream, holds this lock from setting the stream to the last call on it
// (DevicePlan::launch and enqueue_on, the knob search's timings), so that a plan run on one
// thread never lands on another thread's stream. Recursive: enqueue_on holds it around
// launch(). Only host-side enqueueing waits; the GPU work of different streams still overlaps.
std::unique_lock<std::recursive_mutex> lock_handles();

// "NVIDIA H100 80GB HBM3 (sm_90, 132 SMs, 79.1 GiB), driver 12.8"
std::string device_description();
// cuDNN (library and header), CUDA runtime and driver versions; needs no device.
std::vector<std::pair<std::string, std::string>> library_versions();

// Whether the engine families offer runtime-compiled configurations: yes unless the environment
// says CONVBP_CUDNN_RUNTIME_COMPILED=0 (their compilation can take seconds each). It changes
// what a family tries, so library_versions() records it, and with it the tuning fingerprint.
// A value other than 0, 1 or empty throws std::invalid_argument naming it ("no" is not 0).
bool runtime_compiled_wanted();

// The knob search's per-shape budget, CONVBP_CUDNN_SEARCH_S (unset or empty: 20 s); throws
// std::invalid_argument naming the variable and value unless it is a plain decimal number of
// seconds in (0, 86400].
double search_budget_seconds();

// What is wrong with the cuDNN variables an entry reads, each named with its value ("; " between
// them), empty when nothing is (Backward::environment_error): CONVBP_CUDNN_DB (every entry: the
// weights pass's db), with `runtime_compiled` CONVBP_CUDNN_RUNTIME_COMPILED (engine
// configurations), with `search` CONVBP_CUDNN_SEARCH_S (the knob search).
std::string environment_error(bool runtime_compiled, bool search);

// Device memory, freed on destruction.
class DeviceBuffer {
 public:
  DeviceBuffer() = default;
  explicit DeviceBuffer(std::size_t bytes);
  ~DeviceBuffer();
  DeviceBuffer(DeviceBuffer&& other) noexcept { *this = std::move(other); }
  DeviceBuffer& operator=(DeviceBuffer&& other) noexcept;
  void* get() const { return ptr_; }
  std::size_t bytes() const { return bytes_; }

 private:
  void* ptr_ = nullptr;
  std::size_t bytes_ = 0;
};

struct LegacyOwners;

// Legacy (v7-style) descriptors of one problem in its dtype and layout (CUDNN_TENSOR_NCHW or
// _NHWC for x, dy and w alike: w in NHWC is [k, r, s, c/g]): x (also dx), w (also dw), dy, db
// and the convolution with the given math type and compute type FLOAT (fp32 accumulation,
// cuDNN's PSEUDO_HALF / PSEUDO_BFLOAT16 configurations for 16-bit tensors). The legacy API has one
// padding per dimension, so asymmetric padding is declined by legacy_api_support() before these are
// made.
class LegacyDescriptors {
 public:
  LegacyDescriptors(const ConvProblem& problem, cudnnMathType_t math);
  ~LegacyDescriptors();
  LegacyDescriptors(const LegacyDescriptors&) = delete;
  LegacyDescriptors& operator=(const LegacyDescriptors&) = delete;

  cudnnTensorDescriptor_t x = nullptr, dy = nullptr, db = nullptr;
  cudnnFilterDescriptor_t w = nullptr;
  cudnnConvolutionDescriptor_t conv = nullptr;

 private:
  std::unique_ptr<LegacyOwners> owners_;
};
// Shapes the legacy descriptors can express (symmetric padding, 32-bit strides).
Support legacy_api_support(const ConvProblem& problem);
// Shapes whose db the weights pass can compute (cuBLAS's and the legacy descriptors' sizes are
// 32-bit).
Support bias_support(const ConvProblem& problem);

// db = dy summed over n, p and q, for each k: a bandwidth-bound reduction that reads dy once.
// cudnnConvolutionBackwardBias ran at about 340 GB/s on an H200 (issue 11, 4.8 TB/s HBM), so
// the reduction is the project's kernel or matrix-vector products on cuBLAS, fp32 accumulation:
//   a build with the CUDA kernels (nvcc found): db_kernel.h, both layouts, every dtype;
//   otherwise, and with CONVBP_CUDNN_DB=library:
//   f32 NCHW:    dy as a [n*k, p*q] matrix times ones(p*q) -> partial[n*k] (fp32), then
//                partial as [n, k] summed over n (cublasSgemv twice);
//   NHWC:        dy as a [n*p*q, k] matrix, transposed, times ones(n*p*q) -> db (one call:
//                cublasSgemv for f32, cublasGemmEx with compute type 32F and db in dy's dtype
//                for bf16 and f16);
//   16-bit NCHW: cudnnConvolutionBackwardBias. The two-step form would need the fp32 partial
//                sums converted to bf16/f16 at the end, which cuBLAS does not offer (a 32F A
//                needs a 32F C).
// The cuBLAS forms run on a workspace of the reduction's own (cublasSetWorkspace after each
// cublasSetStream, which resets it to the handle's pool; 32 MiB on Hopper and later, 4 MiB
// before, the sizes cuBLAS recommends): with the one handle shared by plans on concurrent
// streams, cuBLAS promises bitwise reproducible results only where each stream has a workspace
// of its own (its documentation, "Results reproducibility").
// db reads only dy, so the kernel and the cuBLAS forms run on a stream of their own
// (non-blocking, so that the legacy default stream, the cuDNN handle's, does not serialise it),
// beside the backward-filter call: DevicePlan forks it from the default stream and joins it
// back. The legacy call runs on the cuDNN handle's stream, after dw.
//
// Which form runs is a DbForm, CONVBP_CUDNN_DB's choice unless given (bench/cudnn_db_bare.cpp
// times them side by side):
//   kernel   the kernels, both layouts (a build with them): the default where built;
//   library  the cuBLAS forms above, and cudnnConvolutionBackwardBias for 16-bit NCHW: the
//            default without the kernel;
//   legacy   cudnnConvolutionBackwardBias for every shape, after dw (what issue 11's first run
//            timed).
enum class DbForm { kernel, library, legacy };
const char* to_string(DbForm form);
// CONVBP_CUDNN_DB's choice (unset or empty: the default above). Any other value, or kernel in a
// build without the kernels, throws std::invalid_argument naming the variable and its value.
DbForm db_form();
// Whether this build has the project's CUDA kernels (CONVBP_WITH_CUDA_KERNELS).
constexpr bool kernels_built() { return CONVBP_WITH_CUDA_KERNELS; }

class BiasReduction {
 public:
  // Throws std::invalid_argument for the kernel form in a build without the kernels.
  explicit BiasReduction(const ConvProblem& problem, DbForm form = db_form());
  ~BiasReduction();
  BiasReduction(const BiasReduction&) = delete;
  BiasReduction& operator=(const BiasReduction&) = delete;
  // Enqueues db on `stream` (the kernel and the cuBLAS forms; the legacy call uses the cuDNN
  // handle's stream).
  void enqueue(const void* dy, void* db, cudaStream_t stream);
  // Whether db can run beside dw, on stream(): the kernel and cuBLAS forms can, the legacy
  // call not.
  bool beside() const;
  // db's own stream, beside dw's, where beside(): non-blocking, so that the legacy default
  // stream (the cuDNN handle's) does not serialise the two. One per reduction, hence one per
  // plan: two plans enqueued on two streams of a framework's share nothing on the GPU.
  cudaStream_t stream() const { return stream_; }
  // "a CUDA kernel (...)", "cuBLAS (cublasSgemv: ...)" or "cudnnConvolutionBackwardBias"
  std::string how() const;

 private:
  enum class Mode { kernel, sgemv_nchw, sgemv_nhwc, gemm_ex_nhwc, legacy };
  ConvProblem problem_;
  Mode mode_;
  DeviceBuffer ones_, ones_n_, partial_, blas_workspace_;
  int wave_ = 0;  // the NHWC kernel's blocks at once on this device (db_nhwc_wave(); 0: unknown)
  std::unique_ptr<LegacyDescriptors> legacy_;
  cudaStream_t stream_ = nullptr;
};

// A plan on the device: buffers and workspace made at construction, inputs uploaded and outputs
// poisoned (NaN) by upload(), only the cuDNN call(s) between the CUDA events of run_timed_ms()
// (short calls repeated back to back, so that the figure is the GPU's time, not the launch's).
// The weights pass runs the backward-filter call and BiasReduction for db, beside it on db's own
// stream; both are timed, as the CPU implementations' times include db. Each timing after the
// validated call also times dw alone and db alone, the same way, for db_detail(): what db adds
// to the pass, and the rate at which it reads dy.
class DevicePlan : public Plan {
 public:
  DevicePlan(const ConvProblem& problem, Pass pass, std::size_t workspace_bytes);
  ~DevicePlan() override;

  std::size_t workspace_bytes() const override { return workspace_.bytes(); }
  // The workspace is device memory the plan holds (backward.h's workspace contract).
  std::size_t host_workspace_bytes() const override { return 0; }
  bool times_itself() const override { return true; }
  void upload(const Tensors& host) override;
  void copy_inputs(const Tensors& host) override;
  void run(const Tensors& host, void* workspace) override;
  double run_timed_ms(const Tensors& host, void* workspace) override;
  void download(const Tensors& host) override;
  // The caller's device memory: the call on `device`'s pointers, no copy, no poisoning.
  void run_on(const Tensors& device, void* workspace) override;
  void enqueue_on(const Tensors& device, void* workspace, void* stream) override;

 protected:
  // Enqueues the backward-data or backward-filter computation on the handle's stream.
  virtual void compute() = 0;
  // For detail(): "" for the data pass; else how db is computed and, once timed apart from the
  // validated call, what it adds to the pass and its rate alone, each the minimum over the
  // timings: "; db by <how> (...) beside dw: adds 0.012 ms to the pass's 0.452 ms (2.7%; dw
  // alone 0.44 ms); alone 0.031 ms, 3310 GB/s of dy; the pass with db after dw 0.47 ms".
  std::string db_detail() const;

  ConvProblem problem_;
  Pass pass_;
  DeviceBuffer x_, w_, dy_, dx_, dw_, db_, workspace_;
  // The tensors compute() works on: the plan's own buffers, or the caller's during run_on().
  Tensors io_;
  bool on_own_buffers() const { return io_.dy == dy_.get(); }
  // The byte alignment run_on() requires of the caller's pointers: the element's size, or more
  // where the plan was built for it (an engine configuration's tensors declare 16 bytes).
  virtual std::size_t caller_alignment() const { return dtype_size(problem_.dtype); }

 private:
  static constexpr int kMaxCalls = 32;  // back-to-back calls in one timing at most
  // What launch() enqueues: the whole pass (db beside dw where it can be), the pass with db
  // after dw on one stream (the comparison db_detail() reports), or one part.
  enum class Part { pass, pass_after, dw, db };
  void launch(Part part = Part::pass);
  // `calls` launches back to back between the events (after one untimed call when batched):
  // the time per call.
  double time_calls(Part part, int calls);
  std::unique_ptr<BiasReduction> bias_;
  cudaEvent_t start_ = nullptr, stop_ = nullptr;
  cudaEvent_t fork_ = nullptr, join_ = nullptr;  // db's stream leaves and rejoins stream_
  // The stream launch() enqueues on: the default one (the cuDNN handle's), or the caller's
  // during enqueue_on(); done_ marks the end of the last call there, for a call on another.
  cudaStream_t stream_ = nullptr;
  cudaEvent_t done_ = nullptr;
  bool done_recorded_ = false;
  double last_ms_ = 0;  // the previous timed call's time: how many calls the next one batches
  // db's figures: the minima over the timings after the validated call.
  double best_pass_ms_ = 0, dw_alone_ms_ = 0, db_alone_ms_ = 0, after_ms_ = 0;
};

// Every cuDNN entry: a CUDA device, unavailable without one.
class CudnnBackward : public Backward {
 public:
  Device device() const override { return Device::cuda; }
  Support available() const override {
    if (std::string lost = context_lost(); !lost.empty()) {
      return Support::not_now("CUDA context lost earlier in this process: " + lost);
    }
    // A thread on another device is the caller's passing mistake, not a fact about the entry:
    // not stored in a tuning database.
    if (device_support().ok) {
      if (const int d = other_device(); d >= 0) {
        return Support::not_now(wrong_device(name(), d).what());
      }
    }
    return device_support();
  }
  std::vector<std::pair<std::string, std::string>> library_versions() const override {
    return cudnn::library_versions();
  }
  std::string device_description() const override { return cudnn::device_description(); }
  std::string environment_error() const override { return cudnn::environment_error(false, false); }
};

std::vector<std::unique_ptr<Backward>> make_legacy_backwards();
std::vector<std::unique_ptr<Backward>> make_engine_backwards();

}  // namespace convbp::cudnn
