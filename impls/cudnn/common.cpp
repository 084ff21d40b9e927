#include "common.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <limits>
#include <mutex>
#include <stdexcept>

#include "db_kernel.h"

namespace convbp {

std::vector<std::unique_ptr<Backward>> make_cudnn_backwards() {
  // No CUDA call here: the registry is built at first use, and `convbp list` must work on a
  // machine without a driver.
  auto list = cudnn::make_legacy_backwards();
  for (auto& b : cudnn::make_engine_backwards()) list.push_back(std::move(b));
  return list;
}

namespace cudnn {
namespace {

std::string call_name(const char* call) {
  const std::string text(call);
  return text.substr(0, text.find('('));
}

cudnnHandle_t g_handle = nullptr;
int g_handle_device = 0;  // the current device when g_handle was made

}  // namespace

void clear_last_error() {
  char drain[256];
  cudnnGetLastErrorString(drain, sizeof drain);  // reading empties cuDNN's per-thread log
}

std::string describe(cudnnStatus_t status) {
  std::string text = cudnnGetErrorString(status);
  // cuDNN's log holds the failure's reasons, innermost first, one per line, among JSON dumps of
  // engine configurations: the first plain line says most.
  char log[4096] = {};
  cudnnGetLastErrorString(log, sizeof log);
  const std::string all(log);
  for (std::size_t start = 0; start < all.size();) {
    std::size_t end = all.find('\n', start);
    if (end == std::string::npos) end = all.size();
    std::string line = all.substr(start, end - start);
    // "Warning: CUDNN_STATUS_NOT_SUPPORTED; Reason: <check>": the status is said already.
    if (const std::size_t reason = line.find("; Reason: "); reason != std::string::npos) {
      line = line.substr(reason + 2);
    }
    if (!line.empty() && line[0] != '{' && line[0] != '}' && line[0] != ' ') {
      text += " (" + line.substr(0, 200) + (line.size() > 200 ? "...)" : ")");
      break;
    }
    start = end + 1;
  }
  return text;
}

namespace {

// The first error that left the CUDA context unusable ("" while none has): every later call in
// the process fails with it, so the entries say so instead of each blaming its own first call.
std::mutex g_lost_mutex;
std::string g_lost;

bool sticky(cudaError_t status) {
  switch (status) {
    case cudaErrorIllegalAddress:
    case cudaErrorLaunchFailure:
    case cudaErrorMisalignedAddress:
    case cudaErrorIllegalInstruction:
    case cudaErrorHardwareStackError:
    case cudaErrorInvalidAddressSpace:
    case cudaErrorInvalidPc:
    case cudaErrorAssert:
    case cudaErrorECCUncorrectable:
    case cudaErrorLaunchTimeout:
      return true;
    default:
      return false;
  }
}

}  // namespace

std::string context_lost() {
  std::lock_guard<std::mutex> lock(g_lost_mutex);
  return g_lost;
}

void check(cudaError_t status, const char* call) {
  if (status == cudaSuccess) return;
  cudaGetLastError();  // clear a non-sticky error so that the next call starts clean
  const std::string what =
      call_name(call) + ": " + cudaGetErrorName(status) + " (" + cudaGetErrorString(status) + ")";
  if (sticky(status)) {
    std::lock_guard<std::mutex> lock(g_lost_mutex);
    if (g_lost.empty()) g_lost = what;
  }
  throw std::runtime_error(what);
}

void check(cudnnStatus_t status, const char* call) {
  if (status == CUDNN_STATUS_SUCCESS) return;
  const std::string what = call_name(call) + ": " + describe(status);
  // A kernel that failed inside cuDNN leaves its CUDA error behind: note a sticky one, clear
  // the others, so that the next entry starts clean.
  const cudaError_t cuda = cudaGetLastError();
  if (sticky(cuda)) {
    std::lock_guard<std::mutex> lock(g_lost_mutex);
    if (g_lost.empty()) g_lost = what + " [" + cudaGetErrorName(cuda) + "]";
  }
  throw std::runtime_error(what);
}

void check(cublasStatus_t status, const char* call) {
  if (status == CUBLAS_STATUS_SUCCESS) return;
  std::string what = call_name(call) + ": " + cublasGetStatusName(status) + " (" +
                     cublasGetStatusString(status) + ")";
  const cudaError_t cuda = cudaGetLastError();
  if (sticky(cuda)) {
    std::lock_guard<std::mutex> lock(g_lost_mutex);
    if (g_lost.empty()) g_lost = what + " [" + cudaGetErrorName(cuda) + "]";
  }
  throw std::runtime_error(what);
}

const Support& device_support() {
  static const Support support = []() -> Support {
    int count = 0;
    const cudaError_t status = cudaGetDeviceCount(&count);
    if (status != cudaSuccess) {
      cudaGetLastError();
      // The name only: cudaErrorInsufficientDriver's text blames the driver's version also
      // when there is no driver at all.
      return Support::no(std::string("no CUDA device (cudaGetDeviceCount: ") +
                         cudaGetErrorName(status) + ")");
    }
    if (count == 0) return Support::no("no CUDA device (cudaGetDeviceCount found none)");
    // Built against one cuDNN major version, loaded another: the API may differ.
    if (cudnnGetVersion() / 10000 != CUDNN_MAJOR) {
      return Support::no("cuDNN " + std::to_string(cudnnGetVersion()) +
                         " loaded, but built against major version " + std::to_string(CUDNN_MAJOR));
    }
    if (cudaGetDevice(&g_handle_device) != cudaSuccess) {
      cudaGetLastError();
      return Support::no("no CUDA device (cudaGetDevice failed)");
    }
    const cudnnStatus_t created = cudnnCreate(&g_handle);
    if (created != CUDNN_STATUS_SUCCESS) return Support::no("cudnnCreate: " + describe(created));
    return Support::yes();
  }();
  return support;
}

cudnnHandle_t handle() {
  const Support& s = device_support();
  if (!s.ok) throw std::runtime_error(s.why);
  return g_handle;
}

int other_device() {
  handle();  // throws without a device
  int current = 0;
  CONVBP_CHECK(cudaGetDevice(&current));
  return current == g_handle_device ? -1 : current;
}

std::invalid_argument wrong_device(const std::string& what, int current) {
  return std::invalid_argument(
      "convbp: " + what + ": the calling thread's current CUDA device is " +
      std::to_string(current) + ", but convbp's cuDNN plans are on device " +
      std::to_string(g_handle_device) +
      " (the current device when this process first used cuDNN; convbp drives one device per "
      "process: call cudaSetDevice before its first cuDNN plan, and on every thread that runs "
      "one)");
}

namespace {

// The process-wide cuBLAS handle for db, made at first use; never destroyed (as handle()).
// Host pointer mode, default math (no TF32: Sgemv and compute type 32F are strict fp32 whatever
// the entry's precision) with no reduced-precision reduction: a GemmEx that splits its long k
// (n*p*q) sums the splits in fp32, not in the 16-bit output type. Its stream is set by each
// BiasReduction::enqueue().
cublasHandle_t blas_handle() {
  static const cublasHandle_t h = [] {
    handle();  // throws without a device
    cublasHandle_t made = nullptr;
    CONVBP_CHECK(cublasCreate(&made));
    CONVBP_CHECK(cublasSetMathMode(
        made,
        cublasMath_t(CUBLAS_DEFAULT_MATH | CUBLAS_MATH_DISALLOW_REDUCED_PRECISION_REDUCTION)));
    return made;
  }();
  return h;
}

}  // namespace

std::unique_lock<std::recursive_mutex> lock_handles() {
  static std::recursive_mutex m;
  return std::unique_lock(m);
}

namespace {

std::string dotted(long version, long major_div, long minor_div) {
  return std::to_string(version / major_div) + "." +
         std::to_string(version % major_div / minor_div);
}

std::string driver_version() {
  int driver = 0;
  if (cudaDriverGetVersion(&driver) != cudaSuccess || driver == 0) {
    cudaGetLastError();
    return "none";
  }
  return dotted(driver, 1000, 10);
}

}  // namespace

namespace {

// cudaGetDeviceProperties is slow enough not to repeat for every entry and member.
std::string describe_device() {
  int device = 0;
  cudaDeviceProp prop{};
  if (cudaGetDevice(&device) != cudaSuccess ||
      cudaGetDeviceProperties(&prop, device) != cudaSuccess) {
    cudaGetLastError();
    return "CUDA device (properties unavailable)";
  }
  char text[512];
  std::snprintf(text, sizeof text, "%s (sm_%d%d, %d SMs, %.1f GiB), driver %s", prop.name,
                prop.major, prop.minor, prop.multiProcessorCount,
                double(prop.totalGlobalMem) / double(1 << 30), driver_version().c_str());
  return text;
}

}  // namespace

std::string device_description() {
  if (!device_support().ok) return "";
  static const std::string description = describe_device();
  return description;
}

bool runtime_compiled_wanted() {
  const char* set = std::getenv("CONVBP_CUDNN_RUNTIME_COMPILED");
  const std::string v = set ? set : "";
  if (v.empty() || v == "1") return true;
  if (v == "0") return false;
  throw std::invalid_argument("CONVBP_CUDNN_RUNTIME_COMPILED='" + v +
                              "': expected 0 (leave runtime-compiled configurations out) or 1");
}

double search_budget_seconds() {
  constexpr double kDefaultSeconds = 20;
  const char* set = std::getenv("CONVBP_CUDNN_SEARCH_S");
  const std::string v = set ? set : "";
  if (v.empty()) return kDefaultSeconds;
  // Plain decimal only: strtod alone would also take " 5", "+5", "0x10", "inf" and "nan".
  const bool plain = (std::isdigit(static_cast<unsigned char>(v[0])) || v[0] == '.') &&
                     v.find_first_not_of("0123456789.eE+-") == std::string::npos;
  char* end = nullptr;
  const double s = plain ? std::strtod(v.c_str(), &end) : 0;
  if (!plain || *end != '\0' || !(s > 0) || s > 86400) {
    throw std::invalid_argument("CONVBP_CUDNN_SEARCH_S='" + v +
                                "': expected a number of seconds in (0, 86400]");
  }
  return s;
}

std::string environment_error(bool runtime_compiled, bool search) {
  std::string errors;
  auto check = [&](const std::function<void()>& read) {
    try {
      read();
    } catch (const std::invalid_argument& e) {
      errors += (errors.empty() ? "" : "; ") + std::string(e.what());
    }
  };
  check([] { db_form(); });
  if (runtime_compiled) check([] { runtime_compiled_wanted(); });
  if (search) check([] { search_budget_seconds(); });
  return errors;
}

std::vector<std::pair<std::string, std::string>> library_versions() {
  static const auto versions = [] {
    const long cudnn = long(cudnnGetVersion());  // 9.x: major*10000 + minor*100 + patch
    std::string cudnn_text = dotted(cudnn, 10000, 100) + "." + std::to_string(cudnn % 100);
    if (cudnn != CUDNN_VERSION)
      cudnn_text += " (built against " + std::to_string(CUDNN_VERSION) + ")";
    int runtime = 0;
    cudaRuntimeGetVersion(&runtime);
    std::vector<std::pair<std::string, std::string>> list = {
        {"cudnn", cudnn_text},
        {"cuda_runtime", dotted(runtime, 1000, 10)},
        {"cuda_driver", driver_version()}};
    // The context names every library whichever run, and the tuning fingerprint holds it: a bad
    // value records nothing, as unset, since an entry that would read it is refused before it
    // runs (environment_error), and a run without one must keep its fingerprint.
    bool wanted = true;
    try {
      wanted = runtime_compiled_wanted();
    } catch (const std::invalid_argument&) {
    }
    if (!wanted) {
      list.emplace_back("cudnn_runtime_compiled", "left out (CONVBP_CUDNN_RUNTIME_COMPILED=0)");
    }
    return list;
  }();
  return versions;
}

DeviceBuffer::DeviceBuffer(std::size_t bytes) : bytes_(bytes) {
  if (bytes > 0)
    check(cudaMalloc(&ptr_, bytes), ("cudaMalloc of " + std::to_string(bytes) + " bytes").c_str());
}

DeviceBuffer::~DeviceBuffer() {
  if (ptr_) cudaFree(ptr_);
}

DeviceBuffer& DeviceBuffer::operator=(DeviceBuffer&& other) noexcept {
  std::swap(ptr_, other.ptr_);
  std::swap(bytes_, other.bytes_);
  return *this;
}

// Owns one legacy descriptor.
template <typename T, cudnnStatus_t (*Create)(T*), cudnnStatus_t (*Destroy)(T)>
class Owned {
 public:
  Owned() { check(Create(&d_), "cudnnCreate*Descriptor"); }
  ~Owned() { Destroy(d_); }
  Owned(const Owned&) = delete;
  Owned& operator=(const Owned&) = delete;
  T get() const { return d_; }

