#include "blas_core.h"

#include <strings.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "blas.h"

namespace convbp {

namespace {

constexpr const char* kDetectedVar = "CONVBP_OPENBLAS_DETECTED";

struct Level {
  const char* core;
  int level;
};
// The cores of OpenBLAS's DYNAMIC_ARCH x86-64 builds, by the widest instructions their kernels
// use. Zen runs the Haswell kernels; Cooperlake adds the AVX512-BF16 sbgemm kernels.
constexpr Level kLevels[] = {
    {"Prescott", 1},       {"Core2", 1},      {"Penryn", 1},      {"Dunnington", 1},
    {"Nehalem", 1},        {"Atom", 1},       {"Nano", 1},        {"Opteron", 1},
    {"Opteron_SSE3", 1},   {"Barcelona", 1},  {"Bobcat", 1},      {"Sandybridge", 2},
    {"Bulldozer", 2},      {"Piledriver", 2}, {"Steamroller", 2}, {"Excavator", 3},
    {"Haswell", 3},        {"Zen", 3},        {"SkylakeX", 4},    {"Cooperlake", 5},
    {"SapphireRapids", 5},
};

std::string running_core() {
  const char* name = openblas_get_corename();
  return name ? name : "";
}

BlasCore compute() {
  BlasCore c;
  c.running = running_core();
  c.best = best_blas_core_for_cpu();
  c.lesser = blas_core_level(c.running) < blas_core_level(c.best);
  const char* forced = std::getenv("OPENBLAS_CORETYPE");
  const char* detected = std::getenv(kDetectedVar);
  if (forced && detected && strcasecmp(forced, c.best.c_str()) == 0) {
    c.chosen_by = "convbp";
    c.detected = detected;
    c.note = "chosen by convbp with OPENBLAS_CORETYPE=" + c.best + "; OpenBLAS had detected " +
             c.detected + " on this CPU";
    if (c.lesser) c.note += ", and still runs " + c.running;
  } else if (forced) {
    c.chosen_by = "user";
    c.note = std::string("set by the environment's OPENBLAS_CORETYPE=") + forced;
    if (c.lesser) c.note += "; this CPU could run " + c.best;
  } else {
    c.chosen_by = "openblas";
    c.detected = c.running;
    c.note = "detected by OpenBLAS";
    if (c.lesser) {
      c.note += "; this CPU could run " + c.best + " (OPENBLAS_CORETYPE=" + c.best +
                " before the process starts)";
    }
  }
  return c;
}

}  // namespace

int blas_core_level(const std::string& core) {
  for (const Level& l : kLevels) {
    if (strcasecmp(l.core, core.c_str()) == 0) return l.level;
  }
  return 0;
}

std::string best_blas_core_for_cpu() {
  __builtin_cpu_init();
  // __builtin_cpu_supports also checks that the OS saves the AVX and AVX-512 registers.
  if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
      __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq") &&
      __builtin_cpu_supports("avx512cd")) {
    return __builtin_cpu_supports("avx512bf16") ? "Cooperlake" : "SkylakeX";
  }
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return "Haswell";
  if (__builtin_cpu_supports("avx")) return "Sandybridge";
  return "Prescott";
}

const BlasCore& blas_core() {
  static const BlasCore core = compute();
  return core;
}

void reexec_with_best_blas_core(char** argv) {
  if (std::getenv("OPENBLAS_CORETYPE")) return;  // the user's choice, or ours after re-exec
  const std::string running = running_core();
  const std::string best = best_blas_core_for_cpu();
  if (blas_core_level(running) == 0 || blas_core_level(running) >= blas_core_level(best)) return;
  setenv("OPENBLAS_CORETYPE", best.c_str(), 1);
  setenv(kDetectedVar, running.c_str(), 1);
  std::fflush(nullptr);
  execv("/proc/self/exe", argv);
  const int error = errno;
  unsetenv("OPENBLAS_CORETYPE");
  unsetenv(kDetectedVar);
  std::fprintf(stderr,
               "convbp: warning: could not re-execute with OPENBLAS_CORETYPE=%s (%s); OpenBLAS "
               "runs its %s kernels\n",
               best.c_str(), std::strerror(error), running.c_str());
}

}  // namespace convbp
