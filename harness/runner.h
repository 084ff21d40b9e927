// The one generic harness loop: suite -> cases -> data -> validate -> time -> select -> report.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "backward.h"
#include "config.h"
#include "report.h"
#include "shard.h"

namespace convbp {

struct CaseSpec;

struct RunOptions {
  std::vector<std::string> impls;      // patterns; empty = the suite's
  std::optional<Pass> pass;            // only this pass
  int threads = 0;                     // 0 = OMP_NUM_THREADS if set, else all cores
  std::optional<int> reps;             // overrides the suite's timing.reps
  std::optional<ConvProblem> problem;  // run this one problem instead of the suite's layers
  std::optional<Shard> shard;          // run only this share of the cases (shard.h)
  std::string dump_dir;                // write inputs and outputs as .npy here
  bool validate_only = false;          // correctness only, no timing
  std::uint64_t seed = 1;
  bool progress = false;                    // progress lines on stderr
  const std::atomic<bool>* stop = nullptr;  // set by a signal handler: finish and mark incomplete
  // Runs every CPU candidate in a forked child (docs/isolation.md), so that one that crashes is
  // recorded as `crashed` and one that hangs past candidate_timeout_s as `timeout`, and the run
  // goes on. CUDA candidates always run in this process (a CUDA context does not survive fork).
  // Off by default (an application's Autotuner should not fork); `convbp run --isolate` sets it.
  bool isolate = false;
  // Wall-clock limit of one isolated candidate, planning, validation and timing together, in
  // seconds; 0 = candidate_timeout_seconds's default.
  double candidate_timeout_s = 0;
  // Answers a case without measuring it (the tuning database's hits: no reference, no
  // timing); nullopt = measure it. Given the implementations the run selected.
  std::function<std::optional<Case>(const CaseSpec&, const std::vector<const Backward*>&)> lookup;
};

// One case of the plan: a layer and a pass.
struct CaseSpec {
  std::string name;
  ConvProblem problem;
  Pass pass;
  int count;
};

// The implementations the patterns select, in registry order. With `strict` (patterns typed on
// the command line) a pattern that matches nothing is a SelectionError (backward.h); a suite's
// patterns may name families this build lacks (a suite serves CPU-only and GPU builds alike).
std::vector<const Backward*> select_impls(const std::vector<std::string>& patterns, bool strict);

// What a run of `suite` with `options` selects: options.impls (strict) when given, else the
// suite's; a SelectionError when that is nothing.
std::vector<const Backward*> run_selection(const Suite& suite, const RunOptions& options);

// A SelectionError naming what is wrong with the environment variables the available
// implementations among `impls` read (Backward::environment_error), each error said once.
void check_environment(const std::vector<const Backward*>& impls);

// The wall-clock limit of one isolated candidate: options.candidate_timeout_s when set, else
// 60 s + 10 x timing.max_seconds_per_case. A measurement stays near max_seconds_per_case, and a
// call slower than that ends it as `timeout` after the first call, so a candidate legitimately
// needs a few calls of at most that long plus its planning; the 60 s cover planning and a slow
// validate-only call (no per-call limit there).
double candidate_timeout_seconds(const TimingSettings& timing, const RunOptions& options);

// The cases a suite and options expand to (all of them: options.shard is not applied).
std::vector<CaseSpec> expand_cases(const Suite& suite, const RunOptions& options);

// The indices (into expand_cases's list, ascending) of the cases the run measures: all of them,
// or options.shard's share (shard_cases).
std::vector<std::size_t> selected_cases(const std::vector<CaseSpec>& cases,
                                        const RunOptions& options);

// Validates and times every selected implementation on one case.
Case run_case(const CaseSpec& spec, const std::vector<const Backward*>& impls,
              const TimingSettings& timing, const RunOptions& options, int case_index);

// Runs the whole suite (SelectionError when the suite's and options' patterns select nothing).
// `on_case` is called after each finished case with the report so far
// (complete = false), so the caller can save it; the returned report is complete unless
// options.stop was raised.
Report run_suite(const Suite& suite, const RunOptions& options,
                 const std::function<void(const Report&)>& on_case = {});

}  // namespace convbp