 private:
  T d_ = nullptr;
};

// Callers decline larger shapes first (legacy_api_support, bias_support); never truncate.
int to_int(std::int64_t v) {
  if (v > std::numeric_limits<int>::max()) {
    throw std::runtime_error("a size of " + std::to_string(v) +
                             " does not fit the legacy cuDNN descriptors' 32 bits");
  }
  return int(v);
}

const char* to_string(Precision precision) {
  switch (precision) {
    case Precision::tf32:
      return "tf32";
    case Precision::fp32acc:
      return "fp32acc";
    default:
      return "fp32";
  }
}

Support precision_support(Precision precision, const ConvProblem& pr, const std::string& name) {
  const bool sixteen = pr.dtype != DType::f32;
  if (sixteen == (precision == Precision::fp32acc)) return Support::yes();
  const std::string stem = name.substr(0, name.rfind('.'));
  if (sixteen) {
    return Support::no(name + " computes f32 tensors; " + to_string(pr.dtype) +
                       " tensors with fp32 accumulation run in " + stem + ".fp32acc");
  }
  return Support::no(name + " computes bf16 and f16 tensors; f32 tensors run in " + stem +
                     ".fp32 and " + stem + ".tf32");
}

cudnnDataType_t data_type(DType dtype) {
  switch (dtype) {
    case DType::bf16:
      return CUDNN_DATA_BFLOAT16;
    case DType::f16:
      return CUDNN_DATA_HALF;
    default:
      return CUDNN_DATA_FLOAT;
  }
}

Support legacy_api_support(const ConvProblem& pr) {
  if (pr.pad_top != pr.pad_bottom || pr.pad_left != pr.pad_right) {
    return Support::no(
        "legacy cuDNN API needs symmetric padding (pad_top == pad_bottom, pad_left == "
        "pad_right); the cudnn.engine.* families take asymmetric padding");
  }
  constexpr std::int64_t kMax = std::numeric_limits<int>::max();
  if (std::max({pr.x_elems(), pr.y_elems(), pr.w_elems()}) > kMax) {
    return Support::no(
        "legacy cuDNN descriptors have 32-bit strides: a tensor exceeds 2^31 elements");
  }
  return Support::yes();
}

Support bias_support(const ConvProblem& pr) {
  if (std::max({pr.x_elems(), pr.y_elems(), pr.w_elems()}) > std::numeric_limits<int>::max()) {
    return Support::no(
        "db's reductions (the kernel, cuBLAS, cudnnConvolutionBackwardBias) take 32-bit sizes: a "
        "tensor exceeds 2^31 elements");
  }
  return Support::yes();
}

// The descriptors are held by small owners so that a failure half-way frees what was made.
struct LegacyOwners {
  Owned<cudnnTensorDescriptor_t, cudnnCreateTensorDescriptor, cudnnDestroyTensorDescriptor> x, dy,
      db;
  Owned<cudnnFilterDescriptor_t, cudnnCreateFilterDescriptor, cudnnDestroyFilterDescriptor> w;
  Owned<cudnnConvolutionDescriptor_t, cudnnCreateConvolutionDescriptor,
        cudnnDestroyConvolutionDescriptor>
      conv;
};

LegacyDescriptors::LegacyDescriptors(const ConvProblem& pr, cudnnMathType_t math) {
  auto owners = std::make_unique<LegacyOwners>();
  const auto i = to_int;
  const cudnnTensorFormat_t format =
      pr.layout == Layout::nhwc ? CUDNN_TENSOR_NHWC : CUDNN_TENSOR_NCHW;
  const cudnnDataType_t type = data_type(pr.dtype);
  CONVBP_CHECK(cudnnSetTensor4dDescriptor(owners->x.get(), format, type, i(pr.n), i(pr.c), i(pr.h),
                                          i(pr.w)));
  CONVBP_CHECK(cudnnSetTensor4dDescriptor(owners->dy.get(), format, type, i(pr.n), i(pr.k),
                                          i(pr.p()), i(pr.q())));
  CONVBP_CHECK(
      cudnnSetTensor4dDescriptor(owners->db.get(), CUDNN_TENSOR_NCHW, type, 1, i(pr.k), 1, 1));
  CONVBP_CHECK(cudnnSetFilter4dDescriptor(owners->w.get(), type, format, i(pr.k),
                                          i(pr.c_per_group()), i(pr.r), i(pr.s)));
  CONVBP_CHECK(cudnnSetConvolution2dDescriptor(
      owners->conv.get(), i(pr.pad_top), i(pr.pad_left), i(pr.stride_h), i(pr.stride_w),
      i(pr.dilation_h), i(pr.dilation_w), CUDNN_CROSS_CORRELATION, CUDNN_DATA_FLOAT));
  CONVBP_CHECK(cudnnSetConvolutionGroupCount(owners->conv.get(), i(pr.groups)));
  CONVBP_CHECK(cudnnSetConvolutionMathType(owners->conv.get(), math));
  x = owners->x.get();
  dy = owners->dy.get();
  db = owners->db.get();
  w = owners->w.get();
  conv = owners->conv.get();
  owners_ = std::move(owners);
}

LegacyDescriptors::~LegacyDescriptors() = default;

namespace {

// A device vector of `count` ones in `dtype`.
DeviceBuffer ones(DType dtype, std::int64_t count) {
  DeviceBuffer b(std::size_t(count) * dtype_size(dtype));
  if (dtype == DType::f32) {
    const std::vector<float> host(std::size_t(count), 1.0f);
    CONVBP_CHECK(cudaMemcpy(b.get(), host.data(), b.bytes(), cudaMemcpyHostToDevice));
  } else {
    // 1.0 in bfloat16 is 0x3f80 (fp32's upper half), in IEEE half 0x3c00.
    const std::vector<std::uint16_t> host(std::size_t(count),
                                          dtype == DType::bf16 ? 0x3f80 : 0x3c00);
    CONVBP_CHECK(cudaMemcpy(b.get(), host.data(), b.bytes(), cudaMemcpyHostToDevice));
  }
  return b;
}

cudaDataType blas_type(DType dtype) {
  switch (dtype) {
    case DType::bf16:
      return CUDA_R_16BF;
    case DType::f16:
      return CUDA_R_16F;
    default:
      return CUDA_R_32F;
  }
}

// The workspace cuBLAS recommends for its calls (cublasSetWorkspace): 32 MiB from Hopper (compute
// capability 9) on, 4 MiB before; 32 MiB where the device does not say.
std::size_t blas_workspace_bytes() {
  int device = 0, major = 0;
  if (cudaGetDevice(&device) != cudaSuccess ||
      cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, device) != cudaSuccess) {
    cudaGetLastError();
    major = 9;
  }
  return std::size_t(major >= 9 ? 32 : 4) << 20;
}

// DbKernelArgs::dtype is DType's value.
static_assert(int(DType::f32) == 0 && int(DType::bf16) == 1 && int(DType::f16) == 2);

}  // namespace

const char* to_string(DbForm form) {
  switch (form) {
    case DbForm::kernel:
      return "kernel";
    case DbForm::library:
      return "library";
    default:
      return "legacy";
  }
}

DbForm db_form() {
  const char* set = std::getenv("CONVBP_CUDNN_DB");
  const std::string v = set ? set : "";
  if (v.empty()) return kernels_built() ? DbForm::kernel : DbForm::library;
  for (DbForm form : {DbForm::kernel, DbForm::library, DbForm::legacy}) {
    if (v != to_string(form)) continue;
    if (form == DbForm::kernel && !kernels_built()) {
      throw std::invalid_argument(
          "CONVBP_CUDNN_DB='kernel': this build has no CUDA kernels (nvcc was not found or did not "
          "work when CMake configured it; CONVBP_WITH_CUDA_KERNELS)");
    }
    return form;
  }
  throw std::invalid_argument("CONVBP_CUDNN_DB='" + v + "': expected kernel, library or legacy");
}

BiasReduction::BiasReduction(const ConvProblem& pr, DbForm form) : problem_(pr) {
  const std::int64_t pq = pr.p() * pr.q();
  if (form == DbForm::kernel && !kernels_built()) {
    throw std::invalid_argument(
        "db on the CUDA kernel: this build has no CUDA kernels (CONVBP_WITH_CUDA_KERNELS)");
  }
  if (form == DbForm::kernel) {
    mode_ = Mode::kernel;
#if CONVBP_WITH_CUDA_KERNELS
    if (pr.layout == Layout::nhwc) wave_ = db_nhwc_wave(int(pr.dtype));
#endif
    partial_ = DeviceBuffer(
        std::size_t(db_partial_floats(int(pr.layout), int(pr.n), int(pr.k), pq, wave_)) *
        sizeof(float));
  } else if (form != DbForm::legacy && pr.layout == Layout::nhwc) {
    mode_ = pr.dtype == DType::f32 ? Mode::sgemv_nhwc : Mode::gemm_ex_nhwc;
    ones_ = ones(pr.dtype, pr.n * pq);
  } else if (form != DbForm::legacy && pr.dtype == DType::f32) {
    mode_ = Mode::sgemv_nchw;
    ones_ = ones(DType::f32, pq);
    ones_n_ = ones(DType::f32, pr.n);
    partial_ = DeviceBuffer(std::size_t(pr.n * pr.k) * sizeof(float));
  } else {
    mode_ = Mode::legacy;
    legacy_ = std::make_unique<LegacyDescriptors>(pr, CUDNN_DEFAULT_MATH);
  }
  if (mode_ != Mode::legacy && mode_ != Mode::kernel) {
    blas_handle();
    blas_workspace_ = DeviceBuffer(blas_workspace_bytes());
  }
  if (mode_ != Mode::legacy) {  // made here, outside timing
    CONVBP_CHECK(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking));
  }
}

