// The interface every backward-convolution implementation satisfies, and the registry.
//
// Plan, then run (as FFTW and cuFFT do): `Backward::plan` does all set-up outside timing
// (descriptors, transforms, device buffers, workspace size); `Plan::run` is the timed call and
// does only the work. Implementations know nothing of configs, timing or reports.
#pragma once

#include <cstddef>
#include <memory>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "problem.h"

namespace convbp {

enum class Device { cpu, cuda };
const char* to_string(Device device);

// Whether an implementation can do a valid problem; `why` says in words a user can act on
// why not ("needs 3x3 kernel, stride 1, dilation 1", "no CUDA device").
struct Support {
  bool ok = true;
  std::string why;
  // A reason that will pass (a lost CUDA context): recorded as an error, and the case is not
  // stored in a tuning database, so that a later run measures it.
  bool transient = false;
  static Support yes() { return {true, "", false}; }
  static Support no(std::string why) { return {false, std::move(why), false}; }
  static Support not_now(std::string why) { return {false, std::move(why), true}; }
};

// What an implementation is to the harness besides an algorithm. Each role is a property the
// implementation declares where it is defined; the harness finds them through the registry
// (reference_backward(), baselines(), default_fallbacks()) and never names an implementation.
struct Roles {
  // The fp64 reference every result is validated against (it overrides
  // Backward::run_reference). Exactly one registered implementation has it.
  bool reference = false;
  // The baseline of the winners table's speedup column on its device() (at most one per
  // device), so that a GPU suite is compared with a GPU baseline.
  bool baseline = false;
  // Place in the Autotuner's default fallback order (1 first, then 2, ...); 0: not a fallback.
  // A fallback is a direct-summation algorithm, whose error is fp32 rounding only, so that it
  // meets any max_rel_error constraint without being measured.
  int fallback = 0;
};

// Patterns that select no implementation (`convbp run --impl`, AutotunerOptions::impls).
// The library's own error type, distinct from a failure while running: the CLI maps it to
// exit status 2, an application catches it as std::invalid_argument.
class SelectionError : public std::invalid_argument {
 public:
  using std::invalid_argument::invalid_argument;
};

// Host buffers of one pass, in the problem's dtype and layout (problem.h): x, dx [n, c, h, w],
// w, dw [k, c/g, r, s] and dy [n, k, p, q] in NCHW; [n, h, w, c], [k, r, s, c/g] and
// [n, p, q, k] in NHWC; db [k]. Every buffer, db included, holds elements of `dtype`: float, or
// the 16-bit patterns of bfloat16 or float16. A data-pass plan reads dy and w and overwrites
// dx; a weights-pass plan reads x and dy and overwrites dw and db. Every output element must be
// written (outputs arrive NaN-poisoned).
//
// The pointers are untyped because one struct serves every dtype; `dtype` and `layout` say what
// they point to (the defaults, f32 NCHW, are what every caller before dtypes passed). Kernels
// read them through the typed accessors, e.g. `t.dy_as<float>()`, after supports() has checked
// the problem's dtype; the harness and the Autotuner check that a Tensors matches its problem
// (matches() below) before running a plan on it.
struct Tensors {
  const void* x = nullptr;
  const void* w = nullptr;
  const void* dy = nullptr;
  void* dx = nullptr;
  void* dw = nullptr;
  void* db = nullptr;
  DType dtype = DType::f32;
  Layout layout = Layout::nchw;

