// A stand-in for the CUDA runtime and cuDNN, on the host, for testing convbp's cuDNN entries on
// a machine without a GPU: preloaded (LD_PRELOAD) into the test binary, it answers every CUDA
// and cuDNN call impls/cudnn/ makes. "Device" memory is host memory; convolutions are direct
// loops (fp64 accumulation; fp32 inputs rounded to TF32 where tensor cores would be used) on
// tensors of fp32, bf16 or fp16, NCHW or NHWC (read into fp32 NCHW, the result rounded back to
// the tensors' type: what an fp32-accumulating kernel does); the
// graph API is modelled strictly: each descriptor type checks the attributes it needs and
// their types at finalize, as this project reads NVIDIA's documentation, and the heuristics
// offer a fixed set of engines with notes and knobs (below).
//
// cuBLAS: the calls that compute db (cublasSgemv, cublasGemmEx with compute type 32F), checked
// for their arguments' consistency and computed with fp64 accumulation, the result rounded to
// C's type. cudaLaunchKernel: the project's kernels (db, impls/cudnn/db_kernel.h),
// modelled from their argument; CONVBP_MOCK_DB_KERNEL_MISSES_A_ROW=1 makes them leave the last
// row of dy ((n, k) in NCHW, (n, p, q) in NHWC) out of their sums, a wrong db for the tests that
// must catch one, and CONVBP_MOCK_DB_KERNEL_FAULTS=1 makes a launch an illegal address, a sticky
// error that every later runtime call returns, as on a GPU.
//
// Streams: every call runs at once on the host, so a stream is a name that must exist. The
// model counts, per stream, the cuDNN calls that compute (on the handle's stream, the one set
// last by any thread) and db's calls (kernel launches and cuBLAS calls), for the test of plans
// run from two threads (convbp_mock_cudnn_calls_on, convbp_mock_db_calls; found by dlsym), and
// the workspaces db's cuBLAS calls ran on, per stream (convbp_mock_blas_workspaces_on: a stream
// reset to the pool by cublasSetStream, as cuBLAS documents, shows as null);
// CONVBP_MOCK_SET_STREAM_DELAY_US=U makes cudnnSetStream sleep U microseconds after setting the
// stream, which widens the window in which another thread could take the handle.
//
// What this proves: the harness and impls/cudnn/ drive the API in a sequence that this model
// accepts, bind the right buffers, expand the engine families, rebuild members from their
// names, validate, time and store them. What it cannot prove: that cuDNN itself behaves like
// the model. Figures measured on it mean nothing. CONVBP_MOCK_DEVICES=N models N devices (for
// the test that a plan refuses a thread whose current device is another). tests/CMakeLists.txt runs
// the cuDNN tests under it (ctest: cudnn_tests_on_mock_device).
#include <cublas_v2.h>
#include <cuda_runtime_api.h>
#include <cudnn.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "cudnn/db_kernel.h"