BiasReduction::~BiasReduction() {
  if (stream_) cudaStreamDestroy(stream_);  // work still queued on it completes first
}

bool BiasReduction::beside() const { return mode_ != Mode::legacy; }

void BiasReduction::enqueue(const void* dy, void* db, cudaStream_t stream) {
  const ConvProblem& pr = problem_;
  const float one = 1.0f, zero = 0.0f;
  const int k = int(pr.k), n = int(pr.n), pq = int(pr.p() * pr.q()), npq = n * pq;
  const auto held = lock_handles();  // cuBLAS's handle, or cuDNN's, takes `stream` for the call
  if (mode_ == Mode::kernel) {
#if CONVBP_WITH_CUDA_KERNELS
    CONVBP_CHECK(enqueue_db_kernel(dy, static_cast<float*>(partial_.get()), db, int(pr.dtype),
                                   int(pr.layout), n, k, pq, wave_, stream));
#endif
    return;
  }
  if (mode_ != Mode::legacy) {
    CONVBP_CHECK(cublasSetStream(blas_handle(), stream));  // resets the workspace to the pool
    CONVBP_CHECK(cublasSetWorkspace(blas_handle(), blas_workspace_.get(), blas_workspace_.bytes()));
  }
  switch (mode_) {
    case Mode::sgemv_nchw:
      // Column-major [p*q, n*k] with lda p*q, transposed: one dot product per (n, k) row of dy.
      CONVBP_CHECK(cublasSgemv(blas_handle(), CUBLAS_OP_T, pq, n * k, &one,
                               static_cast<const float*>(dy), pq,
                               static_cast<const float*>(ones_.get()), 1, &zero,
                               static_cast<float*>(partial_.get()), 1));
      CONVBP_CHECK(cublasSgemv(
          blas_handle(), CUBLAS_OP_N, k, n, &one, static_cast<const float*>(partial_.get()), k,
          static_cast<const float*>(ones_n_.get()), 1, &zero, static_cast<float*>(db), 1));
      return;
    case Mode::sgemv_nhwc:
      // Column-major [k, n*p*q] with lda k: db = dy * ones.
      CONVBP_CHECK(cublasSgemv(
          blas_handle(), CUBLAS_OP_N, k, npq, &one, static_cast<const float*>(dy), k,
          static_cast<const float*>(ones_.get()), 1, &zero, static_cast<float*>(db), 1));
      return;
    case Mode::gemm_ex_nhwc: {
      const cudaDataType t = blas_type(pr.dtype);
      CONVBP_CHECK(cublasGemmEx(blas_handle(), CUBLAS_OP_N, CUBLAS_OP_N, k, 1, npq, &one, dy, t, k,
                                ones_.get(), t, npq, &zero, db, t, k, CUBLAS_COMPUTE_32F,
                                CUBLAS_GEMM_DEFAULT));
      return;
    }
    case Mode::legacy:
      CONVBP_CHECK(
          cudnnConvolutionBackwardBias(handle(), &one, legacy_->dy, dy, &zero, legacy_->db, db));
      return;
    case Mode::kernel:
      return;  // above
  }
}

