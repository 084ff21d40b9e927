// Which kernels ("core") OpenBLAS runs on this CPU, and who chose them.
//
// OpenBLAS built with DYNAMIC_ARCH picks its kernels when it loads, from the CPU it recognizes.
// A CPU newer than the library is not recognized and gets a generic core: Debian 12's OpenBLAS
// 0.3.21 runs its SSE3 (Prescott) kernels on an Emerald Rapids Xeon, at a quarter of what its
// AVX-512 kernels reach there. OpenBLAS reads OPENBLAS_CORETYPE only when it loads, so a process
// that wants another core must be started with it: the CLI re-executes itself once
// (reexec_with_best_blas_core); a host application of the Autotuner cannot, and is warned.
// A user's own OPENBLAS_CORETYPE always wins (some machines set it on purpose).
#pragma once

#include <string>

namespace convbp {

struct BlasCore {
  std::string running;    // openblas_get_corename(): the core whose kernels run now
  std::string best;       // the best core this CPU can run ("" when none is known)
  std::string detected;   // what OpenBLAS detected by itself ("" when it was never asked)
  std::string chosen_by;  // "openblas", "user" (OPENBLAS_CORETYPE) or "convbp" (re-executed)
  bool lesser = false;    // the running core is below the best one the CPU supports
  std::string note;       // one sentence for reports and `convbp list`
};

// OpenBLAS's core and who chose it, computed once.
const BlasCore& blas_core();

// The best OpenBLAS core for this CPU's instructions (AVX512-BF16: Cooperlake; AVX-512
// F/BW/VL/DQ/CD: SkylakeX; AVX2 and FMA: Haswell; AVX: Sandybridge; else Prescott).
std::string best_blas_core_for_cpu();

// The instruction level of a core name: 0 unknown, 1 SSE, 2 AVX, 3 AVX2+FMA, 4 AVX-512,
// 5 AVX-512 with BF16. (Case-insensitive; the names openblas_get_corename() returns.)
int blas_core_level(const std::string& core);

// For the CLI, first thing in main(): when OpenBLAS runs a lesser core than the CPU supports and
// OPENBLAS_CORETYPE is not set, re-executes this process with OPENBLAS_CORETYPE set to the best
// core (and CONVBP_OPENBLAS_DETECTED to what OpenBLAS had detected, for the report). Returns
// only when it did not re-execute; a failed exec leaves the environment as it was.
void reexec_with_best_blas_core(char** argv);

}  // namespace convbp
