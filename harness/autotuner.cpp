#include "autotuner.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <map>
#include <mutex>
#include <stdexcept>

#include "blas_core.h"
#include "context.h"
#include "runner.h"
#include "selection.h"
#include "timing.h"
#include "tuning.h"

namespace convbp {

std::string Constraints::describe() const {
  std::string out;
  auto add = [&](const std::string& part) { out += (out.empty() ? "" : ", ") + part; };
  if (max_workspace_bytes) add("workspace <= " + format_bytes(*max_workspace_bytes));
  if (deterministic_only) add("deterministic");
  if (max_rel_error) {
    char buf[48];
    std::snprintf(buf, sizeof buf, "max_rel <= %g", *max_rel_error);
    add(buf);
  }
  return out.empty() ? "none" : out;
}

const char* to_string(PlanSource source) {
  switch (source) {
    case PlanSource::database:
      return "database hit";
    case PlanSource::tuned:
      return "tuned now";
    case PlanSource::fallback:
      return "default";
  }
  return "?";
}

TunedPlan::TunedPlan(const ConvProblem& problem, Pass pass, const Backward& backward,
                     std::unique_ptr<Plan> plan, PlanSource source, std::string why,
                     double expected_ms)
    : problem_(problem),
      pass_(pass),
      backward_(&backward),
      plan_(std::move(plan)),
      impl_(backward.name()),
      source_(source),
      why_(std::move(why)),
      expected_ms_(expected_ms) {}

TunedPlan::~TunedPlan() = default;

std::size_t TunedPlan::workspace_bytes() const { return plan_->workspace_bytes(); }
bool TunedPlan::deterministic() const { return plan_->deterministic(); }

namespace {

void check_matches(const Tensors& tensors, const ConvProblem& problem) {
  if (!tensors.matches(problem)) {
    throw std::invalid_argument(std::string("convbp: tensors are ") + to_string(tensors.dtype) +
                                " " + to_string(tensors.layout) + " but the plan is for " +
                                problem.key() + " (" + to_string(problem.dtype) + " " +
                                to_string(problem.layout) + "): set Tensors::dtype and layout");
  }
}

}  // namespace

Device TunedPlan::device() const { return backward_->device(); }

void TunedPlan::run(const Tensors& tensors, void* workspace) {
  check_matches(tensors, problem_);
  // Device plans copy in and out around the call (backward.h), with none of the poisoning
  // that upload() adds for validation; both are no-ops on the CPU.
  plan_->copy_inputs(tensors);
  plan_->run(tensors, workspace);
  plan_->download(tensors);
}

void* TunedPlan::workspace() {
  const std::size_t bytes = plan_->host_workspace_bytes();  // backward.h's workspace contract
  if (bytes > 0 && !own_workspace_) own_workspace_.reset(new unsigned char[bytes]);
  return own_workspace_.get();
}

void TunedPlan::run(const Tensors& tensors) { run(tensors, workspace()); }

void TunedPlan::run_device(const Tensors& device, void* workspace) {
  check_matches(device, problem_);
  if (!plan_->runs_on_caller_memory()) {
    throw std::logic_error("convbp: " + impl_ + " cannot run on the caller's memory: use run()");
  }
  plan_->run_on(device, workspace);
}

void TunedPlan::run_device(const Tensors& device) { run_device(device, workspace()); }

void TunedPlan::run_device_async(const Tensors& device, void* stream) {
  check_matches(device, problem_);
  if (!plan_->runs_on_caller_memory()) {
    throw std::logic_error("convbp: " + impl_ + " cannot run on the caller's memory: use run()");
  }
  plan_->enqueue_on(device, workspace(), stream);
}

namespace {

// A host application cannot be re-executed with another OpenBLAS core as the CLI is
// (blas_core.h): say so once per process, on stderr. The core is in the tuning fingerprint, so
// entries tuned under another core are not used.
void warn_once_about_blas_core() {
  static std::once_flag once;
  std::call_once(once, [] {
    const BlasCore& core = blas_core();
    if (core.chosen_by != "openblas" || !core.lesser) return;
    std::fprintf(stderr,
                 "convbp: warning: OpenBLAS runs its %s kernels on a CPU that can run %s's, so "
                 "plans on OpenBLAS are slower than they could be; start the application with "
                 "OPENBLAS_CORETYPE=%s (docs/tuning.md)\n",
                 core.running.c_str(), core.best.c_str(), core.best.c_str());
  });
}

}  // namespace

struct Autotuner::State {
  std::string path;
  AutotunerOptions options;
  nlohmann::json fingerprint;
  TuningDb db;
  std::vector<const Backward*> candidates;
  std::map<std::string, std::unique_ptr<TunedPlan>> plans;
  std::mutex mutex;
  int tuned = 0;

  std::vector<std::string> notes;