std::string BiasReduction::how() const {
  switch (mode_) {
    case Mode::kernel: {
      const std::int64_t pq = problem_.p() * problem_.q();
      if (problem_.layout == Layout::nchw) {
        return "a CUDA kernel (each [p*q] row of dy summed by " + std::to_string(db_group(pq)) +
               " threads, then [n, k] summed over n)";
      }
      const DbNhwcGrid g = db_nhwc_grid(problem_.n * pq, int(problem_.k), wave_);
      return "a CUDA kernel (dy as [n*p*q, k] in " + std::to_string(g.chunks) + " chunks of " +
             std::to_string(g.chunk_rows) + " rows, " + std::to_string(g.lanes) +
             " threads per channel, " + std::to_string(g.blocks()) + " blocks for a wave of " +
             (wave_ > 0 ? std::to_string(wave_)
                        : "unknown size, taken as " + std::to_string(kDbNhwcBlocks)) +
             ", then [k, chunks] summed over the chunks)";
    }
    case Mode::sgemv_nchw:
      return "cuBLAS (cublasSgemv: dy as [n*k, p*q] times ones, then [n, k] summed over n)";
    case Mode::sgemv_nhwc:
      return "cuBLAS (cublasSgemv: dy as [n*p*q, k], transposed, times ones)";
    case Mode::gemm_ex_nhwc:
      return "cuBLAS (cublasGemmEx, compute type 32F: dy as [n*p*q, k], transposed, times ones)";
    default:
      return "cudnnConvolutionBackwardBias";
  }
}

