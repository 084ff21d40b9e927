// db on the GPU by each of convbp's forms, side by side on the same dy: the project's CUDA
// kernel (a build with it), cuBLAS, and cudnnConvolutionBackwardBias, the call issue 11's first
// H200 run measured at about 340 GB/s (impls/cudnn/common.h: BiasReduction, DbForm). db[k] is
// dy summed over n, p and q.
//
// dy holds real values (uniform in [-1, 1), in its dtype). Each form's db, over a NaN-filled
// buffer, is checked against a host sum in double: the error must stay within 2^-18 of the
// channel's sum of |dy|, plus db's rounding to its dtype (unit_roundoff, tolerance.h, times
// |db|). That is a bound for sums of values of random sign, not a worst case: their fp32
// rounding errors grow like the square root of the summation depth (a few hundred here at
// most), far below it, while a row left out moves db by about sqrt(p*q) / 2, tens of times the
// bound on the default shapes.
//
// Then the forms are timed in rounds, their order rotating each round, each timing 20 calls
// back to back on the default stream between CUDA events after one untimed call, and each form
// keeps its fastest round; GB/s is dy's bytes over that time. Where dy is smaller than twice the
// L2 cache, the calls rotate over copies of dy that together hold at least that much, so that
// what is timed reads memory, not L2.
//
//   cudnn_db_bare [--rounds R] [--peak-gbs G] [PROBLEM_KEY ...]
//     R: rounds (default 5); G: the memory bandwidth for the "% of" column (default: the
//     device's, from its memory clock and bus width, double data rate; 4800, an H200's HBM3e,
//     where the runtime does not say); keys as `convbp cases` prints them, with an optional dtype
//     and layout suffix (default: ResNet-50 conv1 and VGG-16 conv1_2 at batch 32, issue 11's
//     shapes, in f32 NCHW and in bf16 NHWC, and conv1 in f32 NHWC).
//
// Exit status: 0 every form right on every key, 1 a form wrong or failing, 2 bad arguments,
// 77 no CUDA device.
#include <cuda_runtime_api.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <limits>
#include <memory>
#include <string>
#include <vector>

#include "cudnn/common.h"
#include "dtype.h"
#include "problem.h"
#include "tolerance.h"

