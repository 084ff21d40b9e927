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

namespace convbp {

// Bad command-line or config input (exit status 2), as opposed to a failure while running.
class UsageError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct CaseSpec;

struct RunOptions {
  std::vector<std::string> impls;      // patterns; empty = the suite's
  std::optional<Pass> pass;            // only this pass
  int threads = 0;                     // 0 = OMP_NUM_THREADS if set, else all cores
  std::optional<int> reps;             // overrides the suite's timing.reps
  std::optional<ConvProblem> problem;  // run this one problem instead of the suite's layers
  std::string dump_dir;                // write inputs and outputs as .npy here
  bool validate_only = false;          // correctness only, no timing
  std::uint64_t seed = 1;
  bool progress = false;                    // progress lines on stderr
  const std::atomic<bool>* stop = nullptr;  // set by a signal handler: finish and mark incomplete
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
// the command line) a pattern that matches nothing is a UsageError; a suite's patterns may
// name families this build lacks (a suite serves CPU-only and GPU builds alike).
std::vector<const Backward*> select_impls(const std::vector<std::string>& patterns, bool strict);

// The cases a suite and options expand to.
std::vector<CaseSpec> expand_cases(const Suite& suite, const RunOptions& options);

// Validates and times every selected implementation on one case.
Case run_case(const CaseSpec& spec, const std::vector<const Backward*>& impls,
              const TimingSettings& timing, const RunOptions& options, int case_index);

// Runs the whole suite. `on_case` is called after each finished case with the report so far
// (complete = false), so the caller can save it; the returned report is complete unless
// options.stop was raised.
Report run_suite(const Suite& suite, const RunOptions& options,
                 const std::function<void(const Report&)>& on_case = {});

}  // namespace convbp