DevicePlan::DevicePlan(const ConvProblem& pr, Pass pass, std::size_t workspace_bytes)
    : problem_(pr), pass_(pass) {
  // Before any allocation, which would land on the current device.
  if (const int d = other_device(); d >= 0) throw wrong_device("a cuDNN plan", d);
  workspace_ = DeviceBuffer(workspace_bytes);
  const std::size_t f = dtype_size(pr.dtype);
  dy_ = DeviceBuffer(pr.y_elems() * f);
  if (pass == Pass::data) {
    w_ = DeviceBuffer(pr.w_elems() * f);
    dx_ = DeviceBuffer(pr.x_elems() * f);
  } else {
    x_ = DeviceBuffer(pr.x_elems() * f);
    dw_ = DeviceBuffer(pr.w_elems() * f);
    db_ = DeviceBuffer(pr.b_elems() * f);
    bias_ = std::make_unique<BiasReduction>(pr);
  }
  io_ =
      Tensors{x_.get(), w_.get(), dy_.get(), dx_.get(), dw_.get(), db_.get(), pr.dtype, pr.layout};
  CONVBP_CHECK(cudaEventCreate(&start_));
  CONVBP_CHECK(cudaEventCreate(&stop_));
  CONVBP_CHECK(cudaEventCreateWithFlags(&done_, cudaEventDisableTiming));
  if (pass == Pass::weights) {
    CONVBP_CHECK(cudaEventCreateWithFlags(&fork_, cudaEventDisableTiming));
    CONVBP_CHECK(cudaEventCreateWithFlags(&join_, cudaEventDisableTiming));
  }
}