namespace {

using namespace convbp;
using convbp::cudnn::BiasReduction;
using convbp::cudnn::DbForm;
using convbp::cudnn::DeviceBuffer;

constexpr int kCalls = 20;  // calls per timing

const char* const kDefaultKeys[] = {
    "n32_c3_h224_w224_k64_r7_s7_st2x2_pad3x3x3x3_dil1x1_g1",   // ResNet-50 conv1
    "n32_c64_h224_w224_k64_r3_s3_st1x1_pad1x1x1x1_dil1x1_g1",  // VGG-16 conv1_2
    // The same in bf16 NHWC, the layout 16-bit training runs in, and conv1 in f32 NHWC: the
    // NHWC kernel's loads are of the element's size, so the two show whether 2-byte loads keep
    // enough bytes in flight.
    "n32_c3_h224_w224_k64_r7_s7_st2x2_pad3x3x3x3_dil1x1_g1_bf16_nhwc",
    "n32_c64_h224_w224_k64_r3_s3_st1x1_pad1x1x1x1_dil1x1_g1_bf16_nhwc",
    "n32_c3_h224_w224_k64_r7_s7_st2x2_pad3x3x3x3_dil1x1_g1_f32_nhwc"};

struct Form {
  DbForm form;
  std::unique_ptr<BiasReduction> reduction;
  std::string failed;    // why the form could not be made or run
  double max_ratio = 0;  // the worst error over its bound
  double best_ms = std::numeric_limits<double>::infinity();
};

// A device attribute, or 0 where the runtime does not give it.
int device_attribute(cudaDeviceAttr attribute) {
  int device = 0, value = 0;
  if (cudaGetDevice(&device) != cudaSuccess ||
      cudaDeviceGetAttribute(&value, attribute, device) != cudaSuccess) {
    cudaGetLastError();
    return 0;
  }
  return value;
}

// The device's memory bandwidth in GB/s: memory clock (kHz) x bus width, double data rate (an
// H100 SXM: 2619 MHz x 5120 bits, 3352 GB/s); 0 where the runtime does not say.
double device_peak_gbs() {
  const double clock_khz = device_attribute(cudaDevAttrMemoryClockRate);
  const double bus_bits = device_attribute(cudaDevAttrGlobalMemoryBusWidth);
  return 2 * clock_khz * 1e3 * bus_bits / 8 / 1e9;
}

// Time per call of kCalls enqueues between two events, after one untimed call; call i reads
// dy[i % dy.size()].
double time_calls(BiasReduction& r, const std::vector<DeviceBuffer>& dy, void* db,
                  cudaEvent_t start, cudaEvent_t stop) {
  r.enqueue(dy.back().get(), db, nullptr);
  CONVBP_CHECK(cudaEventRecord(start, nullptr));
  for (int i = 0; i < kCalls; ++i) r.enqueue(dy[std::size_t(i) % dy.size()].get(), db, nullptr);
  CONVBP_CHECK(cudaEventRecord(stop, nullptr));
  CONVBP_CHECK(cudaEventSynchronize(stop));
  float ms = 0;
  CONVBP_CHECK(cudaEventElapsedTime(&ms, start, stop));
  return double(ms) / kCalls;
}

// The form's db against the host's sums: the worst |error| / bound over k.
double check(BiasReduction& r, const ConvProblem& pr, const void* dy, void* db,
             const std::vector<double>& ref, const std::vector<double>& abs_sum) {
  const std::size_t bytes = std::size_t(pr.k) * dtype_size(pr.dtype);
  CONVBP_CHECK(cudaMemset(db, 0xff, bytes));  // NaN in every dtype: what a form skips shows
  r.enqueue(dy, db, nullptr);
  CONVBP_CHECK(cudaDeviceSynchronize());
  std::vector<unsigned char> got(bytes);
  CONVBP_CHECK(cudaMemcpy(got.data(), db, bytes, cudaMemcpyDeviceToHost));
  double worst = 0;
  for (std::int64_t k = 0; k < pr.k; ++k) {
    const double v = load_as_double(pr.dtype, got.data(), std::size_t(k));
    const double bound = 0x1p-18 * abs_sum[k] + unit_roundoff(pr.dtype) * std::fabs(ref[k]) + 1e-30;
    const double ratio = std::fabs(v - ref[k]) / bound;
    if (std::isnan(ratio)) return std::numeric_limits<double>::infinity();  // NaN or Inf in db
    worst = std::max(worst, ratio);
  }
  return worst;
}

// One problem: every form made, checked and timed. Returns false when a form was wrong or failed.
bool measure(const ConvProblem& pr, int rounds, double peak_gbs) {
  const std::int64_t pq = pr.p() * pr.q();
  const std::size_t elems = pr.y_elems();
  const double dy_bytes = double(elems) * dtype_size(pr.dtype);
  std::printf("%s: dy [%lld, %lld, %lld, %lld] %s %s, %.1f MB\n", pr.key().c_str(), (long long)pr.n,
              (long long)pr.k, (long long)pr.p(), (long long)pr.q(), to_string(pr.dtype),
              to_string(pr.layout), dy_bytes / 1e6);
  if (const Support s = cudnn::bias_support(pr); !s.ok) {
    std::printf("  declined: %s\n", s.why.c_str());
    return true;
  }
  // dy's values and the host's sums per k, in double.
  std::vector<unsigned char> host(elems * dtype_size(pr.dtype));
  std::vector<double> ref(std::size_t(pr.k)), abs_sum(std::size_t(pr.k));
  // dy in runs of one channel: a [p*q] row in NCHW, one element in NHWC.
  const std::size_t run = pr.layout == Layout::nchw ? std::size_t(pq) : 1;
  unsigned state = 12345;
  for (std::size_t start = 0, runs = 0; start < elems; start += run, ++runs) {
    const std::size_t k = runs % std::size_t(pr.k);
    for (std::size_t i = start; i < start + run; ++i) {
      state = state * 1664525u + 1013904223u;
      store_from_double(pr.dtype, host.data(), i, double(state >> 8) / double(1 << 23) - 1.0);
      const double v = load_as_double(pr.dtype, host.data(), i);
      ref[k] += v;
      abs_sum[k] += std::fabs(v);
    }
  }
  // Copies of dy holding at least twice the L2 cache together, as far as half the free memory
  // allows (at most 64).
  const double l2 = device_attribute(cudaDevAttrL2CacheSize);
  std::size_t free_bytes = 0, total_bytes = 0;
  CONVBP_CHECK(cudaMemGetInfo(&free_bytes, &total_bytes));
  const double fit = std::floor(0.5 * double(free_bytes) / double(host.size()));
  const std::size_t copies =
      std::size_t(std::clamp(std::min(std::ceil(2 * l2 / double(host.size())), fit), 1.0, 64.0));
  std::vector<DeviceBuffer> dy;
  for (std::size_t i = 0; i < copies; ++i) {
    dy.emplace_back(host.size());
    CONVBP_CHECK(cudaMemcpy(dy.back().get(), host.data(), host.size(), cudaMemcpyHostToDevice));
  }
  host = {};
  DeviceBuffer db(std::size_t(pr.k) * dtype_size(pr.dtype));
  if (copies > 1) {
    std::printf("  the calls rotate over %zu copies of dy (%.1f MB; L2 %.1f MB)\n", copies,
                double(copies) * dy_bytes / 1e6, l2 / 1e6);
  }

  std::vector<Form> forms;
  for (DbForm f : {DbForm::kernel, DbForm::library, DbForm::legacy}) {
    if (f == DbForm::kernel && !cudnn::kernels_built()) continue;
    Form form{f, nullptr, "", 0, std::numeric_limits<double>::infinity()};
    try {
      form.reduction = std::make_unique<BiasReduction>(pr, f);
      form.max_ratio = check(*form.reduction, pr, dy[0].get(), db.get(), ref, abs_sum);
    } catch (const std::exception& e) {
      form.failed = e.what();
    }
    forms.push_back(std::move(form));
  }
  cudaEvent_t start = nullptr, stop = nullptr;
  try {
    CONVBP_CHECK(cudaEventCreate(&start));
    CONVBP_CHECK(cudaEventCreate(&stop));
  } catch (const std::exception& e) {
    // After a sticky error (a form that faulted), no form can be timed: each says why below.
    for (Form& f : forms) {
      if (f.failed.empty()) f.failed = std::string("timing: ") + e.what();
    }
  }
  for (int round = 0; round < rounds && start && stop; ++round) {
    for (std::size_t i = 0; i < forms.size(); ++i) {
      Form& f = forms[(i + std::size_t(round)) % forms.size()];
      if (!f.failed.empty()) continue;
      try {
        f.best_ms = std::min(f.best_ms, time_calls(*f.reduction, dy, db.get(), start, stop));
      } catch (const std::exception& e) {
        f.failed = e.what();
      }
    }
  }
  if (start) cudaEventDestroy(start);
  if (stop) cudaEventDestroy(stop);

  bool all_right = true;
  if (!cudnn::kernels_built()) {
    std::printf("  %-8s not in this build (CONVBP_WITH_CUDA_KERNELS: nvcc not found, or OFF)\n",
                "kernel");
  }
  for (const Form& f : forms) {
    if (!f.failed.empty()) {
      std::printf("  %-8s FAILED: %s\n", cudnn::to_string(f.form), f.failed.c_str());
      all_right = false;
      continue;
    }
    const bool right = f.max_ratio <= 1;
    all_right = all_right && right;
    const double gbs = dy_bytes / (f.best_ms * 1e6);
    std::printf("  %-8s %9.4f ms %7.0f GB/s %4.0f%% of %.0f  error %.3g of its bound%s  %s\n",
                cudnn::to_string(f.form), f.best_ms, gbs, 100 * gbs / peak_gbs, peak_gbs,
                f.max_ratio, right ? "" : " WRONG", f.reduction->how().c_str());
  }
  return all_right;
}

int usage(const char* why) {
  std::fprintf(stderr,
               "cudnn_db_bare: %s\nusage: cudnn_db_bare [--rounds R] [--peak-gbs G] "
               "[PROBLEM_KEY ...]\n",
               why);
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  // Line by line, so that a run stopped by a time limit or a fault keeps every line printed.
  std::setvbuf(stdout, nullptr, _IOLBF, 0);
  int rounds = 5;
  double peak_gbs = 0;  // --peak-gbs, else the device's
  std::vector<ConvProblem> problems;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--rounds" || arg == "--peak-gbs") {
      if (i + 1 == argc) return usage((arg + " needs a value").c_str());
      char* end = nullptr;
      const double v = std::strtod(argv[++i], &end);
      if (*end != '\0' || !(v > 0) || (arg == "--rounds" && (v != std::floor(v) || v > 1000))) {
        return usage((arg + " " + argv[i] + ": expected a positive " +
                      (arg == "--rounds" ? "whole number up to 1000" : "number"))
                         .c_str());
      }
      if (arg == "--rounds") {
        rounds = int(v);
      } else {
        peak_gbs = v;
      }
      continue;
    }
    try {
      problems.push_back(ConvProblem::parse_key(arg));
    } catch (const std::exception& e) {
      return usage(e.what());
    }
  }
  if (problems.empty()) {
    for (const char* key : kDefaultKeys) problems.push_back(ConvProblem::parse_key(key));
  }
  if (const Support& s = cudnn::device_support(); !s.ok) {
    std::printf("cudnn_db_bare: %s\n", s.why.c_str());
    return 77;
  }
  std::printf("%s\n", cudnn::device_description().c_str());
  const char* peak_source = "--peak-gbs";
  if (peak_gbs == 0) {
    peak_gbs = device_peak_gbs();
    peak_source = "the device's memory clock x bus width, double data rate";
  }
  if (peak_gbs == 0) {
    peak_gbs = 4800;
    peak_source = "assumed, an H200's HBM3e: the runtime gave no memory clock or bus width";
  }
  std::printf("memory bandwidth for the %% column: %.0f GB/s (%s)\n", peak_gbs, peak_source);
  std::printf(
      "db = dy summed over n, p and q; the fastest of %d rounds of %d calls, forms in "
      "rotating order\n",
      rounds, kCalls);
  bool all_right = true;
  for (const ConvProblem& pr : problems) {
    try {
      all_right = measure(pr, rounds, peak_gbs) && all_right;
    } catch (const std::exception& e) {
      std::printf("  FAILED: %s\n", e.what());
      all_right = false;
    }
  }
  return all_right ? 0 : 1;
}
