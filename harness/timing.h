// Timing of one plan: fixed repetitions of a fixed number of calls each, one measurement at a
// time in the process.
#pragma once

#include <functional>
#include <mutex>
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

// `label` names what is measured, for the caller; the timing does not use it.
// Warm-up runs first, untimed; the wall time of the last warm-up call (of one more untimed call
// for a self-timing call, or without warm-up) sizes the rest: `reps` repetitions of
// `iterations` calls each, where iterations is chosen so a repetition lasts at least
// timing.min_rep_seconds, and repetitions shrink (to at least 1) so the whole measurement stays
// near timing.max_seconds_per_case.
// `before_last_call`, when given, runs untimed just before the last timed call, so that the
// caller can check that call's output (the harness poisons the outputs there).
//
// Each call is timed on its own (manual time, as Google Benchmark's UseManualTime), and a
// repetition's figure is its calls' total over their number. measure() runs its own loop
// rather than Google Benchmark's runner: that runner works only through the process-wide
// registry and flags, which an application embedding convbp may be using for its own
// benchmarks (docs/tuning.md). It holds measurement_mutex() throughout.
TimeStats measure(const std::string& label, const TimedCall& call, const TimingSettings& timing,
                  const std::function<void()>& before_last_call = {});

// Serializes measurement process-wide: two measurements at once share the cores and both come
// out wrong. measure() holds it; so does whatever must not overlap a measurement in another
// thread (the Autotuner's on-line tuning, validation included). Recursive, so such a holder
// can call measure().
std::recursive_mutex& measurement_mutex();

}  // namespace convbp
