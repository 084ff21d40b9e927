// Timing of one plan with Google Benchmark as the measurement engine.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "config.h"

namespace convbp {

struct TimeStats {
  double median = 0, min = 0, max = 0, stddev = 0;  // milliseconds per call
  int reps = 0;                                     // repetitions measured
  long iterations = 0;                              // calls per repetition
  bool noisy = false;                               // stddev above 10% of the median
  std::vector<double> samples;  // every repetition's time (ms), for scripts/compare.py
};

// One timed call. Returns milliseconds when the call times itself (CUDA events), or a
// negative number to be timed on the host's wall clock.
using TimedCall = std::function<double()>;

// Warm-up runs first, untimed; the wall time of the last warm-up call (of one more untimed call
// for a self-timing call, or without warm-up) sizes the rest: `reps` repetitions of
// `iterations` calls each, where iterations is chosen so a repetition lasts at least
// timing.min_rep_seconds, and repetitions shrink (to at least 1) so the whole measurement stays
// near timing.max_seconds_per_case.
// `before_last_call`, when given, runs untimed just before the last timed call, so that the
// caller can check that call's output (the harness poisons the outputs there).
TimeStats measure(const std::string& label, const TimedCall& call, const TimingSettings& timing,
                  const std::function<void()>& before_last_call = {});

}  // namespace convbp
