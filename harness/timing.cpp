#include "timing.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <vector>

namespace convbp {

std::recursive_mutex& measurement_mutex() {
  static std::recursive_mutex mutex;
  return mutex;
}

TimeStats measure(const std::string& /*label*/, const TimedCall& call, const TimingSettings& timing,
                  const std::function<void()>& before_last_call) {
  const std::lock_guard<std::recursive_mutex> one_at_a_time(measurement_mutex());
  // single_ms sizes the repetitions: what one call costs in wall time, read off the last
  // warm-up call. A self-timing (device) call gets one more untimed call for it: it may run
  // several calls back to back to report one's time, and how many depends on the calls before
  // it, so its own figure, the validation call's or a warm-up's could underestimate a
  // repetition.
  auto wall_ms = [&](double* self_ms) {
    const auto start = std::chrono::steady_clock::now();
    *self_ms = call();
    return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start)
        .count();
  };
  double self_ms = -1, single_ms = 0;
  for (int i = 0; i < timing.warmup; ++i) single_ms = wall_ms(&self_ms);
  if (timing.warmup == 0 || self_ms >= 0) single_ms = wall_ms(&self_ms);
  single_ms = std::max(single_ms, 1e-6);
  const long iterations = std::max(1L, long(std::ceil(timing.min_rep_seconds * 1e3 / single_ms)));
  const double rep_ms = iterations * single_ms;
  const int reps = std::clamp(int(timing.max_seconds_per_case * 1e3 / rep_ms), 1, timing.reps);

  // Fixed iterations and repetitions: exactly this many calls, each timed on its own (manual
  // time): what runs between calls (before_last_call) is not counted.
  const long total_calls = iterations * reps;
  long calls = 0;
  std::vector<double> samples_ms;
  for (int rep = 0; rep < reps; ++rep) {
    double total_ms = 0;
    for (long i = 0; i < iterations; ++i) {
      if (++calls == total_calls && before_last_call) before_last_call();
      const auto start = std::chrono::steady_clock::now();
      const double ms = call();
      // A device plan's own figure (CUDA events), else the host's clock, as for the warm-up.
      total_ms +=
          ms >= 0
              ? ms
              : std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start)
                    .count();
    }
    samples_ms.push_back(total_ms / double(iterations));
  }

  TimeStats t;
  t.samples = samples_ms;
  std::vector<double> s = samples_ms;
  std::sort(s.begin(), s.end());
  t.reps = int(s.size());
  t.iterations = iterations;
  t.min = s.front();
  t.max = s.back();
  t.median = s.size() % 2 ? s[s.size() / 2] : (s[s.size() / 2 - 1] + s[s.size() / 2]) / 2;
  double mean = 0;
  for (double v : s) mean += v;
  mean /= double(s.size());
  double var = 0;
  for (double v : s) var += (v - mean) * (v - mean);
  t.stddev = s.size() > 1 ? std::sqrt(var / double(s.size() - 1)) : 0.0;
  t.noisy = t.median > 0 && t.stddev > 0.1 * t.median;
  return t;
}

}  // namespace convbp
