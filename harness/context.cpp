#include "context.h"

#include <immintrin.h>
#include <omp.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <fstream>
#include <set>
#include <sstream>

#include "backward.h"
#include "blas_core.h"
#include "io.h"

#ifndef CONVBP_VERSION
#define CONVBP_VERSION "unknown"
#endif
#ifndef CONVBP_BUILD_TYPE
#define CONVBP_BUILD_TYPE "unknown"
#endif

namespace convbp {

std::string convbp_version() { return CONVBP_VERSION; }

std::string cpu_model() {
  std::ifstream in("/proc/cpuinfo");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("model name", 0) == 0) return line.substr(line.find(':') + 2);
  }
  return "unknown";
}

std::vector<std::string> cpu_isa() {
  std::ifstream in("/proc/cpuinfo");
  std::string line;
  const std::set<std::string> wanted = {"sse4_2",      "avx",         "avx2",     "fma",
                                        "f16c",        "avx512f",     "avx512bw", "avx512vl",
                                        "avx512_vnni", "avx512_bf16", "amx_tile"};
  std::vector<std::string> found;
  while (std::getline(in, line)) {
    if (line.rfind("flags", 0) != 0) continue;
    std::istringstream words(line.substr(line.find(':') + 1));
    std::string word;
    while (words >> word) {
      if (wanted.count(word)) found.push_back(word);
    }
    break;
  }
  return found;
}

namespace {

// 10 independent FMA chains hide the 4-5 cycle FMA latency on two FMA pipes. Two copies,
// since each must be compiled for its own instruction set.
__attribute__((target("avx2,fma"))) float fma_loop_avx2(long iterations) {
  __m256 acc[10];
  for (int i = 0; i < 10; ++i) acc[i] = _mm256_set1_ps(float(i) * 1e-3f);
  const __m256 a = _mm256_set1_ps(0.999999f), b = _mm256_set1_ps(1e-7f);
  for (long it = 0; it < iterations; ++it) {
    for (int i = 0; i < 10; ++i) acc[i] = _mm256_fmadd_ps(acc[i], a, b);
  }
  for (int i = 1; i < 10; ++i) acc[0] = _mm256_add_ps(acc[0], acc[i]);  // keep every chain live
  return _mm256_cvtss_f32(acc[0]);
}

__attribute__((target("avx512f"))) float fma_loop_avx512(long iterations) {
  __m512 acc[10];
  for (int i = 0; i < 10; ++i) acc[i] = _mm512_set1_ps(float(i) * 1e-3f);
  const __m512 a = _mm512_set1_ps(0.999999f), b = _mm512_set1_ps(1e-7f);
  for (long it = 0; it < iterations; ++it) {
    for (int i = 0; i < 10; ++i) acc[i] = _mm512_fmadd_ps(acc[i], a, b);
  }
  for (int i = 1; i < 10; ++i) acc[0] = _mm512_add_ps(acc[0], acc[i]);
  return _mm512_cvtss_f32(acc[0]);
}

// Best of 3 trials of about 50 ms; `lanes` fp32 lanes x 2 flops x 10 chains per iteration.
double peak_of(float (*loop)(long), int lanes, int threads) {
  const long iterations = 20'000'000;
  double best = 0;
  for (int trial = 0; trial < 3; ++trial) {
    volatile float sink = 0;
    auto start = std::chrono::steady_clock::now();
#pragma omp parallel num_threads(threads)
    { sink = sink + loop(iterations); }
    const double s =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    best = std::max(best, 20.0 * lanes * iterations * threads / s / 1e9);
  }
  return best;
}

}  // namespace

double measure_avx2_peak_gflops(int threads) {
  __builtin_cpu_init();
  if (!__builtin_cpu_supports("avx2") || !__builtin_cpu_supports("fma")) return 0.0;
  return peak_of(fma_loop_avx2, 8, threads);
}

double measure_avx512_peak_gflops(int threads) {
  __builtin_cpu_init();
  if (!__builtin_cpu_supports("avx512f")) return 0.0;
  return peak_of(fma_loop_avx512, 16, threads);
}

namespace {

// Each implementation names the libraries it runs on (im2col_gemm: OpenBLAS, its core and
// threading; onednn; cudnn).
nlohmann::json library_versions() {
  nlohmann::json libraries = nlohmann::json::object();
  for (const Backward* b : registry()) {
    for (const auto& [name, version] : b->library_versions()) libraries[name] = version;
  }
  return libraries;
}

nlohmann::json gpu_description() {
  nlohmann::json gpu = nullptr;
  for (const Backward* b : registry()) {
    if (b->device() == Device::cuda && b->available().ok) gpu = b->device_description();
  }
  return gpu;
}

}  // namespace

nlohmann::json machine_fingerprint(int threads) {
  return {{"convbp", convbp_version()},
          {"sources", convbp_source_hash()},
          {"build", CONVBP_BUILD_TYPE},
          {"cpu", {{"model", cpu_model()}, {"isa", cpu_isa()}}},
          {"threads", threads},
          {"gpu", gpu_description()},
          {"libraries", library_versions()}};
}

nlohmann::json run_context(int threads) {
  const double avx2 = measure_avx2_peak_gflops(threads);
  const double avx512 = measure_avx512_peak_gflops(threads);
  char host[256] = {};
  gethostname(host, sizeof host - 1);
  return {
      {"convbp", convbp_version()},
      {"sources", convbp_source_hash()},
      {"date", utc_now()},
      {"host", host},
      {"cpu",
       {{"model", cpu_model()}, {"cores", int(sysconf(_SC_NPROCESSORS_ONLN))}, {"isa", cpu_isa()}}},
      {"threads", threads},
      {"gpu", gpu_description()},
      {"libraries", library_versions()},
      {"openblas_core",
       {{"running", blas_core().running},
        {"chosen_by", blas_core().chosen_by},
        {"detected", blas_core().detected},
        {"best_for_cpu", blas_core().best},
        {"note", blas_core().note}}},
      {"build", CONVBP_BUILD_TYPE},
      {"peak_gflops", std::max(avx2, avx512)},
      {"peak_gflops_avx2", avx2},
      {"peak_gflops_avx512", avx512},
      {"peak_note",
       "measured fp32 FMA throughput of the run's threads with 8-wide (AVX2) and 16-wide "
       "(AVX-512) registers; peak_gflops is the larger, the ceiling for direct convolution on "
       "this machine. Winograd's effective GF/s (direct flops / time) may exceed it"}};
}

}  // namespace convbp
