#include "context.h"

#include <immintrin.h>
#include <omp.h>
#include <unistd.h>

#include <chrono>
#include <ctime>
#include <fstream>
#include <set>
#include <sstream>

#include "backward.h"
#include "blas.h"

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

// 10 independent FMA chains hide the 4-5 cycle FMA latency on two FMA pipes.
__attribute__((target("avx2,fma"))) float fma_loop(long iterations) {
  __m256 acc[10];
  for (int i = 0; i < 10; ++i) acc[i] = _mm256_set1_ps(float(i) * 1e-3f);
  const __m256 a = _mm256_set1_ps(0.999999f), b = _mm256_set1_ps(1e-7f);
  for (long it = 0; it < iterations; ++it) {
    for (int i = 0; i < 10; ++i) acc[i] = _mm256_fmadd_ps(acc[i], a, b);
  }
  __m256 sum = acc[0];
  for (int i = 1; i < 10; ++i) sum = _mm256_add_ps(sum, acc[i]);
  float out[8];
  _mm256_storeu_ps(out, sum);
  return out[0];
}

}  // namespace

double measure_avx2_peak_gflops(int threads) {
  __builtin_cpu_init();
  if (!__builtin_cpu_supports("avx2") || !__builtin_cpu_supports("fma")) return 0.0;
  const long iterations =
      20'000'000;  // about 50 ms; 10 chains x 8 lanes x 2 flops = 160 flops each
  double best = 0;
  for (int trial = 0; trial < 3; ++trial) {
    volatile float sink = 0;
    auto start = std::chrono::steady_clock::now();
#pragma omp parallel num_threads(threads)
    { sink = sink + fma_loop(iterations); }
    const double s =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    best = std::max(best, 160.0 * iterations * threads / s / 1e9);
  }
  return best;
}

nlohmann::json run_context(int threads) {
  char host[256] = {};
  gethostname(host, sizeof host - 1);
  std::time_t now = std::time(nullptr);
  char date[64];
  std::strftime(date, sizeof date, "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&now));
  nlohmann::json libraries = {{"openblas", openblas_get_config()},
                              {"openblas_core", openblas_get_corename()}};
  for (const Backward* b : registry()) {
    for (const auto& [name, version] : b->library_versions()) libraries[name] = version;
  }
  nlohmann::json gpu = nullptr;
  for (const Backward* b : registry()) {
    if (b->device() == Device::cuda && b->available().ok) gpu = b->device_description();
  }
  return {
      {"convbp", convbp_version()},
      {"date", date},
      {"host", host},
      {"cpu",
       {{"model", cpu_model()}, {"cores", int(sysconf(_SC_NPROCESSORS_ONLN))}, {"isa", cpu_isa()}}},
      {"threads", threads},
      {"gpu", gpu},
      {"libraries", libraries},
      {"build", CONVBP_BUILD_TYPE},
      {"peak_gflops", measure_avx2_peak_gflops(threads)},
      {"peak_note",
       "measured fp32 AVX2 FMA throughput on the run's threads: the ceiling for direct "
       "convolution with AVX2 code; Winograd's effective GF/s (direct flops / time) may "
       "exceed it"}};
}

}  // namespace convbp
