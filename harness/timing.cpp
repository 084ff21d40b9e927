#include "timing.h"

#include <benchmark/benchmark.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <stdexcept>
#include <vector>

namespace convbp {
namespace {

// Collects the per-repetition times Google Benchmark measures; prints nothing.
class Collector : public benchmark::BenchmarkReporter {
 public:
  bool ReportContext(const Context&) override { return true; }
  void ReportRuns(const std::vector<Run>& runs) override {
    for (const Run& run : runs) {
      if (run.run_type == Run::RT_Iteration && run.iterations > 0) {
        // GetAdjustedRealTime: per-iteration time in the benchmark's unit (ms here); manual
        // time when the benchmark uses it.
        samples_ms.push_back(run.GetAdjustedRealTime());
        iterations = run.iterations;
      }
    }
  }
  std::vector<double> samples_ms;
  long iterations = 0;
};

}  // namespace

TimeStats measure(const std::string& label, const TimedCall& call, const TimingSettings& timing,
                  const std::function<void()>& before_last_call) {
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

  std::string error;
  // Fixed iterations and repetitions: Google Benchmark makes exactly this many calls.
  const long total_calls = iterations * reps;
  long calls = 0;
  auto* bench = benchmark::RegisterBenchmark(label.c_str(), [&](benchmark::State& state) {
    try {
      for (auto _ : state) {
        // Manual time: what runs before `start` is not counted.
        if (++calls == total_calls && before_last_call) before_last_call();
        auto start = std::chrono::steady_clock::now();
        const double ms = call();
        if (ms >= 0) {  // a device plan's own figure (CUDA events)
          state.SetIterationTime(ms / 1e3);
        } else {
          // Manual time for host calls too: the same clock as the warm-up, and no
          // framework overhead between calls counted in.
          state.SetIterationTime(
              std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
        }
      }
    } catch (const std::exception& e) {
      error = e.what();
      state.SkipWithError(error.c_str());
    }
  });
  bench->Iterations(iterations)
      ->Repetitions(reps)
      ->UseManualTime()
      ->Unit(benchmark::kMillisecond)
      ->ReportAggregatesOnly(false);
  Collector collector;
  benchmark::RunSpecifiedBenchmarks(&collector);
  benchmark::ClearRegisteredBenchmarks();
  if (!error.empty()) throw std::runtime_error(error);
  if (collector.samples_ms.empty()) throw std::runtime_error("no timing samples collected");

  TimeStats t;
  t.samples = collector.samples_ms;
  std::vector<double> s = collector.samples_ms;
  std::sort(s.begin(), s.end());
  t.reps = int(s.size());
  t.iterations = collector.iterations;
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
