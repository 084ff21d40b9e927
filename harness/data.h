// Seeded test data and output buffers for one case.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "backward.h"

namespace convbp {

// Fills `out` with values uniform in [-1, 1) from a counter-based generator (splitmix64), so
// the same seed gives the same data on every machine and compiler.
void fill_uniform(std::vector<float>& out, std::uint64_t seed);

// Poisons outputs with quiet NaN so that an element an implementation never writes is caught.
void poison(std::vector<float>& out);

// The inputs and outputs of one case. Inputs are generated once per case; the outputs are
// re-poisoned before every implementation's validation run.
struct CaseData {
  CaseData(const ConvProblem& problem, Pass pass, std::uint64_t seed);
  Tensors tensors();
  void poison_outputs();
  // Compares the inputs with the seed's data and puts back any element that differs; says
  // which input changed, how many elements and where the first is ("dy: 2 element(s) changed,
  // first at [0,1,0,3]"), or "" when none did.
  std::string restore_inputs(const ConvProblem& problem);
  // Bytes a case of `problem` holds: inputs, outputs and the fp64 reference.
  static std::size_t bytes_needed(const ConvProblem& problem, Pass pass);

  std::vector<float> x, w, dy;    // inputs (x unused by the data pass, w by the weights pass)
  std::vector<float> dx, dw, db;  // outputs
  std::uint64_t seed = 0;
};

// Memory the process can still use without the kernel reclaiming it (Linux: MemAvailable,
// bounded by the address-space limit); SIZE_MAX when unknown. Under overcommit an allocation
// larger than this succeeds and the process is killed when it touches the pages, so the
// harness checks sizes against it before allocating.
std::size_t available_memory();
// Tests: pretend that only `bytes` are available (nullopt: the real figure again).
void set_available_memory_for_testing(std::optional<std::size_t> bytes);

// Thrown before an allocation of more than available_memory(); what() starts "out of memory".
struct OutOfMemory : std::runtime_error {
  using std::runtime_error::runtime_error;
};
// Throws OutOfMemory naming `what` when `bytes` exceed available_memory().
void require_memory(std::size_t bytes, const std::string& what);

}  // namespace convbp