  // The database as it is on disk now. One that cannot be read (damaged, or not a database) is
  // set aside under its lock and replaced by an empty one, and said so on stderr and in
  // notes(): a host application goes on. If even that fails, the tuner runs from memory.
  void refresh() {
    if (path.empty()) return;
    try {
      db = read_tuning_db(path);
      return;
    } catch (const TuningError& e) {
      std::string note = "tuning database unreadable (" + std::string(e.what()) + ")";
      try {
        const std::string aside = set_aside_unreadable(path);
        if (aside.empty()) {
          db = read_tuning_db(path);
          return;
        }
        note += ": set aside as " + aside + "; starting an empty database";
      } catch (const std::exception& again) {
        note += ": cannot set it aside (" + std::string(again.what()) + "); tuning in memory only";
        path.clear();
      }
      db = TuningDb{};
      notes.push_back(note);
      std::fprintf(stderr, "convbp: warning: %s\n", note.c_str());
    }
  }

  // The first fallback implementation that can run the problem under the constraints.
  std::unique_ptr<TunedPlan> fallback(const ConvProblem& problem, Pass pass,
                                      const std::string& why) {
    const Constraints& c = options.constraints;
    const std::vector<std::string> order =
        options.fallback.empty() ? default_fallbacks() : options.fallback;
    for (const std::string& name : order) {
      const Backward* b = find_backward(name);
      if (!b || !b->available().ok || !b->supports(problem, pass).ok) continue;
      std::unique_ptr<Plan> plan;
      try {
        plan = b->plan(problem, pass);
      } catch (const std::exception&) {
        continue;
      }
      if (!plan->runs_on_caller_memory()) continue;  // untimed reorders (expected_ms)
      // A default's error is not measured: the constraints on what a plan shows apply.
      Constraints shown = c;
      shown.max_rel_error.reset();
      if (constraint_violation(shown, plan->workspace_bytes(), plan->deterministic(), {})) continue;
      return std::make_unique<TunedPlan>(problem, pass, *b, std::move(plan), PlanSource::fallback,
                                         "default (" + why + ")", 0.0);
    }
    throw std::runtime_error("no implementation can run " + problem.key() + " " + to_string(pass) +
                             " under the constraints (" + c.describe() + "): " + why);
  }

  // Plans the best of `results` that meets the constraints; an implementation whose planning
  // fails is dropped and the next best taken. Null when none is left; `reason` says why.
  std::unique_ptr<TunedPlan> best_of(std::vector<Result> results, const ConvProblem& problem,
                                     Pass pass, PlanSource source, const std::string& prefix,
                                     std::string& reason) {
    std::string failures;
    for (;;) {
      const Selection s = select_best(results, options.constraints);
      if (!s.best) {
        reason = s.reason + failures;
        return nullptr;
      }
      const Backward* b = find_backward(s.best->impl);
      std::string failure;
      if (!b) {
        failure = "not in this build";
      } else if (Support a = b->available(); !a.ok) {
        failure = a.why;
      } else if (Support p = b->supports(problem, pass); !p.ok) {
        failure = p.why;
      } else {
        try {
          std::unique_ptr<Plan> plan = b->plan(problem, pass);
          // expected_ms() must be what the caller pays: a plan timed without the reorders that
          // the caller's layout needs (oneDNN's .native) is not offered.
          if (!plan->runs_on_caller_memory()) {
            throw std::runtime_error(
                "its ranking time leaves out the reorders between the caller's layout and its "
                "own");
          }
          std::string why = prefix + s.reason + failures;
          if (!s.excluded.empty()) {
            why +=
                "; excluded by the constraints: " + s.excluded.front() +
                (s.excluded.size() > 1 ? " and " + std::to_string(s.excluded.size() - 1) + " more"
                                       : "");
          }
          return std::make_unique<TunedPlan>(problem, pass, *b, std::move(plan), source,
                                             std::move(why), s.best->time_ms);
        } catch (const std::exception& e) {
          failure = e.what();
        }
      }
      failures += "; " + s.best->impl + " skipped: " + failure;
      std::erase_if(results, [&](const Result& r) { return r.impl == s.best->impl; });
    }
  }

