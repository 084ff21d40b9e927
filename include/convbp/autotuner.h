// convbp's run-time API: the best implementation per layer shape and pass, from a tuning
// database that `convbp tune` (or this class, on a miss) fills. docs/tuning.md describes it.
//
//   convbp::Autotuner tuner{"tuning.json"};
//   convbp::TunedPlan& plan = tuner.plan(problem, convbp::Pass::data);
//   plan.run(tensors);  // or plan.run(tensors, workspace) with plan.workspace_bytes() bytes
//   std::cout << plan.impl() << ": " << plan.why() << "\n";
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "backward.h"
#include "problem.h"

namespace convbp {

// What a caller will accept from an implementation. An implementation that breaks any of
// them is never chosen, however fast.
struct Constraints {
  std::optional<std::size_t> max_workspace_bytes;
  bool deterministic_only = false;      // bitwise identical results run to run
  std::optional<double> max_rel_error;  // max |out - ref| / max |ref| against the fp64 reference
  bool any() const { return max_workspace_bytes || deterministic_only || max_rel_error; }
  // "workspace <= 1048576 B, deterministic, max_rel <= 1e-05" ("none" when empty).
  std::string describe() const;
};

// Where a plan's choice came from.
enum class PlanSource {
  database,  // an entry tuned earlier under this machine's fingerprint
  tuned,     // no usable entry: tuned now, within AutotunerOptions::tune_seconds
  fallback,  // no usable entry and no tuning (or tuning found nothing): the documented default
};
// "database hit", "tuned now", "default".
const char* to_string(PlanSource source);

struct AutotunerOptions {
  enum class OnMiss { tune, fallback };
  // What plan() does when the database has no usable entry for a shape and pass.
  OnMiss on_miss = OnMiss::tune;
  // Timing budget of one tuning on a miss, all candidates together (each candidate gets an
  // equal share; one that needs more for a single call is dropped as a timeout, which is saved
  // as a rejection but not as tried, so that `convbp tune` measures it with its full budget).
  // Validation against the fp64 reference comes on top.
  double tune_seconds = 5.0;
  // Candidate implementations (globs over names, as `convbp tune --impl`). Empty: every
  // registered implementation except the fp64 reference (Roles::reference) and the opt-in ones
  // (Backward::opt_in(), selected by full name only). A pattern that matches nothing, or a bad
  // value of an environment variable an available candidate or fallback reads (CONVBP_CUDNN_DB,
  // ...; Backward::environment_error), is a SelectionError (backward.h), thrown by the
  // constructor.
  std::vector<std::string> impls;
  // The default: the first of these that supports the shape and meets the constraints. Empty:
  // the implementations' own fallback order (Roles::fallback, default_fallbacks() in
  // backward.h: im2col_gemm.batched, im2col_gemm.per_sample, naive). max_rel_error cannot be
  // checked without measuring: fallbacks are direct-summation algorithms, whose error is fp32
  // rounding only.
  std::vector<std::string> fallback;
  Constraints constraints;
  // Threads for every library. 0: keep the process's setting (convbp::threads()). The thread
  // count is part of the fingerprint, so entries tuned with another count are not used.
  int threads = 0;
  // Write entries tuned on a miss back to the database file (atomic, under its lock).
  bool save = true;
  std::uint64_t seed = 1;  // data of tunings on a miss
};

// One layer shape and pass, planned: an implementation's Plan, ready to run.
class TunedPlan {
 public:
  TunedPlan(const ConvProblem& problem, Pass pass, const Backward& backward,
            std::unique_ptr<Plan> plan, PlanSource source, std::string why, double expected_ms);
  ~TunedPlan();
  TunedPlan(const TunedPlan&) = delete;
  TunedPlan& operator=(const TunedPlan&) = delete;