  template <typename T>
  const T* x_as() const {
    return static_cast<const T*>(x);
  }
  template <typename T>
  const T* w_as() const {
    return static_cast<const T*>(w);
  }
  template <typename T>
  const T* dy_as() const {
    return static_cast<const T*>(dy);
  }
  template <typename T>
  T* dx_as() const {
    return static_cast<T*>(dx);
  }
  template <typename T>
  T* dw_as() const {
    return static_cast<T*>(dw);
  }
  template <typename T>
  T* db_as() const {
    return static_cast<T*>(db);
  }
  // Whether these buffers are of the problem's dtype and layout.
  bool matches(const ConvProblem& problem) const {
    return dtype == problem.dtype && layout == problem.layout;
  }
};

// The decline of an implementation that computes f32 NCHW only; yes for f32 NCHW problems.
inline Support needs_f32_nchw(const ConvProblem& problem, const std::string& what) {
  if (problem.dtype != DType::f32) {
    return Support::no(what + " computes f32 only, not " + to_string(problem.dtype));
  }
  if (problem.layout != Layout::nchw) {
    return Support::no(what + " takes NCHW tensors only, not " + to_string(problem.layout));
  }
  return Support::yes();
}

// A planned pass. The contract, in call order (the harness and the Autotuner keep it):
//
//   1. upload(host)         untimed: a device plan copies the inputs to its own buffers
//   2. run(host, workspace) the validated call, outputs NaN-poisoned before it
//   3. run(host, workspace) the timed calls (run_timed_ms instead when times_itself())
//   4. download(host)       untimed: a device plan copies its outputs back into `host`
//
// Workspace: the caller allocates host_workspace_bytes() bytes of host memory, once per plan,
// and passes them as `workspace` to every call; a plan that holds its own workspace (device
// memory, a library's aligned scratchpad) says 0 there and ignores the pointer. Either way
// workspace_bytes() is what the plan uses, for the report and the constraints.
class Plan {
 public:
  virtual ~Plan() = default;
  virtual std::size_t workspace_bytes() const { return 0; }
  // What the caller allocates and passes as `workspace` (see above).
  virtual std::size_t host_workspace_bytes() const { return workspace_bytes(); }
  virtual bool deterministic() const { return true; }
  // What the plan actually runs, for the report (a library's kernel name, a caveat).
  virtual std::string detail() const { return ""; }
  // Tolerance multiplier when the plan knows better than its Backward (which engine a library
  // picked, the problem's accumulation length); 0 = use Backward::tolerance_factor.
  virtual double tolerance_factor() const { return 0.0; }

  // Untimed: a device plan copies the inputs to its own buffers here; CPU plans need nothing.
  virtual void upload(const Tensors& /*host*/) {}
  // The run-time API's run() on host tensors (TunedPlan::run): the inputs copied as upload()
  // copies them, without what upload() adds for validation (a device plan's NaN-poisoned
  // outputs and workspace).
  virtual void copy_inputs(const Tensors& host) { upload(host); }
  // The call: overwrites the outputs. CPU plans use `host`; device plans their own buffers
  // (uploaded before).
  virtual void run(const Tensors& host, void* workspace) = 0;
  // Untimed: a device plan copies its outputs back into `host`; CPU plans need nothing.
  virtual void download(const Tensors& /*host*/) {}
  // The run-time API's call on the caller's own memory (TunedPlan::run_device): the pass on
  // `caller`'s pointers, which are device memory for a device plan and host memory in the
  // problem's layout for a CPU plan, with no upload() or download(): only the work that the
  // ranking timed. A plan whose timed call works on buffers of its own in layouts of its own
  // (oneDNN's .native entries) cannot: runs_on_caller_memory() is false and run_on throws.
  virtual bool runs_on_caller_memory() const { return true; }
  virtual void run_on(const Tensors& caller, void* workspace) { run(caller, workspace); }
  // The same, enqueued on the caller's `stream` (a cudaStream_t; nullptr: the default stream)
  // without waiting for it (TunedPlan::run_device_async). A CPU plan has no stream: it runs
  // run_on() and returns when it is done.
  virtual void enqueue_on(const Tensors& caller, void* workspace, void* /*stream*/) {
    run_on(caller, workspace);
  }
  // Device plans time themselves (CUDA events): times_itself() is true and run_timed_ms runs
  // once and returns milliseconds. Other plans are timed on the host clock around run(), and
  // run_timed_ms is not called.
  virtual bool times_itself() const { return false; }
  virtual double run_timed_ms(const Tensors& /*host*/, void* /*workspace*/) {
    throw std::logic_error("run_timed_ms called on a plan that does not time itself");
  }
};

class Backward {
 public:
  virtual ~Backward() = default;
  // family.variant: "naive", "im2col_gemm.batched", "cudnn.winograd_nonfused.tf32".
  virtual std::string name() const = 0;
  virtual Device device() const { return Device::cpu; }
  // Whether the implementation is usable on this machine at all (a library present, a device
  // found); a reason when not. Checked before supports().
  virtual Support available() const { return Support::yes(); }
  // Called with validated problems only.
  virtual Support supports(const ConvProblem& problem, Pass pass) const = 0;
  // May throw std::exception on failure (out of memory, a library error): the harness records
  // status `error` with the message.
  virtual std::unique_ptr<Plan> plan(const ConvProblem& problem, Pass pass) const = 0;
  // Tolerance multiplier for validation (1 = direct summation in fp32). Winograd, FFT and TF32
  // lose more precision by design; each documents its factor where it defines it.
  virtual double tolerance_factor(Pass /*pass*/) const { return 1.0; }
  // Libraries this implementation runs on and their versions, for the report's context.
  virtual std::vector<std::pair<std::string, std::string>> library_versions() const { return {}; }
  // Device implementations: the device's name and driver, for the report's context.
  virtual std::string device_description() const { return ""; }
  // The environment variables this implementation reads (CONVBP_CUDNN_DB, ...), checked: what
  // is wrong with one, naming the variable and its value; empty when nothing is. `convbp run`,
  // `validate` and `tune` refuse a selection with such an error before measuring, and the
  // Autotuner throws it, rather than record each candidate as an error or take a misspelt value
  // for the default.
  virtual std::string environment_error() const { return ""; }