  std::unique_ptr<TunedPlan> make(const ConvProblem& problem, Pass pass) {
    // 1. The database, as it is on disk now (another process may have tuned meanwhile).
    refresh();
    std::string miss;
    if (const TuningEntry* e = db.find(fingerprint, problem, pass)) {
      // A timeout under an on-line budget counts as tried here (drop_timeouts_from_candidates).
      const std::vector<Asked> names = asked_of_entry(*e, candidates);
      if (auto missing = missing_candidate(*e, names, true)) {
        miss = "the database entry did not try " + *missing;
      } else {
        std::vector<Result> results = results_of(*e);
        std::erase_if(results, [&](const Result& r) {
          return std::none_of(names.begin(), names.end(),
                              [&](const Asked& a) { return a.impl == r.impl; });
        });
        std::string reason;
        auto plan = best_of(results, problem, pass, PlanSource::database, "database hit: ", reason);
        if (plan) return plan;
        // Tuning again would measure the same candidates: the entry's answer stands.
        return fallback(problem, pass, "database entry: " + reason);
      }
    } else if (!db.sections.empty() && !db.section(fingerprint)) {
      miss = "no database entry for this machine's fingerprint (" +
             fingerprint_difference(db.sections.front().fingerprint, fingerprint) + ")";
    } else {
      miss = "no database entry";
    }
    if (options.on_miss == AutotunerOptions::OnMiss::fallback) {
      return fallback(problem, pass, miss + ", on_miss = fallback");
    }

    // 2. Tune now: the harness's own validate-and-time of one case, on a budget.
    std::size_t runnable = 0;  // the budget is shared among what will run
    for (const Candidate& c : resolve(candidates, problem, pass)) {
      if (c.impl->available().ok && c.impl->supports(problem, pass).ok) ++runnable;
    }
    TimingSettings timing;
    timing.warmup = 1;
    timing.reps = 3;
    timing.max_seconds_per_case = options.tune_seconds / double(std::max<std::size_t>(runnable, 1));
    RunOptions run_options;
    run_options.seed = options.seed;
    // One tuning at a time in the process (another Autotuner, in another thread, waits): its
    // validation and reference would share the cores with this one's timing.
    std::unique_lock<std::recursive_mutex> measuring(measurement_mutex());
    const auto start = std::chrono::steady_clock::now();
    const Case c = run_case({"autotuner", problem, pass, 1}, candidates, timing, run_options, 0);
    const double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    measuring.unlock();
    ++tuned;
    TuningEntry entry = entry_from_case(c);
    drop_timeouts_from_candidates(entry, c);  // budget-limited: `convbp tune` measures them
    // An entry where every candidate ran out of budget says nothing about the machine: keep
    // it out of the database, so that a later, more generous tuning is not blocked.
    const bool informative =
        c.complete && (!entry.results.empty() ||
                       std::none_of(c.results.begin(), c.results.end(),
                                    [](auto& r) { return r.status == Status::timeout; }));
    std::string saved;
    if (informative) {
      if (!path.empty() && options.save) {
        try {
          db = merge_into_file(path, fingerprint, {entry});
        } catch (const std::exception& e) {
          db.merge(fingerprint, entry);
          saved = " (not saved: " + std::string(e.what()) + ")";
        }
      } else {
        db.merge(fingerprint, entry);
      }
    }
    char took[48];
    std::snprintf(took, sizeof took, "tuned now in %.1f s", seconds);
    const std::string prefix = took + saved + " (" + miss + "): ";
    std::string reason;
    if (auto plan = best_of(c.results, problem, pass, PlanSource::tuned, prefix, reason)) {
      return plan;
    }
    return fallback(problem, pass, "tuning found " + reason + saved);
  }
};

Autotuner::Autotuner(std::string database_path, AutotunerOptions options)
    : state_(std::make_unique<State>()) {
  State& s = *state_;
  warn_once_about_blas_core();
  s.path = std::move(database_path);
  s.options = std::move(options);
  if (s.options.threads > 0) set_threads(s.options.threads);
  s.fingerprint = machine_fingerprint(threads());
  if (s.options.impls.empty()) {
    for (const Backward* b : registry()) {
      if (!b->roles().reference && !b->opt_in()) s.candidates.push_back(b);
    }
  } else {
    s.candidates = select_impls(s.options.impls, true);
  }
  std::vector<const Backward*> checked = s.candidates;
  for (const std::string& name : s.options.fallback) {
    if (const Backward* b = find_backward(name)) checked.push_back(b);
  }
  check_environment(checked);
  s.refresh();  // a damaged or foreign file is set aside now, before anything is planned
}

Autotuner::~Autotuner() = default;

TunedPlan& Autotuner::plan(const ConvProblem& problem, Pass pass) {
  problem.validate();
  std::lock_guard<std::mutex> lock(state_->mutex);
  const std::string id = problem.key() + " " + to_string(pass);
  auto it = state_->plans.find(id);
  if (it == state_->plans.end()) it = state_->plans.emplace(id, state_->make(problem, pass)).first;
  return *it->second;
}

const std::string& Autotuner::database_path() const { return state_->path; }
const AutotunerOptions& Autotuner::options() const { return state_->options; }
int Autotuner::tuned_count() const { return state_->tuned; }
std::vector<std::string> Autotuner::notes() const {
  std::lock_guard<std::mutex> lock(state_->mutex);
  return state_->notes;
}

}  // namespace convbp