DevicePlan::~DevicePlan() {
  for (cudaEvent_t e : {start_, stop_, fork_, join_, done_}) {
    if (e) cudaEventDestroy(e);
  }
}

std::string DevicePlan::db_detail() const {
  if (pass_ != Pass::weights) return "";
  std::string text = "; db by " + bias_->how() + (bias_->beside() ? " beside dw" : " after dw");
  if (best_pass_ms_ > 0) {
    // What db adds may come out below zero by the timings' noise: printed as measured.
    const double adds = best_pass_ms_ - dw_alone_ms_;
    const double dy_bytes = double(problem_.y_elems() * dtype_size(problem_.dtype));
    char figures[200];
    std::snprintf(figures, sizeof figures,
                  ": adds %.4g ms to the pass's %.4g ms (%.1f%%; dw alone %.4g ms); alone %.4g ms, "
                  "%.4g GB/s of dy",
                  adds, best_pass_ms_, 100.0 * adds / best_pass_ms_, dw_alone_ms_, db_alone_ms_,
                  db_alone_ms_ > 0 ? dy_bytes / (db_alone_ms_ * 1e6) : 0.0);
    text += figures;
    if (after_ms_ > 0) {
      std::snprintf(figures, sizeof figures, "; the pass with db after dw %.4g ms", after_ms_);
      text += figures;
    }
  }
  return text;
}

