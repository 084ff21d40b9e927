// What a report was measured on: machine, libraries, build. Also the machine fingerprint.
#pragma once

#include <nlohmann/json.hpp>

namespace convbp {

// Context of a run with `threads` threads. Measures the AVX2 FMA peak (about 0.1 s).
nlohmann::json run_context(int threads);

// What a tuning result depends on (docs/tuning.md): convbp version and build type, CPU model
// and ISA, thread count, GPU and driver, library versions. Cheap (nothing is measured) and
// free of anything that changes between runs on the same machine (date, host, measured peak).
nlohmann::json machine_fingerprint(int threads);

// The CPU's model name and the SIMD extensions that matter here (avx2, fma, avx512f, ...).
std::string cpu_model();
std::vector<std::string> cpu_isa();

// Measured fp32 FMA throughput of `threads` threads with AVX2 (8-wide) registers, GF/s:
// the ceiling for direct convolution with AVX2 code on this machine.
double measure_avx2_peak_gflops(int threads);
// The same with 16-wide AVX-512 registers; 0 without AVX-512F.
double measure_avx512_peak_gflops(int threads);

// The convbp version, e.g. "0.1.0+abc1234".
std::string convbp_version();
// SHA-256 (16 hex digits) of the sources, compiler and flags this binary was built from, computed
// at build time (cmake/source_hash.cmake): it changes with any edit, committed or not.
const char* convbp_source_hash();

}  // namespace convbp
