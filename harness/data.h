// Seeded test data and output buffers for one case.
#pragma once

#include <cstdint>
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

  std::vector<float> x, w, dy;    // inputs (x unused by the data pass, w by the weights pass)
  std::vector<float> dx, dw, db;  // outputs
};

}  // namespace convbp