namespace {

void copy_in(const DeviceBuffer& to, const void* from) {
  CONVBP_CHECK(cudaMemcpy(to.get(), from, to.bytes(), cudaMemcpyHostToDevice));
}
void copy_out(void* to, const DeviceBuffer& from) {
  CONVBP_CHECK(cudaMemcpy(to, from.get(), from.bytes(), cudaMemcpyDeviceToHost));
}
// 0xff bytes are a NaN in fp32, bf16 and f16 alike: an element never written fails validation.
void poison(const DeviceBuffer& b) {
  if (b.bytes()) CONVBP_CHECK(cudaMemset(b.get(), 0xff, b.bytes()));
}

}  // namespace

void DevicePlan::copy_inputs(const Tensors& host) {
  if (const int d = other_device(); d >= 0) {
    throw wrong_device("run (" + problem_.key() + " " + to_string(pass_) + ")", d);
  }
  // After a run_device_async() on a stream of the caller's, which may not be ordered with the
  // default stream (non-blocking), the buffers and workspace are reused only once it is done.
  if (done_recorded_) CONVBP_CHECK(cudaStreamWaitEvent(nullptr, done_, 0));
  copy_in(dy_, host.dy);
  copy_in(pass_ == Pass::data ? w_ : x_, pass_ == Pass::data ? host.w : host.x);
}

void DevicePlan::upload(const Tensors& host) {
  last_ms_ = 0;  // the next timing is the one validated: a single call
  copy_inputs(host);
  if (pass_ == Pass::data) {
    poison(dx_);
  } else {
    poison(dw_);
    poison(db_);
  }
  poison(workspace_);
  CONVBP_CHECK(cudaDeviceSynchronize());
}

void DevicePlan::launch(Part part) {
  const auto held = lock_handles();
  if (pass_ == Pass::data || part == Part::dw) return compute();
  if (part == Part::pass_after || !bias_->beside()) {  // one stream: db after dw
    if (part != Part::db) compute();
    bias_->enqueue(io_.dy, io_.db, stream_);
    return;
  }
  // db's stream waits for what stream_ enqueued before (dy's upload, the outputs' poisoning),
  // runs beside dw, and stream_ waits for it: the events around a call, on stream_, bracket
  // both.
  const cudaStream_t side = bias_->stream();
  CONVBP_CHECK(cudaEventRecord(fork_, stream_));
  CONVBP_CHECK(cudaStreamWaitEvent(side, fork_, 0));
  bias_->enqueue(io_.dy, io_.db, side);
  CONVBP_CHECK(cudaEventRecord(join_, side));
  try {
    if (part == Part::pass) compute();
  } catch (...) {
    cudaStreamWaitEvent(stream_, join_, 0);  // db still reads dy: nothing frees it under db
    throw;
  }
  CONVBP_CHECK(cudaStreamWaitEvent(stream_, join_, 0));
}

void DevicePlan::run(const Tensors&, void*) {
  launch();
  CONVBP_CHECK(cudaDeviceSynchronize());
}

namespace {

// Calls back to back in one timing, for a call of `ms`: about 1 ms of work, 1 to kMaxCalls.
int batch_for(double ms, int max_calls) {
  return int(std::clamp(std::ceil(1.0 / ms), 1.0, double(max_calls)));
}

}  // namespace

double DevicePlan::time_calls(Part part, int calls) {
  if (calls > 1) launch(part);
  CONVBP_CHECK(cudaEventRecord(start_, nullptr));
  for (int i = 0; i < calls; ++i) launch(part);
  CONVBP_CHECK(cudaEventRecord(stop_, nullptr));
  CONVBP_CHECK(cudaEventSynchronize(stop_));
  float ms = 0;
  CONVBP_CHECK(cudaEventElapsedTime(&ms, start_, stop_));
  return double(ms) / calls;
}