namespace {

thread_local std::string g_last_error;

cudnnStatus_t fail(cudnnStatus_t status, const std::string& message) {
  g_last_error = "mock cuDNN: " + message;
  return status;
}

// --- convolution on the host -----------------------------------------------------------------

struct Conv {
  std::int64_t n, c, h, w, k, r, s, p, q;
  std::int64_t pad_h, pad_w, stride_h, stride_w, dil_h, dil_w, groups;
  cudnnDataType_t type = CUDNN_DATA_FLOAT;  // of every tensor: FLOAT, BFLOAT16 or HALF
  bool nhwc = false;                        // x, dy [n, h, w, c]; w [k, r, s, c/g]
};

float element(cudnnDataType_t type, const void* data, std::size_t i) {
  if (type == CUDNN_DATA_FLOAT) return static_cast<const float*>(data)[i];
  const std::uint16_t bits = static_cast<const std::uint16_t*>(data)[i];
  if (type == CUDNN_DATA_HALF) {
    _Float16 h;
    std::memcpy(&h, &bits, 2);
    return float(h);
  }
  const std::uint32_t wide = std::uint32_t(bits) << 16;
  float f;
  std::memcpy(&f, &wide, 4);
  return f;
}

// Stores v rounded to nearest even in the tensor's type.
void set_element(cudnnDataType_t type, void* data, std::size_t i, double v) {
  const float f = float(v);
  if (type == CUDNN_DATA_FLOAT) {
    static_cast<float*>(data)[i] = f;
    return;
  }
  std::uint16_t bits;
  if (type == CUDNN_DATA_HALF) {
    const _Float16 h = _Float16(f);
    std::memcpy(&bits, &h, 2);
  } else {
    std::uint32_t u;
    std::memcpy(&u, &f, 4);
    bits = std::isnan(f) ? std::uint16_t((u >> 16) | 0x40)
                         : std::uint16_t((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
  }
  static_cast<std::uint16_t*>(data)[i] = bits;
}

// Index of NCHW element (a, b, i, j) of a [d0, d1, d2, d3] tensor in the convolution's layout.
std::size_t offset(const Conv& cv, const std::int64_t (&d)[4], std::int64_t a, std::int64_t b,
                   std::int64_t i, std::int64_t j) {
  if (!cv.nhwc) return std::size_t(((a * d[1] + b) * d[2] + i) * d[3] + j);
  return std::size_t(((a * d[2] + i) * d[3] + j) * d[1] + b);
}

// A device tensor of the convolution's type and layout as fp32 NCHW, and back.
std::vector<float> load(const Conv& cv, const void* data, const std::int64_t (&d)[4]) {
  std::vector<float> out(std::size_t(d[0] * d[1] * d[2] * d[3]));
  std::size_t flat = 0;
  for (std::int64_t a = 0; a < d[0]; ++a)
    for (std::int64_t b = 0; b < d[1]; ++b)
      for (std::int64_t i = 0; i < d[2]; ++i)
        for (std::int64_t j = 0; j < d[3]; ++j)
          out[flat++] = element(cv.type, data, offset(cv, d, a, b, i, j));
  return out;
}
void store(const Conv& cv, const std::vector<float>& nchw, void* data, const std::int64_t (&d)[4]) {
  std::size_t flat = 0;
  for (std::int64_t a = 0; a < d[0]; ++a)
    for (std::int64_t b = 0; b < d[1]; ++b)
      for (std::int64_t i = 0; i < d[2]; ++i)
        for (std::int64_t j = 0; j < d[3]; ++j)
          set_element(cv.type, data, offset(cv, d, a, b, i, j), nchw[flat++]);
}

float tf32(float v) {
  std::uint32_t u;
  std::memcpy(&u, &v, 4);
  u = (u + 0x0fffu + ((u >> 13) & 1u)) & ~0x1fffu;  // round to nearest even, 10-bit mantissa
  std::memcpy(&v, &u, 4);
  return v;
}

// dx = conv_transpose(dy, w); dw = correlate(x, dy). Inputs are read as TF32 when `round`.
void backward_data(const Conv& cv, const float* dy, const float* w, float* dx, bool round) {
  const std::int64_t cg = cv.c / cv.groups, kg = cv.k / cv.groups;
  std::vector<double> acc(std::size_t(cv.n * cv.c * cv.h * cv.w), 0.0);
  auto in = [&](float v) { return double(round ? tf32(v) : v); };
  for (std::int64_t n = 0; n < cv.n; ++n)
    for (std::int64_t k = 0; k < cv.k; ++k)
      for (std::int64_t c0 = 0; c0 < cg; ++c0)
        for (std::int64_t r = 0; r < cv.r; ++r)
          for (std::int64_t s = 0; s < cv.s; ++s)
            for (std::int64_t p = 0; p < cv.p; ++p)
              for (std::int64_t q = 0; q < cv.q; ++q) {
                const std::int64_t y = p * cv.stride_h - cv.pad_h + r * cv.dil_h;
                const std::int64_t x = q * cv.stride_w - cv.pad_w + s * cv.dil_w;
                if (y < 0 || y >= cv.h || x < 0 || x >= cv.w) continue;
                const std::int64_t c = (k / kg) * cg + c0;
                acc[std::size_t(((n * cv.c + c) * cv.h + y) * cv.w + x)] +=
                    in(dy[((n * cv.k + k) * cv.p + p) * cv.q + q]) *
                    in(w[((k * cg + c0) * cv.r + r) * cv.s + s]);
              }
  for (std::size_t i = 0; i < acc.size(); ++i) dx[i] = float(acc[i]);
}

void backward_filter(const Conv& cv, const float* x, const float* dy, float* dw, bool round) {
  const std::int64_t cg = cv.c / cv.groups, kg = cv.k / cv.groups;
  auto in = [&](float v) { return double(round ? tf32(v) : v); };
  for (std::int64_t k = 0; k < cv.k; ++k)
    for (std::int64_t c0 = 0; c0 < cg; ++c0)
      for (std::int64_t r = 0; r < cv.r; ++r)
        for (std::int64_t s = 0; s < cv.s; ++s) {
          double sum = 0;
          const std::int64_t c = (k / kg) * cg + c0;
          for (std::int64_t n = 0; n < cv.n; ++n)
            for (std::int64_t p = 0; p < cv.p; ++p)
              for (std::int64_t q = 0; q < cv.q; ++q) {
                const std::int64_t y = p * cv.stride_h - cv.pad_h + r * cv.dil_h;
                const std::int64_t xx = q * cv.stride_w - cv.pad_w + s * cv.dil_w;
                if (y < 0 || y >= cv.h || xx < 0 || xx >= cv.w) continue;
                sum += in(x[((n * cv.c + c) * cv.h + y) * cv.w + xx]) *
                       in(dy[((n * cv.k + k) * cv.p + p) * cv.q + q]);
              }
          dw[((k * cg + c0) * cv.r + r) * cv.s + s] = float(sum);
        }
}

// The two passes on tensors of the convolution's type and layout. TF32 rounding applies to fp32
// tensors only: bf16 and fp16 values go into tensor cores as they are.
void run_backward_data(const Conv& cv, const void* dy, const void* w, void* dx, bool tensor_op) {
  const bool round = tensor_op && cv.type == CUDNN_DATA_FLOAT;
  if (cv.type == CUDNN_DATA_FLOAT && !cv.nhwc) {
    backward_data(cv, static_cast<const float*>(dy), static_cast<const float*>(w),
                  static_cast<float*>(dx), round);
    return;
  }
  const std::int64_t xd[4] = {cv.n, cv.c, cv.h, cv.w}, yd[4] = {cv.n, cv.k, cv.p, cv.q},
                     wd[4] = {cv.k, cv.c / cv.groups, cv.r, cv.s};
  std::vector<float> out(std::size_t(cv.n * cv.c * cv.h * cv.w));
  backward_data(cv, load(cv, dy, yd).data(), load(cv, w, wd).data(), out.data(), round);
  store(cv, out, dx, xd);
}
void run_backward_filter(const Conv& cv, const void* x, const void* dy, void* dw, bool tensor_op) {
  const bool round = tensor_op && cv.type == CUDNN_DATA_FLOAT;
  if (cv.type == CUDNN_DATA_FLOAT && !cv.nhwc) {
    backward_filter(cv, static_cast<const float*>(x), static_cast<const float*>(dy),
                    static_cast<float*>(dw), round);
    return;
  }
  const std::int64_t xd[4] = {cv.n, cv.c, cv.h, cv.w}, yd[4] = {cv.n, cv.k, cv.p, cv.q},
                     wd[4] = {cv.k, cv.c / cv.groups, cv.r, cv.s};
  std::vector<float> out(std::size_t(cv.k * (cv.c / cv.groups) * cv.r * cv.s));
  backward_filter(cv, load(cv, x, xd).data(), load(cv, dy, yd).data(), out.data(), round);
  store(cv, out, dw, wd);
}

// A workspace the library would use: written all over, so a missing one crashes here.
void touch(void* workspace, std::size_t bytes) {
  if (bytes) std::memset(workspace, 0x5a, bytes);
}

// --- legacy descriptors ----------------------------------------------------------------------

struct Tensor4d {
  int n = 0, c = 0, h = 0, w = 0;
  cudnnDataType_t type = CUDNN_DATA_FLOAT;
  bool nhwc = false;
};
struct Filter4d {
  int k = 0, c = 0, r = 0, s = 0;
  cudnnDataType_t type = CUDNN_DATA_FLOAT;
  bool nhwc = false;  // KRSC
};
struct Conv2d {
  int pad_h = 0, pad_w = 0, u = 1, v = 1, dil_h = 1, dil_w = 1, groups = 1;
  cudnnMathType_t math = CUDNN_DEFAULT_MATH;
};

Conv legacy_conv(const Tensor4d& x, const Filter4d& w, const Tensor4d& dy, const Conv2d& cd) {
  return {x.n,      x.c,      x.h,  x.w,  w.k,      w.r,      w.s,       dy.h,   dy.w,
          cd.pad_h, cd.pad_w, cd.u, cd.v, cd.dil_h, cd.dil_w, cd.groups, x.type, x.nhwc};
}

// Checks the legacy shapes agree; "" when they do.
std::string legacy_mismatch(const Tensor4d& x, const Filter4d& w, const Tensor4d& dy,
                            const Conv2d& cd) {
  if (x.type != w.type || x.type != dy.type) return "x, the filter and dy differ in data type";
  if (x.nhwc != w.nhwc || x.nhwc != dy.nhwc) return "x, the filter and dy differ in format";
  if (x.c != w.c * cd.groups) return "x has c != filter c * groups";
  if (w.k != dy.c || x.n != dy.n) return "dy does not match x and the filter";
  const int p = (x.h + 2 * cd.pad_h - ((w.r - 1) * cd.dil_h + 1)) / cd.u + 1;
  const int q = (x.w + 2 * cd.pad_w - ((w.s - 1) * cd.dil_w + 1)) / cd.v + 1;
  if (p != dy.h || q != dy.w) return "dy's spatial size is not the convolution's output";
  return "";
}

// The model's legacy algorithms: 0 and 1 do everything; FFT needs stride 1 and dilation 1;
// Winograd also needs a 3x3 filter and no groups. Workspace: 0 for algo 1, else 4 KiB.
cudnnStatus_t legacy_support(int algo, bool data, const Filter4d& w, const Conv2d& cd,
                             std::size_t* bytes) {
  const bool unit = cd.u == 1 && cd.v == 1 && cd.dil_h == 1 && cd.dil_w == 1;
  const bool fft = data ? (algo == CUDNN_CONVOLUTION_BWD_DATA_ALGO_FFT ||
                           algo == CUDNN_CONVOLUTION_BWD_DATA_ALGO_FFT_TILING)
                        : (algo == CUDNN_CONVOLUTION_BWD_FILTER_ALGO_FFT ||
                           algo == CUDNN_CONVOLUTION_BWD_FILTER_ALGO_FFT_TILING);
  const bool wino = data ? (algo == CUDNN_CONVOLUTION_BWD_DATA_ALGO_WINOGRAD ||
                            algo == CUDNN_CONVOLUTION_BWD_DATA_ALGO_WINOGRAD_NONFUSED)
                         : algo == CUDNN_CONVOLUTION_BWD_FILTER_ALGO_WINOGRAD_NONFUSED;
  if (!data && algo == CUDNN_CONVOLUTION_BWD_FILTER_ALGO_WINOGRAD) {
    return fail(CUDNN_STATUS_NOT_SUPPORTED, "BWD_FILTER_ALGO_WINOGRAD is not implemented");
  }
  if ((fft || wino) && !unit) return fail(CUDNN_STATUS_NOT_SUPPORTED, "needs stride 1, dilation 1");
  if (wino && (w.r != 3 || w.s != 3 || cd.groups != 1)) {
    return fail(CUDNN_STATUS_NOT_SUPPORTED, "Winograd needs a 3x3 filter, no groups");
  }
  *bytes = algo == 1 ? 0 : 4096;
  return CUDNN_STATUS_SUCCESS;
}

// The model computes out = op(in), nothing scaled or accumulated.
cudnnStatus_t unit_scaling(const void* alpha, const void* beta) {
  if (*static_cast<const float*>(alpha) != 1.0f || *static_cast<const float*>(beta) != 0.0f) {
    return fail(CUDNN_STATUS_NOT_SUPPORTED, "the model takes alpha 1, beta 0 only");
  }
  return CUDNN_STATUS_SUCCESS;
}

// What a legacy backward call checks before computing; uses the workspace as the algorithm
// would.
cudnnStatus_t legacy_call(int algo, bool data, const Filter4d& w, const Conv2d& cd, void* workspace,
                          std::size_t workspace_bytes, const void* alpha, const void* beta) {
  std::size_t need = 0;
  if (cudnnStatus_t s = legacy_support(algo, data, w, cd, &need)) return s;
  if (workspace_bytes < need) return fail(CUDNN_STATUS_BAD_PARAM, "workspace too small");
  if (cudnnStatus_t s = unit_scaling(alpha, beta)) return s;
  touch(workspace, need);
  return CUDNN_STATUS_SUCCESS;
}

// --- backend descriptors ---------------------------------------------------------------------

// Engines of the model: notes, knobs (type -> the range CUDNN_ATTR_ENGINE_KNOB_INFO gives),
// workspace, and which shapes.
struct KnobRange {
  std::int64_t min, max, stride;
  bool takes(std::int64_t v) const { return v >= min && v <= max && (v - min) % stride == 0; }
};
struct EngineSpec {
  int id;
  std::vector<cudnnBackendNumericalNote_t> notes;
  std::map<int, KnobRange> knobs;
  std::size_t workspace;
};
// Ids 1, 18, 20 (weights) and 50 (data) are the engines that cuDNN 9.14 computed wrong on the
// H200 when pre- and post-padding differ (docs/cudnn.md); the model does the same (wrong_here)
// so that the tests prove the entries decline them there. 17 is the Winograd engine without a
// note. 9 is one the heuristics never offer, with a knob space of 8 x 5 x 12 points (CTA_COUNT's
// 0..1024 is thinned by the search), some of which do not build (odd SPLIT_K_SLC above 1) and
// one of which is the fastest configuration under CONVBP_MOCK_MODELED_TIME (modeled_ms).
const std::vector<EngineSpec>& engines() {
  static const std::vector<EngineSpec> list = {
      {0, {}, {{CUDNN_KNOB_TYPE_TILE_SIZE, {1, 2, 1}}, {CUDNN_KNOB_TYPE_TILEK, {0, 1, 1}}}, 0},
      {1, {CUDNN_NUMERICAL_NOTE_TENSOR_CORE}, {{CUDNN_KNOB_TYPE_TILE_SIZE, {2, 4, 2}}}, 1024},
      {2, {CUDNN_NUMERICAL_NOTE_DOWN_CONVERT_INPUTS, CUDNN_NUMERICAL_NOTE_TENSOR_CORE}, {}, 0},
      {3,
       {CUDNN_NUMERICAL_NOTE_NONDETERMINISTIC},
       {{CUDNN_KNOB_TYPE_SPLIT_K_BUF, {1, 4, 3}}},
       4096},
      {4, {CUDNN_NUMERICAL_NOTE_WINOGRAD}, {}, 2048},
      {5, {}, {}, 0},  // symmetric padding only: finalizing its plan fails otherwise
      {9,
       {},
       {{CUDNN_KNOB_TYPE_STAGES, {2, 6, 1}},
        {CUDNN_KNOB_TYPE_SPLIT_K_SLC, {1, 8, 1}},
        {CUDNN_KNOB_TYPE_CTA_COUNT, {0, 1024, 1}}},
       512},
      {17, {}, {{CUDNN_KNOB_TYPE_WORKSPACE, {0, 0, 1}}}, 2048},
      {18, {CUDNN_NUMERICAL_NOTE_FFT}, {{CUDNN_KNOB_TYPE_MULTIPLY, {0, 0, 1}}}, 4096},
      {20, {CUDNN_NUMERICAL_NOTE_NONDETERMINISTIC}, {}, 0},
      {50, {CUDNN_NUMERICAL_NOTE_FFT}, {}, 4096},
  };
  return list;
}
// Ids without a spec below this exist but support nothing.
constexpr std::int64_t kEngineCount = 51;

const EngineSpec* engine_spec(std::int64_t id) {
  for (const EngineSpec& e : engines()) {
    if (e.id == id) return &e;
  }
  return nullptr;
}
const EngineSpec& spec_of(std::int64_t id) { return *engine_spec(id); }

// Whether `engine` computes this graph wrong, as cuDNN 9.14 did on the H200.
bool wrong_here(int engine, bool data, bool symmetric) {
  if (symmetric) return false;
  return data ? engine == 50 : engine == 1 || engine == 18 || engine == 20;
}

struct Value {
  cudnnBackendAttributeType_t type;
  std::vector<std::uint8_t> bytes;
  std::int64_t count;
};

struct Desc {
  cudnnBackendDescriptorType_t type;
  bool finalized = false;
  std::map<int, Value> attrs;
  // Computed at finalize.
  int engine = -1;                                  // ENGINE, ENGINECFG, EXECUTION_PLAN
  std::vector<std::pair<int, std::int64_t>> knobs;  // ENGINECFG
  Desc* graph = nullptr;                            // ENGINE, ENGINECFG, EXECUTION_PLAN
  std::vector<Desc*> results;                       // ENGINEHEUR (owned below)
  std::vector<std::unique_ptr<Desc>> owned;
};

std::mutex g_mutex;
std::set<Desc*> g_live;

bool live(void* d) { return g_live.count(static_cast<Desc*>(d)) > 0; }

std::size_t type_size(cudnnBackendAttributeType_t t) {
  switch (t) {
    case CUDNN_TYPE_INT64:
      return 8;
    case CUDNN_TYPE_FLOAT:
      return 4;
    case CUDNN_TYPE_DOUBLE:
      return 8;
    case CUDNN_TYPE_VOID_PTR:
    case CUDNN_TYPE_BACKEND_DESCRIPTOR:
    case CUDNN_TYPE_HANDLE:
      return sizeof(void*);
    default:
      return 4;  // the enums
  }
}

template <typename T>
T scalar(const Desc& d, int name) {
  T v{};
  std::memcpy(&v, d.attrs.at(name).bytes.data(), sizeof(T));
  return v;
}
template <typename T>
std::vector<T> array(const Desc& d, int name) {
  const Value& v = d.attrs.at(name);
  std::vector<T> out(std::size_t(v.count));
  std::memcpy(out.data(), v.bytes.data(), out.size() * sizeof(T));
  return out;
}
Desc* desc_attr(const Desc& d, int name) { return array<Desc*>(d, name).at(0); }

// Required attributes and their types, per descriptor type.
struct Need {
  int name;
  cudnnBackendAttributeType_t type;
};
std::vector<Need> needs(cudnnBackendDescriptorType_t t) {
  switch (t) {
    case CUDNN_BACKEND_TENSOR_DESCRIPTOR:
      return {{CUDNN_ATTR_TENSOR_DATA_TYPE, CUDNN_TYPE_DATA_TYPE},
              {CUDNN_ATTR_TENSOR_DIMENSIONS, CUDNN_TYPE_INT64},
              {CUDNN_ATTR_TENSOR_STRIDES, CUDNN_TYPE_INT64},
              {CUDNN_ATTR_TENSOR_UNIQUE_ID, CUDNN_TYPE_INT64},
              {CUDNN_ATTR_TENSOR_BYTE_ALIGNMENT, CUDNN_TYPE_INT64}};
    case CUDNN_BACKEND_CONVOLUTION_DESCRIPTOR:
      return {{CUDNN_ATTR_CONVOLUTION_SPATIAL_DIMS, CUDNN_TYPE_INT64},
              {CUDNN_ATTR_CONVOLUTION_COMP_TYPE, CUDNN_TYPE_DATA_TYPE},
              {CUDNN_ATTR_CONVOLUTION_CONV_MODE, CUDNN_TYPE_CONVOLUTION_MODE},
              {CUDNN_ATTR_CONVOLUTION_DILATIONS, CUDNN_TYPE_INT64},
              {CUDNN_ATTR_CONVOLUTION_FILTER_STRIDES, CUDNN_TYPE_INT64},
              {CUDNN_ATTR_CONVOLUTION_PRE_PADDINGS, CUDNN_TYPE_INT64},
              {CUDNN_ATTR_CONVOLUTION_POST_PADDINGS, CUDNN_TYPE_INT64}};
    case CUDNN_BACKEND_OPERATION_CONVOLUTION_BACKWARD_DATA_DESCRIPTOR:
      return {{CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_DATA_ALPHA, CUDNN_TYPE_FLOAT},
              {CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_DATA_BETA, CUDNN_TYPE_FLOAT},
              {CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_DATA_CONV_DESC, CUDNN_TYPE_BACKEND_DESCRIPTOR},
              {CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_DATA_W, CUDNN_TYPE_BACKEND_DESCRIPTOR},
              {CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_DATA_DX, CUDNN_TYPE_BACKEND_DESCRIPTOR},
              {CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_DATA_DY, CUDNN_TYPE_BACKEND_DESCRIPTOR}};
    case CUDNN_BACKEND_OPERATION_CONVOLUTION_BACKWARD_FILTER_DESCRIPTOR:
      return {
          {CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_FILTER_ALPHA, CUDNN_TYPE_FLOAT},
          {CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_FILTER_BETA, CUDNN_TYPE_FLOAT},
          {CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_FILTER_CONV_DESC, CUDNN_TYPE_BACKEND_DESCRIPTOR},
          {CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_FILTER_DW, CUDNN_TYPE_BACKEND_DESCRIPTOR},
          {CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_FILTER_X, CUDNN_TYPE_BACKEND_DESCRIPTOR},
          {CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_FILTER_DY, CUDNN_TYPE_BACKEND_DESCRIPTOR}};
    case CUDNN_BACKEND_OPERATIONGRAPH_DESCRIPTOR:
      return {{CUDNN_ATTR_OPERATIONGRAPH_HANDLE, CUDNN_TYPE_HANDLE},
              {CUDNN_ATTR_OPERATIONGRAPH_OPS, CUDNN_TYPE_BACKEND_DESCRIPTOR}};
    case CUDNN_BACKEND_ENGINEHEUR_DESCRIPTOR:
      return {{CUDNN_ATTR_ENGINEHEUR_OPERATION_GRAPH, CUDNN_TYPE_BACKEND_DESCRIPTOR},
              {CUDNN_ATTR_ENGINEHEUR_MODE, CUDNN_TYPE_HEUR_MODE}};
    case CUDNN_BACKEND_ENGINE_DESCRIPTOR:
      return {{CUDNN_ATTR_ENGINE_OPERATION_GRAPH, CUDNN_TYPE_BACKEND_DESCRIPTOR},
              {CUDNN_ATTR_ENGINE_GLOBAL_INDEX, CUDNN_TYPE_INT64}};
    case CUDNN_BACKEND_KNOB_CHOICE_DESCRIPTOR:
      return {{CUDNN_ATTR_KNOB_CHOICE_KNOB_TYPE, CUDNN_TYPE_KNOB_TYPE},
              {CUDNN_ATTR_KNOB_CHOICE_KNOB_VALUE, CUDNN_TYPE_INT64}};
    case CUDNN_BACKEND_ENGINECFG_DESCRIPTOR:
      return {{CUDNN_ATTR_ENGINECFG_ENGINE, CUDNN_TYPE_BACKEND_DESCRIPTOR}};
    case CUDNN_BACKEND_EXECUTION_PLAN_DESCRIPTOR:
      return {{CUDNN_ATTR_EXECUTION_PLAN_HANDLE, CUDNN_TYPE_HANDLE},
              {CUDNN_ATTR_EXECUTION_PLAN_ENGINE_CONFIG, CUDNN_TYPE_BACKEND_DESCRIPTOR}};
    case CUDNN_BACKEND_VARIANT_PACK_DESCRIPTOR:
      return {{CUDNN_ATTR_VARIANT_PACK_UNIQUE_IDS, CUDNN_TYPE_INT64},
              {CUDNN_ATTR_VARIANT_PACK_DATA_POINTERS, CUDNN_TYPE_VOID_PTR},
              {CUDNN_ATTR_VARIANT_PACK_WORKSPACE, CUDNN_TYPE_VOID_PTR}};
    default:
      return {};
  }
}

// The graph's one operation and what it computes.
struct GraphInfo {
  bool data;
  Conv conv;
  std::int64_t uid_x, uid_w, uid_dy;
  bool symmetric;
  bool uniform;  // x, w and dy share their data type and layout
};

// Whether a (finalized, so packed NCHW or NHWC) tensor is NHWC: its channel stride is 1.
bool nhwc_tensor(const Desc& t) {
  const auto strides = array<std::int64_t>(t, CUDNN_ATTR_TENSOR_STRIDES);
  const auto dims = array<std::int64_t>(t, CUDNN_ATTR_TENSOR_DIMENSIONS);
  return strides[1] == 1 && dims[1] * dims[2] * dims[3] > dims[1];
}

GraphInfo graph_info(const Desc& graph) {
  const Desc& op = *desc_attr(graph, CUDNN_ATTR_OPERATIONGRAPH_OPS);
  const bool data = op.type == CUDNN_BACKEND_OPERATION_CONVOLUTION_BACKWARD_DATA_DESCRIPTOR;
  const Desc& cd = *desc_attr(op, data ? CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_DATA_CONV_DESC
                                       : CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_FILTER_CONV_DESC);
  const Desc& x = *desc_attr(op, data ? CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_DATA_DX
                                      : CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_FILTER_X);
  const Desc& w = *desc_attr(op, data ? CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_DATA_W
                                      : CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_FILTER_DW);
  const Desc& dy = *desc_attr(op, data ? CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_DATA_DY
                                       : CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_FILTER_DY);
  const auto xd = array<std::int64_t>(x, CUDNN_ATTR_TENSOR_DIMENSIONS);
  const auto wd = array<std::int64_t>(w, CUDNN_ATTR_TENSOR_DIMENSIONS);
  const auto yd = array<std::int64_t>(dy, CUDNN_ATTR_TENSOR_DIMENSIONS);
  const auto pre = array<std::int64_t>(cd, CUDNN_ATTR_CONVOLUTION_PRE_PADDINGS);
  const auto post = array<std::int64_t>(cd, CUDNN_ATTR_CONVOLUTION_POST_PADDINGS);
  const auto st = array<std::int64_t>(cd, CUDNN_ATTR_CONVOLUTION_FILTER_STRIDES);
  const auto dil = array<std::int64_t>(cd, CUDNN_ATTR_CONVOLUTION_DILATIONS);
  GraphInfo g;
  g.data = data;
  g.conv = {xd[0], xd[1],  xd[2],  xd[3], wd[0], wd[2],  wd[3],  yd[2],
            yd[3], pre[0], pre[1], st[0], st[1], dil[0], dil[1], xd[1] / wd[1]};
  g.uid_x = scalar<std::int64_t>(x, CUDNN_ATTR_TENSOR_UNIQUE_ID);
  g.uid_w = scalar<std::int64_t>(w, CUDNN_ATTR_TENSOR_UNIQUE_ID);
  g.uid_dy = scalar<std::int64_t>(dy, CUDNN_ATTR_TENSOR_UNIQUE_ID);
  g.symmetric = pre == post;
  g.conv.type = scalar<cudnnDataType_t>(x, CUDNN_ATTR_TENSOR_DATA_TYPE);
  g.conv.nhwc = nhwc_tensor(x);
  g.uniform = true;
  for (const Desc* t : {&w, &dy}) {
    g.uniform &= scalar<cudnnDataType_t>(*t, CUDNN_ATTR_TENSOR_DATA_TYPE) == g.conv.type;
    // A tensor with one channel, or 1x1 spatially, is both NCHW and NHWC.
    const auto dims = array<std::int64_t>(*t, CUDNN_ATTR_TENSOR_DIMENSIONS);
    if (dims[1] > 1 && dims[2] * dims[3] > 1) g.uniform &= nhwc_tensor(*t) == g.conv.nhwc;
  }
  return g;
}

// Checks what a finalize needs beyond presence; "" when all is well.
std::string check_finalize(Desc& d) {
  switch (d.type) {
    case CUDNN_BACKEND_TENSOR_DESCRIPTOR: {
      const auto dims = array<std::int64_t>(d, CUDNN_ATTR_TENSOR_DIMENSIONS);
      const auto strides = array<std::int64_t>(d, CUDNN_ATTR_TENSOR_STRIDES);
      if (dims.size() != 4 || strides.size() != 4) return "a tensor needs 4 dims and strides";
      const bool nchw = strides[3] == 1 && strides[2] == dims[3] &&
                        strides[1] == dims[2] * dims[3] &&
                        strides[0] == dims[1] * dims[2] * dims[3];
      const bool nhwc = strides[1] == 1 && strides[3] == dims[1] &&
                        strides[2] == dims[3] * dims[1] &&
                        strides[0] == dims[1] * dims[2] * dims[3];
      if (!nchw && !nhwc) return "the model takes packed NCHW or NHWC tensors only";
      const auto type = scalar<cudnnDataType_t>(d, CUDNN_ATTR_TENSOR_DATA_TYPE);
      if (type != CUDNN_DATA_FLOAT && type != CUDNN_DATA_BFLOAT16 && type != CUDNN_DATA_HALF) {
        return "the model takes fp32, bf16 and fp16 tensors only";
      }
      return "";
    }
    case CUDNN_BACKEND_CONVOLUTION_DESCRIPTOR: {
      if (scalar<std::int64_t>(d, CUDNN_ATTR_CONVOLUTION_SPATIAL_DIMS) != 2) return "2-d only";
      for (int a : {CUDNN_ATTR_CONVOLUTION_DILATIONS, CUDNN_ATTR_CONVOLUTION_FILTER_STRIDES,
                    CUDNN_ATTR_CONVOLUTION_PRE_PADDINGS, CUDNN_ATTR_CONVOLUTION_POST_PADDINGS}) {
        if (d.attrs.at(a).count != 2) return "spatial arrays need 2 elements";
      }
      if (scalar<cudnnConvolutionMode_t>(d, CUDNN_ATTR_CONVOLUTION_CONV_MODE) !=
          CUDNN_CROSS_CORRELATION) {
        return "the model does cross-correlation only";
      }
      if (scalar<cudnnDataType_t>(d, CUDNN_ATTR_CONVOLUTION_COMP_TYPE) != CUDNN_DATA_FLOAT) {
        return "the model accumulates in fp32 only (compute type FLOAT)";
      }
      return "";
    }
    case CUDNN_BACKEND_OPERATION_CONVOLUTION_BACKWARD_DATA_DESCRIPTOR:
    case CUDNN_BACKEND_OPERATION_CONVOLUTION_BACKWARD_FILTER_DESCRIPTOR:
      for (const auto& [name, value] : d.attrs) {
        if (value.type == CUDNN_TYPE_BACKEND_DESCRIPTOR) {
          Desc* sub = array<Desc*>(d, name).at(0);
          if (!live(sub) || !sub->finalized) return "an operand is not a finalized descriptor";
        }
      }
      return "";
    case CUDNN_BACKEND_OPERATIONGRAPH_DESCRIPTOR: {
      if (d.attrs.at(CUDNN_ATTR_OPERATIONGRAPH_OPS).count != 1) return "one operation expected";
      Desc* op = desc_attr(d, CUDNN_ATTR_OPERATIONGRAPH_OPS);
      if (!live(op) || !op->finalized) return "the operation is not finalized";
      const GraphInfo g = graph_info(d);
      const Conv& c = g.conv;
      if (c.c % c.groups || c.k % c.groups) return "channels do not divide into groups";
      if (!g.uniform) return "the model takes x, w and dy of one data type and one layout";
      return "";
    }
    case CUDNN_BACKEND_ENGINEHEUR_DESCRIPTOR: {
      Desc* graph = desc_attr(d, CUDNN_ATTR_ENGINEHEUR_OPERATION_GRAPH);
      if (!live(graph) || !graph->finalized) return "the graph is not finalized";
      const auto mode = scalar<cudnnBackendHeurMode_t>(d, CUDNN_ATTR_ENGINEHEUR_MODE);
      const GraphInfo g = graph_info(*graph);
      const bool wino_shape = g.conv.r == 3 && g.conv.s == 3 && g.conv.stride_h == 1 &&
                              g.conv.stride_w == 1 && g.conv.dil_h == 1 && g.conv.dil_w == 1;
      // (engine, knobs) in the order each mode gives them.
      std::vector<std::pair<int, std::vector<std::pair<int, std::int64_t>>>> offer;
      if (mode == CUDNN_HEUR_MODE_A) {
        offer = {{0, {{CUDNN_KNOB_TYPE_TILE_SIZE, 2}, {CUDNN_KNOB_TYPE_TILEK, 1}}},
                 {1, {{CUDNN_KNOB_TYPE_TILE_SIZE, 4}}},
                 {3, {{CUDNN_KNOB_TYPE_SPLIT_K_BUF, 4}}}};
      } else if (mode == CUDNN_HEUR_MODE_B) {
        offer = {{0, {{CUDNN_KNOB_TYPE_TILEK, 1}, {CUDNN_KNOB_TYPE_TILE_SIZE, 2}}},  // repeat
                 {2, {}},
                 {0, {{CUDNN_KNOB_TYPE_TILE_SIZE, 1}, {CUDNN_KNOB_TYPE_TILEK, 0}}}};
        if (wino_shape) offer.push_back({4, {}});
      } else if (mode == CUDNN_HEUR_MODE_FALLBACK) {
        offer = {{5, {}}, {1, {{CUDNN_KNOB_TYPE_TILE_SIZE, 2}}}};
        if (g.data) {
          offer.push_back({50, {}});
        } else {
          if (wino_shape) offer.push_back({17, {{CUDNN_KNOB_TYPE_WORKSPACE, 0}}});
          offer.push_back({18, {{CUDNN_KNOB_TYPE_MULTIPLY, 0}}});
          offer.push_back({20, {}});
        }
      } else {
        return "mode not modelled";
      }
      for (const auto& [engine, knobs] : offer) {
        auto cfg = std::make_unique<Desc>();
        cfg->type = CUDNN_BACKEND_ENGINECFG_DESCRIPTOR;
        cfg->finalized = true;
        cfg->engine = engine;
        cfg->knobs = knobs;
        cfg->graph = graph;
        d.results.push_back(cfg.get());
        d.owned.push_back(std::move(cfg));
      }
      return "";
    }
    case CUDNN_BACKEND_ENGINE_DESCRIPTOR: {
      Desc* graph = desc_attr(d, CUDNN_ATTR_ENGINE_OPERATION_GRAPH);
      if (!live(graph) || !graph->finalized) return "the graph is not finalized";
      const auto index = scalar<std::int64_t>(d, CUDNN_ATTR_ENGINE_GLOBAL_INDEX);
      if (index < 0 || index >= kEngineCount) return "no engine of that index";
      if (!engine_spec(index)) return "engine does not support this graph";
      d.engine = int(index);
      d.graph = graph;
      return "";
    }
    case CUDNN_BACKEND_KNOB_CHOICE_DESCRIPTOR:
      return "";
    case CUDNN_BACKEND_ENGINECFG_DESCRIPTOR: {
      Desc* engine = desc_attr(d, CUDNN_ATTR_ENGINECFG_ENGINE);
      if (!live(engine) || !engine->finalized) return "the engine is not finalized";
      d.engine = engine->engine;
      d.graph = engine->graph;
      d.knobs.clear();
      if (d.attrs.count(CUDNN_ATTR_ENGINECFG_KNOB_CHOICES)) {
        const Value& v = d.attrs.at(CUDNN_ATTR_ENGINECFG_KNOB_CHOICES);
        if (v.type != CUDNN_TYPE_BACKEND_DESCRIPTOR) return "knob choices are descriptors";
        const auto& spec = spec_of(d.engine).knobs;
        for (Desc* k : array<Desc*>(d, CUDNN_ATTR_ENGINECFG_KNOB_CHOICES)) {
          if (!live(k) || !k->finalized || k->type != CUDNN_BACKEND_KNOB_CHOICE_DESCRIPTOR) {
            return "a knob choice is not a finalized knob-choice descriptor";
          }
          const int type =
              int(scalar<cudnnBackendKnobType_t>(*k, CUDNN_ATTR_KNOB_CHOICE_KNOB_TYPE));
          const auto value = scalar<std::int64_t>(*k, CUDNN_ATTR_KNOB_CHOICE_KNOB_VALUE);
          auto it = spec.find(type);
          if (it == spec.end()) return "the engine has no knob " + std::to_string(type);
          if (!it->second.takes(value)) {
            return "knob " + std::to_string(type) + " cannot take " + std::to_string(value);
          }
          d.knobs.emplace_back(type, value);
        }
      }
      return "";
    }
    case CUDNN_BACKEND_EXECUTION_PLAN_DESCRIPTOR: {
      Desc* cfg = desc_attr(d, CUDNN_ATTR_EXECUTION_PLAN_ENGINE_CONFIG);
      if (!live(cfg) || !cfg->finalized) return "the engine configuration is not finalized";
      d.engine = cfg->engine;
      d.knobs = cfg->knobs;
      d.graph = cfg->graph;
      if (d.engine == 5 && !graph_info(*d.graph).symmetric) return "engine 5: symmetric padding";
      for (const auto& [type, value] : d.knobs) {
        if (d.engine == 9 && type == CUDNN_KNOB_TYPE_SPLIT_K_SLC && value > 1 && value % 2) {
          return "engine 9: no kernel for an odd split above 1";
        }
      }
      return "";
    }
    case CUDNN_BACKEND_VARIANT_PACK_DESCRIPTOR:
      if (d.attrs.at(CUDNN_ATTR_VARIANT_PACK_UNIQUE_IDS).count !=
          d.attrs.at(CUDNN_ATTR_VARIANT_PACK_DATA_POINTERS).count) {
        return "as many pointers as ids";
      }
      return "";
    default:
      return "descriptor type not modelled";
  }
}

bool has_note(int engine, cudnnBackendNumericalNote_t note) {
  const auto& notes = spec_of(engine).notes;
  return std::find(notes.begin(), notes.end(), note) != notes.end();
}

struct Event {
  std::chrono::steady_clock::time_point at;
};

// Modeled device time: with CONVBP_MOCK_MODELED_TIME=1 each execution takes a time per engine
// configuration on the event clock (events read a virtual clock on top of the host's, which the
// execution advances by its modeled time less the host's time in it), or the host's time where
// that is longer: 20 ms for every engine but 9, whose time depends on its knobs and is least, 10
// ms, at STAGES 3, SPLIT_K_SLC 4 and CTA_COUNT 64. Each step away costs at least 0.93 ms
// (CTA_COUNT 64 to 32). The host's own time in the execution, preemptions included, is
// absorbed: with 0.2 ms steps added on top of it, the host's noise on two shared cores once
// made the search pick CTA_COUNT 128.
// The clock is virtual, so the tests take no longer. Off, events time the host's work only.
std::atomic<std::int64_t> g_virtual_ns{0};

double modeled_ms(int engine, const std::vector<std::pair<int, std::int64_t>>& knobs) {
  if (engine != 9) return 20.0;
  std::map<int, std::int64_t> v;
  for (const auto& [type, range] : spec_of(9).knobs) v[type] = range.min;
  for (const auto& [type, value] : knobs) v[type] = value;
  return 10.0 + 2.0 * std::abs(double(v[CUDNN_KNOB_TYPE_STAGES] - 3)) +
         2.0 * std::abs(double(v[CUDNN_KNOB_TYPE_SPLIT_K_SLC] - 4)) +
         1.0 * std::abs(std::log2(double(v[CUDNN_KNOB_TYPE_CTA_COUNT] + 1)) - 6.0);
}

int g_handle_storage;

// db's NHWC kernel (db_kernel.h): stage 1, block b sums chunk b / tiles of the n*p*q rows over
// tile b % tiles of the channels into partial[k * chunks + chunk]; stage 2, warp w of block b
// sums channel b * 8 + w's chunks into db. `miss`: the last row of dy is left out (a kernel that
// misses one, for the tests that must catch it).
cudaError_t launch_db_nhwc(const convbp::cudnn::DbKernelArgs& a, cudnnDataType_t type, dim3 grid,
                           bool miss) {
  using convbp::cudnn::kDbBlock;
  const std::int64_t rows = std::int64_t(a.n) * a.row_length;
  if (a.chunks < 1 || a.chunk_rows < 1 || std::int64_t(a.chunks) * a.chunk_rows < rows ||
      std::int64_t(a.chunks - 1) * a.chunk_rows >= rows) {
    return cudaErrorInvalidValue;
  }
  const std::int64_t k = a.k;
  if (a.stage == 1) {
    const std::int64_t width = std::min<std::int64_t>(k, kDbBlock);
    const std::int64_t tiles = (k + width - 1) / width;
    const std::int64_t blocks = std::min<std::int64_t>(grid.x, a.chunks * tiles);
    for (std::int64_t b = 0; b < blocks; ++b) {
      const std::int64_t chunk = b / tiles, tile = b % tiles;
      const std::int64_t end = std::min(rows - (miss ? 1 : 0), (chunk + 1) * a.chunk_rows);
      for (std::int64_t c = tile * width; c < std::min(k, (tile + 1) * width); ++c) {
        double sum = 0;
        for (std::int64_t r = chunk * a.chunk_rows; r < end; ++r) {
          sum += element(type, a.dy, std::size_t(r * k + c));
        }
        a.partial[c * a.chunks + chunk] = float(sum);
      }
    }
    return cudaSuccess;
  }
  if (a.stage == 2) {
    constexpr int kPerBlock = convbp::cudnn::kDbNhwcChannelsPerBlock;
    const std::int64_t covered = std::min<std::int64_t>(k, std::int64_t(grid.x) * kPerBlock);
    for (std::int64_t c = 0; c < covered; ++c) {
      double sum = 0;
      for (int i = 0; i < a.chunks; ++i) sum += a.partial[c * a.chunks + i];
      set_element(type, a.db, std::size_t(c), sum);
    }
    return cudaSuccess;
  }
  return cudaErrorInvalidValue;
}

}  // namespace

extern "C" {

// --- CUDA runtime ----------------------------------------------------------------------------

// One device, or CONVBP_MOCK_DEVICES of them (read at each call); each thread's current device
// starts at 0, as in CUDA. Every device is the same host model.
int mock_devices() {
  const char* v = std::getenv("CONVBP_MOCK_DEVICES");
  return v && std::atoi(v) > 0 ? std::atoi(v) : 1;
}
thread_local int g_current_device = 0;
cudaError_t cudaGetDeviceCount(int* count) {
  *count = mock_devices();
  return cudaSuccess;
}
cudaError_t cudaGetDevice(int* device) {
  *device = g_current_device;
  return cudaSuccess;
}
cudaError_t cudaSetDevice(int device) {
  if (device < 0 || device >= mock_devices()) return cudaErrorInvalidDevice;
  g_current_device = device;
  return cudaSuccess;
}
cudaError_t cudaGetDeviceProperties(cudaDeviceProp* prop, int) {
  *prop = cudaDeviceProp{};
  std::snprintf(prop->name, sizeof prop->name, "convbp mock GPU (host model)");
  prop->major = 9;
  prop->minor = 0;
  prop->multiProcessorCount = 1;
  prop->totalGlobalMem = std::size_t(1) << 30;
  return cudaSuccess;
}
// The memory attributes bench/cudnn_db_bare reads (a modest device: 1 GHz x 512 bits, 128 GB/s;
// 1 MiB of L2), the compute capability's major and the SMs (1, as cudaGetDeviceProperties
// says); any other is not modelled.
cudaError_t cudaDeviceGetAttribute(int* value, cudaDeviceAttr attribute, int device) {
  if (device != 0) return cudaErrorInvalidDevice;
  switch (attribute) {
    case cudaDevAttrMemoryClockRate:
      *value = 1000000;  // kHz
      return cudaSuccess;
    case cudaDevAttrGlobalMemoryBusWidth:
      *value = 512;
      return cudaSuccess;
    case cudaDevAttrL2CacheSize:
      *value = 1 << 20;
      return cudaSuccess;
    case cudaDevAttrComputeCapabilityMajor:
      *value = 9;  // as cudaGetDeviceProperties says
      return cudaSuccess;
    case cudaDevAttrMultiProcessorCount:
      *value = 1;
      return cudaSuccess;
    default:
      return cudaErrorInvalidValue;
  }
}
cudaError_t cudaDriverGetVersion(int* v) {
  *v = 13000;
  return cudaSuccess;
}
cudaError_t cudaRuntimeGetVersion(int* v) {
  *v = 13000;
  return cudaSuccess;
}
// A sticky error (CONVBP_MOCK_DB_KERNEL_FAULTS=1: the db kernel "faults" as an out-of-bounds
// access would): from then on, as on a GPU, the runtime calls that touch the device return it,
// and cudaGetLastError reports it without clearing it.
std::atomic<int> g_sticky{cudaSuccess};
#define MOCK_STICKY()                                                           \
  do {                                                                          \
    if (const int e = g_sticky.load(); e != cudaSuccess) return cudaError_t(e); \
  } while (0)
cudaError_t cudaGetLastError() { return cudaError_t(g_sticky.load()); }
const char* cudaGetErrorName(cudaError_t e) {
  return e == cudaSuccess                 ? "cudaSuccess"
         : e == cudaErrorMemoryAllocation ? "cudaErrorMemoryAllocation"
         : e == cudaErrorIllegalAddress   ? "cudaErrorIllegalAddress"
                                          : "cudaErrorMock";
}
const char* cudaGetErrorString(cudaError_t e) {
  return e == cudaSuccess               ? "no error"
         : e == cudaErrorIllegalAddress ? "an illegal memory access was encountered (mock)"
                                        : "mock error";
}
cudaError_t cudaMalloc(void** p, std::size_t bytes) {
  MOCK_STICKY();
  *p = bytes ? std::aligned_alloc(256, (bytes + 255) / 256 * 256) : nullptr;
  return bytes && !*p ? cudaErrorMemoryAllocation : cudaSuccess;
}
cudaError_t cudaFree(void* p) {
  std::free(p);
  return cudaSuccess;
}
cudaError_t cudaMemcpy(void* to, const void* from, std::size_t bytes, cudaMemcpyKind) {
  MOCK_STICKY();
  if (bytes) std::memcpy(to, from, bytes);
  return cudaSuccess;
}
std::atomic<long> g_memsets{0};
// How many cudaMemset calls this process made (dlsym, for tests).
long convbp_mock_memset_calls() { return g_memsets.load(); }
cudaError_t cudaMemset(void* p, int value, std::size_t bytes) {
  ++g_memsets;
  MOCK_STICKY();
  if (bytes) std::memset(p, value, bytes);
  return cudaSuccess;
}
cudaError_t cudaDeviceSynchronize() { return cudaError_t(g_sticky.load()); }
cudaError_t cudaMemGetInfo(std::size_t* free, std::size_t* total) {
  *free = *total = std::size_t(1) << 30;
  return cudaSuccess;
}
cudaError_t cudaEventCreate(cudaEvent_t* e) {
  MOCK_STICKY();
  *e = reinterpret_cast<cudaEvent_t>(new Event);
  return cudaSuccess;
}
cudaError_t cudaEventDestroy(cudaEvent_t e) {
  delete reinterpret_cast<Event*>(e);
  return cudaSuccess;
}
cudaError_t cudaEventCreateWithFlags(cudaEvent_t* e, unsigned) { return cudaEventCreate(e); }
// Streams: the model runs every call at once on the host, so a stream is only a name that must
// exist; waiting on an event is then already satisfied. The streams, the cuDNN handle's stream
// and the calls counted per stream are shared by every thread: under g_stream_mutex.
std::mutex g_stream_mutex;
std::set<void*> g_streams;
cudaStream_t g_cudnn_stream = nullptr;  // the (one) cuDNN handle's
std::map<void*, long> g_cudnn_calls;    // computing cuDNN calls per stream
std::map<void*, long> g_db_calls;       // db's kernel launches and cuBLAS calls per stream
// The workspaces db's cuBLAS calls ran on, per stream (null: the handle's own pool).
std::map<void*, std::set<void*>> g_blas_workspaces;
bool known_stream(cudaStream_t s) {  // the default stream (null) or a live one
  std::lock_guard<std::mutex> lock(g_stream_mutex);
  return !s || g_streams.count(s) > 0;
}
void count_cudnn_call() {
  std::lock_guard<std::mutex> lock(g_stream_mutex);
  ++g_cudnn_calls[g_cudnn_stream];
}
void count_db_call(cudaStream_t s) {
  std::lock_guard<std::mutex> lock(g_stream_mutex);
  ++g_db_calls[s];
}
cudaError_t cudaStreamCreateWithFlags(cudaStream_t* s, unsigned) {
  *s = reinterpret_cast<cudaStream_t>(new char);
  std::lock_guard<std::mutex> lock(g_stream_mutex);
  g_streams.insert(*s);
  return cudaSuccess;
}
cudaError_t cudaStreamDestroy(cudaStream_t s) {
  {
    std::lock_guard<std::mutex> lock(g_stream_mutex);
    if (!g_streams.erase(s)) return cudaErrorInvalidResourceHandle;
    // A later stream may get the same address: its counts start afresh.
    g_cudnn_calls.erase(s);
    g_db_calls.erase(s);
    g_blas_workspaces.erase(s);
  }
  delete reinterpret_cast<char*>(s);
  return cudaSuccess;
}
cudaError_t cudaStreamSynchronize(cudaStream_t s) {
  MOCK_STICKY();
  return known_stream(s) ? cudaSuccess : cudaErrorInvalidResourceHandle;
}
cudaError_t cudaStreamWaitEvent(cudaStream_t s, cudaEvent_t e, unsigned) {
  MOCK_STICKY();
  return e && known_stream(s) ? cudaSuccess : cudaErrorInvalidResourceHandle;
}
cudaError_t cudaEventRecord(cudaEvent_t e, cudaStream_t s) {
  MOCK_STICKY();
  if (!known_stream(s)) return cudaErrorInvalidResourceHandle;
  reinterpret_cast<Event*>(e)->at =
      std::chrono::steady_clock::now() + std::chrono::nanoseconds(g_virtual_ns.load());
  return cudaSuccess;
}
cudaError_t cudaEventSynchronize(cudaEvent_t) { return cudaError_t(g_sticky.load()); }
cudaError_t cudaEventElapsedTime(float* ms, cudaEvent_t a, cudaEvent_t b) {
  *ms = std::chrono::duration<float, std::milli>(reinterpret_cast<Event*>(b)->at -
                                                 reinterpret_cast<Event*>(a)->at)
            .count();
  return cudaSuccess;
}

// The blocks of `block_size` threads an SM of the model holds at once: 2048 threads' worth, as
// an sm_90 SM where registers and shared memory do not limit it.
cudaError_t cudaOccupancyMaxActiveBlocksPerMultiprocessor(int* blocks, const void* func,
                                                          int block_size, std::size_t shared) {
  MOCK_STICKY();
  if (!blocks || !func || block_size < 1 || block_size > 1024 || shared != 0) {
    return cudaErrorInvalidValue;
  }
  *blocks = 2048 / block_size;
  return cudaSuccess;
}

// The project's kernels for db (impls/cudnn/db_kernel.h), modelled from their argument: what
// the launched grid covers is computed (fp64 sums, written in the kernel's types), what it does
// not cover is left as it was, as on a GPU.
cudaError_t cudaLaunchKernel(const void* func, dim3 grid, dim3 block, void** args,
                             std::size_t shared_bytes, cudaStream_t s) {
  using convbp::cudnn::DbKernelArgs;
  using convbp::cudnn::kDbBlock;
  MOCK_STICKY();
  if (!known_stream(s)) return cudaErrorInvalidResourceHandle;
  count_db_call(s);
  if (const char* fault = std::getenv("CONVBP_MOCK_DB_KERNEL_FAULTS"); fault && *fault == '1') {
    g_sticky = cudaErrorIllegalAddress;
    return cudaErrorIllegalAddress;
  }
  if (!func || !args || !args[0] || shared_bytes != 0) return cudaErrorInvalidValue;
  if (block.x != unsigned(kDbBlock) || block.y != 1 || block.z != 1 || grid.y != 1 || grid.z != 1 ||
      grid.x == 0) {
    return cudaErrorInvalidConfiguration;
  }
  const DbKernelArgs& a = *static_cast<const DbKernelArgs*>(args[0]);
  const cudnnDataType_t types[] = {CUDNN_DATA_FLOAT, CUDNN_DATA_BFLOAT16, CUDNN_DATA_HALF};
  if (a.dtype < 0 || a.dtype > 2 || a.layout < 0 || a.layout > 1 || a.n < 1 || a.k < 1 ||
      a.row_length < 1) {
    return cudaErrorInvalidValue;
  }
  const cudnnDataType_t type = types[a.dtype];
  const bool miss = [] {
    const char* v = std::getenv("CONVBP_MOCK_DB_KERNEL_MISSES_A_ROW");
    return v && *v == '1';
  }();
  if (a.layout == 1) return launch_db_nhwc(a, type, grid, miss);
  if (a.stage == 1) {
    // Whole warps per row, whole rows per block (the kernel's reductions assume both).
    if (a.group < 32 || a.group > kDbBlock || (a.group & (a.group - 1)) != 0) {
      return cudaErrorInvalidValue;
    }
    const std::int64_t rows = std::int64_t(a.n) * a.k;
    std::int64_t covered =
        std::min<std::int64_t>(rows, std::int64_t(grid.x) * (kDbBlock / a.group));
    if (miss) {
      covered = std::min(covered, rows - 1);
      a.partial[rows - 1] = 0;
    }
    for (std::int64_t row = 0; row < covered; ++row) {
      double sum = 0;
      for (std::int64_t i = 0; i < a.row_length; ++i) {
        sum += element(type, a.dy, std::size_t(row * a.row_length + i));
      }
      a.partial[row] = float(sum);
    }
    return cudaSuccess;
  }
  if (a.stage == 2) {
    const std::int64_t covered = std::min<std::int64_t>(a.k, std::int64_t(grid.x) * kDbBlock);
    for (std::int64_t k = 0; k < covered; ++k) {
      double sum = 0;
      for (int n = 0; n < a.n; ++n) sum += a.partial[std::int64_t(n) * a.k + k];
      set_element(type, a.db, std::size_t(k), sum);
    }
    return cudaSuccess;
  }
  return cudaErrorInvalidValue;
}

// --- cuDNN: handle, versions, errors ---------------------------------------------------------

size_t cudnnGetVersion() { return CUDNN_VERSION; }
cudnnStatus_t cudnnCreate(cudnnHandle_t* h) {
  *h = reinterpret_cast<cudnnHandle_t>(&g_handle_storage);
  return CUDNN_STATUS_SUCCESS;
}
cudnnStatus_t cudnnSetStream(cudnnHandle_t h, cudaStream_t s) {
  if (h != reinterpret_cast<cudnnHandle_t>(&g_handle_storage)) return CUDNN_STATUS_BAD_PARAM;
  {
    std::lock_guard<std::mutex> lock(g_stream_mutex);
    if (s && !g_streams.count(s)) return CUDNN_STATUS_BAD_PARAM;
    g_cudnn_stream = s;
  }
  if (const char* delay = std::getenv("CONVBP_MOCK_SET_STREAM_DELAY_US")) {
    std::this_thread::sleep_for(std::chrono::microseconds(std::atol(delay)));
  }
  return CUDNN_STATUS_SUCCESS;
}

// The counts above, for tests (dlsym; absent from the real libraries). Calls on `s` (null: the
// default stream); db's: up to `max` streams with their counts, returning how many there are.
long convbp_mock_cudnn_calls_on(cudaStream_t s) {
  std::lock_guard<std::mutex> lock(g_stream_mutex);
  const auto it = g_cudnn_calls.find(s);
  return it == g_cudnn_calls.end() ? 0 : it->second;
}
int convbp_mock_db_calls(cudaStream_t* streams, long* counts, int max) {
  std::lock_guard<std::mutex> lock(g_stream_mutex);
  int i = 0;
  for (const auto& [stream, count] : g_db_calls) {
    if (i < max) {
      streams[i] = static_cast<cudaStream_t>(stream);
      counts[i] = count;
    }
    ++i;
  }
  return i;
}
// The workspaces db's cuBLAS calls on `s` ran on, up to `max` of them (null: the handle's pool),
// returning how many there are.
int convbp_mock_blas_workspaces_on(cudaStream_t s, void** workspaces, int max) {
  std::lock_guard<std::mutex> lock(g_stream_mutex);
  const auto it = g_blas_workspaces.find(s);
  if (it == g_blas_workspaces.end()) return 0;
  int i = 0;
  for (void* w : it->second) {
    if (i < max) workspaces[i] = w;
    ++i;
  }
  return i;
}
const char* cudnnGetErrorString(cudnnStatus_t s) {
  switch (s) {
    case CUDNN_STATUS_SUCCESS:
      return "CUDNN_STATUS_SUCCESS";
    case CUDNN_STATUS_NOT_SUPPORTED:
      return "CUDNN_STATUS_NOT_SUPPORTED";
    case CUDNN_STATUS_BAD_PARAM:
      return "CUDNN_STATUS_BAD_PARAM";
    default:
      return "CUDNN_STATUS_MOCK_ERROR";
  }
}
void cudnnGetLastErrorString(char* message, size_t max) {
  if (max) {
    std::snprintf(message, max, "%s", g_last_error.c_str());
  }
  g_last_error.clear();
}

// --- cuDNN legacy API ------------------------------------------------------------------------

cudnnStatus_t cudnnCreateTensorDescriptor(cudnnTensorDescriptor_t* d) {
  *d = reinterpret_cast<cudnnTensorDescriptor_t>(new Tensor4d);
  return CUDNN_STATUS_SUCCESS;
}
cudnnStatus_t cudnnDestroyTensorDescriptor(cudnnTensorDescriptor_t d) {
  delete reinterpret_cast<Tensor4d*>(d);
  return CUDNN_STATUS_SUCCESS;
}
cudnnStatus_t cudnnSetTensor4dDescriptor(cudnnTensorDescriptor_t d, cudnnTensorFormat_t format,
                                         cudnnDataType_t type, int n, int c, int h, int w) {
  if ((format != CUDNN_TENSOR_NCHW && format != CUDNN_TENSOR_NHWC) ||
      (type != CUDNN_DATA_FLOAT && type != CUDNN_DATA_BFLOAT16 && type != CUDNN_DATA_HALF)) {
    return fail(CUDNN_STATUS_BAD_PARAM, "NCHW or NHWC, fp32, bf16 or fp16 only");
  }
  if (n <= 0 || c <= 0 || h <= 0 || w <= 0) return fail(CUDNN_STATUS_BAD_PARAM, "sizes > 0");
  *reinterpret_cast<Tensor4d*>(d) = {n, c, h, w, type, format == CUDNN_TENSOR_NHWC};
  return CUDNN_STATUS_SUCCESS;
}
cudnnStatus_t cudnnCreateFilterDescriptor(cudnnFilterDescriptor_t* d) {
  *d = reinterpret_cast<cudnnFilterDescriptor_t>(new Filter4d);
  return CUDNN_STATUS_SUCCESS;
}
cudnnStatus_t cudnnDestroyFilterDescriptor(cudnnFilterDescriptor_t d) {
  delete reinterpret_cast<Filter4d*>(d);
  return CUDNN_STATUS_SUCCESS;
}
cudnnStatus_t cudnnSetFilter4dDescriptor(cudnnFilterDescriptor_t d, cudnnDataType_t type,
                                         cudnnTensorFormat_t format, int k, int c, int r, int s) {
  if ((format != CUDNN_TENSOR_NCHW && format != CUDNN_TENSOR_NHWC) ||
      (type != CUDNN_DATA_FLOAT && type != CUDNN_DATA_BFLOAT16 && type != CUDNN_DATA_HALF)) {
    return fail(CUDNN_STATUS_BAD_PARAM, "NCHW or NHWC, fp32, bf16 or fp16 only");
  }
  *reinterpret_cast<Filter4d*>(d) = {k, c, r, s, type, format == CUDNN_TENSOR_NHWC};
  return CUDNN_STATUS_SUCCESS;
}
cudnnStatus_t cudnnCreateConvolutionDescriptor(cudnnConvolutionDescriptor_t* d) {
  *d = reinterpret_cast<cudnnConvolutionDescriptor_t>(new Conv2d);
  return CUDNN_STATUS_SUCCESS;
}
cudnnStatus_t cudnnDestroyConvolutionDescriptor(cudnnConvolutionDescriptor_t d) {
  delete reinterpret_cast<Conv2d*>(d);
  return CUDNN_STATUS_SUCCESS;
}
cudnnStatus_t cudnnSetConvolution2dDescriptor(cudnnConvolutionDescriptor_t d, int pad_h, int pad_w,
                                              int u, int v, int dil_h, int dil_w,
                                              cudnnConvolutionMode_t mode,
                                              cudnnDataType_t compute) {
  if (mode != CUDNN_CROSS_CORRELATION || compute != CUDNN_DATA_FLOAT) {
    return fail(CUDNN_STATUS_BAD_PARAM, "cross-correlation in fp32 only");
  }
  auto* c = reinterpret_cast<Conv2d*>(d);
  c->pad_h = pad_h;
  c->pad_w = pad_w;
  c->u = u;
  c->v = v;
  c->dil_h = dil_h;
  c->dil_w = dil_w;
  return CUDNN_STATUS_SUCCESS;
}
cudnnStatus_t cudnnSetConvolutionGroupCount(cudnnConvolutionDescriptor_t d, int groups) {
  reinterpret_cast<Conv2d*>(d)->groups = groups;
  return CUDNN_STATUS_SUCCESS;
}
cudnnStatus_t cudnnSetConvolutionMathType(cudnnConvolutionDescriptor_t d, cudnnMathType_t m) {
  reinterpret_cast<Conv2d*>(d)->math = m;
  return CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t cudnnGetConvolutionBackwardDataWorkspaceSize(
    cudnnHandle_t, const cudnnFilterDescriptor_t w, const cudnnTensorDescriptor_t dy,
    const cudnnConvolutionDescriptor_t conv, const cudnnTensorDescriptor_t dx,
    cudnnConvolutionBwdDataAlgo_t algo, size_t* bytes) {
  const auto& W = *reinterpret_cast<const Filter4d*>(w);
  const auto& C = *reinterpret_cast<const Conv2d*>(conv);
  const std::string bad = legacy_mismatch(*reinterpret_cast<const Tensor4d*>(dx), W,
                                          *reinterpret_cast<const Tensor4d*>(dy), C);
  if (!bad.empty()) return fail(CUDNN_STATUS_BAD_PARAM, bad);
  return legacy_support(algo, true, W, C, bytes);
}
cudnnStatus_t cudnnGetConvolutionBackwardFilterWorkspaceSize(
    cudnnHandle_t, const cudnnTensorDescriptor_t x, const cudnnTensorDescriptor_t dy,
    const cudnnConvolutionDescriptor_t conv, const cudnnFilterDescriptor_t dw,
    cudnnConvolutionBwdFilterAlgo_t algo, size_t* bytes) {
  const auto& W = *reinterpret_cast<const Filter4d*>(dw);
  const auto& C = *reinterpret_cast<const Conv2d*>(conv);
  const std::string bad = legacy_mismatch(*reinterpret_cast<const Tensor4d*>(x), W,
                                          *reinterpret_cast<const Tensor4d*>(dy), C);
  if (!bad.empty()) return fail(CUDNN_STATUS_BAD_PARAM, bad);
  return legacy_support(algo, false, W, C, bytes);
}

// The legacy Winograd algorithms run on CUDA cores whatever the math type, as cuDNN 9.14 did on
// the H200 (its TENSOR_OP_MATH errors equalled the FMA_MATH ones): no TF32 rounding.
static bool legacy_winograd(int algo, bool data) {
  return data ? algo == CUDNN_CONVOLUTION_BWD_DATA_ALGO_WINOGRAD ||
                    algo == CUDNN_CONVOLUTION_BWD_DATA_ALGO_WINOGRAD_NONFUSED
              : algo == CUDNN_CONVOLUTION_BWD_FILTER_ALGO_WINOGRAD_NONFUSED;
}

cudnnStatus_t cudnnConvolutionBackwardData(cudnnHandle_t, const void* alpha,
                                           const cudnnFilterDescriptor_t w, const void* w_data,
                                           const cudnnTensorDescriptor_t dy, const void* dy_data,
                                           const cudnnConvolutionDescriptor_t conv,
                                           cudnnConvolutionBwdDataAlgo_t algo, void* workspace,
                                           size_t workspace_bytes, const void* beta,
                                           const cudnnTensorDescriptor_t dx, void* dx_data) {
  const auto& W = *reinterpret_cast<const Filter4d*>(w);
  const auto& C = *reinterpret_cast<const Conv2d*>(conv);
  const auto& X = *reinterpret_cast<const Tensor4d*>(dx);
  const auto& Y = *reinterpret_cast<const Tensor4d*>(dy);
  if (cudnnStatus_t s = legacy_call(algo, true, W, C, workspace, workspace_bytes, alpha, beta)) {
    return s;
  }
  if (const std::string bad = legacy_mismatch(X, W, Y, C); !bad.empty()) {
    return fail(CUDNN_STATUS_BAD_PARAM, bad);
  }
  count_cudnn_call();
  run_backward_data(legacy_conv(X, W, Y, C), dy_data, w_data, dx_data,
                    C.math == CUDNN_TENSOR_OP_MATH && !legacy_winograd(algo, true));
  return CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t cudnnConvolutionBackwardFilter(cudnnHandle_t, const void* alpha,
                                             const cudnnTensorDescriptor_t x, const void* x_data,
                                             const cudnnTensorDescriptor_t dy, const void* dy_data,
                                             const cudnnConvolutionDescriptor_t conv,
                                             cudnnConvolutionBwdFilterAlgo_t algo, void* workspace,
                                             size_t workspace_bytes, const void* beta,
                                             const cudnnFilterDescriptor_t dw, void* dw_data) {
  const auto& W = *reinterpret_cast<const Filter4d*>(dw);
  const auto& C = *reinterpret_cast<const Conv2d*>(conv);
  const auto& X = *reinterpret_cast<const Tensor4d*>(x);
  const auto& Y = *reinterpret_cast<const Tensor4d*>(dy);
  if (cudnnStatus_t s = legacy_call(algo, false, W, C, workspace, workspace_bytes, alpha, beta)) {
    return s;
  }
  if (const std::string bad = legacy_mismatch(X, W, Y, C); !bad.empty()) {
    return fail(CUDNN_STATUS_BAD_PARAM, bad);
  }
  count_cudnn_call();
  run_backward_filter(legacy_conv(X, W, Y, C), x_data, dy_data, dw_data,
                      C.math == CUDNN_TENSOR_OP_MATH && !legacy_winograd(algo, false));
  return CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t cudnnConvolutionBackwardBias(cudnnHandle_t, const void* alpha,
                                           const cudnnTensorDescriptor_t dy, const void* dy_data,
                                           const void* beta, const cudnnTensorDescriptor_t db,
                                           void* db_data) {
  const auto& Y = *reinterpret_cast<const Tensor4d*>(dy);
  const auto& B = *reinterpret_cast<const Tensor4d*>(db);
  if (B.n != 1 || B.c != Y.c || B.h != 1 || B.w != 1) {
    return fail(CUDNN_STATUS_BAD_PARAM, "db must be 1 x K x 1 x 1");
  }
  if (B.type != Y.type) return fail(CUDNN_STATUS_BAD_PARAM, "db and dy differ in data type");
  if (cudnnStatus_t s = unit_scaling(alpha, beta)) return s;
  count_cudnn_call();
  const std::int64_t plane = std::int64_t(Y.h) * Y.w;
  for (int k = 0; k < Y.c; ++k) {
    double sum = 0;
    for (int n = 0; n < Y.n; ++n) {
      for (std::int64_t i = 0; i < plane; ++i) {
        const std::int64_t at = Y.nhwc ? (std::int64_t(n) * plane + i) * Y.c + k
                                       : (std::int64_t(n) * Y.c + k) * plane + i;
        sum += element(Y.type, dy_data, std::size_t(at));
      }
    }
    set_element(B.type, db_data, std::size_t(k), sum);
  }
  return CUDNN_STATUS_SUCCESS;
}

// --- cuDNN backend (graph) API ---------------------------------------------------------------

cudnnStatus_t cudnnBackendCreateDescriptor(cudnnBackendDescriptorType_t type,
                                           cudnnBackendDescriptor_t* out) {
  std::lock_guard<std::mutex> lock(g_mutex);
  auto* d = new Desc;
  d->type = type;
  g_live.insert(d);
  *out = d;
  return CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t cudnnBackendDestroyDescriptor(cudnnBackendDescriptor_t d) {
  std::lock_guard<std::mutex> lock(g_mutex);
  if (!g_live.erase(static_cast<Desc*>(d))) {
    return fail(CUDNN_STATUS_BAD_PARAM, "destroying a descriptor that is not live");
  }
  delete static_cast<Desc*>(d);
  return CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t cudnnBackendSetAttribute(cudnnBackendDescriptor_t raw,
                                       cudnnBackendAttributeName_t name,
                                       cudnnBackendAttributeType_t type, int64_t count,
                                       const void* values) {
  std::lock_guard<std::mutex> lock(g_mutex);
  if (!live(raw)) return fail(CUDNN_STATUS_BAD_PARAM, "not a live descriptor");
  Desc& d = *static_cast<Desc*>(raw);
  if (d.finalized) return fail(CUDNN_STATUS_NOT_INITIALIZED, "set after finalize");
  bool known = d.type == CUDNN_BACKEND_ENGINECFG_DESCRIPTOR &&
               name == CUDNN_ATTR_ENGINECFG_KNOB_CHOICES && type == CUDNN_TYPE_BACKEND_DESCRIPTOR;
  for (const Need& n : needs(d.type)) {
    if (n.name != name) continue;
    if (n.type != type) {
      return fail(CUDNN_STATUS_BAD_PARAM, "attribute " + std::to_string(name) + " takes type " +
                                              std::to_string(n.type) + ", not " +
                                              std::to_string(type));
    }
    known = true;
  }
  if (!known) {
    return fail(CUDNN_STATUS_BAD_PARAM, "attribute " + std::to_string(name) +
                                            " is not modelled for descriptor type " +
                                            std::to_string(d.type));
  }
  if (count < 0 || (count > 0 && !values)) return fail(CUDNN_STATUS_BAD_PARAM, "bad count");
  Value v{type, {}, count};
  v.bytes.resize(std::size_t(count) * type_size(type));
  if (count) std::memcpy(v.bytes.data(), values, v.bytes.size());
  if (type == CUDNN_TYPE_BACKEND_DESCRIPTOR) {
    for (std::int64_t i = 0; i < count; ++i) {
      if (!live(static_cast<void* const*>(values)[i])) {
        return fail(CUDNN_STATUS_BAD_PARAM, "a descriptor value is not live");
      }
    }
  }
  d.attrs[name] = std::move(v);
  return CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t cudnnBackendFinalize(cudnnBackendDescriptor_t raw) {
  std::lock_guard<std::mutex> lock(g_mutex);
  if (!live(raw)) return fail(CUDNN_STATUS_BAD_PARAM, "not a live descriptor");
  Desc& d = *static_cast<Desc*>(raw);
  if (d.finalized) return fail(CUDNN_STATUS_BAD_PARAM, "finalized twice");
  for (const Need& n : needs(d.type)) {
    if (!d.attrs.count(n.name)) {
      return fail(CUDNN_STATUS_BAD_PARAM, "descriptor type " + std::to_string(d.type) +
                                              " lacks attribute " + std::to_string(n.name));
    }
  }
  const std::string bad = check_finalize(d);
  if (!bad.empty()) return fail(CUDNN_STATUS_NOT_SUPPORTED, bad);
  d.finalized = true;
  return CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t cudnnBackendGetAttribute(const cudnnBackendDescriptor_t raw,
                                       cudnnBackendAttributeName_t name,
                                       cudnnBackendAttributeType_t type, int64_t capacity,
                                       int64_t* count, void* values) {
  std::lock_guard<std::mutex> lock(g_mutex);
  if (!live(raw)) return fail(CUDNN_STATUS_BAD_PARAM, "not a live descriptor");
  const Desc& d = *static_cast<const Desc*>(raw);
  if (!d.finalized) return fail(CUDNN_STATUS_NOT_INITIALIZED, "get before finalize");
  auto expect = [&](cudnnBackendAttributeType_t t) {
    return type == t ? CUDNN_STATUS_SUCCESS
                     : fail(CUDNN_STATUS_BAD_PARAM, "attribute " + std::to_string(name) +
                                                        " is of type " + std::to_string(t));
  };
  auto copy_engine_into = [&](Desc* to, int engine, Desc* graph) {
    to->engine = engine;
    to->graph = graph;
    to->finalized = true;
    const std::int64_t id = engine;
    to->attrs[CUDNN_ATTR_ENGINE_GLOBAL_INDEX] = {CUDNN_TYPE_INT64, std::vector<std::uint8_t>(8), 1};
    std::memcpy(to->attrs[CUDNN_ATTR_ENGINE_GLOBAL_INDEX].bytes.data(), &id, 8);
  };
  switch (d.type) {
    case CUDNN_BACKEND_OPERATIONGRAPH_DESCRIPTOR:
      if (name == CUDNN_ATTR_OPERATIONGRAPH_ENGINE_GLOBAL_COUNT) {
        if (auto s = expect(CUDNN_TYPE_INT64)) return s;
        *count = 1;
        if (capacity >= 1) *static_cast<std::int64_t*>(values) = kEngineCount;
        return CUDNN_STATUS_SUCCESS;
      }
      break;
    case CUDNN_BACKEND_ENGINEHEUR_DESCRIPTOR:
      if (name == CUDNN_ATTR_ENGINEHEUR_RESULTS) {
        if (auto s = expect(CUDNN_TYPE_BACKEND_DESCRIPTOR)) return s;
        *count = std::int64_t(d.results.size());
        for (std::int64_t i = 0; i < std::min(capacity, *count); ++i) {
          auto* to = static_cast<Desc**>(values)[i];
          if (!live(to) || to->type != CUDNN_BACKEND_ENGINECFG_DESCRIPTOR) {
            return fail(CUDNN_STATUS_BAD_PARAM, "results go into engine-config descriptors");
          }
          to->engine = d.results[std::size_t(i)]->engine;
          to->knobs = d.results[std::size_t(i)]->knobs;
          to->graph = d.results[std::size_t(i)]->graph;
          to->finalized = true;
        }
        return CUDNN_STATUS_SUCCESS;
      }
      break;
    case CUDNN_BACKEND_ENGINECFG_DESCRIPTOR:
      if (name == CUDNN_ATTR_ENGINECFG_ENGINE) {
        if (auto s = expect(CUDNN_TYPE_BACKEND_DESCRIPTOR)) return s;
        *count = 1;
        auto* to = static_cast<Desc**>(values)[0];
        if (!live(to) || to->type != CUDNN_BACKEND_ENGINE_DESCRIPTOR) {
          return fail(CUDNN_STATUS_BAD_PARAM, "the engine goes into an engine descriptor");
        }
        copy_engine_into(to, d.engine, d.graph);
        return CUDNN_STATUS_SUCCESS;
      }
      if (name == CUDNN_ATTR_ENGINECFG_KNOB_CHOICES) {
        if (auto s = expect(CUDNN_TYPE_BACKEND_DESCRIPTOR)) return s;
        *count = std::int64_t(d.knobs.size());
        for (std::int64_t i = 0; i < std::min(capacity, *count); ++i) {
          auto* to = static_cast<Desc**>(values)[i];
          if (!live(to) || to->type != CUDNN_BACKEND_KNOB_CHOICE_DESCRIPTOR) {
            return fail(CUDNN_STATUS_BAD_PARAM, "knobs go into knob-choice descriptors");
          }
          const auto type = cudnnBackendKnobType_t(d.knobs[std::size_t(i)].first);
          const std::int64_t value = d.knobs[std::size_t(i)].second;
          to->attrs[CUDNN_ATTR_KNOB_CHOICE_KNOB_TYPE] = {CUDNN_TYPE_KNOB_TYPE,
                                                         std::vector<std::uint8_t>(4), 1};
          std::memcpy(to->attrs[CUDNN_ATTR_KNOB_CHOICE_KNOB_TYPE].bytes.data(), &type, 4);
          to->attrs[CUDNN_ATTR_KNOB_CHOICE_KNOB_VALUE] = {CUDNN_TYPE_INT64,
                                                          std::vector<std::uint8_t>(8), 1};
          std::memcpy(to->attrs[CUDNN_ATTR_KNOB_CHOICE_KNOB_VALUE].bytes.data(), &value, 8);
          to->finalized = true;
        }
        return CUDNN_STATUS_SUCCESS;
      }
      break;
    case CUDNN_BACKEND_ENGINE_DESCRIPTOR:
      if (name == CUDNN_ATTR_ENGINE_GLOBAL_INDEX) {
        if (auto s = expect(CUDNN_TYPE_INT64)) return s;
        *count = 1;
        *static_cast<std::int64_t*>(values) = d.engine;
        return CUDNN_STATUS_SUCCESS;
      }
      if (name == CUDNN_ATTR_ENGINE_NUMERICAL_NOTE) {
        if (auto s = expect(CUDNN_TYPE_NUMERICAL_NOTE)) return s;
        const auto& notes = spec_of(d.engine).notes;
        *count = std::int64_t(notes.size());
        for (std::int64_t i = 0; i < std::min(capacity, *count); ++i) {
          static_cast<cudnnBackendNumericalNote_t*>(values)[i] = notes[std::size_t(i)];
        }
        return CUDNN_STATUS_SUCCESS;
      }
      if (name == CUDNN_ATTR_ENGINE_KNOB_INFO) {
        if (auto s = expect(CUDNN_TYPE_BACKEND_DESCRIPTOR)) return s;
        const auto& knobs = spec_of(d.engine).knobs;
        *count = std::int64_t(knobs.size());
        std::int64_t i = 0;
        for (const auto& [type, range] : knobs) {
          if (i >= capacity) break;
          auto* to = static_cast<Desc**>(values)[i++];
          if (!live(to) || to->type != CUDNN_BACKEND_KNOB_INFO_DESCRIPTOR) {
            return fail(CUDNN_STATUS_BAD_PARAM, "knob info goes into knob-info descriptors");
          }
          const auto knob_type = cudnnBackendKnobType_t(type);
          to->attrs[CUDNN_ATTR_KNOB_INFO_TYPE] = {CUDNN_TYPE_KNOB_TYPE,
                                                  std::vector<std::uint8_t>(4), 1};
          std::memcpy(to->attrs[CUDNN_ATTR_KNOB_INFO_TYPE].bytes.data(), &knob_type, 4);
          const std::pair<int, std::int64_t> ints[] = {
              {CUDNN_ATTR_KNOB_INFO_MINIMUM_VALUE, range.min},
              {CUDNN_ATTR_KNOB_INFO_MAXIMUM_VALUE, range.max},
              {CUDNN_ATTR_KNOB_INFO_STRIDE, range.stride}};
          for (const auto& [attr, v] : ints) {
            to->attrs[attr] = {CUDNN_TYPE_INT64, std::vector<std::uint8_t>(8), 1};
            std::memcpy(to->attrs[attr].bytes.data(), &v, 8);
          }
          to->finalized = true;
        }
        return CUDNN_STATUS_SUCCESS;
      }
      if (name == CUDNN_ATTR_ENGINE_BEHAVIOR_NOTE) {
        if (auto s = expect(CUDNN_TYPE_BEHAVIOR_NOTE)) return s;
        *count = d.engine == 3 ? 1 : 0;
        if (*count && capacity >= 1) {
          static_cast<cudnnBackendBehaviorNote_t*>(values)[0] =
              CUDNN_BEHAVIOR_NOTE_RUNTIME_COMPILATION;
        }
        return CUDNN_STATUS_SUCCESS;
      }
      break;
    case CUDNN_BACKEND_KNOB_INFO_DESCRIPTOR:
    case CUDNN_BACKEND_KNOB_CHOICE_DESCRIPTOR:
      if (d.attrs.count(name)) {
        const Value& v = d.attrs.at(name);
        if (auto s = expect(v.type)) return s;
        *count = 1;
        std::memcpy(values, v.bytes.data(), v.bytes.size());
        return CUDNN_STATUS_SUCCESS;
      }
      break;
    case CUDNN_BACKEND_EXECUTION_PLAN_DESCRIPTOR:
      if (name == CUDNN_ATTR_EXECUTION_PLAN_WORKSPACE_SIZE) {
        if (auto s = expect(CUDNN_TYPE_INT64)) return s;
        *count = 1;
        *static_cast<std::int64_t*>(values) = std::int64_t(spec_of(d.engine).workspace);
        return CUDNN_STATUS_SUCCESS;
      }
      break;
    default:
      break;
  }
  return fail(CUDNN_STATUS_NOT_SUPPORTED, "get of attribute " + std::to_string(name) +
                                              " is not modelled for descriptor type " +
                                              std::to_string(d.type));
}

cudnnStatus_t cudnnBackendExecute(cudnnHandle_t, cudnnBackendDescriptor_t plan_raw,
                                  cudnnBackendDescriptor_t pack_raw) {
  std::lock_guard<std::mutex> lock(g_mutex);
  if (!live(plan_raw) || !live(pack_raw)) return fail(CUDNN_STATUS_BAD_PARAM, "not live");
  const Desc& plan = *static_cast<const Desc*>(plan_raw);
  const Desc& pack = *static_cast<const Desc*>(pack_raw);
  if (plan.type != CUDNN_BACKEND_EXECUTION_PLAN_DESCRIPTOR || !plan.finalized ||
      pack.type != CUDNN_BACKEND_VARIANT_PACK_DESCRIPTOR || !pack.finalized) {
    return fail(CUDNN_STATUS_BAD_PARAM, "execute takes a finalized plan and variant pack");
  }
  if (!live(plan.graph)) return fail(CUDNN_STATUS_BAD_PARAM, "the plan's graph was destroyed");
  const GraphInfo g = graph_info(*plan.graph);
  count_cudnn_call();
  const auto uids = array<std::int64_t>(pack, CUDNN_ATTR_VARIANT_PACK_UNIQUE_IDS);
  const auto pointers = array<void*>(pack, CUDNN_ATTR_VARIANT_PACK_DATA_POINTERS);
  auto pointer = [&](std::int64_t uid) -> void* {
    for (std::size_t i = 0; i < uids.size(); ++i) {
      if (uids[i] == uid) return pointers[i];
    }
    return nullptr;
  };
  void* x = pointer(g.uid_x);
  void* w = pointer(g.uid_w);
  void* dy = pointer(g.uid_dy);
  if (!x || !w || !dy) return fail(CUDNN_STATUS_BAD_PARAM, "a tensor's pointer is missing");
  const std::size_t need = spec_of(plan.engine).workspace;
  void* workspace = array<void*>(pack, CUDNN_ATTR_VARIANT_PACK_WORKSPACE).at(0);
  if (need && !workspace) return fail(CUDNN_STATUS_BAD_PARAM, "the workspace is missing");
  touch(workspace, need);
  const bool round = has_note(plan.engine, CUDNN_NUMERICAL_NOTE_TENSOR_CORE);
  const auto started = std::chrono::steady_clock::now();
  if (g.data) {
    run_backward_data(g.conv, dy, w, x, round);
  } else {
    run_backward_filter(g.conv, x, dy, w, round);
  }
  if (const char* modeled = std::getenv("CONVBP_MOCK_MODELED_TIME"); modeled && *modeled == '1') {
    // The call takes its modeled time on the event clock, or the host's where that is longer.
    const std::int64_t host_ns = std::chrono::duration_cast<std::chrono::nanoseconds>(
                                     std::chrono::steady_clock::now() - started)
                                     .count();
    g_virtual_ns += std::max<std::int64_t>(
        0, std::int64_t(modeled_ms(plan.engine, plan.knobs) * 1e6) - host_ns);
  }
  if (wrong_here(plan.engine, g.data, g.symmetric)) {
    // Garbage of the kind measured (rel_l2 ~1.4): the right values in the wrong places.
    const Conv& c = g.conv;
    const std::int64_t count = g.data ? c.n * c.c * c.h * c.w : c.k * (c.c / c.groups) * c.r * c.s;
    if (c.type == CUDNN_DATA_FLOAT) {
      float* out = static_cast<float*>(g.data ? x : w);
      std::reverse(out, out + count);
    } else {
      auto* out = static_cast<std::uint16_t*>(g.data ? x : w);
      std::reverse(out, out + count);
    }
  }
  return CUDNN_STATUS_SUCCESS;
}

// --- cuBLAS: the reductions that compute db -----------------------------------------------------

int g_blas_handle_storage;
std::set<void*> g_blas_handles;

const char* cublasGetStatusName(cublasStatus_t s) {
  return s == CUBLAS_STATUS_SUCCESS ? "CUBLAS_STATUS_SUCCESS" : "CUBLAS_STATUS_INVALID_VALUE";
}
const char* cublasGetStatusString(cublasStatus_t s) {
  return s == CUBLAS_STATUS_SUCCESS ? "success" : "mock cuBLAS: an invalid value";
}
cublasStatus_t cublasCreate_v2(cublasHandle_t* h) {
  *h = reinterpret_cast<cublasHandle_t>(&g_blas_handle_storage);
  g_blas_handles.insert(*h);
  return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasDestroy_v2(cublasHandle_t h) {
  return g_blas_handles.erase(h) ? CUBLAS_STATUS_SUCCESS : CUBLAS_STATUS_NOT_INITIALIZED;
}
cudaStream_t g_blas_stream = nullptr;  // the (one) handle's stream
void* g_blas_workspace = nullptr;      // its workspace (null: its own pool)
cublasStatus_t cublasSetStream_v2(cublasHandle_t h, cudaStream_t s) {
  if (!g_blas_handles.count(h)) return CUBLAS_STATUS_NOT_INITIALIZED;
  std::lock_guard<std::mutex> lock(g_stream_mutex);
  if (s && !g_streams.count(s)) return CUBLAS_STATUS_INVALID_VALUE;
  g_blas_stream = s;
  g_blas_workspace = nullptr;  // as cuBLAS documents: setting a stream resets the workspace
  return CUBLAS_STATUS_SUCCESS;
}
// cuBLAS requires the workspace 256-byte aligned; a null one of size 0 is the pool again.
cublasStatus_t cublasSetWorkspace_v2(cublasHandle_t h, void* workspace, std::size_t bytes) {
  if (!g_blas_handles.count(h)) return CUBLAS_STATUS_NOT_INITIALIZED;
  if (reinterpret_cast<std::uintptr_t>(workspace) % 256 != 0 || (!workspace && bytes != 0)) {
    return CUBLAS_STATUS_INVALID_VALUE;
  }
  std::lock_guard<std::mutex> lock(g_stream_mutex);
  g_blas_workspace = workspace;
  return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasSetMathMode(cublasHandle_t h, cublasMath_t) {
  return g_blas_handles.count(h) ? CUBLAS_STATUS_SUCCESS : CUBLAS_STATUS_NOT_INITIALIZED;
}

// C (m x n) = alpha op(A) op(B) + beta C, column-major, fp64 accumulation, elements read and
// written through the cuDNN data types of the model (FLOAT, BFLOAT16, HALF).
cublasStatus_t mock_gemm(cublasHandle_t h, bool ta, bool tb, int m, int n, int k, float alpha,
                         const void* a, cudnnDataType_t at, int lda, const void* b,
                         cudnnDataType_t bt, int ldb, float beta, void* c, cudnnDataType_t ct,
                         int ldc) {
  if (!g_blas_handles.count(h)) return CUBLAS_STATUS_NOT_INITIALIZED;
  if (m < 0 || n < 0 || k < 0) return CUBLAS_STATUS_INVALID_VALUE;
  {
    std::lock_guard<std::mutex> lock(g_stream_mutex);
    ++g_db_calls[g_blas_stream];
    g_blas_workspaces[g_blas_stream].insert(g_blas_workspace);
  }
  if (lda < std::max(1, ta ? k : m) || ldb < std::max(1, tb ? n : k) || ldc < std::max(1, m)) {
    return CUBLAS_STATUS_INVALID_VALUE;
  }
  for (int j = 0; j < n; ++j) {
    for (int i = 0; i < m; ++i) {
      double sum = 0;
      for (int l = 0; l < k; ++l) {
        const std::size_t ai = ta ? std::size_t(i) * lda + l : std::size_t(l) * lda + i;
        const std::size_t bi = tb ? std::size_t(l) * ldb + j : std::size_t(j) * ldb + l;
        sum += double(element(at, a, ai)) * double(element(bt, b, bi));
      }
      const std::size_t ci = std::size_t(j) * ldc + i;
      // beta 0: C is not read (it may be NaN-poisoned), as BLAS specifies.
      const double old = beta == 0.0f ? 0.0 : double(element(ct, c, ci));
      set_element(ct, c, ci, double(alpha) * sum + double(beta) * old);
    }
  }
  return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasSgemv_v2(cublasHandle_t h, cublasOperation_t trans, int m, int n,
                              const float* alpha, const float* a, int lda, const float* x, int incx,
                              const float* beta, float* y, int incy) {
  if (incx != 1 || incy != 1) return CUBLAS_STATUS_INVALID_VALUE;  // not modelled
  if (lda < std::max(1, m)) return CUBLAS_STATUS_INVALID_VALUE;
  if (trans != CUBLAS_OP_N && trans != CUBLAS_OP_T) return CUBLAS_STATUS_INVALID_VALUE;
  const bool t = trans == CUBLAS_OP_T;
  // y (len m, or n transposed) = op(A) x: a gemm with one column, A's stored shape m x n.
  return mock_gemm(h, t, false, t ? n : m, 1, t ? m : n, *alpha, a, CUDNN_DATA_FLOAT, lda, x,
                   CUDNN_DATA_FLOAT, t ? m : n, *beta, y, CUDNN_DATA_FLOAT, t ? n : m);
}

cublasStatus_t cublasGemmEx(cublasHandle_t h, cublasOperation_t transa, cublasOperation_t transb,
                            int m, int n, int k, const void* alpha, const void* a, cudaDataType at,
                            int lda, const void* b, cudaDataType bt, int ldb, const void* beta,
                            void* c, cudaDataType ct, int ldc, cublasComputeType_t compute,
                            cublasGemmAlgo_t) {
  auto type = [](cudaDataType t, cudnnDataType_t* out) {
    switch (t) {
      case CUDA_R_32F:
        *out = CUDNN_DATA_FLOAT;
        return true;
      case CUDA_R_16BF:
        *out = CUDNN_DATA_BFLOAT16;
        return true;
      case CUDA_R_16F:
        *out = CUDNN_DATA_HALF;
        return true;
      default:
        return false;
    }
  };
  cudnnDataType_t a_type, b_type, c_type;
  if (!type(at, &a_type) || !type(bt, &b_type) || !type(ct, &c_type)) {
    return CUBLAS_STATUS_NOT_SUPPORTED;
  }
  // cuBLAS's table for CUBLAS_COMPUTE_32F: A and B of one type; C of that type or 32F, and 32F
  // when A is (no 32F inputs with a 16-bit output). alpha and beta are floats.
  if (compute != CUBLAS_COMPUTE_32F || at != bt || (at == CUDA_R_32F && ct != CUDA_R_32F) ||
      (ct != at && ct != CUDA_R_32F)) {
    return CUBLAS_STATUS_NOT_SUPPORTED;
  }
  return mock_gemm(h, transa == CUBLAS_OP_T, transb == CUBLAS_OP_T, m, n, k,
                   *static_cast<const float*>(alpha), a, a_type, lda, b, b_type, ldb,
                   *static_cast<const float*>(beta), c, c_type, ldc);
}

}  // extern "C"