  const std::string& impl() const { return impl_; }
  PlanSource source() const { return source_; }
  // Why this implementation, in words: "database hit: fastest of 4 correct, 23.1% ahead of
  // im2col_gemm.per_sample", "default: no database entry (on_miss = fallback)".
  const std::string& why() const { return why_; }
  const ConvProblem& problem() const { return problem_; }
  Pass pass() const { return pass_; }
  std::size_t workspace_bytes() const;
  bool deterministic() const;
  // Median time measured when tuned (ms); 0 for the default. It is what run_device() costs:
  // the ranking times the plan's work on memory in the device's layout, and the Autotuner never
  // picks a plan whose call on the caller's memory would add work the ranking did not time
  // (oneDNN's .native entries: their reorders). For a device plan it is the GPU time of
  // run_device_async(); run_device() adds the wait for the default stream, and run() on host
  // tensors the host-device copies on top.
  double expected_ms() const { return expected_ms_; }
  // Where run_device()'s tensors live: Device::cuda for a cuDNN plan, Device::cpu otherwise.
  Device device() const;

  // Computes the pass on host tensors (Tensors in backward.h: the data pass reads dy and w and
  // overwrites dx; the weights pass reads x and dy and overwrites dw and db). `workspace`
  // holds workspace_bytes() bytes of host memory.
  void run(const Tensors& tensors, void* workspace);
  // The same, with a workspace the plan allocates once and keeps. A plan runs on one thread at
  // a time (give each thread its own Autotuner, or serialise the calls); plans on different
  // threads may run at once (docs/tuning.md, "Threads").
  void run(const Tensors& tensors);
  // The pass on the caller's own memory, with no copy: for a device plan, `device` holds device
  // pointers (cudaMalloc'd, in the problem's dtype and layout), the call runs on the default
  // stream and returns when it is done; for a CPU plan, host memory as for run(). `workspace`
  // as for run(). What expected_ms() measured, and nothing else.
  void run_device(const Tensors& device, void* workspace);
  void run_device(const Tensors& device);
  // The same work enqueued on the framework's own CUDA stream (`stream` is a cudaStream_t) and
  // not waited for: the caller orders and synchronises it like its other work on that stream,
  // and pays the GPU time expected_ms() measured, with no synchronisation. The plan's own
  // device workspace is shared by its calls: a call on another stream waits for the previous
  // one (an event, on the GPU). For a CPU plan, run_device(): done when it returns.
  void run_device_async(const Tensors& device, void* stream);

 private:
  ConvProblem problem_;
  Pass pass_;
  const Backward* backward_;
  std::unique_ptr<Plan> plan_;
  std::string impl_;
  PlanSource source_;
  std::string why_;
  double expected_ms_;
  void* workspace();  // the plan's host workspace, allocated at first use
  std::unique_ptr<unsigned char[]> own_workspace_;
};

// Plans layer shapes from a tuning database (schema convbp.tuning/1). A file that exists but is
// not a valid convbp tuning database (malformed, nested deeper than 64 levels, a repeated key, a
// bad field, unreadable) is never written over and never fatal: it is renamed to
// PATH.unreadable-<UTC time>, one warning line goes to stderr and to notes(), and the tuner
// starts an empty database. A missing file is an empty database, created when the first tuning
// is saved. An empty path keeps everything in memory. plan() is thread-safe.
// Tunings on a miss take turns process-wide, with every other convbp measurement (two
// Autotuners in two threads tune one after the other), and leave Google Benchmark's registry and
// flags, which the application may use, alone.
class Autotuner {
 public:
  explicit Autotuner(std::string database_path, AutotunerOptions options = {});
  ~Autotuner();
  Autotuner(const Autotuner&) = delete;
  Autotuner& operator=(const Autotuner&) = delete;

  // The plan for a shape and pass: planned once, then the same object on every call. Throws
  // InvalidProblem for a malformed shape, std::runtime_error when no implementation can run it
  // under the constraints.
  TunedPlan& plan(const ConvProblem& problem, Pass pass);

  const std::string& database_path() const;
  const AutotunerOptions& options() const;
  // Cases measured by this tuner (misses tuned now).
  int tuned_count() const;
  // What went wrong with the database file and what was done about it, one line each (an
  // unreadable file set aside). Empty when all was well.
  std::vector<std::string> notes() const;

 private:
  struct State;
  std::unique_ptr<State> state_;
};

}  // namespace convbp