double DevicePlan::run_timed_ms(const Tensors&, void*) {
  // Back-to-back calls, so that the host's launch latency is not charged to each call: once a
  // call has been timed under 1 ms, the next timing repeats it back to back between the events
  // (about 1 ms of work, at most 32 calls), after one untimed call that keeps the GPU busy while
  // the host enqueues the timed ones. Where the host's cost per call exceeds the GPU's, the
  // figure is the rate at which calls can be issued, which is what a training loop gets too.
  // A call of 1 ms or more is timed alone: its launch latency (microseconds) is below the
  // noise. The first timing after upload() is one call alone, on the poisoned workspace: that
  // is the call the harness validates. cuDNN runs on the handle's stream, the default stream,
  // and db's stream joins it within each call: the events bracket exactly their work.
  // scripts/torch_conv_bench.py times PyTorch the same way.
  const bool validated = last_ms_ == 0;
  const int calls = validated ? 1 : batch_for(last_ms_, kMaxCalls);
  const double ms = time_calls(Part::pass, calls);
  last_ms_ = ms;
  if (pass_ == Pass::weights && !validated) {
    // db's figures, side by side with the pass: dw alone, db alone and, where db runs beside
    // dw, the pass with db after dw instead, timed the same way right after it; each keeps its
    // minimum over the timings (db alone, far shorter, batches up to the same 1 ms).
    const auto keep_min = [](double& kept, double now) {
      kept = kept > 0 ? std::min(kept, now) : now;
    };
    keep_min(best_pass_ms_, ms);
    keep_min(dw_alone_ms_, time_calls(Part::dw, calls));
    const int db_calls = db_alone_ms_ > 0 ? batch_for(db_alone_ms_, kMaxCalls) : calls;
    keep_min(db_alone_ms_, time_calls(Part::db, db_calls));
    if (bias_->beside()) keep_min(after_ms_, time_calls(Part::pass_after, calls));
  }
  return ms;
}

void DevicePlan::enqueue_on(const Tensors& device, void*, void* stream) {
  // A pointer the kernels cannot use is an error here, not a misaligned-address fault that
  // would leave the CUDA context unusable.
  const std::size_t alignment = caller_alignment();
  // No allocation: this runs on every call of the run-time API.
  if (const int d = other_device(); d >= 0) {
    throw wrong_device("run_device (" + problem_.key() + " " + to_string(pass_) + ")", d);
  }
  const bool data = pass_ == Pass::data;
  const std::pair<const char*, const void*> used[] = {
      {"dy", device.dy},
      {data ? "w" : "x", data ? device.w : device.x},
      {data ? "dx" : "dw", data ? device.dx : device.dw},
      {"db", device.db}};
  for (int i = 0; i < (data ? 3 : 4); ++i) {  // the data pass has no db
    const auto& [name, pointer] = used[i];
    if (!pointer) {
      throw std::invalid_argument(std::string("convbp: run_device: no device pointer for ") + name +
                                  " (" + problem_.key() + " " + to_string(pass_) + ")");
    }
    if (reinterpret_cast<std::uintptr_t>(pointer) % alignment != 0) {
      char where[32];
      std::snprintf(where, sizeof where, "%p", pointer);
      throw std::invalid_argument(std::string("convbp: run_device: ") + name + " at " + where +
                                  " is not " + std::to_string(alignment) +
                                  "-byte aligned, as this plan's tensors must be (" +
                                  problem_.key() + " " + to_string(pass_) + ")");
    }
  }
  // The cuDNN handle (and with it every compute()) moves to the caller's stream for the call;
  // db's stream forks from and joins it (launch()).
  const cudaStream_t s = static_cast<cudaStream_t>(stream);
  // From moving the handle to the caller's stream to moving it back, no other thread enqueues
  // on it (lock_handles()).
  const auto held = lock_handles();
  const Tensors own = io_;
  const auto restore = [&] {
    io_ = own;
    stream_ = nullptr;
    if (s) cudnnSetStream(handle(), nullptr);
  };
  if (s) CONVBP_CHECK(cudnnSetStream(handle(), s));
  io_ = device;
  stream_ = s;
  try {
    // The plan's workspace and buffers serve every call: one on another stream than the last
    // waits for it (on the GPU).
    if (done_recorded_) CONVBP_CHECK(cudaStreamWaitEvent(s, done_, 0));
    launch();
    CONVBP_CHECK(cudaEventRecord(done_, s));
    done_recorded_ = true;
  } catch (...) {
    restore();
    throw;
  }
  restore();
}

void DevicePlan::run_on(const Tensors& device, void* workspace) {
  enqueue_on(device, workspace, nullptr);
  // The default stream only: the framework's other streams are not waited for.
  CONVBP_CHECK(cudaStreamSynchronize(nullptr));
}

void DevicePlan::download(const Tensors& host) {
  if (pass_ == Pass::data) {
    copy_out(host.dx, dx_);
  } else {
    copy_out(host.dw, dw_);
    copy_out(host.db, db_);
  }
}

}  // namespace cudnn
}  // namespace convbp