  // What the implementation is to the harness besides an algorithm (Roles).
  virtual Roles roles() const { return {}; }
  // The whole-network comparison the implementation belongs to ("" none): besides convbp's
  // picks, a report's network total is stated for each strategy, taking per case the fastest
  // correct of its members, as a user who runs only that library would get (a strategy of one
  // implementation is "it everywhere"; cuDNN's legacy algorithms are one, as cudnnFind picks
  // among them). The harness finds strategies here and never names an implementation.
  virtual std::string strategy() const { return ""; }
  // Roles::reference only: the pass from the inputs of `in`, every product accumulated in
  // double and the outputs kept in double: dx for the data pass, dw and db for the weights
  // pass, in logical NCHW order whatever the layout. Others throw std::logic_error.
  virtual void run_reference(const ConvProblem& problem, Pass pass, const Tensors& in, double* dx,
                             double* dw, double* db) const;

  // Families whose members depend on the problem (cuDNN's engine configurations: which engines
  // and knob settings cuDNN offers depends on the shape, the pass, the GPU and the version).
  // members() lists the implementations the family stands for on (problem, pass), each with
  // its own name; it is called only after available() and supports() said yes, and a family
  // with no member for a problem declines it in supports(). An ordinary implementation stands
  // for itself. The harness runs, reports and stores members under their own names.
  virtual std::vector<const Backward*> members(const ConvProblem& /*problem*/,
                                               Pass /*pass*/) const {
    return {this};
  }
  // The member a report or a tuning database calls `name`, rebuilt from the name alone;
  // nullptr when `name` is not one of this family's. Members live as long as the program.
  virtual const Backward* member(const std::string& /*name*/) const { return nullptr; }
  // How a family's members are named ("cudnn.engine<id>[...].fp32"), for `convbp list`; "" for
  // an ordinary implementation.
  virtual std::string members_named() const { return ""; }
  // Opt-in implementations (a search that spends seconds per case: cudnn.search.*) are selected
  // only by their exact name, never by a glob such as "cudnn.*" or a suite's default.
  virtual bool opt_in() const { return false; }
};

// Every registered implementation, in impl_list.inc order (the reference first), then those
// added by add_backward().
const std::vector<const Backward*>& registry();
// A registered implementation, or a family's member (Backward::member), by name; nullptr if none.
const Backward* find_backward(const std::string& name);
// Registers one more implementation (an application's own, a test's); it lives as long as the
// program. Not thread-safe: call it while no other thread uses the registry, and not while
// iterating registry() (the vector may grow). Throws if the name is taken.
void add_backward(std::unique_ptr<Backward> backward);
// Whether a result recorded under `impl` belongs to the selected implementation `selected`:
// the same name, or a member of the family `selected`.
bool stands_for(const std::string& selected, const std::string& impl);

// One implementation that runs on a case: a selected implementation itself, or one of the
// members a selected family offers for the problem.
struct Candidate {
  const Backward* impl = nullptr;
  // The selected family `impl` is a member of ("" when `impl` was selected itself): reports
  // and tuning databases keep it, so that a later run selecting the family finds the member.
  std::string family;
};
// The one place families are resolved: the selected implementations, in order, each replaced by
// the members it offers on (problem, pass) (Backward::members), as one flat list in which every
// implementation appears once (a member selected by name and through its family runs once, as
// the first). A family that is unavailable, declines the problem or fails to list its members
// stays itself, so that its one result records why.
std::vector<Candidate> resolve(const std::vector<const Backward*>& selected,
                               const ConvProblem& problem, Pass pass);

// The registered implementation with Roles::reference; throws std::logic_error if none.
const Backward& reference_backward();
// The implementations with Roles::baseline, in registry order (one per device).
std::vector<const Backward*> baselines();
// The names of the implementations with a Roles::fallback place, in that order: the Autotuner's
// default when AutotunerOptions::fallback is empty.
std::vector<std::string> default_fallbacks();

// Thread count applied to every library (OpenBLAS, OpenMP, oneDNN). 0 = library default.
void set_threads(int threads);
int threads();

}  // namespace convbp
